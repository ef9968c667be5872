"""The lesson builder in the browser (issue #17's bar): an instructor builds a 3-step lesson on a
board with a goal picked there, previews it as a student (the goal ticks), exports it, deletes
it and imports the file again (the "fresh instance": the lesson and its playable row are gone
before the import), publishes it, and a student who opens the share link completes it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from messaging.models import AuthoredLesson, Lesson
from messaging.services.groups import group_create, member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def instructor_page(new_page, live_url):
    user = get_user_model().objects.create_user("ada", password="a-long-builder-password")
    client = Client()
    client.force_login(user)
    page = new_page(viewport={"width": 1400, "height": 900})
    page.context.add_cookies(
        [
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "domain": urlsplit(live_url).hostname,
                "path": "/",
            }
        ]
    )
    return page


def complete_by_filling_in(page, steps: int) -> None:
    """Play the lesson as a learner: each solution step's Fill in, then the learner's press."""
    panel = page.locator("#lesson-panel")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(panel.locator(".goal")).to_have_count(1)
    expect(panel.locator(".goal.is-met")).to_have_count(0)
    panel.get_by_role("button", name="Show the solution").click()
    for index in range(steps):
        panel.locator(f'.solution-step[data-step="{index}"] .btn-fill').click()
        pressed = page.locator("button.is-filled:focus")
        expect(pressed).to_have_count(1)
        pressed.click()
    expect(panel.locator(".goal.is-met")).to_have_count(1)
    expect(panel.locator(".lesson-complete")).to_be_visible()


def on_the_board(board, button, path: str) -> None:
    """Press a board control and wait for the server's answer: the change is stored."""
    with board.expect_response(lambda response: response.url.endswith(path)):
        button.click()


def record(builder, expected: str, steps: int) -> None:
    builder.get_by_role("button", name="Record the changes as a step").click()
    expect(builder.locator(".builder-step")).to_have_count(steps)
    expect(builder.locator(f'.builder-step[data-step="{steps - 1}"] code')).to_have_text(expected)


def test_an_instructor_builds_previews_exports_imports_and_shares_a_lesson_a_student_completes(
    new_page, live_url, tmp_path: Path
):
    board_room = room_create(title="Builder board")
    topic_create(room=board_room, name="orders", partitions=2)
    billing = group_create(
        room=board_room, group_id="billing", topics=["orders"], auto_offset_reset="earliest"
    )
    member_join(group=billing, client_id="billing")

    builder = instructor_page(new_page, live_url)
    builder.goto(f"{live_url}/lessons/mine/?room={board_room.code}")
    builder.get_by_label("Title").fill("Read what you write")
    builder.get_by_role("button", name="Start building").click()
    expect(builder).to_have_url(re.compile(r"/lessons/mine/\d+/$"))
    expect(builder.locator("#start")).to_contain_text("1 topic, 1 group.")

    # Three steps, each done on the board and recorded in the builder.
    board = builder.context.new_page()
    board.goto(f"{live_url}/r/{board_room.code}/")
    produce = board.locator("form.produce-form")
    produce.locator("input[name=key]").fill("alice")
    produce.locator("input[name=value]").fill("paid")
    on_the_board(board, produce.get_by_role("button", name="Produce"), "/produce/")
    expect(builder.locator("#builder-pending")).to_contain_text("Produce key 'alice'")  # seen live
    record(builder, "produce", 1)
    add = board.locator('.group[data-group="billing"] form.add-member button')
    on_the_board(board, add, "/members/")
    record(builder, "join", 2)
    on_the_board(board, board.locator(".clock-controls button[value=step]"), "/clock/")
    record(builder, "advance", 3)
    board.close()  # a background tab gets no animation frames: the builder's tab is in front

    # A goal picked from the goal kinds, checked on the board before and after it is added.
    builder.locator("#goal-kind").select_option("consumed")
    fields = builder.locator("#goal-fields")
    expect(fields.locator("input[name=kind]")).to_have_value("consumed")
    fields.locator("input[name=arg-group]").fill("billing")
    fields.locator("input[name=arg-min]").fill("1")
    builder.get_by_label("What the learner reads").last.fill("Billing processes the record")
    builder.get_by_role("button", name="Check it on the board").click()
    expect(builder.locator("#goal-preview")).to_contain_text("Met on the board now")
    builder.get_by_role("button", name="Add the goal").click()
    expect(builder.locator("#builder-goals .goal.is-met")).to_have_count(1)
    expect(builder.locator("#builder-status")).to_contain_text("Valid.")

    # Preview as a student: a fresh lesson room at the start, the goal ticks once played.
    builder_url = builder.url
    builder.get_by_role("button", name="Preview as a student").click()
    expect(builder).to_have_url(re.compile(r"/r/[A-Z0-9]+/lesson/$"))
    complete_by_filling_in(builder, steps=3)

    # Export, delete, import the file: the same lesson file comes back.
    builder.goto(builder_url)
    with builder.expect_download() as download:
        builder.locator("#export").click()
    exported = tmp_path / "lesson.toml"
    download.value.save_as(exported)
    builder.get_by_role("button", name="Delete this lesson").click()
    expect(builder).to_have_url(re.compile(r"/lessons/mine/$"))
    assert not AuthoredLesson.objects.exists() and not Lesson.objects.exists()
    builder.locator("input[type=file][name=file]").set_input_files(str(exported))
    builder.get_by_role("button", name="Import").click()
    expect(builder.locator("#builder-status")).to_contain_text("Valid.")
    assert builder.locator("#lesson-toml").input_value() == exported.read_text(encoding="utf-8")

    # Published with a link: a student (no account) opens it and completes the lesson.
    builder.locator("select[name=visibility]").select_option("public")
    builder.get_by_role("button", name="Publish").click()
    link = builder.locator("#share-link").get_attribute("href")
    student = new_page(viewport={"width": 1400, "height": 900})
    student.goto(link)
    student.get_by_role("button", name="Start the lesson").click()
    expect(student).to_have_url(re.compile(r"/r/[A-Z0-9]+/lesson/$"))
    complete_by_filling_in(student, steps=3)
