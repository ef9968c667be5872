"""`make soak` (`python -m bench.soak`): reliability runs outside `make test`, on loopback.

  writers, SQLite and PostgreSQL   8 writers x 250 records through the Kafka REST API into two
                                   server processes on one database; every record read back
  kill -9 mid-autoplay             PostgreSQL, 2 processes: the process driving a running room
                                   is killed; the other must take the room over
  Redis restart                    PostgreSQL, 2 processes on our own redis-server, which is
                                   killed and started again (empty) while a producer posts
  PostgreSQL restart               2 processes on a PostgreSQL cluster of our own (never the
                                   shared one), stopped and started again mid-autoplay while
                                   a producer posts and 20 browsers watch
  reconnect storm                  200 websockets on one process (SQLite, as `make run`), the
                                   process restarted; every browser back and caught up

It prints a table and writes docs/reliability.md. Every wait is bounded; the whole run is
bounded by TOTAL_SECONDS. Name scenarios to run only those (`python -m bench.soak
postgres-restart`); `--quick` runs smaller (50 browsers, 2 x 50 records) and writes
nothing unless `--write`.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine
from bench.deploy import (
    UNLIMITED_RATES,
    ConnectionSampler,
    Postgres,
    Redis,
    Server,
    base_env,
    migrate,
)
from bench.fleet import Browser, Fleet
from bench.pgcluster import PrivateCluster
from bench.soak_clients import Poster, RoomWatcher, Tally, produce, produce_answer
from bench.soak_report import DOC, Outcome, table, write_doc
from tests.support.server import ROOT

TOTAL_SECONDS = 600
SCENARIO_SECONDS = 240
WRITERS, RECORDS_EACH = 8, 250
STORM_BROWSERS = 200
PG_CONNECTIONS_PER_PROCESS = 20
RECOVERY_TARGET_S = 5.0
DATABASE = "loglab_soak"


def run_json(*args: str, env: dict[str, str], timeout: float = 120) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak_db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.soak_db {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Helper:
    """`bench.soak_db` started ahead (Django set up, READY), told to go when the moment comes."""

    def __init__(self, args: list[str], env: dict[str, str], timeout: float = 60) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.soak_db", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = self._line()
        if ready != "READY":
            self.process.kill()
            raise RuntimeError(f"bench.soak_db {args[0]} did not start: {ready!r}")

    def _line(self) -> str:
        readable, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        if not readable:
            self.process.kill()
            raise TimeoutError("bench.soak_db did not answer")
        return self.process.stdout.readline().strip()  # type: ignore[union-attr]

    def go(self) -> dict:
        self.process.stdin.write("go\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        answer = self._line()
        self.process.wait(timeout=self.timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"bench.soak_db failed: {self.process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        return json.loads(answer)


def deployment_env(
    database: Postgres | None, tmp: Path, redis: Redis | None, name: str
) -> dict[str, str]:
    env = base_env(**UNLIMITED_RATES)
    if database is not None:
        env["DATABASE_URL"] = database.url(name)
    else:
        env["SQLITE_PATH"] = str(tmp / "soak.sqlite3")
    if redis is not None:
        env["REDIS_URL"] = redis.url
        env["CHANNELS_PREFIX"] = "soak"
    return env


def read_back(code: str, topic: str, acks: list, env: dict[str, str], tmp: Path) -> dict:
    path = tmp / f"acks-{code}.json"
    path.write_text(json.dumps(acks))
    return run_json("check", code, topic, str(path), env=env, timeout=300)


def apply_check(outcome: Outcome, check: dict) -> None:
    outcome.gaps += check["gaps"] + check["event_gaps"]
    outcome.duplicates += check["duplicates"] + check["acknowledged_twice"]
    outcome.lost += check["lost"] + check["misplaced"]
    outcome.notes.append(
        f"read back: {check['stored']} records stored, {check['acknowledged']} acknowledged; "
        f"offset gaps {check['gaps']}, room event gaps {check['event_gaps']} "
        f"({check['events']} events), duplicates {check['duplicates']}, lost {check['lost']}, "
        f"stored elsewhere than acknowledged {check['misplaced']}, stored without an "
        f"acknowledgement {check['unacknowledged_stored']}"
    )


def peak_text(sampler: ConnectionSampler | None, names: list[str]) -> str:
    if sampler is None:
        return "n/a (SQLite)"
    return (
        ", ".join(f"{name} {sampler.peak_of(name)}" for name in names)
        + f" (total {sampler.peak_total})"
    )


def peaks_ok(sampler: ConnectionSampler | None, names: list[str]) -> bool:
    return sampler is None or all(sampler.peak_of(n) <= PG_CONNECTIONS_PER_PROCESS for n in names)


def tracebacks(servers: list[Server]) -> str:
    text = "server tracebacks logged: " + ", ".join(
        f"{s.name} {s.errors_logged()}" for s in servers
    )
    summaries = [f"{s.name}: {s.errors_summary()}" for s in servers if s.errors_logged()]
    return text + (f" ({'; '.join(summaries)})" if summaries else "")


# --- scenarios --------------------------------------------------------------------------------


def writers(kind: str, tmp: Path, quick: bool) -> Outcome:
    count, each = (2, 50) if quick else (WRITERS, RECORDS_EACH)
    outcome = Outcome(f"{count} writers x {each} records, {kind}, 2 processes")
    redis = Redis(tmp)
    database = Postgres(DATABASE) if kind == "PostgreSQL" else None
    sampler: ConnectionSampler | None = None
    servers: list[Server] = []
    names = ["soak-a", "soak-b"]
    try:
        redis.start()
        if database is not None:
            database.create()
        helper = deployment_env(database, tmp, redis, "soak-helper")
        migrate(helper)
        code = run_json("room", env=helper)["code"]
        if database is not None:
            sampler = ConnectionSampler(database).__enter__()
        for name in names:
            servers.append(Server(name, deployment_env(database, tmp, redis, name), tmp))
            servers[-1].start()
        tally = Tally()

        def write(writer: int) -> None:
            poster = Poster(servers[writer % 2].port)
            for i in range(each):
                for _attempt in range(20):
                    status = produce(poster, code, {"w": writer, "i": i}, tally)
                    if status != 429:
                        break
                    time.sleep(0.2)

        started = time.monotonic()
        threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, 240 - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        if any(thread.is_alive() for thread in threads):
            outcome.notes.append("the writers did not finish within 240 s")
        outcome.requests, outcome.errors_5xx = tally.requests, tally.errors_5xx
        outcome.notes.append(
            f"{tally.describe()}; {tally.ok / elapsed:.0f} acknowledged produces/s over "
            f"{elapsed:.1f} s (one record per request, writer w posts to process w mod 2)"
        )
        apply_check(outcome, read_back(code, "soak", tally.acks, helper, tmp))
        outcome.lost += count * each - len(tally.acks)  # never acknowledged at all
        if tally.ok < count * each:
            outcome.notes.append(f"{count * each - tally.ok} produces were never acknowledged")
    finally:
        if sampler is not None:
            sampler.__exit__()
        for server in servers:
            server.stop()
        outcome.notes.append(tracebacks(servers))
        redis.stop()
        if database is not None:
            database.drop()
    outcome.peak_connections = peak_text(sampler, names)
    outcome.met = (
        outcome.errors_5xx == 0
        and outcome.gaps == outcome.duplicates == outcome.lost == 0
        and peaks_ok(sampler, names)
    )
    return outcome


def kill_mid_autoplay(tmp: Path, quick: bool) -> Outcome:
    outcome = Outcome("kill -9 mid-autoplay, PostgreSQL, 2 processes", timed=True)
    redis, database = Redis(tmp), Postgres(DATABASE)
    names = ["soak-a", "soak-b"]
    servers: list[Server] = []
    sampler: ConnectionSampler | None = None
    watcher: RoomWatcher | None = None
    fleet: Fleet | None = None
    try:
        redis.start()
        database.create()
        helper = deployment_env(database, tmp, redis, "soak-helper")
        migrate(helper)
        room = run_json("autoplay", "40", "25", env=helper)
        code = room["code"]
        sampler = ConnectionSampler(database).__enter__()
        for name in names:
            servers.append(Server(name, deployment_env(database, tmp, redis, name), tmp))
            servers[-1].start()
        # One board open on each process: each starts a driver for the room.
        browsers = [Browser(f"{s.ws}/ws/rooms/{code}/", reconnect=False) for s in servers]
        fleet = Fleet(browsers)
        if not fleet.wait(fleet.all_connected, 20):
            raise RuntimeError("the boards did not connect")
        watcher = RoomWatcher(database, room["pk"])

        def committing() -> bool:
            last = watcher.last()
            return bool(last and last["owner"] and sum(last["committed"].values()) > 0)

        if not fleet.wait(committing, 20):
            raise RuntimeError("the room's consumers never committed within 20 s")
        time.sleep(1.0 if quick else 3.0)
        last = watcher.last()
        assert last is not None
        holder = next((s for s in servers if f":{s.pid}:" in last["owner"]), None)
        if holder is None:
            raise RuntimeError(f"no server of ours holds the lease ({last['owner']})")
        survivor = next(s for s in servers if s is not holder)
        dead_owner, sim_at_kill = last["owner"], last["sim"]
        killed_at = time.monotonic()
        holder.kill9()

        # Meanwhile someone uses the surviving process: its board page, every 200 ms.
        tally, poster = Tally(), Poster(survivor.port)

        def took_over() -> bool:
            status, _ = poster.request("GET", f"/r/{code}/")
            tally.count(status)
            sample = watcher.last()
            return bool(
                sample and sample["owner"] not in ("", dead_owner) and sample["sim"] > sim_at_kill
            )

        if fleet.wait(took_over, 15, step=0.2):
            recovered = next(
                s["t"]
                for s in watcher.samples
                if s["t"] >= killed_at
                and s["owner"] not in ("", dead_owner)
                and s["sim"] > sim_at_kill
            )
            outcome.recover_s = recovered - killed_at
        else:
            outcome.notes.append("the surviving process did not take the room over within 15 s")
        keep_until = time.monotonic() + (2 if quick else 5)
        while time.monotonic() < keep_until:
            took_over()
            time.sleep(0.2)
        watcher.stop()
        first, final = watcher.samples[0], watcher.samples[-1]
        went_back = watcher.went_back("committed") + watcher.went_back("ends")
        outcome.requests, outcome.errors_5xx = tally.requests, tally.errors_5xx
        outcome.gaps += went_back
        outcome.notes.append(
            f"lease holder {holder.name} killed at sim time {sim_at_kill} ms; {survivor.name} "
            f"drove on to {final['sim']} ms; log end offsets {sum(first['ends'].values())} -> "
            f"{sum(final['ends'].values())}, committed {sum(first['committed'].values())} -> "
            f"{sum(final['committed'].values())} over {len(watcher.samples)} samples; committed or "
            f"log end offsets that went back: {went_back}; {tally.describe()} (board page on "
            f"{survivor.name}); survivor's board: {browsers[names.index(survivor.name)].gaps} seq "
            "gaps"
        )
        # The survivor drives on: stopped first, so that the log read back holds still.
        fleet.close()
        for server in servers:
            server.stop()
        apply_check(outcome, read_back(code, "orders", [], helper, tmp))
    finally:
        if fleet is not None:
            fleet.close()
        if watcher is not None:
            watcher.stop()
        if sampler is not None:
            sampler.__exit__()
        for server in servers:
            server.stop()
        redis.stop()
        database.drop()
    outcome.peak_connections = peak_text(sampler, names)
    outcome.met = (
        outcome.errors_5xx == 0
        and outcome.gaps == outcome.duplicates == outcome.lost == 0
        and peaks_ok(sampler, names)
        and outcome.recover_s is not None
        and outcome.recover_s <= RECOVERY_TARGET_S
    )
    return outcome


def redis_restart(tmp: Path, quick: bool) -> Outcome:
    outcome = Outcome("Redis restart, PostgreSQL, 2 processes", timed=True)
    redis, database = Redis(tmp), Postgres(DATABASE)
    names = ["soak-a", "soak-b"]
    servers: list[Server] = []
    sampler: ConnectionSampler | None = None
    fleet: Fleet | None = None
    stop = threading.Event()
    try:
        redis.start()
        database.create()
        helper = deployment_env(database, tmp, redis, "soak-helper")
        migrate(helper)
        room = run_json("room", env=helper)
        code = room["code"]
        sampler = ConnectionSampler(database).__enter__()
        for name in names:
            servers.append(Server(name, deployment_env(database, tmp, redis, name), tmp))
            servers[-1].start()
        browsers = [
            Browser(f"{servers[i % 2].ws}/ws/rooms/{code}/", seq=room["seq"]) for i in range(20)
        ]
        fleet = Fleet(browsers)
        if not fleet.wait(fleet.all_connected, 30):
            raise RuntimeError("the browsers did not connect")
        tally = Tally()

        def producer() -> None:
            posters = [Poster(s.port) for s in servers]
            i = 0
            while not stop.is_set():
                produce(posters[i % 2], code, {"w": 0, "i": i}, tally)
                i += 1
                stop.wait(0.1)

        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        time.sleep(3)
        redis.stop()
        time.sleep(3)
        redis.start()
        back = time.monotonic()
        fleet.wait(lambda: all(b.first_after(back) for b in browsers), 15 if not quick else 8)
        time.sleep(1)
        stop.set()
        thread.join(timeout=35)
        firsts = [b.first_after(back) for b in browsers]
        heard = [t - back for t in firsts if t is not None]
        first_ok = next((t - back for t in sorted(tally.ok_times) if t >= back), None)
        outcome.requests, outcome.errors_5xx = tally.requests, tally.errors_5xx
        if heard and len(heard) == len(browsers) and first_ok is not None:
            outcome.recover_s = max(max(heard), first_ok)
        outcome.notes.append(
            f"producer (REST, 10/s, alternating processes): {tally.describe()}. Redis down 3 s. "
            f"After it came back: first produce answered 200 after "
            + (f"{first_ok:.2f} s" if first_ok is not None else "never")
            + f"; browsers that received an event again: {len(heard)}/{len(browsers)}"
            + (
                f", the first after {min(heard):.2f} s, the last after {max(heard):.2f} s"
                if heard
                else ""
            )
            + f"; seq gaps seen by the browsers {sum(b.gaps for b in browsers)}, reconnects "
            f"{sum(max(0, b.connects - 1) for b in browsers)}, resyncs "
            f"{sum(b.resyncs for b in browsers)}"
        )
        check = read_back(code, "soak", tally.acks, helper, tmp)
        apply_check(outcome, check)
        # Every page must end up with the room's last event, live or replayed: a page that
        # silently stopped receiving is the failure a browser cannot see.
        last_seq = check["events"]
        fleet.wait(lambda: all(b.seq >= last_seq for b in browsers), 5)
        behind = sum(b.seq < last_seq for b in browsers)
        outcome.lost += behind
        outcome.notes.append(
            f"browsers holding the room's last event (seq {last_seq}) at the end: "
            f"{len(browsers) - behind}/{len(browsers)}"
        )
    finally:
        stop.set()
        if fleet is not None:
            fleet.close()
        if sampler is not None:
            sampler.__exit__()
        for server in servers:
            server.stop()
        outcome.notes.append(tracebacks(servers))
        redis.stop()
        database.drop()
    outcome.peak_connections = peak_text(sampler, names)
    outcome.met = (
        outcome.errors_5xx == 0
        and outcome.gaps == outcome.duplicates == outcome.lost == 0
        and peaks_ok(sampler, names)
        and outcome.recover_s is not None
        and outcome.recover_s <= RECOVERY_TARGET_S
    )
    return outcome


PG_DOWN_S = 3.0


def stored_among(database: Postgres, room_pk: int, numbers: list[int]) -> int:
    """How many of the producer's records `{"w": 0, "i": n}` for these n the room stored."""
    import psycopg

    values = [json.dumps({"w": 0, "i": n}, separators=(",", ":")) for n in numbers]
    with psycopg.connect(database.url("soak-check"), connect_timeout=5) as conn:
        return conn.execute(
            "SELECT count(*) FROM messaging_record r "
            "JOIN messaging_partition p ON r.partition_id = p.id "
            "JOIN messaging_topic t ON p.topic_id = t.id "
            "WHERE t.room_id = %s AND r.value = ANY(%s)",
            (room_pk, values),
        ).fetchone()[0]


