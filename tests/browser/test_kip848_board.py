"""KIP-848 in real Chromium: a consumer joins a group.protocol=consumer group on the board and
the class watches it reconcile, one heartbeat at a time, while nobody stops; and the page that
runs the same join under eager, cooperative and KIP-848."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create, member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TWO_PARTITIONS = re.compile(r"^orders-\d orders-\d$")
# Every data-assigned a member's card had, and any script error on the page.
WATCH = """() => {
  window.kipSeen = {};
  window.kipErrors = [];
  window.addEventListener("error", (e) => window.kipErrors.push(String(e.message)));
  const note = () => {
    for (const el of document.querySelectorAll('.member[data-group="app"]')) {
      (window.kipSeen[el.dataset.member] ||= []).push(el.dataset.assigned);
    }
  };
  note();
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-assigned"],
  });
}"""


def test_a_kip848_join_reconciles_on_the_board_while_nobody_stops(new_page, live_url):
    room = room_create(title="KIP-848 board")
    topic_create(room=room, name="orders", partitions=6)
    group = group_create(
        room=room,
        group_id="app",
        topics=["orders"],
        group_protocol="consumer",
        remote_assignor="range",
        auto_offset_reset="earliest",
    )
    first, _ = member_join(group=group, client_id="a")
    second, _ = member_join(group=group, client_id="b")
    # 5 s heartbeats take a quarter of a second at 20x.
    room_clock_set(room=room, running=True, speed=20)
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    card = page.locator('.group[data-group="app"]')
    expect(card.locator(".badge.state")).to_have_text("Stable", timeout=15_000)
    expect(card.locator(".kip848-meta")).to_contain_text("range (server-side)")
    page.evaluate(WATCH)

    card.locator(".add-member button").click()
    members = page.locator('.member[data-group="app"]')
    expect(members).to_have_count(3)
    narration = page.locator("#narration")
    expect(narration).to_contain_text("must revoke", timeout=15_000)
    expect(narration).to_contain_text("gets orders-", timeout=15_000)
    expect(card.locator(".badge.state")).to_have_text("Stable", timeout=15_000)
    for index in range(3):
        expect(members.nth(index)).to_have_attribute("data-assigned", TWO_PARTITIONS)

    seen = page.evaluate("window.kipSeen")
    for member in (first.member_id, second.member_id):
        assert seen[member], f"{member} was never seen"
        assert "" not in seen[member], f"{member} stopped: {seen[member]}"
    assert page.evaluate("window.kipErrors") == []


def test_the_three_protocols_run_side_by_side(new_page, live_url):
    page = new_page()
    page.goto(f"{live_url}/rebalances/?members=3&partitions=6&event=join")
    runs = page.locator(".compare-run")
    expect(runs).to_have_count(3)
    expect(page.locator('.compare-run[data-protocol="eager"] .compare-summary')).to_contain_text(
        "stopped altogether: c1, c2, c3"
    )
    for protocol in ("cooperative", "consumer"):
        expect(
            page.locator(f'.compare-run[data-protocol="{protocol}"] .compare-summary')
        ).to_contain_text("nobody stopped")
    # The playhead takes 12 s for the span in class; one here.
    page.evaluate("document.getElementById('compare').dataset.playSeconds = '1'")
    page.locator("#compare-play").click()
    expect(page.locator("#compare-clock")).to_have_text("10.0 s", timeout=20_000)
