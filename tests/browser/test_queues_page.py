"""Two browsers on the SQS FIFO view: a message in flight blocks its group, and only its group,
and what one browser does appears in the other, live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.services.rooms import room_create
from messaging.services.sqs import sqs_queue_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def room():
    room = room_create(title="Browser queues")
    sqs_queue_create(
        room=room,
        name="orders.fifo",
        attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    return room


def open_queues(new_page, live_url, room, **options):
    page = new_page(**options)
    page.goto(f"{live_url}/r/{room.code}/queues/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def send(page, group: str, body: str) -> None:
    form = page.locator("form[action$='/sqs/send/']")
    form.locator("input[name=body]").fill(body)
    form.locator("input[name=message_group_id]").fill(group)
    form.locator("button[type=submit]").click()
    expect(page.locator("#queues-result")).to_contain_text("Sent to orders.fifo")


def lane(page, group: str):
    return page.locator(f'[data-sqs-queue="orders.fifo"] .lane[data-group="{group}"]')


def test_a_received_message_blocks_its_group_and_the_other_browser_sees_it(
    new_page, live_url, room
):
    alice, bob = open_queues(new_page, live_url, room), open_queues(new_page, live_url, room)
    send(alice, "alice", "a1")
    send(alice, "alice", "a2")
    send(alice, "bob", "b1")
    expect(lane(bob, "bob").locator(".cell")).to_have_count(1)

    receive = alice.locator("form[action$='/sqs/receive/']")
    receive.locator("input[name=consumer]").fill("worker-A")
    receive.locator("button[type=submit]").click()
    expect(alice.locator("#queues-result")).to_contain_text("worker-A received 1 message")
    expect(alice.locator("#queues-result")).to_contain_text("a1")

    for page in (alice, bob):
        blocked, free = lane(page, "alice"), lane(page, "bob")
        expect(blocked).to_have_attribute("data-blocked", "true")
        expect(blocked).to_contain_text("blocked: a message is in flight")
        expect(blocked.locator('.cell[data-state="in_flight"]')).to_contain_text("a1")
        expect(free).to_have_attribute("data-blocked", "false")
        expect(free).not_to_contain_text("blocked")
        expect(free).to_contain_text("ready")
        expect(page.locator(".inflight-table")).to_contain_text("worker-A")

    # Bob deletes the in-flight message from the keyboard: alice's group flows again, in both.
    bob.evaluate("window.notReloaded = true")
    delete = bob.locator(".inflight-table button", has_text="Delete")
    delete.focus()
    bob.keyboard.press("Enter")
    expect(bob.locator("#queues-result")).to_contain_text("gone for good")
    for page in (alice, bob):
        expect(lane(page, "alice")).to_have_attribute("data-blocked", "false")
        expect(lane(page, "alice").locator(".cell")).to_have_count(1)
    expect(bob.locator(".inflight-table")).to_have_count(0)
    # The page was not reloaded (the form posted through htmx), and focus stayed near.
    assert bob.evaluate("document.activeElement !== document.body")
    assert bob.evaluate("window.notReloaded === true")
    assert bob.evaluate("document.activeElement.dataset.focusKey") == "purge:orders.fifo"


def test_a_refused_send_says_why_and_a_script_body_is_text(new_page, live_url, room):
    alice, bob = open_queues(new_page, live_url, room), open_queues(new_page, live_url, room)
    dialogs: list[str] = []
    bob.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    form = alice.locator("form[action$='/sqs/send/']")
    form.locator("input[name=body]").fill("no group")
    form.locator("button[type=submit]").click()
    expect(alice.locator("#queues-result .is-error")).to_contain_text("MissingParameter")
    send(alice, "g", "<script>alert(1)</script>")
    cell = lane(bob, "g").locator(".cell .cell-body")
    expect(cell).to_have_text("<script>alert(1…")
    assert dialogs == []


def test_the_page_works_on_a_phone(new_page, live_url, room):
    page = open_queues(
        new_page,
        live_url,
        room,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    send(page, "alice", "a1")
    expect(lane(page, "alice")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"


def test_side_by_side_mirrors_a_produced_record_into_all_three(new_page, live_url):
    from messaging.services.topics import topic_create

    room = room_create(title="Side by side")
    topic_create(room=room, name="orders", partitions=3)
    page = new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{live_url}/r/{room.code}/queues/side-by-side/")
    expect(page.get_by_text("Mirroring is off")).to_be_visible()

    page.get_by_role("button", name="Start mirroring").click()
    expect(page.locator("#queues-result")).to_contain_text("now also go to the FIFO queue")
    expect(page.get_by_role("button", name="Stop mirroring")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.locator(".sbs-produce input[name=key]").fill("alice")
    page.locator(".sbs-produce input[name=value]").fill("order 1")
    page.get_by_role("button", name="Produce to orders").click()

    expect(page.locator('.cell[data-topic="orders"][data-key="alice"]')).to_have_count(1)
    expect(lane(page, "alice")).to_contain_text("order 1")
    expect(page.locator('[data-classic-queue="orders"]')).to_contain_text("order 1")
    page.get_by_role("button", name="+30 s").click()
    expect(page.locator("#sim-clock")).to_have_text("day 1, 00:00:30")
