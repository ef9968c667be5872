"""What a consumer fetched, lag's one definition and room time, in real Chromium (issue #12)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.models import Assignment, CommittedOffset, Room
from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import producer_create, room_step
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def produce(room, topic: str, count: int, partitions: int) -> None:
    records_produce(
        room=room,
        topic_name=topic,
        records=[
            RecordIn(key=f"k{i}", value=f"v{i}", partition=i % partitions) for i in range(count)
        ],
    )


def open_board(new_page, live_url, room):
    page = new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def test_a_member_card_shows_what_its_consumer_fetched_and_did_not_process(new_page, live_url):
    room = room_create(title="Fetch buffer")
    topic_create(room=room, name="orders", partitions=3)
    produce(room, "orders", 60, 3)
    group = group_create(
        room=room, group_id="billing", topics=["orders"], auto_offset_reset="earliest"
    )
    member, _ = member_join(group=group, client_id="billing")
    room_clock_set(room=room, running=True)
    room_step(room=room, step_ms=1_000)  # 1 record/s: one poll, a fetch buffered behind it
    room_clock_set(room=room, running=False)

    owned = Assignment.objects.filter(member=member)
    in_hand = sum(max(a.polled_until or 0, a.fetched_until or 0) - a.position for a in owned)
    assert in_hand > 0
    page = open_board(new_page, live_url, room)
    card = page.locator('.member[data-member="billing-1"]')
    expect(card.locator(".m-fetched")).to_have_text(str(in_hand))
    expect(page.locator('.group[data-group="billing"] .fetch-sizes')).to_contain_text(
        "max.partition.fetch.bytes=1 MiB ≈ 10 records"
    )

    # Running, the count follows the steps' events.
    room_clock_set(room=room, running=True, speed=5)
    expect(card.locator(".m-fetched")).not_to_have_text(str(in_hand), timeout=15_000)
    expect(card.locator(".m-fetched")).to_have_text(re.compile(r"^\d+$"))


def test_a_students_lag_is_a_dash_until_their_group_first_commits(new_page, live_url):
    room = room_create(title="Lag", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="payments", partitions=2)
    produce(room, "payments", 8, 2)
    group_create(room=room, group_id="billing", topics=["payments"], auto_offset_reset="earliest")
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_url}/j/{room.code}/")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/r/{room.code}/me/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Join billing").click()
    expect(page.locator(".me-title")).to_contain_text("in group billing")

    # Nothing committed: '-' as kafka-consumer-groups prints it, not the 8 records waiting.
    expect(page.locator(".me-lag")).to_have_text("-")
    page.wait_for_timeout(1_100)  # a student's consumer acts at most twice a second
    page.get_by_role("button", name="Process next record").click()
    expect(page.locator("#me .form-result")).to_contain_text("offset 0", timeout=15_000)
    expect(page.locator(".me-lag")).to_have_text("-")

    page.wait_for_timeout(1_100)
    page.locator("#me button.act-commit").click()
    expect(page.locator(".me-lag")).not_to_have_text("-", timeout=15_000)
    # commitSync() commits every position it holds: payments-0 at 1 (after offset 0) and
    # payments-1 at 0, where its poll starts. Lag = log end - committed on each: 3 + 4.
    committed = dict(
        CommittedOffset.objects.filter(group__room=room).values_list("partition__index", "offset")
    )
    assert committed == {0: 1, 1: 0}
    expect(page.locator(".me-lag")).to_have_text("7")


def test_what_happened_stamps_room_time_and_says_the_speed(new_page, live_url):
    room = room_create(title="Room time")
    topic_create(room=room, name="orders", partitions=3)
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    room_clock_set(room=room, running=True, speed=20)
    page = open_board(new_page, live_url, room)
    expect(page.locator("#narration-clock")).to_have_text("room time · 20x")

    page.locator('.group[data-group="billing"] .add-member button').click()
    # The rebalance's lines appear one by one, 650 ms apart (13 s of room time at 20x), yet
    # every one is stamped with the room time the rebalance happened at.
    lines = page.locator("#narration li", has_text="billing: ")
    expect(lines.nth(1)).to_be_visible(timeout=15_000)
    page.wait_for_timeout(1_500)
    stamps = lines.locator("time").evaluate_all("els => els.map(el => el.dataset.roomMs)")
    # A join can take more than one rebalance (each its own moment, and the newest may have
    # shown only its first line yet), but one rebalance's lines share its stamp: at 20x, stamps
    # that followed the animation would all differ.
    assert len(stamps) >= 2 and max(stamps.count(stamp) for stamp in stamps) >= 2, stamps

    # The summaries count room time, not the watch's seconds.
    producer_create(
        room=room,
        name="p1",
        topic_name="orders",
        key_mode="set",
        keys=["a", "b"],
        records_per_second=5,
    )
    summary = page.locator("#narration .text", has_text="of room time (20x)")
    expect(summary.first).to_be_visible(timeout=15_000)
    expect(page.locator("#narration .text", has_text="Last 2 s:")).to_have_count(0)
