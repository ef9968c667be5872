"""What the benchmarks share: the scratch environment, the machine, percentiles, results."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support.server import ROOT, manage, server_env

CHROMIUM = os.getenv("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ORIGIN = "http://127.0.0.1"


@dataclass
class Row:
    """One line of the results table."""

    name: str
    figure: str
    baseline: str
    target: str
    met: str  # "yes", "no", "n/a" (not measured) or "crashed"


@dataclass
class Result:
    benchmark: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    mode: str = "full"
    seconds: float = 0.0
    crashed: bool = False


def yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def scratch_env(directory: Path, name: str = "bench.sqlite3") -> dict[str, str]:
    """A server environment on a fresh SQLite file in `directory`, migrated."""
    env = server_env(SQLITE_PATH=str(directory / name), DEBUG="False", LOG_LEVEL="WARNING")
    for variable in ("DATABASE_URL", "REDIS_URL", "SQLITE_TEST_PATH"):
        env.pop(variable, None)
    manage_or_explain("migrate", "--noinput", env=env)
    return env


def manage_or_explain(*args: str, env: dict[str, str]) -> None:
    """`manage.py args`, raising with the command's own output when it fails."""
    try:
        manage(*args, env=env)
    except subprocess.CalledProcessError as error:
        output = (error.stderr or b"").decode(errors="replace")[-3000:]
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{output}") from None


def run_json(module: str, *args: str, env: dict[str, str], timeout: float) -> dict:
    """Run `python -m module args` and parse the JSON its last stdout line prints."""
    import json

    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a list that holds the elapsed seconds once the block ends."""
    box: list[float] = []
    start = time.monotonic()
    try:
        yield box
    finally:
        box.append(time.monotonic() - start)


def terminate(process: subprocess.Popen, *, grace: float = 5) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
