"""The classroom's bar, in real Chromium: an instructor and three students' browsers.

The students join a group over a 4-partition topic from their own pages; every browser shows
the range assignor's 2/1/1; one student closes their page, and after the session timeout the
instructor's board shows the group rebalanced over the two that remain; a student whose
produce is locked is refused, with the reason in the page.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from messaging.models import Room
from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# group.min.session.timeout.ms, the broker's floor: at the clock's top speed (x20) it runs out
# in 0.3 s of real time.
SESSION_TIMEOUT_MS = 6_000


def split(page, group: str) -> list[int]:
    """How many partitions each member of `group` holds, as the instructor's board draws it."""
    attrs = page.locator(f'#groups .member[data-group="{group}"]').evaluate_all(
        "els => els.map(el => el.dataset.assigned)"
    )
    return sorted(len(a.split()) for a in attrs)


def instructor_page(new_page, live_url, owner):
    client = Client()
    client.force_login(owner)
    page = new_page()
    session = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_url}])
    return page


def student_joins(new_page, live_url, room, name):
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_url}/j/{room.code}/")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/r/{room.code}/me/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Join billing").click()
    expect(page.locator(".me-title")).to_contain_text("in group billing")
    return page


def test_three_students_split_four_partitions_then_one_leaves_by_closing_the_page(
    new_page, live_url
):
    owner = get_user_model().objects.create_user("teacher", password="long enough password")
    # Unseeded: only what the test sets up is on the board.
    room = room_create(title="Week 3", kind=Room.Kind.CLASSROOM, owner=owner)
    topic_create(room=room, name="payments", partitions=4)
    group_create(
        room=room,
        group_id="billing",
        topics=["payments"],
        assignor="range",
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )

    board = instructor_page(new_page, live_url, owner)
    board.goto(f"{live_url}/r/{room.code}/")
    expect(board.locator("#live-status")).to_have_attribute("data-state", "live")

    students = [student_joins(new_page, live_url, room, name) for name in ("Ada", "Bob", "Cy")]

    # Every browser shows the same deal: the instructor's board and each student's page.
    expect(board.locator('#groups .member[data-group="billing"]')).to_have_count(3)
    wait_for(lambda: split(board, "billing") == [1, 1, 2], board)
    for page in students:
        wait_for(lambda p=page: team_split(p) == [1, 1, 2], page)
        own = page.locator(".me-partition").count()
        assert own in (1, 2)

    # The clock runs fast, so the session timeout passes in a fraction of a second.
    room_clock_set(room=room, running=True, speed=20)
    leaver = students.pop()
    leaver.context.close()
    expect(board.locator('#groups .member[data-group="billing"]')).to_have_count(2)
    wait_for(lambda: split(board, "billing") == [2, 2], board)
    for page in students:
        wait_for(lambda p=page: team_split(p) == [2, 2], page)
        expect(page.locator(".me-partition")).to_have_count(2)

    # The instructor locks producing; a student's produce is refused, with the reason shown.
    Room.objects.filter(pk=room.pk).update(
        student_permissions={**room.student_permissions, "produce": False}
    )
    ada = students[0]
    ada.locator("#produce input[name=value]").fill("sneaky")
    ada.locator("#produce").get_by_role("button", name="Produce").click()
    result = ada.locator("#me-produce-result .form-result.is-error")
    expect(result).to_contain_text("locked")
    assert room.topics.get(name="payments").partitions.filter(log_end_offset__gt=0).count() == 0


def team_split(page) -> list[int]:
    attrs = page.locator(".me-team .teammate").evaluate_all(
        "els => els.map(el => el.dataset.assigned)"
    )
    return sorted(len(a.split()) for a in attrs)


def wait_for(condition, page, timeout_ms: int = 10_000) -> None:
    """Poll `condition` while the page runs (Playwright's waits are for locators, not values)."""
    waited = 0
    while not condition():
        assert waited < timeout_ms, "the page never showed it"
        page.wait_for_timeout(100)
        waited += 100


def test_joining_a_group_points_the_produce_form_at_its_topic(new_page, live_url):
    room = room_create(title="Week 4", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="audit", partitions=1)  # first in the list
    topic_create(room=room, name="payments", partitions=2)
    group_create(room=room, group_id="billing", topics=["payments"])
    page = student_joins(new_page, live_url, room, "Ada")
    expect(page.locator("#produce select[name=topic]")).to_have_value("payments")

    # A topic the student picks themselves stays picked.
    page.locator("#produce select[name=topic]").select_option("audit")
    page.get_by_role("button", name="Leave").click()
    expect(page.locator(".me-title")).not_to_contain_text("in group billing")
    page.wait_for_timeout(1_100)  # students join or leave at most twice a second
    page.get_by_role("button", name="Join billing").click()
    expect(page.locator(".me-title")).to_contain_text("in group billing")
    expect(page.locator("#produce select[name=topic]")).to_have_value("audit")


def test_the_answer_to_a_tap_stays_when_its_own_event_redraws_the_page(new_page, live_url):
    room = room_create(title="Week 4", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="payments", partitions=2)
    group_create(room=room, group_id="billing", topics=["payments"])
    page = student_joins(new_page, live_url, room, "Ada")
    redraws = []
    page.on("response", lambda r: redraws.append(r) if r.request.method == "GET" else None)

    page.wait_for_timeout(1_100)  # students join or leave at most twice a second
    page.get_by_role("button", name="Leave").click()
    expect(page.locator("#me .form-result")).to_contain_text("You left the group")
    # The leave's group.changed event makes the page fetch itself again; the same state comes
    # back, so the page keeps what it is showing, the answer included.
    wait_for(lambda: redraws, page)
    page.wait_for_timeout(300)
    expect(page.locator("#me .form-result")).to_contain_text("You left the group")


def produce_from(page, live_url, room, value: str, partition: int) -> None:
    """A produce as the student's own page posts it (through the server, so every page hears)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{live_url}/r/{room.code}/produce/",
        form={"topic": "payments", "value": value, "partition": str(partition)},
        headers={"X-CSRFToken": token, "HX-Request": "true", "Referer": live_url + "/"},
    )
    assert response.status == 200, response.text()


def test_a_students_page_redraws_for_its_own_partitions_not_for_a_classmates_work(
    new_page, live_url
):
    from messaging.models import Student

    room = room_create(title="Week 5", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="payments", partitions=2)
    group_create(room=room, group_id="billing", topics=["payments"], auto_offset_reset="earliest")
    ada = student_joins(new_page, live_url, room, "Ada")
    bob = student_joins(new_page, live_url, room, "Bob")
    expect(ada.locator(".me-partition")).to_have_count(1)
    expect(bob.locator(".me-partition")).to_have_count(1)
    mine = {
        s.display_name: s.member.assignments.get().partition.index
        for s in Student.objects.filter(room=room).select_related("member")
    }
    produce_from(bob, live_url, room, "for bob", mine["Bob"])
    expect(bob.locator(".me-partition")).to_contain_text("for bob")
    ada.wait_for_timeout(1_200)  # the produce's own redraw of Ada's page, if any, is over
    ada_fetches = []
    ada.on("request", lambda r: ada_fetches.append(r) if r.url.endswith("/me/") else None)

    bob.get_by_role("button", name="Process next record").click()
    expect(bob.locator("#me .form-result")).to_contain_text("you processed it")
    ada.wait_for_timeout(1_500)
    assert ada_fetches == []  # Bob's work on his own partition is nothing to redraw for Ada

    produce_from(bob, live_url, room, "for ada", mine["Ada"])
    expect(ada.locator(".me-partition")).to_contain_text("for ada")
    assert ada_fetches