def postgres_restart(tmp: Path, quick: bool) -> Outcome:
    """PostgreSQL stopped (fast: its sessions are cut) and started 3 s later under a room that
    is being driven, produced to and watched: dead pooled connections must be replaced, and
    nothing half-written or numbered twice."""
    outcome = Outcome("PostgreSQL restart, 2 processes", timed=True)
    redis, cluster = Redis(tmp), PrivateCluster()
    names = ["soak-a", "soak-b"]
    servers: list[Server] = []
    sampler: ConnectionSampler | None = None
    watcher: RoomWatcher | None = None
    fleet: Fleet | None = None
    stop = threading.Event()
    try:
        cluster.init()
        cluster.start()
        database = Postgres(DATABASE, admin=cluster.admin_url)
        redis.start()
        database.create()
        helper = deployment_env(database, tmp, redis, "soak-helper")
        migrate(helper)
        room = run_json("autoplay", "10", "10", env=helper)
        code = room["code"]
        sampler = ConnectionSampler(database).__enter__()
        for name in names:
            servers.append(Server(name, deployment_env(database, tmp, redis, name), tmp))
            servers[-1].start()
        browsers = [Browser(f"{servers[i % 2].ws}/ws/rooms/{code}/") for i in range(20)]
        fleet = Fleet(browsers)
        if not fleet.wait(fleet.all_connected, 30):
            raise RuntimeError("the browsers did not connect")
        watcher = RoomWatcher(database, room["pk"])

        def committing() -> bool:
            last = watcher.last()
            return bool(last and last["owner"] and sum(last["committed"].values()) > 0)

        if not fleet.wait(committing, 20):
            raise RuntimeError("the room's consumers never committed within 20 s")
        tally = Tally()
        # (sent, answered, status, body, process, i) of every produce
        answers: list[tuple[float, float, int, bytes, str, int]] = []

        # Open loop: a request every 100 ms whether or not the ones before were answered (a
        # request waiting on the database must not hide the ones behind it), each on an idle
        # keep-alive connection to its process, or a new one.
        idle: list[list[Poster]] = [[], []]
        in_flight: list[threading.Thread] = []

        def post(i: int) -> None:
            side = i % 2
            with tally.lock:
                poster = idle[side].pop() if idle[side] else Poster(servers[side].port)
            sent = time.monotonic()
            status, body = produce_answer(poster, code, {"w": 0, "i": i}, tally, topic="orders")
            answers.append((sent, time.monotonic(), status, body[:300], servers[side].name, i))
            with tally.lock:
                idle[side].append(poster)

        def producer() -> None:
            i = 0
            while not stop.is_set():
                in_flight.append(threading.Thread(target=post, args=(i,), daemon=True))
                in_flight[-1].start()
                i += 1
                stop.wait(0.1)

        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        time.sleep(2 if quick else 3)
        sim_at_stop = watcher.last()["sim"]  # type: ignore[index]
        down_at = time.monotonic()
        cluster.stop("fast")
        time.sleep(PG_DOWN_S)
        cluster.start(wait=False)
        up_at = cluster.wait_accepting()

        def recovered() -> bool:
            sample = watcher.last()
            return (
                any(t >= up_at for t in tally.ok_times)
                and all(b.first_after(up_at) for b in browsers)
                and bool(sample and sample["t"] >= up_at and sample["sim"] > sim_at_stop)
            )

        fleet.wait(recovered, 8 if quick else 15, step=0.1)
        time.sleep(2 if quick else 5)  # running on after the recovery
        stop.set()
        thread.join(timeout=5)
        for request in in_flight:
            request.join(timeout=max(0.1, 35 - (time.monotonic() - up_at)))
        first_ok = next((t - up_at for t in sorted(tally.ok_times) if t >= up_at), None)
        outcome.recover_s = first_ok
        heard = [t - up_at for t in (b.first_after(up_at) for b in browsers) if t is not None]
        driven = next(
            (s["t"] - up_at for s in watcher.samples if s["t"] >= up_at and s["sim"] > sim_at_stop),
            None,
        )
        # Requests in flight while PostgreSQL was down may fail, with a clear answer: counted
        # apart. Anything else that is not a 200 counts against the bar.
        during = [a for a in answers if a[1] >= down_at and a[0] <= up_at]
        outside = [a for a in answers if not (a[1] >= down_at and a[0] <= up_at)]
        after = sorted(a for a in answers if a[0] >= up_at)
        raw_500 = [a for a in answers if a[2] == 500]
        outcome.requests = tally.requests
        outcome.errors_5xx = sum(a[2] >= 500 for a in outside) + sum(
            a[2] >= 500 and a[2] != 503 for a in during
        )
        statuses = Counter(a[2] for a in during)
        bodies = Counter((a[2], a[3].decode(errors="replace")) for a in during if a[2] != 200)
        outcome.notes.append(
            f"producer (REST into `orders`, 10/s, alternating processes) on a room whose "
            f"autoplay runs (10 records/s, a group of 2 consumers committing): {tally.describe()}. "
            f"PostgreSQL stopped (`pg_ctl stop -m fast`, {cluster.port}, a cluster of the soak's "
            f"own) and started {PG_DOWN_S:.0f} s later; it accepted connections again "
            f"{up_at - down_at:.2f} s after the stop. Produces in flight meanwhile: "
            f"{len(during)}, answered "
            + ", ".join(f"{status or 'no answer'} x{n}" for status, n in sorted(statuses.items()))
            + (
                " ("
                + "; ".join(
                    f"{status}: {text[:160]!r} x{n}" for (status, text), n in bodies.items()
                )
                + ")"
                if bodies
                else ""
            )
            + f"; outside that window {len(outside)}, not 200: "
            f"{sum(a[2] != 200 for a in outside)}. After PostgreSQL accepted again: the first "
            "request answered "
            + (str(after[0][2]) if after else "-")
            + ", the first 200 after "
            + (f"{first_ok:.2f} s" if first_ok is not None else "never")
            + "; the room's driver moved on after "
            + (f"{driven:.2f} s" if driven is not None else "never")
            + f"; browsers that received an event again: {len(heard)}/{len(browsers)}"
            + (f", the last after {max(heard):.2f} s" if heard else "")
            + f"; browser drops {sum(len(b.dropped_at) for b in browsers)}, reconnects "
            f"{sum(max(0, b.connects - 1) for b in browsers)}, handshakes refused with 5xx "
            f"{sum(b.refused_5xx for b in browsers)}, seq gaps {sum(b.gaps for b in browsers)}, "
            f"resyncs {sum(b.resyncs for b in browsers)}"
        )
        if raw_500:
            outcome.notes.append(
                f"{len(raw_500)} produces answered a raw 500 (first on {raw_500[0][4]}, "
                f"{raw_500[0][0] - down_at:+.2f} s from the stop)"
            )
        went_back = watcher.went_back("committed") + watcher.went_back("ends")
        outcome.gaps += went_back
        # Every page must catch up with what the room had committed (live, or replayed on a
        # reconnect): a page that silently stopped receiving is what a user cannot see.
        committed_seq = watcher.last()["seq"]  # type: ignore[index]
        fleet.wait(lambda: all(b.seq >= committed_seq for b in browsers), 10, step=0.1)
        behind = sum(b.seq < committed_seq for b in browsers)
        outcome.lost += behind
        outcome.notes.append(
            f"browsers holding the room's event seq {committed_seq} (committed when the producer "
            f"stopped) within 10 s: {len(browsers) - behind}/{len(browsers)}"
        )
        # Stopped before the read-back, so that the log holds still.
        fleet.close()
        for server in servers:
            server.stop()
        watcher.stop()
        outcome.notes.append(
            f"committed or log end offsets that went back: {went_back} over "
            f"{len(watcher.samples)} samples"
        )
        check = read_back(code, "orders", tally.acks, helper, tmp)
        apply_check(outcome, check)
        refused = [a for a in answers if a[2] != 200]
        outcome.notes.append(
            "(the records stored without an acknowledgement are the autoplay's); "
            f"produces not answered 200 that were stored all the same: "
            f"{stored_among(database, room['pk'], [a[5] for a in refused])}/{len(refused)} "
            "(a session cut at COMMIT: the client cannot know, and a retry stores it twice, as "
            "a Kafka producer without idempotence can)"
        )
        outcome.met = (
            outcome.errors_5xx == 0
            and outcome.gaps == outcome.duplicates == outcome.lost == 0
            and peaks_ok(sampler, names)
            and first_ok is not None
            and first_ok <= RECOVERY_TARGET_S
            and bool(after)
            and after[0][2] == 200
            and len(heard) == len(browsers)
            and driven is not None
        )
    finally:
        stop.set()
        if fleet is not None:
            fleet.close()
        if watcher is not None:
            watcher.stop()
        if sampler is not None:
            sampler.__exit__()
        for server in servers:
            server.stop()
        outcome.notes.append(tracebacks(servers))
        for server in servers:
            log = server.log_tail(10**6)
            if "Traceback" in log:
                # The first 500's traceback if there was one: that is what a user met; and what
                # the server said before each traceback (which part of it failed).
                start = log.find("Internal Server Error")
                excerpt = log[start if start >= 0 else log.find("Traceback") :][:4000]
                lines = log.splitlines()
                said = Counter(
                    before[:200]
                    for before, line in zip(lines, lines[1:], strict=False)
                    if line.startswith("Traceback") and before and not before.startswith(" ")
                )
                print(
                    f"   {server.name}'s log before its tracebacks: {dict(said)}\n"
                    f"   {server.name}'s log from its first error:\n{excerpt}"
                )
            answered_503 = log.count("database unavailable, answered 503")
            if answered_503:
                outcome.notes.append(f"{server.name} logged {answered_503} 503s for the database")
        redis.stop()
        cluster.close()
    outcome.peak_connections = peak_text(sampler, names)
    return outcome


