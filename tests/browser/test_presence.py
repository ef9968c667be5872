"""Presence tells the truth, in real Chromium against a real uvicorn.

"Online" means an open page: a socket the server closed (a flood: 4429) is offline on the
roster at once and its member's session timeout starts; "everyone joins" takes only students
whose page is open; a phone that slept through its session timeout comes back, says its
consumer was removed and joins again with one button; a room that no longer exists says so and
stops knocking.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from messaging.models import Member, Room, Student
from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Kafka's default: at the clock's top speed (x20) it runs out in 2.25 s, and a stalled tick
# (at most 1 s, 20 s of room time) cannot time out a member whose page is open.
SESSION_TIMEOUT_MS = 45_000


def classroom() -> tuple[Room, object]:
    owner = get_user_model().objects.create_user("teacher", password="long enough password")
    room = room_create(title="Week 4", kind=Room.Kind.CLASSROOM, owner=owner)
    topic_create(room=room, name="payments", partitions=4)
    group_create(
        room=room,
        group_id="billing",
        topics=["payments"],
        assignor="range",
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    return room, owner


def logged_in_page(new_page, live_url, user):
    client = Client()
    client.force_login(user)
    page = new_page()
    session = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_url}])
    return page


def student_page(new_page, live_url, room, name, *, group: str | None = "billing"):
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_url}/j/{room.code}/")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/r/{room.code}/me/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    if group:
        page.get_by_role("button", name=f"Join {group}").click()
        expect(page.locator(".me-title")).to_contain_text(f"in group {group}")
    return page


class Network:
    """A page's network as its websockets see it: while down, every new socket the page opens
    fails at once (the socket it has stays as it is: close it to lose it)."""

    def __init__(self, page) -> None:
        self.down = False
        page.route_web_socket(re.compile(r"/ws/rooms/"), self._route)

    def _route(self, ws) -> None:
        if self.down:
            ws.close(code=1011, reason="no network")
        else:
            ws.connect_to_server()


def member_of(name: str) -> Member | None:
    student = Student.objects.select_related("member").get(display_name=name)
    return student.member


def roster_row(present, name: str):
    return present.locator("#students tr", has=present.locator(".roster-name", has_text=name))


def wait_for(condition, page, timeout_ms: int = 15_000) -> None:
    """Poll `condition` while the page runs (Playwright's waits are for locators, not values)."""
    waited = 0
    while not condition():
        assert waited < timeout_ms, "it never happened"
        page.wait_for_timeout(100)
        waited += 100


def test_a_socket_the_server_closed_is_offline_on_the_roster_and_starts_the_session_timeout(
    new_page, live_url
):
    room, owner = classroom()
    present = logged_in_page(new_page, live_url, owner)
    present.goto(f"{live_url}/r/{room.code}/present/")
    ada = student_page(new_page, live_url, room, "Ada")
    bob = student_page(new_page, live_url, room, "Bob")
    expect(present.locator("#students .online-count")).to_have_text("2")

    # Bob's page floods its socket (as a broken script would): the server closes it with 4429.
    # His network is down meanwhile, so his page cannot reconnect and stays closed.
    network = Network(bob)
    network.down = True
    bob.evaluate(
        """() => {
            const socket = window.loglabStudent.socket.ws;
            socket.addEventListener("close", (e) => { window.closedWith = e.code; });
            for (let i = 0; i < 30; i++) socket.send(JSON.stringify({type: "replay", since: 0}));
        }"""
    )
    wait_for(lambda: bob.evaluate("window.closedWith") is not None, bob)
    assert bob.evaluate("window.closedWith") == 4429

    # The server forgot nothing: Bob is offline, his member no longer heartbeats, and the
    # roster and the board count the truth.
    wait_for(lambda: not member_of("Bob").online, bob)
    expect(present.locator("#students .online-count")).to_have_text("1")
    expect(roster_row(present, "Bob")).to_have_class(re.compile(r"\bis-offline\b"))
    expect(roster_row(present, "Bob").locator(".roster-leaving")).to_contain_text("page closed")
    expect(roster_row(present, "Ada")).to_have_class(re.compile(r"\bis-online\b"))
    board = logged_in_page(new_page, live_url, owner)
    board.goto(f"{live_url}/r/{room.code}/")
    card = board.locator('#groups .member[data-group="billing"]', has_text="Bob")
    expect(card.locator(".page-closed")).to_be_visible()

    # Its session timeout started: once the clock runs, the group removes Bob and rebalances.
    room_clock_set(room=room, running=True, speed=20)
    wait_for(lambda: member_of("Bob") is None, bob)
    assert member_of("Ada") is not None and member_of("Ada").online
    expect(ada.locator(".me-partition")).to_have_count(4)


def test_everyone_joins_takes_only_students_whose_page_is_open(new_page, live_url):
    room, owner = classroom()
    present = logged_in_page(new_page, live_url, owner)
    present.goto(f"{live_url}/r/{room.code}/present/")
    ada = student_page(new_page, live_url, room, "Ada", group=None)
    student_page(new_page, live_url, room, "Bob", group=None)
    cy = student_page(new_page, live_url, room, "Cy", group=None)
    expect(present.locator("#students .online-count")).to_have_text("3")
    cy.context.close()  # Cy closed her tab
    expect(present.locator("#students .online-count")).to_have_text("2")

    present.locator("form.enlist select[name=group_id]").select_option("billing")
    present.locator("form.enlist").get_by_role("button", name="Put them in").click()
    expect(present.locator(".present-result")).to_contain_text("2 students joined billing")
    assert member_of("Cy") is None
    for name in ("Ada", "Bob"):
        assert member_of(name).group.group_id == "billing"
        assert member_of(name).online
    # One rebalance: the class sees no second one when a closed page would have timed out.
    room_clock_set(room=room, running=True, speed=20)
    expect(ada.locator(".me-partition")).to_have_count(2)
    ada.wait_for_timeout(4_000)  # 80 s of room time: far past the session timeout
    assert sorted(m.display_name for m in Member.objects.filter(group__room=room)) == [
        "Ada",
        "Bob",
    ]
    expect(present.locator("#students .online-count")).to_have_text("2")


def test_a_phone_that_slept_through_its_session_timeout_says_so_and_joins_again(new_page, live_url):
    room, owner = classroom()
    # The projector shows the board: the room runs while its students' phones sleep.
    board = logged_in_page(new_page, live_url, owner)
    board.goto(f"{live_url}/r/{room.code}/")
    phone = student_page(new_page, live_url, room, "Ada")
    first = phone.locator(".member-id").text_content()
    network = Network(phone)

    # The phone sleeps: its network goes and its socket with it (the page cannot reconnect).
    network.down = True
    phone.evaluate("() => window.loglabStudent.socket.ws.close()")
    phone.context.set_offline(True)
    expect(phone.locator("#live-status")).to_have_attribute("data-state", "offline")
    wait_for(lambda: not member_of("Ada").online, phone)
    # Meanwhile the room runs on past the session timeout, and the group removes her.
    room_clock_set(room=room, running=True, speed=20)
    wait_for(lambda: member_of("Ada") is None, phone)
    assert phone.locator(".me-lost").is_hidden()  # the page cannot know yet

    # It wakes: back online, it reconnects at once (no long backoff), catches up and says what
    # happened, with a button that works.
    network.down = False
    phone.context.set_offline(False)
    expect(phone.locator("#live-status")).to_have_attribute("data-state", "live")
    notice = phone.locator(".me-lost")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"Your consumer {first} was removed from group billing")
    expect(notice.locator('[data-reason="away"]')).to_be_visible()
    expect(notice.locator('[data-reason="other"]')).to_be_hidden()
    notice.get_by_role("button", name="Join billing again").click()
    expect(phone.locator(".me-title")).to_contain_text("in group billing")
    expect(phone.locator(".me-lost")).to_have_count(0)
    assert member_of("Ada").online
    assert phone.locator(".member-id").text_content() != first  # a new member, a new id


def test_a_room_that_no_longer_exists_says_so_and_stops_reconnecting(new_page, live_url):
    room = room_create(title="short-lived")
    page = new_page()
    connections = []
    page.on("websocket", lambda ws: connections.append(ws))
    page.goto(f"{live_url}/r/{room.code}/")
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live")

    room.delete()
    # Its network blinks: the page reconnects, and the server accepts, then closes with 4404.
    page.context.set_offline(True)
    page.context.set_offline(False)
    expect(status).to_have_text("this room no longer exists")
    tried = len(connections)
    page.wait_for_timeout(3_000)  # more than the first retries' backoff
    assert len(connections) == tried
    page.evaluate("() => window.dispatchEvent(new Event('online'))")  # nor when it wakes
    page.wait_for_timeout(1_500)
    assert len(connections) == tried
    expect(status).to_have_text("this room no longer exists")
