"""Persistence: records/s through the produce service, beside raw sqlite3 inserts.

The worker (`python -m bench.persistence SQLITE_PATH RAW_PATH SECONDS RAW_SECONDS`) runs in a
child process so that Django is set up there, on the scratch database, and nowhere else:
  LogLab: `records_produce` in batches of 20 (autoplay's batch at 200 records/s, 10 steps/s)
          for SECONDS, counting OperationalError ("database is locked" in particular);
  raw:    `executemany` of the same rows (same columns, batch size, one IMMEDIATE transaction
          per batch, WAL, synchronous=NORMAL) into a plain table for RAW_SECONDS.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, Row, percentile, run_json, scratch_env, yes_no

BATCH = 20
SECONDS, QUICK_SECONDS = 60.0, 5.0
# Raw inserts are so fast that a full minute would write gigabytes; their rate is flat anyway.
RAW_SECONDS, QUICK_RAW_SECONDS = 10.0, 2.0
MAX_BATCHES = 1_000_000
WINDOW = 5.0  # seconds: "sustained" is the slowest of these windows too
KEYS = ["alice", "bob", "carol", "dave", "erin", "frank"]
RATE_TARGET = 2000.0


def rows_for(batch: int) -> list[tuple[str, str]]:
    first = batch * BATCH
    return [(KEYS[(first + i) % len(KEYS)], f"bench #{first + i + 1}") for i in range(BATCH)]


def windows(stamps: list[tuple[float, int]], start: float) -> list[float]:
    """Records/s in each full WINDOW-second window, from (time, records so far) stamps."""
    rates, edge, done_at_edge = [], start + WINDOW, 0
    for stamp, done in stamps:
        while stamp >= edge:
            rates.append((done - done_at_edge) / WINDOW)
            done_at_edge, edge = done, edge + WINDOW
    return rates


def loglab(seconds: float) -> dict:
    import django

    django.setup()
    from django.db import OperationalError, connection

    from messaging.services.records import RecordIn, records_produce
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    room = room_create(title="bench persistence")
    topic_create(room=room, name="orders", partitions=3)
    done = errors = locked = 0
    batch_ms: list[float] = []
    stamps: list[tuple[float, int]] = []
    error_text = ""
    start = time.monotonic()
    for batch in range(MAX_BATCHES):
        began = time.monotonic()
        if began - start >= seconds:
            break
        try:
            records_produce(
                room=room,
                topic_name="orders",
                producer="bench",
                records=[RecordIn(key=k, value=v) for k, v in rows_for(batch)],
            )
            done += BATCH
        except OperationalError as error:
            errors += 1
            locked += "database is locked" in str(error)
            error_text = str(error)
        now = time.monotonic()
        batch_ms.append((now - began) * 1000)
        stamps.append((now, done))
    elapsed = time.monotonic() - start
    journal = connection.cursor().execute("PRAGMA journal_mode").fetchone()[0]
    return {
        "records": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "errors": errors,
        "locked": locked,
        "error": error_text,
        "journal": journal,
        "windows": windows(stamps, start),
        "batch_p50_ms": percentile(batch_ms, 50),
        "batch_p99_ms": percentile(batch_ms, 99),
    }


def raw(path: str, seconds: float) -> dict:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # The columns of messaging_record, as a plain table: no foreign key, no unique index.
    db.execute(
        "CREATE TABLE record (id INTEGER PRIMARY KEY AUTOINCREMENT, partition_id INTEGER NOT NULL,"
        ' "offset" INTEGER NOT NULL, "key" VARCHAR(256) NULL, value TEXT NULL,'
        " timestamp_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL,"
        " segment_base INTEGER NOT NULL, delete_horizon_ms INTEGER NULL,"
        " producer VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL)"
    )
    offsets = [0, 0, 0]
    done = 0
    stamps: list[tuple[float, int]] = []
    start = time.monotonic()
    for batch in range(MAX_BATCHES):
        if time.monotonic() - start >= seconds:
            break
        created = datetime.now(UTC).isoformat()
        rows = []
        for key, value in rows_for(batch):
            partition = KEYS.index(key) % 3
            rows.append(
                (
                    partition + 1,
                    offsets[partition],
                    key,
                    value,
                    0,
                    len(key) + len(value) + 8,
                    0,
                    None,
                    "bench",
                    created,
                )
            )
            offsets[partition] += 1
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            'INSERT INTO record (partition_id, "offset", "key", value, timestamp_ms, size_bytes,'
            " segment_base, delete_horizon_ms, producer, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
        done += BATCH
        stamps.append((time.monotonic(), done))
    elapsed = time.monotonic() - start
    db.close()
    return {
        "records": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "windows": windows(stamps, start),
    }


def worker(sqlite_path: str, raw_path: str, seconds: float, raw_seconds: float) -> dict:
    os.environ["SQLITE_PATH"] = sqlite_path
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return {"loglab": loglab(seconds), "raw": raw(raw_path, raw_seconds)}


def run(*, quick: bool, tmp: Path) -> Result:
    seconds = QUICK_SECONDS if quick else SECONDS
    raw_seconds = QUICK_RAW_SECONDS if quick else RAW_SECONDS
    env = scratch_env(tmp, "persistence.sqlite3")
    out = run_json(
        "bench.persistence",
        env["SQLITE_PATH"],
        str(tmp / "raw.sqlite3"),
        str(seconds),
        str(raw_seconds),
        env=env,
        timeout=seconds + raw_seconds + 120,
    )
    lab, base = out["loglab"], out["raw"]
    ratio = lab["rate"] / base["rate"] if base["rate"] else 0.0
    slowest = min(lab["windows"], default=lab["rate"])
    rows = [
        Row(
            "persistence",
            f"{lab['rate']:,.0f} rec/s ({ratio:.0%} of raw)",
            f"raw sqlite3 {base['rate']:,.0f} rec/s",
            f">={RATE_TARGET:,.0f}/s, >=1/3 raw",
            yes_no(lab["rate"] >= RATE_TARGET and slowest >= RATE_TARGET and ratio >= 1 / 3),
        ),
        Row(
            "persistence locked",
            f"{lab['locked']} (of {lab['errors']} OperationalError)",
            "-",
            "0",
            yes_no(lab["locked"] == 0 and lab["errors"] == 0),
        ),
    ]
    notes = [
        f"records_produce, batches of {BATCH}, one process, for {lab['seconds']:.0f} s: "
        f"{lab['records']:,} records, {lab['rate']:,.0f} rec/s overall, slowest {WINDOW:g}-s "
        f"window {slowest:,.0f} rec/s (windows: "
        + ", ".join(f"{w:,.0f}" for w in lab["windows"])
        + f"); per batch p50 {lab['batch_p50_ms']:.1f} ms, p99 {lab['batch_p99_ms']:.1f} ms; "
        f"journal_mode={lab['journal']}."
        + (f" Last error: {lab['error']}" if lab["error"] else ""),
        f"raw sqlite3 executemany, same rows and batch, for {base['seconds']:.0f} s: "
        f"{base['records']:,} records, {base['rate']:,.0f} rec/s.",
    ]
    return Result("persistence", rows, notes)


if __name__ == "__main__":
    result = worker(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    print(json.dumps(result))
