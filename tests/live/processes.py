"""Real processes for the live tests that must watch, kill or restart them: uvicorn servers
whose log the test reads (and which it may kill -9), and a Redis of the test's own.

tests/support/server.py's serve() hides its process and deletes its log; these tests need both.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.support.server import (
    ROOT,
    free_port,
    manage,
    server_env,
    uvicorn_command,
    wait_serving,
)

__all__ = ["ROOT", "Browserless", "Redis", "Server", "manage", "server_env", "setup_script"]


class Server:
    """`uvicorn config.asgi:application`, as `make run` starts it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"uvicorn-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            uvicorn_command(self.port),
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_serving(self.base, self.process, timeout=30, log_tail=self.log)
        except RuntimeError:
            self.stop()
            raise

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """A crash: no cleanup, no close frames, nothing written to the database."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


@contextmanager
def servers(env: dict[str, str], log_dir: Path, count: int = 1) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for _ in range(count):
            started.append(Server(env, log_dir))
        yield started
    finally:
        for server in started:
            server.stop()


class Redis:
    """A redis-server of the test's own on a spare port, which it may stop and start again
    (the machine's shared Redis must never be restarted)."""

    def __init__(self, workdir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not installed (Debian's redis-server package)")
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class Browserless:
    """A browser without a browser: its own cookies (its session), for forms and sockets."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, page: str, action: str, data: dict[str, str]) -> int:
        import re
        import urllib.parse

        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(page))
        assert token, f"{page} has a CSRF token in its form"
        body = urllib.parse.urlencode(data | {"csrfmiddlewaretoken": token.group(1)}).encode()
        request = urllib.request.Request(
            self.base + action, data=body, headers={"HX-Request": "true"}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def setup_script(env: dict[str, str], script: str) -> str:
    """Run Django code against the servers' database; returns its last line of output."""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]
