"""Lessons in the browser: a learner completes the first lesson through the page's own controls
(the solution's "Fill in", then the learner's press), and an instructor's lesson run moves a
student's screen."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from messaging.models import Lesson

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lessons():
    call_command("lessons_load", verbosity=0)
    return list(Lesson.objects.order_by("order", "slug"))


def answer_open_prediction(page) -> None:
    """Predict (any answer will do here), then the solution's next step can be filled in."""
    page.locator("#lesson-panel .prediction .choice-btn").first.click()
    expect(page.locator("#lesson-panel .prediction-done").last).to_be_visible()


def test_it_lets_a_learner_complete_the_first_lesson_and_keeps_the_progress(
    new_page, live_url, lessons
):
    first = lessons[0]
    page = new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_url}/lessons/")
    expect(page.locator(f'.lesson-card[data-lesson="{first.slug}"] .lesson-state')).to_have_text(
        "not started"
    )
    page.locator(f'.lesson-card[data-lesson="{first.slug}"] .lesson-go').click()
    expect(page).to_have_url(re.compile(r"/r/[A-Z0-9]+/lesson/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    panel = page.locator("#lesson-panel")
    expect(panel.locator(".goal.is-met")).to_have_count(0)

    panel.get_by_role("button", name="Show the solution").click()
    steps = panel.locator(".solution-step")
    expect(steps.first).to_be_visible()
    for index in range(steps.count()):
        step = panel.locator(f'.solution-step[data-step="{index}"]')
        if step.locator(".step-wait").count():
            answer_open_prediction(page)
            step = panel.locator(f'.solution-step[data-step="{index}"]')
        fill = step.locator(".btn-fill")
        fill.click()
        # The step is in the page's own form now, its button focused: the learner presses it.
        focused = page.locator("button.is-filled:focus")
        expect(focused).to_have_count(1)
        focused.click()
        fill_spec = json.loads(fill.get_attribute("data-fill") or "{}")
        if fill_spec.get("form") == "classic_consume":
            # Consuming is two presses: the consumer starts, then each delivery is acked.
            acks = page.locator(
                f'section.cqueue[data-classic-queue="{fill_spec["queue"]}"] '
                'form[action$="/classic/ack/"]'
            )
            for left in range(fill_spec["times"], 0, -1):
                expect(acks).to_have_count(left)
                fill.click()
                ack = page.locator("button.is-filled:focus")
                expect(ack).to_have_text("Ack")
                ack.click()
            expect(acks).to_have_count(0)
    expect(panel.locator(".lesson-complete")).to_be_visible(timeout=10_000)
    expect(panel.locator(".goal.is-met")).to_have_count(len(first.spec["goals"]))

    page.reload()
    expect(page.locator("#lesson-panel .lesson-complete")).to_be_visible()
    page.goto(f"{live_url}/lessons/")
    card = page.locator(f'.lesson-card[data-lesson="{first.slug}"]')
    expect(card.locator(".lesson-state")).to_have_text("done")
    expect(page.locator(".lessons-done")).to_have_text("1")


def test_it_moves_a_students_screen_along_with_the_lesson_the_instructor_runs(
    new_page, live_url, lessons
):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from messaging.services.classroom import classroom_create

    owner = get_user_model().objects.create_user("teacher", password="long enough password")
    room = classroom_create(owner=owner, title="Week 4")
    lesson = next(
        item
        for item in lessons
        if item.spec.get("predictions") and item.spec.get("view", "board") == "board"
    )

    client = Client()
    client.force_login(owner)
    teacher = new_page()
    teacher.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}]
    )
    teacher.goto(f"{live_url}/r/{room.code}/present/")

    student = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    student.goto(f"{live_url}/j/{room.code}/")
    student.get_by_label("Your name").fill("Ada")
    student.get_by_role("button", name="Join").click()
    expect(student).to_have_url(re.compile(rf"/r/{room.code}/me/$"))
    expect(student.locator("#live-status")).to_have_attribute("data-state", "live")

    present = teacher.locator("#lesson-present")
    present.get_by_label("Lesson").select_option(lesson.slug)
    present.get_by_role("button", name="Run it").click()
    expect(present.locator(".moment-intro")).to_be_visible()

    # Follow-me takes the student to the lesson's board, where the class's moment is shown.
    expect(student).to_have_url(re.compile(rf"/r/{room.code}/lesson/$"))
    follow = student.locator("#lesson-follow")
    expect(follow.locator(".moment-intro")).to_be_visible()
    # The lesson's title is shown once, on each screen: the kicker here, the heading there.
    expect(follow.get_by_text(lesson.title)).to_have_count(1)
    expect(present.get_by_text(lesson.title, exact=True)).to_have_count(1)

    # The instructor walks on to the first question; the student's screen asks it.
    while not present.locator(".moment-predict").count():
        stage = present.locator(".stage-count").text_content() or ""
        present.locator("#lesson-next").click()
        expect(present.locator(".stage-count")).not_to_have_text(stage)
    question = present.locator(".moment-title").text_content()
    expect(follow.locator(".moment-predict .moment-title")).to_have_text(question or "")
    follow.locator(".choice-btn").first.click()
    expect(follow.locator(".mine-note")).to_have_text("your answer")

    # The pooled answers reach the presenter: one answer, on the first choice.
    expect(present.locator(".tally-total")).to_have_text("1 answer")
    expect(present.locator(".tally-row").first.locator(".tally-count")).to_have_text("1")


def test_the_goals_tick_while_the_clock_keeps_running(new_page, live_url, lessons):
    many_groups = next(lesson for lesson in lessons if lesson.slug == "many-groups")
    page = new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_url}/lessons/{many_groups.slug}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    done = page.locator('#lesson-panel .goal[data-goal="billing-done"]')
    expect(done).not_to_have_class(re.compile(r"\bis-met\b"))

    page.locator("#speed").select_option("5")
    page.locator("#play-pause").click()  # a step event every 100 ms from now on
    expect(page.locator("#play-pause")).to_have_text("Pause")
    # billing commits the end of the log after a few simulated seconds; the panel must say so
    # while the steps keep coming, not only once the clock stops.
    expect(done).to_have_class(re.compile(r"\bis-met\b"), timeout=15_000)
    expect(page.locator("#play-pause")).to_have_text("Pause")
