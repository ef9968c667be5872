"""Kafka clients through the listener: produce, fetch, and the board's frame rate meanwhile.

`manage.py serve` (web and Kafka listener in one process, as `make run` serves) on a scratch
SQLite database; a room from `POST /api/rooms`, topic `bench` (3 partitions, REST Proxy v3).
  produce: one confluent-kafka producer (`batch.num.messages=500`, `linger.ms=10`, acks=all,
           in a child process) sends N keyed records; the figure is records *stored*, read
           from the database (the partitions' log end offsets, which the same transaction as
           the rows moves) every 50 ms, over the wall time from the first send to the last
           record stored: not acks.
  board:   Chromium (Playwright) has `/r/<code>/` open the whole time; requestAnimationFrame
           timestamps are recorded from the first send to the last record stored (the frame
           statistics are bench/browser.py's).
  fetch:   one confluent-kafka consumer (assign mode, every partition from offset 0, a child
           process) reads the N records back; from its first poll to its N-th record.
Baselines in the same run, on the same rows: sqlite3 `executemany` of the rows LogLab stored
(copied from its database) into a table of the same DDL and indexes, 500 rows per IMMEDIATE
transaction, WAL, synchronous=NORMAL; and sqlite3 reading them back as a Fetch does (per
partition, by offset, LOGLAB_KAFKA_FETCH_RECORDS rows a query). about:blank for the fps.

`python -m bench.kafka_wire profile` (SQLITE_PATH: a migrated scratch database) times the
pieces in this process with cProfile, to say where a Produce and a Fetch spend their time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CHROMIUM, CHROMIUM_ARGS, Result, Row, run_json, yes_no

TOPIC = "bench"
PARTITIONS = 3
RECORDS, QUICK_RECORDS = 300_000, 30_000
BATCH = 500
LINGER_MS = 10
PRODUCE_TARGET = 50_000.0
FETCH_TARGET = 100_000.0
FPS_TARGET = 55.0
WARMUP, QUICK_WARMUP = 3.0, 1.0
BLANK_SECONDS = 5.0
VIEWPORT = {"width": 1280, "height": 800}
# Past it the produce run is cut short and judged on what was stored by then.
PRODUCE_TIMEOUT = 300.0

# Record frames from now until stopped (the produce run's length is not known in advance).
FRAMES_START = """
() => {
  const bench = (window.__bench = { frames: [], longtasks: [], on: true, observer: null });
  try {
    bench.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) bench.longtasks.push(entry.duration);
    });
    bench.observer.observe({ type: "longtask" });
  } catch (error) { /* no longtask support */ }
  const tick = (now) => {
    if (!bench.on) return;
    bench.frames.push(now);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""
FRAMES_STOP = """
() => {
  const bench = window.__bench;
  bench.on = false;
  if (bench.observer) {
    for (const entry of bench.observer.takeRecords()) bench.longtasks.push(entry.duration);
    bench.observer.disconnect();
  }
  return { frames: bench.frames, longtasks: bench.longtasks, observed: bench.observer !== null };
}
"""


def record(i: int) -> tuple[bytes, bytes]:
    """The i-th record: a key among 1000 (the default partitioner spreads them) and a value of
    about 100 bytes, as an order event might be."""
    key = f"customer-{i % 1000:04d}".encode()
    value = (
        f'{{"order":{i},"customer":{i % 1000},"amount":{(i * 7919) % 100000 / 100:.2f},'
        f'"note":"{"x" * 40}"}}'
    ).encode()
    return key, value


# --- the clients (child processes) ---------------------------------------------------------------


def _client_config(bootstrap: str, username: str, password: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": username,
        "sasl.password": password,
    }


def producer_main(bootstrap: str, username: str, password: str, count: int) -> dict:
    from confluent_kafka import Producer

    producer = Producer(
        {
            **_client_config(bootstrap, username, password),
            "batch.num.messages": BATCH,
            "linger.ms": LINGER_MS,
            "acks": "all",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    producer.list_topics(TOPIC, timeout=30)
    failed: list[str] = []

    def delivered(error, message) -> None:
        if error is not None and len(failed) < 5:
            failed.append(str(error))

    print("ready", flush=True)
    started = time.monotonic()
    for i in range(count):
        key, value = record(i)
        while True:
            try:
                producer.produce(TOPIC, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.005)
        if not i % 1000:
            producer.poll(0)
    left = producer.flush(PRODUCE_TIMEOUT)
    return {"seconds": time.monotonic() - started, "unflushed": left, "failed": failed}


def consumer_main(bootstrap: str, username: str, password: str, count: int) -> dict:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            **_client_config(bootstrap, username, password),
            "group.id": "bench-reader",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got = errors = 0
    first_error = ""
    started = time.monotonic()
    deadline = started + 120
    while got < count and time.monotonic() < deadline:
        for message in consumer.consume(10_000, 1.0):
            if message.error():
                errors += 1
                first_error = first_error or str(message.error())
            else:
                got += 1
    seconds = time.monotonic() - started
    consumer.close()
    return {"records": got, "seconds": seconds, "errors": errors, "error": first_error}


# --- what the database holds ------------------------------------------------------------------


def stored(db: sqlite3.Connection, code: str) -> int:
    row = db.execute(
        "SELECT COALESCE(SUM(p.log_end_offset), 0) FROM messaging_partition p"
        " JOIN messaging_topic t ON t.id = p.topic_id JOIN messaging_room r ON r.id = t.room_id"
        " WHERE r.code = ? AND t.name = ?",
        (code, TOPIC),
    ).fetchone()
    return int(row[0])


def raw_baselines(source: Path, target: Path, code: str) -> dict:
    """executemany of the rows LogLab stored into the same table shape, then reading them
    back as a Fetch does; both in records/s."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    ddl = [
        sql
        for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'messaging_record' AND sql IS NOT NULL"
            " ORDER BY type DESC"  # the table, then its indexes
        )
    ]
    columns = [row[1] for row in src.execute("PRAGMA table_info(messaging_record)")]
    partitions = [
        pk
        for (pk,) in src.execute(
            "SELECT p.id FROM messaging_partition p JOIN messaging_topic t ON t.id = p.topic_id"
            " JOIN messaging_room r ON r.id = t.room_id WHERE r.code = ? AND t.name = ?"
            " ORDER BY p.id",
            (code, TOPIC),
        )
    ]
    marks = ",".join("?" * len(partitions))
    rows = src.execute(
        f"SELECT {', '.join(columns)} FROM messaging_record WHERE partition_id IN ({marks})"
        " ORDER BY id",
        partitions,
    ).fetchall()
    src.close()

    db = sqlite3.connect(target, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for sql in ddl:
        db.execute(sql)
    insert = (
        f"INSERT INTO messaging_record ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})"
    )
    started = time.monotonic()
    for at in range(0, len(rows), BATCH):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows[at : at + BATCH])
        db.execute("COMMIT")
    insert_seconds = time.monotonic() - started

    page = int(os.getenv("LOGLAB_KAFKA_FETCH_RECORDS", "2000"))
    read = 0
    started = time.monotonic()
    for partition in partitions:
        offset = 0
        while True:
            got = db.execute(
                'SELECT "offset", create_time_ms, timestamp_ms, "key", value, key_bytes,'
                " value_bytes, headers, size_bytes FROM messaging_record"
                ' WHERE partition_id = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (partition, offset, page),
            ).fetchall()
            if not got:
                break
            read += len(got)
            offset = got[-1][0] + 1
    read_seconds = time.monotonic() - started
    db.close()
    return {
        "rows": len(rows),
        "insert_rate": len(rows) / insert_seconds if insert_seconds else 0.0,
        "read_rate": read / read_seconds if read_seconds else 0.0,
    }


# --- the run ---------------------------------------------------------------------------------


def _child(mode: str, room, count: int) -> subprocess.Popen:
    from tests.support.kafka_server import python_env

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.kafka_wire",
            mode,
            room.bootstrap,
            room.username,
            room.password,
            str(count),
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _child_result(process: subprocess.Popen, timeout: float) -> dict:
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"the client failed ({process.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def windows(stamps: list[tuple[float, int]], width: float = 1.0) -> list[float]:
    """Records stored per second in each whole `width`-second window of (time, stored)."""
    if not stamps:
        return []
    rates, (edge_at, edge_n) = [], stamps[0]
    for at, n in stamps:
        if at - edge_at >= width:
            rates.append((n - edge_n) / (at - edge_at))
            edge_at, edge_n = at, n
    return rates


def produce_run(page, room, db_path: Path, count: int) -> dict:
    """The producer in a child, the board's frames recorded meanwhile, the log polled."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=20)
    before = stored(db, room.code)
    process = _child("produce", room, count)
    assert process.stdout is not None
    ready = process.stdout.readline().strip()
    if ready != "ready":
        process.kill()
        raise RuntimeError(f"the producer did not start: {ready!r} {process.stderr.read()[-2000:]}")
    page.evaluate(FRAMES_START)
    started = time.monotonic()
    stamps: list[tuple[float, int]] = [(started, 0)]
    while True:
        n = stored(db, room.code) - before
        now = time.monotonic()
        stamps.append((now, n))
        if n >= count or now - started > PRODUCE_TIMEOUT:
            break
        time.sleep(0.05)
    frames = page.evaluate(FRAMES_STOP)
    client = _child_result(process, timeout=PRODUCE_TIMEOUT)
    db.close()
    done_at, done = stamps[-1]
    return {
        "records": done,
        "seconds": done_at - started,
        "rate": done / (done_at - started),
        "windows": windows(stamps),
        "client": client,
        "frames": frames,
    }


def board_open(browser, base: str, code: str, warmup: float):
    from bench.browser import Frames  # noqa: F401  (the statistics, used by the caller)

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    counts = {"events": 0, "records": 0, "counting": True}
    errors: list[str] = []

    def frame(payload) -> None:
        try:
            event = json.loads(payload)
        except (TypeError, ValueError):
            return
        if event.get("type") == "records.produced" and counts["counting"]:
            body = event.get("payload") or {}
            counts["events"] += 1
            counts["records"] += len(body.get("records") or []) + int(body.get("more", 0))

    page.on("websocket", lambda ws: ws.on("framereceived", frame))
    page.on("pageerror", lambda error: errors.append(str(error)[:200]))
    page.goto(f"{base}/r/{code}/", wait_until="load", timeout=30_000)
    page.wait_for_selector("#live-status[data-state=live]", timeout=15_000)
    page.wait_for_timeout(warmup * 1000)
    return context, page, counts, errors


def blank_fps(browser, seconds: float):
    from bench.browser import measure

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto("about:blank")
        return measure(page, seconds)
    finally:
        context.close()


def run(*, quick: bool, tmp: Path) -> Result:
    from playwright.sync_api import sync_playwright

    from bench.browser import Frames
    from tests.support.kafka_server import kafka_serve, room_create

    count = QUICK_RECORDS if quick else RECORDS
    warmup = QUICK_WARMUP if quick else WARMUP
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"no Chromium at {CHROMIUM} (make chromium, or set CHROMIUM)")
    serve_env = {
        "DEBUG": "False",
        "LOG_LEVEL": "WARNING",
        # The bench stores more than a classroom room may (250,000 by default).
        "LOGLAB_KAFKA_MAX_ROOM_RECORDS": str(max(1_000_000, count * 3)),
    }
    with kafka_serve(tmp, **serve_env) as server, sync_playwright() as playwright:
        room = room_create(server, title="bench kafka")
        room.rest_topic_create(TOPIC, PARTITIONS)
        db_path = tmp / "kafka-clients.sqlite3"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            version = browser.version
            idle = blank_fps(browser, BLANK_SECONDS)
            context, page, counts, page_errors = board_open(browser, server.base, room.code, warmup)
            try:
                produced = produce_run(page, room, db_path, count)
                counts["counting"] = False
            finally:
                context.close()
        finally:
            browser.close()
        fetched = _child_result(_child("consume", room, count), timeout=180)
        server_log = server.log()
    base = raw_baselines(db_path, tmp / "raw.sqlite3", room.code)
    board = Frames(
        produced["frames"]["frames"],
        produced["frames"]["longtasks"],
        produced["frames"]["observed"],
    )
    fetch_rate = fetched["records"] / fetched["seconds"] if fetched["seconds"] else 0.0
    complete = produced["records"] >= count
    rows = [
        Row(
            "kafka produce (stored)",
            f"{produced['rate']:,.0f} rec/s ({produced['rate'] / base['insert_rate']:.0%} of raw)",
            f"raw sqlite3 executemany {base['insert_rate']:,.0f} rec/s",
            f">={PRODUCE_TARGET:,.0f}/s",
            yes_no(complete and produced["rate"] >= PRODUCE_TARGET),
        ),
        Row(
            "kafka fetch",
            f"{fetch_rate:,.0f} rec/s ({fetch_rate / base['read_rate']:.0%} of raw)",
            f"raw sqlite3 SELECT {base['read_rate']:,.0f} rec/s",
            f">={FETCH_TARGET:,.0f}/s",
            yes_no(fetched["records"] >= count and fetch_rate >= FETCH_TARGET),
        ),
        Row(
            "kafka board fps p5",
            f"{board.p5_fps:.1f} fps (mean {board.mean_fps:.1f}, worst second "
            f"{board.worst_second_fps:.0f})",
            f"about:blank {idle.p5_fps:.1f} fps (mean {idle.mean_fps:.1f})",
            f">={FPS_TARGET:.0f}",
            yes_no(board.p5_fps >= FPS_TARGET),
        ),
    ]
    win = produced["windows"]
    client = produced["client"]
    tracebacks = server_log.count("Traceback")
    notes = [
        f"confluent-kafka (librdkafka) producer, batch.num.messages={BATCH}, "
        f"linger.ms={LINGER_MS}, acks=all, {PARTITIONS} partitions, keyed records of ~100 bytes: "
        f"{produced['records']:,} of {count:,} records stored in {produced['seconds']:.1f} s "
        f"(the producer's own send+flush: {client['seconds']:.1f} s"
        + (f", {client['unflushed']} unflushed" if client["unflushed"] else "")
        + (f", delivery errors: {client['failed']}" if client["failed"] else "")
        + "); stored per 1-s window: "
        + (
            f"min {min(win):,.0f}, median {sorted(win)[len(win) // 2]:,.0f}, max {max(win):,.0f}"
            if win
            else "(shorter than a second)"
        )
        + ".",
        f"confluent-kafka consumer, assign mode, {PARTITIONS} partitions from offset 0: "
        f"{fetched['records']:,} records in {fetched['seconds']:.1f} s"
        + (f"; {fetched['errors']} errors ({fetched['error']})" if fetched["errors"] else "")
        + ".",
        f"Raw baselines on the same {base['rows']:,} rows (copied from LogLab's table into one "
        f"of the same DDL and indexes): executemany {BATCH} rows per IMMEDIATE transaction, "
        f"WAL, synchronous=NORMAL: {base['insert_rate']:,.0f} rec/s; read back per partition "
        f"by offset in pages of LOGLAB_KAFKA_FETCH_RECORDS: {base['read_rate']:,.0f} rec/s.",
        f"Board (Chromium {version}, headless, {VIEWPORT['width']}x{VIEWPORT['height']}) on "
        f"/r/<code>/ during the produce run: {len(board.frames)} frames, longest "
        f"{board.longest_frame_ms:.0f} ms, long tasks: {board.task_text()}; it received "
        f"{counts['events']:,} records.produced events naming {counts['records']:,} records; "
        f"{len(page_errors)} page errors"
        + (f" (first: {page_errors[0]})" if page_errors else "")
        + ".",
        f"The server logged {tracebacks} tracebacks.",
    ]
    if not complete:
        notes.append(
            f"The produce run was cut at {PRODUCE_TIMEOUT:.0f} s: only "
            f"{produced['records']:,} records were stored."
        )
    return Result("kafka", rows, notes)


# --- where the time goes: `python -m bench.kafka_wire profile` -------------------------------


def profile_main(requests: int) -> dict:
    """In this process, on the database SQLITE_PATH names: a Produce request of 3 x 500
    records (as the bench's producer sends) through each stage, and Fetches of what it
    stored; seconds per stage, and cProfile's top functions of the whole produce path."""
    import cProfile
    import io
    import pstats

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from kafka.protocol.producer import ProduceRequest
    from kafka.record.default_records import DefaultRecordBatchBuilder

    from messaging.api.kafka_wire import handlers
    from messaging.api.kafka_wire import records as wire_records
    from messaging.api.kafka_wire.protocol import SUPPORTED, make, response_encode
    from messaging.models import Partition
    from messaging.services import client_records
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    room = room_create(title="bench profile")
    topic_create(room=room, name=TOPIC, partitions=PARTITIONS)

    def batch(first: int) -> bytes:
        builder = DefaultRecordBatchBuilder(
            magic=2, compression_type=0, is_transactional=False, producer_id=-1,
            producer_epoch=-1, base_sequence=-1, batch_size=10_000_000,
        )  # fmt: skip
        for i in range(first, first + BATCH):
            key, value = record(i)
            builder.append(i - first, timestamp=int(time.time() * 1000), key=key, value=value,
                           headers=[])  # fmt: skip
        return bytes(builder.build())

    def request(n: int) -> bytes:
        body = make(ProduceRequest, {
            "transactional_id": None, "acks": -1, "timeout_ms": 30_000,
            "topic_data": [{"name": TOPIC, "partition_data": [
                {"index": p, "records": batch((n * PARTITIONS + p) * BATCH)}
                for p in range(PARTITIONS)]}],
        })  # fmt: skip
        return bytes(body.encode(version=7))

    frames = [request(n) for n in range(requests)]
    api = SUPPORTED[0]
    times: dict[str, float] = {}

    def timed(name: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - started
        return out

    # The first half of the requests is timed stage by stage; the second half runs under
    # cProfile (which slows Python code several times over, so its seconds are not the figures).
    profiler = cProfile.Profile()
    for n, frame in enumerate(frames):
        if n == len(frames) // 2:
            timing, times = times, {}
            profiler.enable()
        decoded = timed("ProduceRequest.decode (kafka-python)", api.request.decode, frame, 7)
        writes = []
        for topic_data in decoded.topic_data:
            for part in topic_data.partition_data:
                batches = timed("records decode (_batches)", handlers._batches, part.records, 7)
                writes.append((topic_data.name, part.index, batches))
        timed(
            "client_produce (service: lock, rows, bulk_create, event)",
            lambda w: client_records.client_produce(room=room, writes=w, producer="bench"),
            writes,
        )
    profiler.disable()
    times = timing
    stored_records = len(frames) // 2 * PARTITIONS * BATCH

    fetch = SUPPORTED[1]
    epoch_ms = int(room.created_at.timestamp() * 1000)
    from messaging import selectors

    fetched = 0
    for partition in Partition.objects.filter(topic__room=room).order_by("index"):
        offset = 0
        while offset < partition.log_end_offset:
            read = timed(
                "fetch: kafka_records_read (SQL select)",
                lambda p, o: selectors.kafka_records_read(
                    partition=p, offset=o, max_bytes=1_048_576, epoch_ms=epoch_ms
                ),
                partition,
                offset,
            )
            raw = timed("fetch: batch_encode", wire_records.batch_encode, read.records)
            body = {
                "throttle_time_ms": 0, "error_code": 0, "session_id": 0,
                "responses": [{"topic": TOPIC, "partitions": [{
                    "partition_index": partition.index, "error_code": 0,
                    "high_watermark": read.high_watermark, "last_stable_offset": -1,
                    "log_start_offset": read.log_start_offset, "aborted_transactions": None,
                    "preferred_read_replica": -1, "records": raw}]}],
            }  # fmt: skip
            timed("fetch: response_encode (kafka-python)", response_encode, fetch, 11, 1, body)
            fetched += len(read.records)
            offset = read.records[-1][0] + 1

    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(45)
    return {
        "produced": stored_records,
        "fetched": fetched,
        "stages": {
            name: {
                "seconds": seconds,
                "us_per_record": seconds
                / (fetched if name.startswith("fetch") else stored_records)
                * 1e6,
            }
            for name, seconds in times.items()
        },
        "profile": text.getvalue(),
    }


def profile_run(tmp: Path, requests: int = 40) -> dict:
    from bench.common import scratch_env

    env = scratch_env(tmp, "profile.sqlite3")
    return run_json("bench.kafka_wire", "profile", str(requests), env=env, timeout=600)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "profile":
        print(json.dumps(profile_main(int(sys.argv[2]))))
    else:
        main = {"produce": producer_main, "consume": consumer_main}[mode]
        print(json.dumps(main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
