"""Classroom: 200 students' pages on websockets; the 200th joins; how long until all see it.

LogLab's production server (uvicorn, in-memory channel layer, one process) on a scratch
database. A subprocess (`python -m bench.classroom setup N`) makes a classroom with a
100-partition topic and a group, and N students of which N-1 already joined the group through
the service. N websocket clients connect as those students (their session cookies: each open
page keeps its member alive, as a phone does). Then the last student joins from their page, an
htmx POST of its "Join" button; the figure is the time from sending that POST to the moment the
last of the N clients has the `group.changed` event that carries the final assignment. The
student then leaves (not timed) and joins again, ROUNDS times. Baseline, same run: the same
with one student (one page, one join), so what the 200 add is plain.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import time
import urllib.parse
import urllib.request

from bench.common import ORIGIN, Result, Row, percentile, run_json, scratch_env, yes_no

STUDENTS, QUICK_STUDENTS = 200, 50
ROUNDS, QUICK_ROUNDS = 5, 2
PARTITIONS = 100
GROUP = "billing"
TARGET_S = 1.0
CONNECT_CONCURRENCY = 20
WAIT_SECONDS = 30.0


def setup(students: int) -> dict:
    """Create the classroom in the database SQLITE_PATH names; print what the clients need."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.contrib.sessions.backends.db import SessionStore

    from messaging.models import Room, Student
    from messaging.services.classroom import student_consumer_join
    from messaging.services.groups import group_create
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    room = room_create(title="bench classroom", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="billing_events", partitions=PARTITIONS)
    group_create(room=room, group_id=GROUP, topics=["billing_events"])
    sessions = []
    for number in range(students):
        session = SessionStore()
        session.create()
        student = Student.objects.create(
            room=room, display_name=f"Student {number:03}", session_key=session.session_key
        )
        if number < students - 1:
            student_consumer_join(student=student, group_id=GROUP)
        sessions.append(session.session_key)
    return {"code": room.code, "sessions": sessions}


class Page:
    """One student's page: its websocket, and when each group.changed reached it."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.rebalances: dict[int, float] = {}  # seq -> monotonic time of receipt
        self.closed = ""  # why its websocket ended, if it did
        self.sizes: dict[int, int] = {}  # seq -> characters of the event

    async def listen(self, url: str, ready: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        async with ready:
            try:
                connection = await connect(
                    url,
                    origin=ORIGIN,
                    open_timeout=30,
                    ping_interval=None,
                    max_queue=None,
                    additional_headers={"Cookie": f"sessionid={self.session}"},
                )
            except Exception as error:
                self.closed = f"could not connect ({type(error).__name__}: {str(error)[:100]})"
                raise
        self.connection = connection
        try:
            async for raw in connection:
                now = time.monotonic()
                event = json.loads(raw)
                if event.get("type") == "group.changed":
                    self.rebalances[event["seq"]] = now
                    self.sizes[event["seq"]] = len(raw)
            self.closed = f"closed by the server ({connection.close_code})"
        except Exception as error:  # noqa: BLE001 - a dropped page: a rebalance never seen
            self.closed = f"dropped ({type(error).__name__}: {str(error)[:100]})"

    def newest(self) -> int:
        return max(self.rebalances, default=0)


async def pages_close(pages: list[Page], tasks: list[asyncio.Task]) -> None:
    """Close every page's socket and end its listener."""
    for page in pages:
        connection = getattr(page, "connection", None)
        if connection is not None:
            await connection.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def everyone_past(pages: list[Page], floor: int) -> int:
    """Wait until every page has a group.changed after seq `floor`; then the newest seq."""
    deadline = time.monotonic() + WAIT_SECONDS
    while any(page.newest() <= floor for page in pages):
        if time.monotonic() > deadline:
            missed = sum(page.newest() <= floor for page in pages)
            raise RuntimeError(f"{missed} pages never saw the rebalance")
        await asyncio.sleep(0.005)
    # An eager join is one group.changed (its plan holds every step); a moment more shows
    # whether any other followed, and the last one is the final assignment.
    await asyncio.sleep(0.2)
    return max(page.newest() for page in pages)


