"""Scale: the figures of fan-out and classroom again, over 2 server processes on Redis.

The deployment of bench/deploy.py: two uvicorn processes on one PostgreSQL database of the
bench's own and one redis-server of its own (the channel layer), as LogLab scales out.

- fan-out: 500 websocket clients, half on each process, 10 produces/s posted (the board's htmx
  form) to the first; every event crosses Redis to reach the second process's clients.
  Baseline, same run: the bare `websockets` broadcast server with the same 500 clients.
- classroom: 500 students' pages (session cookies), half on each process; the instructor
  presses "Everyone join group billing" (the presenter's htmx POST); per page, the time from
  sending it to receiving the `group.changed` event that carries the final assignment.
  Baseline: a classroom of 1 on the same servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import fanout
from bench.common import ROOT, Result, Row, percentile, run_json, terminate, yes_no
from bench.deploy import UNLIMITED_RATES, Postgres, Redis, base_env, migrate, servers

CLIENTS, QUICK_CLIENTS = 500, 50
STUDENTS, QUICK_STUDENTS = 500, 50
PARTITIONS = 100
GROUP, OVERFLOW_GROUP = "billing", "audit"
TARGET_S = 1.0
WAIT_SECONDS = 30.0
ENLIST_ATTEMPTS = 5
PRESENCE_SECONDS = 60.0
DATABASE = "loglab_bench"


def deployment(tmp: Path, redis: Redis, database: Postgres) -> list[tuple[str, dict[str, str]]]:
    specs = []
    for name in ("bench-a", "bench-b"):
        env = base_env(**UNLIMITED_RATES)
        env.update(DATABASE_URL=database.url(name), REDIS_URL=redis.url, CHANNELS_PREFIX="bench")
        specs.append((name, env))
    return specs


def helper_env(redis: Redis, database: Postgres) -> dict[str, str]:
    return base_env(DATABASE_URL=database.url("bench-helper"), REDIS_URL=redis.url)


# --- fan-out over two processes ----------------------------------------------------------------


@dataclass
class SplitRun(fanout.Run):
    per_server_p99: list[float] = field(default_factory=list)


def measure_split(urls: list[str], clients: int, send, seconds: float, pids: list[int]):
    """fanout.measure, with the clients spread over `urls` (one client process per server)."""
    run = SplitRun()
    share = [clients // len(urls) + (i < clients % len(urls)) for i in range(len(urls))]
    swarms = [
        fanout.Swarm(url, count, 1, deadline=seconds + 150)
        for url, count in zip(urls, share, strict=True)
    ]
    try:
        for swarm in swarms:
            swarm.ready(run)
        time.sleep(1.0)  # the last group_add reached Redis before the first produce
        cpu_before = sum(fanout.cpu_seconds(pid) for pid in pids)
        wall_before = time.monotonic()
        fanout.pace(send, run, seconds)
        lags = 0.0
        for swarm in swarms:
            before = len(run.latencies_ms)
            swarm.stop(run)
            lags = max(lags, run.loop_lag_p99_ms)
            run.per_server_p99.append(percentile(run.latencies_ms[before:], 99))
        run.loop_lag_p99_ms = lags
        run.server_cpu = (sum(fanout.cpu_seconds(pid) for pid in pids) - cpu_before) / (
            time.monotonic() - wall_before
        )
    finally:
        for swarm in swarms:
            swarm.close()
    return run


def fanout_two(tmp: Path, clients: int, seconds: float) -> SplitRun:
    redis, database = Redis(tmp), Postgres(DATABASE)
    redis.start()
    try:
        database.create()
        migrate(helper_env(redis, database))
        code = run_json("bench.roomsetup", env=helper_env(redis, database), timeout=60)["code"]
        with servers(deployment(tmp, redis, database), tmp) as running:
            poster = fanout.FormPoster(running[0].base, code)
            urls = [f"{s.ws}/ws/rooms/{code}/" for s in running]
            return measure_split(urls, clients, poster.send, seconds, [s.pid for s in running])
    finally:
        redis.stop()
        database.drop()


# --- a classroom of 500 over two processes ---------------------------------------------------


def setup(students: int) -> dict:
    """Two classrooms (of `students` and of 1) in the database DATABASE_URL names, and an
    instructor's session. A group holds at most MAX_MEMBERS_PER_GROUP members: the students
    beyond that are already consuming in another group, so "everyone join" takes the rest."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from messaging.models import Member, Room, Student
    from messaging.services.groups import (
        MAX_MEMBERS_PER_GROUP,
        NewMember,
        group_create,
        members_join_named,
    )
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    user = User.objects.create_user(f"bench-{secrets.token_hex(4)}", password=secrets.token_hex(16))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()

    def classroom(size: int) -> dict:
        room = room_create(title=f"bench {size}", kind=Room.Kind.CLASSROOM, owner=user)
        topic_create(room=room, name="billing_events", partitions=PARTITIONS)
        group_create(room=room, group_id=GROUP, topics=["billing_events"])
        overflow = max(0, size - MAX_MEMBERS_PER_GROUP)

        def students_add(first: int, count: int) -> list[str]:
            keys = []
            for number in range(first, first + count):
                page = SessionStore()
                page.create()
                Student.objects.create(
                    room=room, display_name=f"Student {number:03}", session_key=page.session_key
                )
                keys.append(page.session_key)
            return keys

        sessions = []
        STUDENT = Member.Kind.STUDENT  # noqa: N806
        if overflow:
            # As "everyone join" does, but for students whose pages are not open yet.
            audit = group_create(room=room, group_id=OVERFLOW_GROUP, topics=["billing_events"])
            sessions += students_add(0, overflow)
            students = list(Student.objects.filter(room=room).order_by("pk"))
            members, _ = members_join_named(
                group=audit,
                joiners=[
                    (f"student-{s.pk}", NewMember(display_name=s.display_name, kind=STUDENT))
                    for s in students
                ],
            )
            for student, member in zip(students, members, strict=True):
                student.member = member
            Student.objects.bulk_update(students, ["member"])
        sessions += students_add(overflow, size - overflow)
        return {"code": room.code, "sessions": sessions, "joining": size - overflow}

    return {
        "instructor": session.session_key,
        "limit": MAX_MEMBERS_PER_GROUP,
        "many": classroom(students),
        "one": classroom(1),
    }


