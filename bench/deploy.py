"""A multi-process LogLab deployment on loopback, for `make soak` and the scale benchmarks.

Everything here is the bench's own: a redis-server on a free port (never the machine's shared
Redis), a PostgreSQL database created for the run and dropped after it, and uvicorn processes
serving `config.asgi:application` on the same database and Redis, each of which can be killed
(-9), stopped and started again on its port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.support.server import ROOT, free_port, manage, server_env, uvicorn_command

POSTGRES_ADMIN_URL = os.getenv("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Clients (writers, swarms) and the servers' limits: high enough that what is measured is the
# server, not a rate limit meant for people (the soak's table says so in its notes).
UNLIMITED_RATES = {
    "LOGLAB_API_RATE_PER_SECOND": "100000",
    "LOGLAB_SQS_API_RATE_PER_SECOND": "100000",
    "LOGLAB_STUDENT_PRODUCE_PER_SECOND": "100000",
    "LOGLAB_STUDENT_JOINS_PER_SECOND": "100000",
    "LOGLAB_STUDENT_ACTIONS_PER_SECOND": "100000",
}


def base_env(**overrides: str) -> dict[str, str]:
    """A server environment with nothing inherited that picks a database or a Redis."""
    env = server_env(DEBUG="False", LOG_LEVEL="WARNING")
    for variable in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "SQLITE_TEST_PATH"):
        env.pop(variable, None)
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    try:
        manage("migrate", "--noinput", env=env)
    except subprocess.CalledProcessError as error:
        output = (error.stderr or b"").decode(errors="replace")[-3000:]
        raise RuntimeError(f"manage.py migrate failed:\n{output}") from None


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Redis:
    """Our own redis-server: no persistence, so a restart loses what it held, as a crashed
    cache does (the channel layer's groups included)."""

    def __init__(self, tmp: Path) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"our redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class Postgres:
    """A database of our own on the machine's PostgreSQL (or on `admin`'s cluster), dropped at
    the end."""

    def __init__(self, name: str, admin: str = POSTGRES_ADMIN_URL) -> None:
        self.name = name
        self.admin = admin

    def url(self, application: str) -> str:
        base = self.admin.rsplit("/", 1)[0]
        return f"{base}/{self.name}?application_name={application}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self.drop()
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class ConnectionSampler:
    """pg_stat_activity of one database every 100 ms, counted by application_name (each
    server process connects under its own name): the peak per name over the run."""

    def __init__(self, database: Postgres, interval: float = 0.1) -> None:
        self.database, self.interval = database, interval
        self.peak: Counter[str] = Counter()
        self.peak_total = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                self._sample(psycopg)
            except psycopg.Error:  # PostgreSQL restarting (the soak does that): connect again
                self._stop.wait(0.2)

    def _sample(self, psycopg) -> None:  # noqa: ANN001 - the module, imported lazily
        with psycopg.connect(self.database.admin, autocommit=True, connect_timeout=2) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = %s GROUP BY application_name",
                    (self.database.name,),
                ).fetchall()
                total = 0
                for name, count in rows:
                    self.peak[name] = max(self.peak[name], count)
                    total += count
                self.peak_total = max(self.peak_total, total)
                self.samples += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak_of(self, prefix: str) -> int:
        """The highest peak among the names starting with `prefix` (one server process each)."""
        return max((n for name, n in self.peak.items() if name.startswith(prefix)), default=0)


class Server:
    """One uvicorn process serving LogLab on a fixed port: start, kill -9, start again."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path, port: int | None = None):
        self.name, self.env = name, env
        self.port = port or free_port()
        self.log_path = tmp / f"server-{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait: bool = True, timeout: float = 30) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            uvicorn_command(self.port),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/", timeout=2):
                    return
            except OSError:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"server {self.name} exited:\n{self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server {self.name} did not start:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, grace: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=grace)

    def log_tail(self, chars: int = 3000) -> str:
        with suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def errors_logged(self) -> int:
        """Tracebacks the server wrote (a 500, a failed broadcast or step, ...)."""
        with suppress(OSError):
            return self.log_path.read_text(errors="replace").count("Traceback")
        return 0

    def errors_summary(self, most: int = 3) -> str:
        """The exceptions the server's tracebacks ended with, most frequent first."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        ends: Counter[str] = Counter()
        inside = False
        for line in lines:
            if line.startswith("Traceback"):
                inside = True
            elif inside and line and not line.startswith((" ", "During handling", "The above")):
                ends[line[:160]] += 1
                inside = False
        return "; ".join(f"{n}x {text}" for text, n in ends.most_common(most))


@contextmanager
def servers(specs: list[tuple[str, dict[str, str]]], tmp: Path) -> Iterator[list[Server]]:
    """Start one server per (name, env), stop them all at the end, whatever happens."""
    started: list[Server] = []
    try:
        for name, env in specs:
            server = Server(name, env, tmp)
            started.append(server)
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()
