"""The room timeline in real Chromium: after a rebalance, the board ten events back shows the
assignment before it, and a fork from there is a new room in that state."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.timeline import timeline_capture
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def billing(page):
    return page.locator('.member[data-group="billing"]')


def test_scrubbing_back_ten_events_shows_the_assignment_before_a_rebalance_and_forks_it(
    new_page, live_url
):
    room = room_create(title="Timeline test")
    topic_create(room=room, name="orders", partitions=3)
    group = group_create(room=room, group_id="billing", topics=["orders"])
    for _ in range(2):
        member_join(group=group, client_id="billing")
    # Ten events with the two-member assignment on the board, before the rebalance. (This
    # process captures a burst of commits at most every 50 ms: each is captured here, as it is
    # when people click.)
    for i in range(10):
        records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value=str(i))])
        timeline_capture(room=room)

    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.locator('.group[data-group="billing"] .add-member button').click()
    expect(billing(page)).to_have_count(3)  # the rebalance: one partition each
    expect(billing(page).nth(0)).to_have_attribute("data-assigned", "orders-0")

    page.locator("#timeline-open").click()
    expect(page.locator("#timeline-bar")).to_contain_text("the newest kept moment")
    expect(billing(page)).to_have_count(3)
    newest = int(page.locator("#timeline-seq").get_attribute("data-seq"))

    page.locator("#timeline-back").click()
    expect(billing(page)).to_have_count(2)
    expect(billing(page).nth(0)).to_have_attribute("data-assigned", "orders-0 orders-1")
    expect(billing(page).nth(1)).to_have_attribute("data-assigned", "orders-2")
    seq = int(page.locator("#timeline-seq").get_attribute("data-seq"))
    assert newest - 10 - 3 <= seq <= newest - 10
    # Read-only: the past board draws no controls.
    expect(page.locator(".past-board form")).to_have_count(0)

    # Play forward at 20 steps a second, back to the rebalance, then ten events back again.
    page.locator("#timeline-speed").select_option("20")
    page.locator("#timeline-play").click()
    expect(page.locator("#timeline-seq")).to_have_attribute("data-seq", str(newest))
    expect(billing(page)).to_have_count(3)
    page.locator("#timeline-back").click()
    expect(page.locator("#timeline-seq")).to_have_attribute("data-seq", str(seq))

    page.locator("#timeline-fork").click()
    expect(page).not_to_have_url(re.compile(room.code))
    expect(page.locator(".room-title")).to_have_text(f"Timeline test (fork at #{seq})")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(billing(page)).to_have_count(2)
    expect(billing(page).nth(0)).to_have_attribute("data-assigned", "orders-0 orders-1")
    expect(billing(page).nth(1)).to_have_attribute("data-assigned", "orders-2")
