"""A PostgreSQL cluster of the soak's own, to restart: never the machine's shared one on 5432.

`initdb` and `pg_ctl` refuse to run as root, so they run as the `postgres` user, on a data
directory in a temp dir that user owns, listening on a free loopback port (socket in that temp
dir), trust auth. `close()` stops it (immediate, then SIGKILL to the postmaster) and removes the
directory, with bounded waits, whatever happened before.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from tests.support.server import free_port

RUN_AS = "postgres"


def _bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        raise RuntimeError(f"{tool} not found in /usr/lib/postgresql/*/bin/")
    return found[-1]


class PrivateCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="loglab-pgsoak-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        try:
            shutil.chown(self.dir, RUN_AS, RUN_AS)
        except (LookupError, OSError):
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"cannot hand {self.dir} to the {RUN_AS} user") from None

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", RUN_AS, "--", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
        )

    def _pg_ctl(self, *args: str, timeout: float = 40) -> subprocess.CompletedProcess:
        return self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), *args, timeout=timeout)

    def init(self) -> None:
        done = self._as_postgres(
            _bin("initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-instructions",
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")

    def start(self, *, wait: bool = True) -> None:
        """`wait=False` returns once the postmaster is launched; `accepting()` says when it
        takes connections (the soak times from that moment)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        done = self._pg_ctl(
            "-l", str(self.log), "-o", options, "start", "-w" if wait else "-W", "-t", "30"
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr[-1000:]}\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        done = self._pg_ctl("stop", "-m", mode, "-w", "-t", "30")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {done.stderr[-1000:]}")

    def accepting(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.admin_url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def wait_accepting(self, timeout: float = 30, step: float = 0.02) -> float:
        """The monotonic time of the first connection that worked."""
        deadline = time.monotonic() + timeout
        while not self.accepting():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private PostgreSQL did not come back\n{self.log_tail()}")
            time.sleep(step)
        return time.monotonic()

    def log_tail(self, chars: int = 2000) -> str:
        with suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(Exception):
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "15", timeout=25)
        with suppress(OSError, ValueError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)
