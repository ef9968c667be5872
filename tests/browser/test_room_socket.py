"""room-socket.js, the one rule for a room's numbered events, in real Chromium: the event
types come from messaging/events.py, a gap or a resync fetches the state, what the fetch
already contains is folded, and every page that follows a room catches up the same way."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from messaging.events import event_types_for_browser
from messaging.models import Room
from messaging.services.rooms import room_create
from messaging.services.sqs import sqs_queue_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SOCKET = "/static/loglab/room-socket.js"

# A WebSocket that never reaches a server: the tests feed events by hand, or close it.
FAKE_SOCKET = """() => {
    window.sockets = [];
    window.WebSocket = class extends EventTarget {
        static OPEN = 1;
        constructor(url) {
            super();
            this.url = url;
            this.readyState = 0;
            window.sockets.push(this);
        }
        close(code) { this.dispatchEvent(new CloseEvent("close", { code })); }
    };
}"""


def test_event_names_come_from_the_server_and_an_unknown_one_throws(new_page, live_url):
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    names = page.evaluate(
        """async (url) => {
            const { EVENT } = await import(url);
            let error = "";
            try { EVENT.NOT_A_TYPE; } catch (e) { error = e.message; }
            return { all: { ...EVENT }, error, frozen: Object.isFrozen(EVENT) };
        }""",
        SOCKET,
    )
    declared = {t["constant"]: name for name, t in event_types_for_browser().items()}
    assert names["all"] == declared
    assert names["all"]["RECORDS_PRODUCED"] == "records.produced"
    assert "messaging/events.py" in names["error"]
    assert names["frozen"]


def test_the_rule_applies_in_order_fetches_on_a_gap_and_folds_what_the_fetch_contains(
    new_page, live_url
):
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    page.evaluate(FAKE_SOCKET)
    log = page.evaluate(
        """async (url) => {
            const { RoomSocket } = await import(url);
            const log = [];
            const tick = () => new Promise((r) => setTimeout(r, 20));
            let answer = null;
            const socket = new RoomSocket("ROOM", {
                seq: 5,
                apply: (e) => log.push(`apply ${e.seq}`),
                folded: (e) => log.push(`folded ${e.seq}`),
                resync: () => new Promise((resolve) => {
                    log.push("fetch");
                    answer = resolve;
                }),
            });
            socket.receive({ seq: 6, type: "step" });
            socket.receive({ seq: 5, type: "step" });          // a duplicate
            await tick();
            socket.receive({ seq: 9, type: "group.changed" }); // 7 and 8 were lost
            await tick();
            socket.receive({ seq: 10, type: "step" });          // held during the fetch
            socket.receive({ seq: 11, type: "step" });
            socket.receive({ seq: 9, type: "group.changed" });  // a replayed copy
            await tick();
            answer(10);                                          // the state contains 9 and 10
            await tick();
            socket.receive({ seq: 12, type: "resync" });
            await tick();
            answer(11);                                          // older than the resync said
            await tick();
            socket.receive({ seq: 13, type: "step" });
            await tick();
            log.push(`seq ${socket.seq}`);
            log.push(window.sockets[0].url.replace(/^.*\\/ws\\//, ""));
            return log;
        }""",
        SOCKET,
    )
    assert log == [
        "apply 6",
        "fetch",
        "folded 9",
        "folded 10",
        "apply 11",
        "fetch",
        "apply 13",
        "seq 13",
        "rooms/ROOM/?since=5",
    ]


def test_a_failed_fetch_is_retried_and_the_held_events_wait_for_it(new_page, live_url):
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    page.evaluate(FAKE_SOCKET)
    log = page.evaluate(
        """async (url) => {
            const { RoomSocket } = await import(url);
            const log = [];
            let fails = 1;
            const socket = new RoomSocket("ROOM", {
                seq: 1,
                apply: (e) => log.push(`apply ${e.seq}`),
                resync: async () => {
                    log.push("fetch");
                    if (fails-- > 0) throw new Error("offline");
                    return 3;
                },
            });
            socket.receive({ seq: 3, type: "step" });
            socket.receive({ seq: 4, type: "step" });
            await new Promise((r) => setTimeout(r, 1500));  // the first retry is within 1 s
            return log;
        }""",
        SOCKET,
    )
    assert log == ["fetch", "fetch", "apply 4"]


def test_a_room_that_is_gone_stops_the_retries_and_other_closes_back_off(new_page, live_url):
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    page.evaluate(FAKE_SOCKET)
    page.evaluate(
        """async (url) => {
            const status = document.createElement("span");
            status.id = "live-status";
            document.body.append(status);
            const { RoomSocket } = await import(url);
            new RoomSocket("GONE", { seq: 0, apply() {}, resync: async () => 0 });
            window.sockets[0].close(4404);
        }""",
        SOCKET,
    )
    expect(page.locator("#live-status")).to_have_text("this room no longer exists")
    page.wait_for_timeout(1000)
    assert page.evaluate("window.sockets.length") == 1

    # Any other close reconnects, asking for what it missed, after a jittered 0.1-1 s.
    page.evaluate(
        """async (url) => {
            const { RoomSocket } = await import(url);
            new RoomSocket("FLAKY", { seq: 7, apply() {}, resync: async () => 7 });
            window.sockets[1].close(1006);
        }""",
        SOCKET,
    )
    expect(page.locator("#live-status")).to_have_text("reconnecting…")
    # Polled from here: the page's CSP forbids wait_for_function's evaluated predicate.
    for _ in range(20):
        if page.evaluate("window.sockets.length") == 3:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.sockets.length") == 3
    assert page.evaluate("window.sockets[2].url").endswith("/ws/rooms/FLAKY/?since=7")


def test_a_restart_spreads_the_first_reconnects_of_many_pages_over_a_second(new_page, live_url):
    # Two hundred phones whose sockets a restarting server closed at once (1012) must not all
    # knock in the same instant: even the first retry is random over the whole window.
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    page.evaluate(FAKE_SOCKET)
    delays = page.evaluate(
        """async (url) => {
            const { RoomSocket } = await import(url);
            const pages = 200;
            const page = { seq: 1, apply() {}, resync: async () => 1 };
            for (let i = 0; i < pages; i++) new RoomSocket("BUSY", page);
            const closedAt = performance.now();
            const reopened = [];
            const original = window.sockets.push.bind(window.sockets);
            window.sockets.push = (socket) => {
                reopened.push(performance.now() - closedAt);
                return original(socket);
            };
            for (const socket of window.sockets.slice(0, pages)) socket.close(1012);
            await new Promise((r) => setTimeout(r, 1500));
            return reopened;
        }""",
        SOCKET,
    )
    assert len(delays) == 200  # every page came back, none waited past the first window
    assert max(delays) < 1_300
    assert max(delays) - min(delays) > 600  # spread over the window, not in one burst
    in_first_quarter = sum(1 for d in delays if d < 350)
    assert in_first_quarter < 120  # about a quarter in each quarter, never all at once


def test_importing_the_libraries_installs_nothing_and_goes_nowhere(new_page, live_url):
    page = new_page()
    page.goto(f"{live_url}/lessons/")
    page.evaluate(
        """async () => {
            document.body.dataset.follows = "1";
            document.body.dataset.followPath = "/r/ABCDEF/";
            for (const name of ["room-socket", "keys", "follow-room", "copy", "sim-time"]) {
                await import(`/static/loglab/${name}.js`);
            }
        }"""
    )
    page.wait_for_timeout(500)
    assert page.url.endswith("/lessons/")


def behind(page, socket: str, by: int) -> None:
    """Make the page believe it missed `by` events: the next real one is then a gap. Counts
    the page's fetches of the state."""
    page.evaluate(
        f"""() => {{
            const socket = {socket};
            socket.seq -= {by};
            socket.handed -= {by};
            const fetchState = socket.page.resync;
            window.resyncs = 0;
            socket.page.resync = () => {{ window.resyncs++; return fetchState(); }};
        }}"""
    )


def post(page, path: str, data: dict[str, str]) -> None:
    """A form post from the page, as fetch: the event comes back only through the socket."""
    status = page.evaluate(
        """async ([path, data]) => {
            const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const r = await fetch(path, { method: "POST", body: new URLSearchParams(data),
                headers: { "HX-Request": "true", "X-CSRFToken": csrf } });
            return r.status;
        }""",
        [path, data],
    )
    assert status < 400


def caught_up(page, socket: str, room: Room) -> None:
    room.refresh_from_db()
    # Polled from here: the page's CSP forbids wait_for_function's evaluated predicate.
    check = f"() => {socket}.seq === {room.last_seq} && !{socket}.resyncing && window.resyncs >= 1"
    for _ in range(100):
        if page.evaluate(check):
            return
        page.wait_for_timeout(100)
    assert page.evaluate(check), "the page never caught up"


def test_the_queues_page_catches_up_from_its_fragment_after_a_gap(new_page, live_url):
    room = room_create(title="Gaps")
    sqs_queue_create(room=room, name="jobs", attributes={})
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/queues/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    behind(page, "window.loglabQueues.socket", 3)

    post(page, f"/r/{room.code}/queues/sqs/send/", {"queue": "jobs", "body": "hello"})
    expect(page.locator('[data-sqs-queue="jobs"] .cell')).to_have_count(1)
    caught_up(page, "window.loglabQueues.socket", room)


def test_the_board_catches_up_after_a_gap(new_page, live_url):
    room = room_create(title="Gaps")
    topic_create(room=room, name="orders", partitions=1)
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    behind(page, "window.loglab.socket", 2)

    post(page, f"/r/{room.code}/produce/", {"topic": "orders", "key": "k", "value": "v"})
    expect(page.locator('.partition[data-topic="orders"] .cell[data-offset="0"]')).to_have_count(1)
    caught_up(page, "window.loglab.socket", room)


def test_a_students_page_catches_up_from_the_whole_page_after_a_gap(new_page, live_url):
    owner = get_user_model().objects.create_user("teacher", password="long enough password")
    room = room_create(title="Gaps", kind=Room.Kind.CLASSROOM, owner=owner)
    topic_create(room=room, name="payments", partitions=2)
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_url}/j/{room.code}/")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/r/{room.code}/me/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    behind(page, "window.loglabStudent.socket", 2)

    post(page, f"/r/{room.code}/produce/", {"topic": "payments", "value": "v"})
    caught_up(page, "window.loglabStudent.socket", room)
    expect(page.locator("#me")).to_be_visible()


def test_the_connect_card_copies_on_the_queues_page_too(new_page, live_url):
    room = room_create(title="Copy")
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page.goto(f"{live_url}/r/{room.code}/queues/")
    page.locator("#connect > summary").click()
    endpoint = page.locator("#connect [data-copy]").first
    endpoint.click()
    expect(endpoint).to_have_class(re.compile(r"\bis-copied\b"))
