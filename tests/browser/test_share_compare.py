"""Side by side in the browser: one record produced to a topic shows up in a share group, an SQS
FIFO queue and a consumer group; in the share group it is acquired, released and redelivered to
the other consumer with its delivery count shown."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def room():
    room = room_create(title="Share side by side")
    topic_create(room=room, name="orders", partitions=1)
    return room


def test_a_released_record_is_redelivered_with_its_count_beside_sqs_and_a_group(
    new_page, live_url, room
):
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/share/compare/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.get_by_test_id("compare-start").click()
    for column in ("share", "sqs", "group"):
        expect(page.locator(f'[data-column="{column}"]')).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    produce = page.locator("form.sbs-produce")
    produce.locator("input[name=key]").fill("alice")
    produce.locator("input[name=value]").fill("order 1")
    produce.locator("button[type=submit]").click()
    expect(page.locator("#queues-result")).to_contain_text("partition 0")
    # The same record, three ways: a lane in the FIFO queue, a cell in the share-partition,
    # a log end of 1 for the consumer group.
    expect(page.locator('[data-column="sqs"] .lane[data-group="alice"] .cell')).to_have_count(1)
    share = page.locator('[data-column="share"]')
    cell = share.locator('.shcell[data-offset="0"]')
    expect(cell).to_have_attribute("data-state", "waiting")
    expect(page.locator('[data-column="group"] table')).to_contain_text("1")

    first, second = share.locator(".share-member").nth(0), share.locator(".share-member").nth(1)
    first.get_by_role("button", name="Fetch").click()
    expect(page.locator("#queues-result")).to_contain_text("consumer-1 acquired P0@0 (delivery 1)")
    expect(cell).to_have_attribute("data-state", "acquired")
    expect(cell).to_contain_text("consumer-1")

    share.get_by_role("button", name="Release P0 offset 0 as consumer-1").click()
    expect(cell).to_have_attribute("data-state", "available")

    second.get_by_role("button", name="Fetch").click()
    expect(cell).to_have_attribute("data-state", "acquired")
    expect(cell).to_have_attribute("data-count", "2")
    expect(cell).to_contain_text("consumer-2")
    expect(cell.locator(".delivery-badge")).to_have_text("×2")
    share.get_by_role("button", name="Accept P0 offset 0 as consumer-2").click()
    expect(cell).to_have_attribute("data-state", "acknowledged")
    expect(share.locator(".share-partition-head")).to_contain_text("SPSO 1")
