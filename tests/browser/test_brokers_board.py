"""The brokers panel in real Chromium (#16): a record produced with acks=1 is drawn past the
high watermark until the followers fetch it; stopping its leader on the board moves the
leadership in every browser, tells the story, and names the acknowledged record lost."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.services.replication import cluster_create
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def room():
    room = room_create(title="Brokers")
    cluster_create(room=room, brokers=3)
    topic_create(
        room=room, name="payments", partitions=3, replication_factor=3, min_insync_replicas=2
    )
    return room


def open_board(new_page, live_url, room):
    page = new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def replica(page, tp: str, broker: int):
    return page.locator(f'#brokers .replica[data-tp="{tp}"][data-broker="{broker}"]')


def test_a_leader_stopped_on_the_board_fails_over_in_every_browser(new_page, live_url, room):
    teacher, student = open_board(new_page, live_url, room), open_board(new_page, live_url, room)
    expect(replica(student, "payments-0", 1)).to_have_class(re.compile(r"\bis-leader\b"))

    form = teacher.locator(".produce-form")
    form.locator("input[name=key]").fill("alice")
    form.locator("input[name=value]").fill("refund")
    form.locator("input[name=partition]").fill("0")
    form.locator("select[name=acks]").select_option("1")
    form.locator("button[type=submit]").click()
    expect(teacher.locator("#produce-result")).to_contain_text("acks=1")
    # The clock stands still: the followers have not fetched it, consumers cannot read it.
    cell = student.locator('.cell[data-topic="payments"][data-partition="0"][data-offset="0"]')
    expect(cell).to_have_class(re.compile(r"\bis-uncommitted\b"))

    teacher.locator('#brokers .broker[data-broker="1"] button[value=stop]').click()
    expect(student.locator('#brokers .broker[data-broker="1"]')).to_have_class(
        re.compile(r"\bis-stopped\b")
    )
    expect(replica(student, "payments-0", 2)).to_have_class(re.compile(r"\bis-leader\b"))
    expect(student.locator("#narration")).to_contain_text("Broker 1 stopped")
    expect(student.locator("#brokers .lost-line")).to_contain_text("payments-0@0")
    expect(student.locator("#brokers .lost-line")).to_contain_text("acknowledged")
    expect(cell).to_have_count(0)
