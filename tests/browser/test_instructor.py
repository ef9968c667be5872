"""The instructor's hand on the students' screens: a lock greys a student's control out live,
and "follow me" takes a student's page where the instructor points."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from messaging.services.classroom import classroom_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def instructor():
    return get_user_model().objects.create_user("ada", password="a-long-classroom-password")


@pytest.fixture
def room(instructor):
    return classroom_create(owner=instructor, title="Week 3")


def instructor_page(new_page, live_url, instructor):
    client = Client()
    client.force_login(instructor)
    page = new_page(viewport={"width": 1600, "height": 900})
    host = urlsplit(live_url).hostname
    page.context.add_cookies(
        [
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "domain": host,
                "path": "/",
            }
        ]
    )
    return page


def student_page(new_page, live_url, room, name: str):
    page = new_page(viewport={"width": 420, "height": 860})
    page.goto(f"{live_url}/j/{room.code}/")
    page.locator("input[name=display_name]").fill(name)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"**/r/{room.code}/me/")
    return page


def test_a_lock_greys_out_a_students_control_live_and_the_server_refuses_it(
    new_page, live_url, room, instructor
):
    teacher = instructor_page(new_page, live_url, instructor)
    teacher.goto(f"{live_url}/r/{room.code}/present/")
    student = student_page(new_page, live_url, room, "Grace")
    student.goto(f"{live_url}/r/{room.code}/")
    expect(student.locator("#live-status")).to_have_attribute("data-state", "live")
    produce = student.locator(".produce-form button[type=submit]")
    expect(produce).to_be_enabled()

    teacher.locator("input[name=allow][value=produce]").uncheck()
    expect(teacher.locator("#controls")).to_contain_text("Locked: students cannot produce")
    expect(produce).to_be_disabled()
    expect(student.locator('.lock-note[data-needs="produce"]').first).to_be_visible()
    expect(student.locator('.lock-note[data-needs="produce"]').first).to_have_text(
        "locked by the instructor"
    )
    # The page only mirrors the server: a request sent anyway is refused with the reason.
    status = student.evaluate(
        """async (code) => {
            const body = new URLSearchParams({topic: "orders", value: "v"});
            const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const r = await fetch(`/r/${code}/produce/`, {method: "POST", body,
                headers: {"HX-Request": "true", "X-CSRFToken": csrf}});
            return [r.status, await r.text()];
        }""",
        room.code,
    )
    assert status[0] == 403 and "students cannot produce records" in status[1]

    teacher.locator("input[name=allow][value=produce]").check()
    expect(produce).to_be_enabled()


def test_follow_me_takes_a_students_page_where_the_instructor_points(
    new_page, live_url, room, instructor
):
    teacher = instructor_page(new_page, live_url, instructor)
    teacher.goto(f"{live_url}/r/{room.code}/present/")
    student = student_page(new_page, live_url, room, "Linus")
    expect(student.locator("#live-status")).to_have_attribute("data-state", "live")

    teacher.locator(f'input[name=path][value="/r/{room.code}/"]').check()
    student.wait_for_url(f"{live_url}/r/{room.code}/")
    expect(student.locator("#board")).to_be_visible()
    expect(student.locator("#live-status")).to_have_attribute("data-state", "live")

    teacher.locator(f'input[name=path][value="/r/{room.code}/queues/"]').check()
    student.wait_for_url(f"{live_url}/r/{room.code}/queues/")
    # A page opened while follow-me is on goes there at once.
    student.goto(f"{live_url}/r/{room.code}/me/")
    student.wait_for_url(f"{live_url}/r/{room.code}/queues/")
    # The instructor's own screen never follows.
    assert teacher.url.endswith("/present/")