def enlist(base: str, code: str, instructor: str) -> tuple[float, int]:
    """The presenter's "Everyone join" button as htmx posts it; returns its round trip (s) and
    how many students it says joined."""
    token = secrets.token_hex(16)
    request = urllib.request.Request(
        f"{base}/r/{code}/present/enlist/",
        data=urllib.parse.urlencode({"group_id": GROUP}).encode(),
        method="POST",
        headers={
            "Cookie": f"sessionid={instructor}; csrftoken={token}",
            "X-CSRFToken": token,
            "HX-Request": "true",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    started = time.monotonic()
    try:
        response = urllib.request.urlopen(request, timeout=30)  # noqa: SIM115 - closed below
    except urllib.error.HTTPError as error:
        page = error.read().decode(errors="replace")
        alert = re.search(r'role="alert"[^>]*>([^<]*)<', page)  # the controls' error line
        text = alert.group(1) if alert else re.sub(r"<[^>]+>", " ", page)
        raise RuntimeError(
            f"enlist answered {error.code}: {' '.join(html.unescape(text).split())[:300]}"
        ) from None
    with response:
        answer = response.read().decode(errors="replace")
        joined = re.search(r"(\d+) students? joined", answer)
        if response.status != 200 or not joined:
            raise RuntimeError(f"enlist answered {response.status}: {answer[:300]}")
    return time.monotonic() - started, int(joined.group(1))


def pages_online(database: Postgres, code: str) -> int | None:
    """How many of the room's students the database counts as online (a StudentPage row of
    theirs); None when the schema has no such table (presence kept some other way)."""
    import psycopg

    try:
        with psycopg.connect(database.url("bench-helper"), connect_timeout=5) as conn:
            return conn.execute(
                "SELECT count(DISTINCT p.student_id) FROM messaging_studentpage p "
                "JOIN messaging_student s ON s.id = p.student_id "
                "JOIN messaging_room r ON r.id = s.room_id WHERE r.code = %s",
                (code,),
            ).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return None


async def presence_written(database: Postgres, code: str, pages: int, joining: int) -> float:
    """Wait (bounded) until every open page's presence is in the database: "everyone join"
    takes only the students whose pages are open. Returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < PRESENCE_SECONDS:
        online = await asyncio.to_thread(pages_online, database, code)
        if online is None:
            await asyncio.sleep(2.0)  # no table to watch: a fixed pause instead
            break
        if online >= pages:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


class PagesProcess:
    """One bench.student_pages process: its pages' sockets, on a CPU of their own."""

    def __init__(self, pages: list[tuple[str, str]]) -> None:
        self.count = len(pages)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.student_pages"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.say("PAGES " + json.dumps(pages))

    def _pump(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line.strip())

    def say(self, line: str) -> None:
        self.process.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None and self.lines.empty():
                raise RuntimeError(f"the students' pages did not say {prefix}")
            try:
                line = self.lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1 :]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            terminate(self.process)


def enlist_seen(
    bases: list[str], code: str, sessions: list[str], instructor: str, database: Postgres
) -> dict:
    """The students' pages, alternately on each server, in one client process per server; the
    instructor's "Everyone join"; when each page received the final group.changed."""
    urls = [f"{bases[i % len(bases)].replace('http://', 'ws://')}/ws/rooms/{code}/"
            for i in range(len(sessions))]  # fmt: skip
    shares = [
        [(urls[i], sessions[i]) for i in range(n, len(sessions), len(bases))]
        for n in range(len(bases))
    ]
    processes = [PagesProcess(share) for share in shares if share]
    try:
        connected = 0
        for process in processes:
            ok, _failed = process.expect("READY", 150).split()
            connected += int(ok)
        if not connected:
            raise RuntimeError("no student's websocket connected")
        presence_s = asyncio.run(presence_written(database, code, connected, len(sessions)))
        floor = 0
        for process in processes:
            process.say("MARK")
            floor = max(floor, int(process.expect("FLOOR", 30)))
        for attempt in range(ENLIST_ATTEMPTS):
            started = time.monotonic()
            try:
                trip, joined = enlist(bases[0], code, instructor)
                break
            except RuntimeError as error:
                if "page open" not in str(error) or attempt == ENLIST_ATTEMPTS - 1:
                    raise
                time.sleep(1.0)
        for process in processes:
            process.say(f"WAIT {floor} {WAIT_SECONDS}")
        pages = []
        for process in processes:
            for page in json.loads(process.expect("RESULT", WAIT_SECONDS + 30)):
                page["rebalances"] = {int(k): v for k, v in page["rebalances"].items()}
                page["sizes"] = {int(k): v for k, v in page["sizes"].items()}
                pages.append(page)
    finally:
        for process in processes:
            process.close()
    seqs = {seq for page in pages for seq in page["rebalances"] if seq > floor}
    if not seqs:
        raise RuntimeError(f"no page saw a rebalance within {WAIT_SECONDS:g} s")
    final = max(seqs)
    missed = [page for page in pages if final not in page["rebalances"]]
    why = Counter(page["closed"] or "open, nothing received" for page in missed)
    return {
        "spans": [p["rebalances"][final] - started for p in pages if final in p["rebalances"]],
        "missed": len(missed),
        "size": max((p["sizes"].get(final, 0) for p in pages), default=0),
        "missed_why": "; ".join(f"{n}: {text}" for text, n in why.items()),
        "trip": trip,
        "joined": joined,
        "attempts": attempt + 1,
        "presence_s": presence_s,
        "connected": connected,
        "events": len(seqs),
        "processes": len(processes),
    }


def classroom_two(tmp: Path, students: int) -> dict:
    redis, database = Redis(tmp), Postgres(DATABASE)
    redis.start()
    try:
        database.create()
        helper = helper_env(redis, database)
        migrate(helper)
        made = run_json("bench.scale", "setup", str(students), env=helper, timeout=600)
        with servers(deployment(tmp, redis, database), tmp) as running:
            bases = [s.base for s in running]
            many, one = (
                enlist_seen(
                    bases, made[size]["code"], made[size]["sessions"], made["instructor"], database
                )
                for size in ("many", "one")
            )
        return {
            "many": many,
            "one": one,
            "limit": made["limit"],
            "joining": made["many"]["joining"],
        }
    finally:
        redis.stop()
        database.drop()


# Above this, the bare server's own clients lagged: the machine was saturated and the bare
# figure measures that, not the server, so the ratio to it says nothing.
BASELINE_LAG_MS = 50.0


def fanout_met(lab_p99: float, ratio: float, base: fanout.Run) -> str:
    if lab_p99 > fanout.P99_TARGET_MS:
        return "no"
    if base.loop_lag_p99_ms > BASELINE_LAG_MS:
        return "n/a"
    return yes_no(ratio <= fanout.RATIO_TARGET)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def run(*, quick: bool, tmp: Path) -> Result:
    clients = QUICK_CLIENTS if quick else CLIENTS
    students = QUICK_STUDENTS if quick else STUDENTS
    seconds = fanout.QUICK_SECONDS if quick else fanout.SECONDS
    (tmp / "fanout").mkdir()
    (tmp / "classroom").mkdir()
    base = fanout.bare(seconds, clients)
    lab = fanout_two(tmp / "fanout", clients, seconds)
    lab_p99, base_p99 = percentile(lab.latencies_ms, 99), percentile(base.latencies_ms, 99)
    ratio = lab_p99 / base_p99 if base_p99 > 0 else float("inf")
    lossless = lab.expected > 0 and lab.delivered == lab.expected and lab.connected == clients
    rows = [
        Row(
            "fan-out p99, 2 processes on Redis",
            f"{lab_p99:.1f} ms ({ratio:.1f}x; p50 {percentile(lab.latencies_ms, 50):.1f} ms)",
            f"bare websockets {base_p99:.1f} ms (p50 {percentile(base.latencies_ms, 50):.1f} ms)",
            f"<={fanout.P99_TARGET_MS:.0f}ms, <={fanout.RATIO_TARGET:.0f}x",
            fanout_met(lab_p99, ratio, base),
        ),
        Row(
            "fan-out delivered, 2 processes",
            f"{lab.delivered}/{lab.expected} ({clients} clients)",
            f"bare websockets {base.delivered}/{base.expected}",
            "no loss",
            yes_no(lossless),
        ),
    ]
    notes = [
        f"Two uvicorn processes on one PostgreSQL database and one redis-server (both the "
        f"bench's own); {clients} clients, half on each process (one client process per "
        f"server), {fanout.RATE:g} produces/s posted to the first for {seconds:g} s.",
        "LogLab: "
        + fanout.describe(lab)
        + " (server CPU summed over both processes); p99 of the clients of each process (the "
        "first gets the POSTs): "
        + ", ".join(f"{p99:.1f} ms" for p99 in lab.per_server_p99)
        + f"; POST round trip p50 {percentile(lab.send_ms, 50):.1f} ms, p99 "
        f"{percentile(lab.send_ms, 99):.1f} ms.",
        "bare websockets server, same clients in 2 processes: " + fanout.describe(base) + ".",
    ]
    if base.loop_lag_p99_ms > BASELINE_LAG_MS:
        notes.append(
            f"The bare server's clients lagged {base.loop_lag_p99_ms:.0f} ms at p99 (over "
            f"{BASELINE_LAG_MS:.0f} ms): the machine was saturated during the baseline, so the "
            "ratio to it is not judged."
        )
    try:
        room = classroom_two(tmp / "classroom", students)
    except Exception as error:  # noqa: BLE001 - the fan-out figures stand; this row says why
        message = f"crashed: {type(error).__name__}: {str(error).strip().splitlines()[0][:150]}"
        rows.append(Row("classroom everyone-join seen, 2 processes", message, "-", "-", "crashed"))
        notes.append("Classroom " + message)
        return Result("scale", rows, notes)
    spans, joined, missed = room["many"]["spans"], room["many"]["joined"], room["many"]["missed"]
    worst = max(spans)
    rows.append(
        Row(
            "classroom everyone-join seen, 2 processes",
            f"{_ms(worst)} last page, p50 {_ms(percentile(spans, 50))}, p99 "
            f"{_ms(percentile(spans, 99))} ({students} pages, {joined} joining"
            + (f"; {missed} pages never got it" if missed else "")
            + ")",
            f"1 student {_ms(max(room['one']['spans']))}",
            f"<= {TARGET_S:g} s, every page",
            yes_no(worst <= TARGET_S and joined == room["joining"] and not missed),
        )
    )
    if missed:
        notes.append(f"Pages that never received the event: {room['many']['missed_why']}.")
    notes.append(
        f"Classroom: {students} students' pages (session cookies), alternately on each process, "
        f"held by {room['many']['processes']} client processes (one per server: a single one "
        "was the bottleneck, at 93% of a core while the event spread); "
        f'the instructor\'s "Everyone join {GROUP}" POST (to the first process) took {joined} '
        f"students (of {room['joining']} not consuming yet) into {GROUP} over {PARTITIONS} "
        f"partitions in {room['many']['events']} group.changed event(s) of "
        f"{room['many']['size'] / 1000:.0f} KB (JSON) each page receives; figure: from sending "
        f"it to each page receiving the event with the final assignment; the POST's round trip "
        f"{_ms(room['many']['trip'])}"
        + (
            f" (sent {room['many']['attempts']} times: it refuses while no page's presence is "
            "written yet)"
            if room["many"]["attempts"] > 1
            else ""
        )
        + "."
    )
    notes.append(
        f"{room['many']['connected']} of the {students} pages connected; the database counted "
        f"their students online (StudentPage rows, written by each process after it accepts a "
        f"socket) {room['many']['presence_s']:.1f} s after the last had connected: the join is "
        "sent once they are, since it only takes students whose page is open."
    )
    if room["joining"] < students:
        notes.append(
            f"A group holds at most {room['limit']} members (MAX_MEMBERS_PER_GROUP in "
            f"services/groups.py), so {students - room['joining']} of the students were already "
            f"consuming in group {OVERFLOW_GROUP} and the join took the others; every one of "
            f"the {students} pages receives the event."
        )
    return Result("scale", rows, notes)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "setup":
        print(json.dumps(setup(int(sys.argv[2]))))
    else:
        sys.exit("usage: python -m bench.scale setup STUDENTS")
