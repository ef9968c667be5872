"""Two browsers in one room: what one produces appears in the other, live, where Kafka puts it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.engine.partitioner import partition_for_key
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def room():
    room = room_create(title="Browser test")
    topic_create(room=room, name="orders", partitions=3)
    return room


def open_board(new_page, live_url, room):
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def produce(page, key: str, value: str = "v", partition: str = "") -> None:
    form = page.locator(".produce-form")
    form.locator("input[name=key]").fill(key)
    form.locator("input[name=value]").fill(value)
    form.locator("input[name=partition]").fill(partition)
    form.locator("button[type=submit]").click()


def test_it_shows_a_record_produced_in_one_browser_in_the_other(new_page, live_url, room):
    alice, bob = open_board(new_page, live_url, room), open_board(new_page, live_url, room)
    produce(alice, "alice", "order #1 paid")
    expected = partition_for_key(b"alice", 3)
    expect(alice.locator("#produce-result")).to_contain_text(f"partition {expected}")
    cell = bob.locator(f'.cell[data-topic="orders"][data-partition="{expected}"][data-offset="0"]')
    expect(cell).to_have_attribute("data-key", "alice")
    expect(cell.locator(".cell-key")).to_have_text("alice")
    produce(alice, "alice", "order #1 shipped")
    expect(bob.locator(f'.cell[data-partition="{expected}"][data-offset="1"]')).to_be_visible()
    expect(bob.locator(f'.partition[data-partition="{expected}"] .leo b')).to_have_text("2")


def test_it_draws_a_script_key_as_text_in_every_browser(new_page, live_url, room):
    alice, bob = open_board(new_page, live_url, room), open_board(new_page, live_url, room)
    dialogs = []
    bob.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    produce(alice, "<script>alert(1)</script>", "<img src=x onerror=alert(2)>")
    cell = bob.locator('.cell[data-offset="0"]')
    expect(cell.locator(".cell-key")).to_have_text("<script>alert(1)</script>")
    bob.reload()
    expect(bob.locator('.cell[data-offset="0"] .cell-key')).to_have_text(
        "<script>alert(1)</script>"
    )
    assert dialogs == []


def test_it_shows_why_a_bad_record_was_refused(new_page, live_url, room):
    page = open_board(new_page, live_url, room)
    produce(page, "alice", partition="7")
    expect(page.locator("#produce-result .is-error")).to_contain_text("partitions 0 to 2")
    expect(page.locator(".cell[data-offset]")).to_have_count(0)


def test_it_catches_up_after_missing_events(new_page, live_url, room):
    from messaging.services.records import RecordIn, records_produce

    page = open_board(new_page, live_url, room)
    # Events produced from this test process are not broadcast to the server's browsers
    # (another process, in-memory layer): the next live event reveals the gap.
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="x", value="1")])
    produce(page, "y")
    expect(page.locator(".cell[data-key='x']")).to_have_count(1)
    expect(page.locator(".cell[data-key='y']")).to_have_count(1)