def post(base: str, code: str, session: str, action: str) -> float:
    """The student page's join/leave button as htmx sends it; returns its round trip (s)."""
    token = secrets.token_hex(16)  # a CSRF secret of our own: cookie and header must match
    body = urllib.parse.urlencode({"action": action, "group_id": GROUP}).encode()
    request = urllib.request.Request(
        f"{base}/r/{code}/me/consumer/",
        data=body,
        method="POST",
        headers={
            "Cookie": f"sessionid={session}; csrftoken={token}",
            "X-CSRFToken": token,
            "HX-Request": "true",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{action} answered {response.status}")
    return time.monotonic() - started


async def measure(base: str, code: str, sessions: list[str], rounds: int) -> dict:
    ws_url = base.replace("http://", "ws://") + f"/ws/rooms/{code}/"
    pages = [Page(session) for session in sessions]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tasks = [asyncio.create_task(page.listen(ws_url, gate)) for page in pages]
    while sum(hasattr(page, "connection") for page in pages) < len(pages):
        await asyncio.sleep(0.05)
        if any(task.done() for task in tasks):
            raise RuntimeError("a student's websocket could not connect")
    await asyncio.sleep(0.5)  # every page's online flag is written before the first join
    last = sessions[-1]
    spans, trips = [], []
    floor = max(page.newest() for page in pages)
    try:
        for _ in range(rounds):
            started = time.monotonic()
            trips.append(await asyncio.to_thread(post, base, code, last, "join"))
            final = await everyone_past(pages, floor)
            missed = [page for page in pages if final not in page.rebalances]
            if missed:
                raise RuntimeError(f"{len(missed)} pages missed the final rebalance")
            spans.append(max(page.rebalances[final] for page in pages) - started)
            await asyncio.to_thread(post, base, code, last, "leave")
            floor = await everyone_past(pages, final)
    finally:
        await pages_close(pages, tasks)
    return {"spans": spans, "trips": trips}


def one_size(students: int, rounds: int, tmp, name: str) -> dict:
    from tests.support.server import serve

    directory = tmp / name
    directory.mkdir()
    env = scratch_env(directory)
    # The join and leave buttons are rate limited per student; the bench presses them faster.
    env["LOGLAB_STUDENT_JOINS_PER_SECOND"] = "1000"
    made = run_json("bench.classroom", "setup", str(students), env=env, timeout=600)
    with serve(env) as base:
        return asyncio.run(measure(base, made["code"], made["sessions"], rounds))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def run(*, quick: bool, tmp) -> Result:
    students = QUICK_STUDENTS if quick else STUDENTS
    rounds = QUICK_ROUNDS if quick else ROUNDS
    many = one_size(students, rounds, tmp, "many")
    one = one_size(1, rounds, tmp, "one")
    median, worst = statistics.median(many["spans"]), max(many["spans"])
    base_median = statistics.median(one["spans"])
    row = Row(
        "classroom rebalance seen",
        f"{_ms(median)} median, {_ms(worst)} worst ({students} students)",
        f"1 student {_ms(base_median)}",
        f"<= {TARGET_S:g} s",
        yes_no(worst <= TARGET_S),
    )
    notes = [
        f"{students} students' websockets (session cookies, so each keeps its member alive) in "
        f"one room, {students - 1} already in group {GROUP} over {PARTITIONS} partitions; the "
        f"last joins with its page's htmx POST, {rounds} times (leaving in between, untimed).",
        "Figure: from sending the join to the last page receiving the group.changed event with "
        "the final assignment. Rounds: "
        + ", ".join(_ms(s) for s in many["spans"])
        + f"; the join POST's round trip p50 {_ms(percentile(many['trips'], 50))}.",
        "Baseline: the same with 1 student (1 page, 1 join). Rounds: "
        + ", ".join(_ms(s) for s in one["spans"])
        + f"; join POST p50 {_ms(percentile(one['trips'], 50))}.",
    ]
    return Result("classroom", [row], notes)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "setup":
        print(json.dumps(setup(int(sys.argv[2]))))
    else:
        sys.exit("usage: python -m bench.classroom setup STUDENTS")
