"""The live board in real Chromium: two browsers watch one group rebalance as people act."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create, member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ONE_PARTITION = re.compile(r"^orders-\d$")


@pytest.fixture
def room():
    room = room_create(title="Board test")
    topic_create(room=room, name="orders", partitions=3)
    return room


def with_group(room, group_id, members, **options):
    group = group_create(room=room, group_id=group_id, topics=["orders"], **options)
    for _ in range(members):
        member_join(group=group, client_id=group_id)
    return group


def open_board(new_page, live_url, room, **options):
    page = new_page(**options)
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def members(page, group):
    return page.locator(f'.member[data-group="{group}"]')


def add_consumer(page, group):
    page.locator(f'.group[data-group="{group}"] .add-member button').click()


def test_a_third_consumer_takes_one_partition_and_a_fourth_is_idle(new_page, live_url, room):
    with_group(room, "billing", 2)
    alice, bob = open_board(new_page, live_url, room), open_board(new_page, live_url, room)
    expect(members(bob, "billing")).to_have_count(2)

    add_consumer(alice, "billing")
    for page in (alice, bob):
        expect(members(page, "billing")).to_have_count(3)
        for index in range(3):
            expect(members(page, "billing").nth(index)).to_have_attribute(
                "data-assigned", ONE_PARTITION
            )

    add_consumer(bob, "billing")
    for page in (alice, bob):
        expect(members(page, "billing")).to_have_count(4)
        idle = page.locator('.member.is-idle[data-group="billing"]')
        expect(idle).to_have_count(1)
        expect(idle).to_have_attribute("data-assigned", "")
        expect(idle.locator(".idle-note")).to_contain_text("idle: 4 members, 3 partitions")


def test_a_crashed_consumer_is_removed_after_the_session_timeout(new_page, live_url, room):
    with_group(room, "billing", 2)
    room_clock_set(room=room, running=True, speed=20)  # 45 s of session timeout in ~2.3 s
    alice, bob = open_board(new_page, live_url, room), open_board(new_page, live_url, room)

    alice.locator('.member[data-member="billing-1"] button[value=crash]').click()
    for page in (alice, bob):
        expect(page.locator('.member.is-crashed[data-member="billing-1"]')).to_be_visible()
    for page in (alice, bob):
        expect(page.locator('.member[data-member="billing-1"]')).to_have_count(0, timeout=15_000)
        expect(page.locator('.member[data-member="billing-2"]')).to_have_attribute(
            "data-assigned", "orders-0 orders-1 orders-2", timeout=15_000
        )
        expect(page.locator("#narration")).to_contain_text("session.timeout.ms")


def test_eager_and_cooperative_rebalances_animate_differently(new_page, live_url, room):
    with_group(room, "eager-group", 2)
    with_group(room, "coop-group", 2, assignor="cooperative-sticky", protocol="cooperative")
    page = open_board(new_page, live_url, room)
    add_consumer(page, "eager-group")
    add_consumer(page, "coop-group")
    # Polled from Python: the pages' Content-Security-Policy forbids the eval behind a string
    # wait_for_function.
    for _ in range(100):
        if page.evaluate("window.loglab.rebalances.length") >= 2:
            break
        page.wait_for_timeout(100)
    received = page.evaluate(
        "Object.fromEntries(window.loglab.rebalances.map(r => [r.group, r.plan]))"
    )

    eager, coop = received["eager-group"], received["coop-group"]
    assert (eager["protocol"], eager["rounds"]) == ("eager", 1)
    revoked_first = sum(len(tps) for tps in eager["steps"][0]["revoked"].values())
    assert revoked_first == 3  # stop the world: every partition revoked
    assert eager["steps"][0]["state"] == "PreparingRebalance"

    assert (coop["protocol"], coop["rounds"]) == ("cooperative", 2)
    revoked = [tp for step in coop["steps"] for tps in step["revoked"].values() for tp in tps]
    assert len(revoked) == 1  # only the partition that moves
    newcomer = "coop-group-3"
    rounds_with_newcomer = {
        step["round"] for step in coop["steps"] if step["assigned"].get(newcomer)
    }
    assert rounds_with_newcomer == {2}  # handed over only once its old owner let it go
    # The page ends on what the server holds.
    expect(page.locator(f'.member[data-member="{newcomer}"]')).to_have_attribute(
        "data-assigned", ONE_PARTITION
    )


def test_the_board_fits_a_phone_and_has_a_presenter_mode(new_page, live_url, room):
    with_group(room, "billing", 2)
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(f"{live_url}/r/{room.code}/")
    expect(phone.locator("#live-status")).to_have_attribute("data-state", "live")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    presenter = new_page()
    presenter.goto(f"{live_url}/r/{room.code}/?present=1")
    expect(presenter.locator("body")).to_have_class(re.compile("presenter"))
    expect(presenter.locator(".join-code")).to_be_visible()


WIRE_STARTS = """() => {
  const board = document.getElementById("board").getBoundingClientRect();
  return [...document.querySelectorAll("#wires path")].map((path) => {
    const [, y] = path.getAttribute("d").match(/^M [\\d.]+ ([\\d.]+)/);
    const tp = path.dataset.tp;
    const [topic, partition] = [tp.replace(/-\\d+$/, ""), tp.split("-").pop()];
    const row = document.querySelector(
      `.partition[data-topic="${topic}"][data-partition="${partition}"]`).getBoundingClientRect();
    return Math.abs(Number(y) - (row.top - board.top + row.height / 2));
  });
}"""


def test_the_wires_follow_the_logs_when_a_panel_opens_above_them(new_page, live_url, room):
    with_group(room, "billing", 2)
    page = open_board(new_page, live_url, room, viewport={"width": 1440, "height": 900})
    expect(page.locator("#wires path")).to_have_count(3)
    assert max(page.evaluate(WIRE_STARTS)) < 2

    page.get_by_text("Partitions & retention").click()  # pushes the partitions down
    expect(page.get_by_role("button", name="Add partitions")).to_be_visible()
    page.wait_for_timeout(100)
    assert max(page.evaluate(WIRE_STARTS)) < 2


LOG_END_IN_VIEW = """() => [...document.querySelectorAll(".partition")].map((row) => {
  const cells = row.querySelector(".cells").getBoundingClientRect();
  const end = row.querySelector(".cell-next").getBoundingClientRect();
  return end.left >= cells.left - 1 && end.right <= cells.right + 1;
})"""


def test_a_long_log_shows_its_newest_records_after_a_redraw(new_page, live_url, room):
    from messaging.services.records import RecordIn, records_produce

    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key="k", value=str(i), partition=0) for i in range(40)],
    )
    page = open_board(new_page, live_url, room, viewport={"width": 1440, "height": 900})
    assert page.evaluate(LOG_END_IN_VIEW) == [True, True, True]

    page.get_by_text("Partitions & retention").click()
    page.locator(".col-log input[name=partitions]").fill("4")
    page.get_by_role("button", name="Add partitions").click()  # the board redraws its logs
    expect(page.locator(".partition")).to_have_count(4)
    assert page.evaluate(LOG_END_IN_VIEW) == [True, True, True, True]