def reconnect_storm(tmp: Path, quick: bool) -> Outcome:
    count = 50 if quick else STORM_BROWSERS
    outcome = Outcome(f"{count}-browser reconnect storm, SQLite, 1 process restarted", timed=True)
    env = deployment_env(None, tmp, None, "")
    migrate(env)
    room = run_json("room", env=env)
    code = room["code"]
    server = Server("soak-a", env, tmp)
    fleet: Fleet | None = None
    try:
        server.start()
        browsers = [Browser(f"{server.ws}/ws/rooms/{code}/", seq=room["seq"]) for _ in range(count)]
        fleet = Fleet(browsers)
        if not fleet.wait(fleet.all_connected, 60):
            raise RuntimeError(
                f"only {sum(b.connected for b in browsers)}/{count} browsers connected"
            )
        attempts_before = sum(b.attempts for b in browsers)
        # Something happens while the server is away: every browser must catch up on it.
        producer = Helper(["produce", code, "while-restarting"], env)
        stopped_at = time.monotonic()
        server.stop()
        stop_s = time.monotonic() - stopped_at
        missed = producer.go()["seq"]
        starting = time.monotonic()
        server.start(wait=False)
        server.wait_ready(30)
        ready = time.monotonic()

        def caught_up() -> bool:
            return all(
                b.connected and b.first_after(stopped_at, seq_above=missed - 1) for b in browsers
            )

        fleet.wait(caught_up, 60)
        done = [b.first_after(stopped_at, seq_above=missed - 1) for b in browsers]
        back = [t for t in done if t is not None]
        handshakes = [max(b.connected_at, default=0.0) for b in browsers if b.connected_at]
        outcome.requests = sum(b.attempts for b in browsers) - attempts_before
        outcome.errors_5xx = sum(b.refused_5xx for b in browsers)
        outcome.gaps = sum(b.gaps for b in browsers)
        outcome.lost = count - len(back)
        if len(back) == count:
            outcome.recover_s = max(back) - ready
        outcome.notes.append(
            f"server stopped (SIGTERM, {stop_s:.1f} s to exit) and started again on its port "
            f"({ready - starting:.1f} s to answer); it answered {ready - stopped_at:.1f} s after "
            "the stop. Browsers back with the missed event "
            f"(replayed on `?since=`): {len(back)}/{count}"
            + (
                f", the first {min(back) - ready:.2f} s and the last {max(back) - ready:.2f} s "
                "after the server answered again"
                if back
                else ""
            )
            + (
                f"; the last browser's handshake succeeded {max(handshakes) - ready:.2f} s after "
                "the server answered (until then the browsers were backing off; after it, the "
                "server replayed)"
                if handshakes
                else ""
            )
            + f"; websocket handshakes tried {outcome.requests} (backoff from 1 s doubling "
            f"to 5 s, full jitter, as room-socket.js), refused with 5xx {outcome.errors_5xx}; "
            f"resyncs {sum(b.resyncs for b in browsers)}"
        )
    finally:
        if fleet is not None:
            fleet.close()
        server.stop()
        outcome.notes.append(tracebacks([server]))
    outcome.peak_connections = "n/a (SQLite)"
    outcome.met = (
        outcome.errors_5xx == 0
        and outcome.gaps == outcome.lost == 0
        and outcome.recover_s is not None
        and outcome.recover_s <= RECOVERY_TARGET_S
    )
    return outcome


