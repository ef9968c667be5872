"""How many PostgreSQL connections one server process holds under concurrent REST writers.

    .venv/bin/python -m scripts.pg_connections [--writers 8] [--records 300] [--pool-size N]

Serves config.asgi with uvicorn (as `make run` does) on a database of its own
(DATABASE_URL's server, database `loglab_ops` unless --database says otherwise, recreated),
makes a room through POST /api/rooms, and lets --writers threads produce --records records
each through the Kafka REST API (v3, one record a request) while a sampler counts the
database's rows in pg_stat_activity every 10 ms. Prints the peak, the count a second after the
writers stop, the answers by status (5xx counted apart) and the throughput. The numbers in
docs/deployment.md come from here.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import psycopg
from websockets.sync.client import connect

from tests.support.server import serve, server_env

ROOT = Path(__file__).resolve().parents[1]


def recreate(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="loglab_ops")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--pool-size", type=int, default=10, help="LOGLAB_DB_POOL_SIZE")
    parser.add_argument("--settings", default="config.settings", help="DJANGO_SETTINGS_MODULE")
    parser.add_argument(
        "--watch", action="store_true", help="a board's websocket open and the clock running"
    )
    args = parser.parse_args()
    print(json.dumps(measure(**{k: v for k, v in vars(args).items()})))


def measure(
    *,
    server: str,
    database: str,
    writers: int,
    records: int,
    pool_size: int,
    settings: str = "config.settings",
    watch: bool = False,
) -> dict:
    """Serve, write, count: the run's numbers (see the module's docstring)."""
    recreate(f"{server}/postgres", database)
    database_url = f"{server}/{database}"
    env = server_env(
        DATABASE_URL=database_url,
        LOGLAB_DB_POOL_SIZE=str(pool_size),
        DJANGO_SETTINGS_MODULE=settings,
        # The API's per-client rate limit would otherwise be what is measured.
        LOGLAB_API_RATE_PER_SECOND="1000000",
    )
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )

    peak = 0
    sampling = True

    def count(conn: psycopg.Connection) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        return conn.execute(query, (database,)).fetchone()[0]

    def sample() -> None:
        nonlocal peak
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            while sampling:
                peak = max(peak, count(conn))
                time.sleep(0.01)

    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    with serve(env) as base, contextlib.ExitStack() as sockets:
        status, room = call(base + "/api/rooms", {"title": "pg connections"})
        assert status == 201, status
        produce_url = f"{room['rest_base']}/v3/clusters/{room['code']}/topics/orders/records"
        if watch:  # the room's driver then steps it 10 times a second, in threads too
            sockets.enter_context(
                connect(base.replace("http", "ws", 1) + f"/ws/rooms/{room['code']}/", origin=base)
            )
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            opener.open(room["board_url"]).read()
            token = next(c.value for c in jar if c.name == "csrftoken")
            play = urllib.request.Request(
                f"{base}/r/{room['code']}/clock/",
                data=f"action=play&csrfmiddlewaretoken={token}".encode(),
                headers={"Referer": base, "Origin": base},
            )
            opener.open(play).read()

        def write(writer: int) -> None:
            for i in range(records):
                body = {
                    "key": {"type": "STRING", "data": f"w{writer}-{i % 10}"},
                    "value": {"type": "JSON", "data": {"writer": writer, "i": i}},
                }
                status, _ = call(produce_url, body)
                with lock:
                    statuses[status] += 1

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            after = count(conn)
        sampling = False
        sampler.join()

    total = sum(statuses.values())
    return {
        "settings": settings,
        "pool_size": pool_size,
        "watched": watch,
        "writers": writers,
        "requests": total,
        "statuses": dict(sorted(statuses.items())),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "peak_connections": peak,
        "connections_1s_after": after,
        "seconds": round(elapsed, 1),
        "requests_per_second": round(total / elapsed, 1),
    }


if __name__ == "__main__":
    main()
