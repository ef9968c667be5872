"""Real LogLab servers for the browser and multi-process tests: the production ASGI server
(uvicorn, as `make run` starts it) in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def server_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def uvicorn_command(port: int) -> list[str]:
    """The server `make run` starts, on a loopback port."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
    ]


def wait_serving(
    base: str,
    process: subprocess.Popen,
    *,
    timeout: float,
    log_tail: Callable[[], str],
    what: str = "the server",
    interval: float = 0.1,
) -> None:
    """Until `base` answers; raises with the end of its log if the process exits or time runs
    out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_tail()[-4000:]
                raise RuntimeError(f"{what} did not serve on {base}:\n{tail}") from None
            time.sleep(interval)


@contextmanager
def serve(env: dict[str, str], *, startup_seconds: float = 30) -> Iterator[str]:
    """Serve config.asgi on a free loopback port; yields its base URL."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"loglab-{port}-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        uvicorn_command(port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(
            base,
            process,
            timeout=startup_seconds,
            log_tail=lambda: Path(log.name).read_text(errors="replace"),
        )
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)