SCENARIOS = {
    "sqlite": lambda tmp, quick: writers("SQLite", tmp, quick),
    "postgres": lambda tmp, quick: writers("PostgreSQL", tmp, quick),
    "kill": kill_mid_autoplay,
    "redis": redis_restart,
    "postgres-restart": postgres_restart,
    "storm": reconnect_storm,
}


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError("the scenario ran past its time bound")


def _terminated(signum: int, frame: object) -> None:
    # Through the scenarios' `finally`: our redis-server and PostgreSQL cluster are stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    chosen = [s for s in SCENARIOS if s in (args.scenarios or SCENARIOS)]
    write = (not args.quick and not args.scenarios) if args.write is None else args.write
    mode = "quick" if args.quick else "full"
    about = machine()
    signal.signal(signal.SIGALRM, _timeout)
    signal.signal(signal.SIGTERM, _terminated)
    deadline = time.monotonic() + TOTAL_SECONDS
    load_before = os.getloadavg()[0]
    print(f"LogLab soak ({mode}): {', '.join(chosen)}", flush=True)
    outcomes: list[Outcome] = []
    try:
        with tempfile.TemporaryDirectory(prefix="loglab-soak-") as scratch:
            for name in chosen:
                remaining = int(deadline - time.monotonic())
                if remaining < 30:
                    outcomes.append(Outcome(name, crashed="skipped: the soak's time was up"))
                    continue
                # Each scenario is bounded by what is left of the run, and by SCENARIO_SECONDS.
                signal.alarm(min(SCENARIO_SECONDS, remaining))
                print(f"\n== {name} ...", flush=True)
                tmp = Path(scratch) / name
                tmp.mkdir()
                started = time.monotonic()
                try:
                    outcome = SCENARIOS[name](tmp, args.quick)
                except Exception as error:  # noqa: BLE001 - reported in the table
                    traceback.print_exc()
                    outcome = Outcome(name, crashed=f"{type(error).__name__}: {error}"[:300])
                    outcome.notes.append("crashed: " + outcome.crashed)
                signal.alarm(0)
                outcome.notes.append(f"took {time.monotonic() - started:.0f} s")
                outcomes.append(outcome)
                for note in outcome.notes:
                    print(f"   {note}", flush=True)
    finally:
        signal.alarm(0)
    load = (
        f"Load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on "
        f"{os.cpu_count()} cores: the machine is shared, other work shows up in the timings."
    )
    print("\n" + table(outcomes) + "\n" + load)
    if write:
        write_doc(outcomes, about, mode, load)
        print(f"\nwritten to {DOC.relative_to(ROOT)} ({datetime.now(UTC):%H:%M} UTC)")
    return 1 if any(o.crashed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
