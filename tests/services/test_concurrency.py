"""8 concurrent writers x 250 records into a 3-partition topic: no gap, no duplicate, no error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.server import ROOT, server_env

WRITERS, EACH = 8, 250


def run_storm(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.produce_storm", str(WRITERS), str(EACH)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_log_is_true(outcome: dict) -> None:
    assert outcome["written"] == WRITERS * EACH
    counts = [p["count"] for p in outcome["partitions"].values()]
    assert sum(counts) == 2000
    assert len(counts) == 3
    for partition in outcome["partitions"].values():
        assert partition["offsets_are_0_to_n"], partition
        assert partition["log_end_offset"] == partition["count"]
    # one topic.created event, then one records.produced event per produce call
    assert outcome["events"] == 1 + WRITERS * EACH
    assert outcome["events_gapless"]


def test_it_assigns_gapless_offsets_under_concurrent_writers_on_sqlite(tmp_path):
    env = server_env(SQLITE_PATH=str(tmp_path / "storm.sqlite3"))
    env.pop("DATABASE_URL", None)
    outcome = run_storm(env)
    assert outcome["vendor"] == "sqlite"
    assert_log_is_true(outcome)


@pytest.mark.postgres
def test_it_assigns_gapless_offsets_under_concurrent_writers_on_postgres(postgres_database):
    outcome = run_storm(server_env(DATABASE_URL=postgres_database))
    assert outcome["vendor"] == "postgresql"
    assert_log_is_true(outcome)
