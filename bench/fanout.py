"""Fan-out: 200 websocket clients in one room, 10 produces a second; latency and loss.

LogLab: its production server (uvicorn, in-memory channel layer, one process) on a scratch
database; each produce is a real htmx POST of the board's produce form whose value is the send
time in ns, so every client computes produce -> receipt from the event it gets. Baseline, same
run: a bare `websockets` broadcast server (bench/bare_server.py) fed the same way over a
websocket.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect as ws_connect

from bench.common import ORIGIN, Result, Row, percentile, run_json, scratch_env, terminate, yes_no
from tests.support.server import ROOT, free_port, serve, server_env

CLIENTS = 200
RATE = 10.0  # broadcasts per second
SECONDS, QUICK_SECONDS = 30.0, 5.0
# Two client processes: one asyncio process has the CPU for 200 clients x 10 events/s (about
# 10% of a core) but reads each burst of 200 messages one after the other, which added ~10 ms
# of its own to the bare server's p99 (its event loop lagged 11 ms at p99); split in two, the
# bare p99 halved and LogLab's did not move. Each run reports the clients' CPU and loop lag;
# BENCH_CLIENT_PROCESSES=1 measures the other way.
CLIENT_PROCESSES = int(os.getenv("BENCH_CLIENT_PROCESSES", "2"))
P99_TARGET_MS = 100.0
RATIO_TARGET = 3.0


@dataclass
class Run:
    """One side of the comparison."""

    sent: int = 0
    failed_sends: int = 0
    send_ms: list[float] = field(default_factory=list)
    connected: int = 0
    connect_failed: int = 0
    delivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    loop_lag_p99_ms: float = 0.0
    server_cpu: float = 0.0

    @property
    def expected(self) -> int:
        return self.sent * self.connected


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pid(pattern: str) -> int | None:
    """The pid of this process's child whose command line contains `pattern`."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if ppid == me and pattern in cmdline:
            return int(entry.name)
    return None


class Swarm:
    """The client processes (bench.wsclients), read line by line with timeouts."""

    def __init__(self, url: str, clients: int, processes: int, deadline: float) -> None:
        self.processes: list[subprocess.Popen] = []
        self.lines: list[queue.Queue[str]] = []
        share = [clients // processes + (i < clients % processes) for i in range(processes)]
        for count in share:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.wsclients", url, str(count), str(deadline)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=self._pump, args=(process, lines), daemon=True).start()
            self.processes.append(process)
            self.lines.append(lines)

    @staticmethod
    def _pump(process: subprocess.Popen, lines: queue.Queue[str]) -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line.strip())

    def _expect(self, index: int, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"client process {index} did not say {prefix}")
            try:
                line = self.lines[index].get(timeout=remaining)
            except queue.Empty:
                continue
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1 :]

    def ready(self, run: Run, timeout: float = 90) -> None:
        for i in range(len(self.processes)):
            connected, failed = self._expect(i, "READY", timeout).split()
            run.connected += int(connected)
            run.connect_failed += int(failed)

    def stop(self, run: Run, timeout: float = 60) -> None:
        for process in self.processes:
            process.stdin.write(f"STOP {run.sent}\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
        lags: list[float] = []
        for i in range(len(self.processes)):
            result = json.loads(self._expect(i, "RESULT", timeout))
            run.delivered += result["delivered"]
            run.latencies_ms.extend(us / 1000 for us in result["latencies_us"])
            run.client_cpu.append(result["cpu_fraction"])
            lags.extend(result["loop_lag_ms"])
        run.loop_lag_p99_ms = percentile(lags, 99)

    def close(self) -> None:
        for process in self.processes:
            terminate(process)


def pace(send: Callable[[str], bool], run: Run, seconds: float) -> None:
    """Call `send(now_ns)` RATE times a second for `seconds`, on a fixed schedule."""
    start = time.monotonic()
    for i in range(int(RATE * seconds)):
        delay = start + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.monotonic()
        ok = send(str(time.time_ns()))
        run.send_ms.append((time.monotonic() - began) * 1000)
        if ok:
            run.sent += 1
        else:
            run.failed_sends += 1


def measure(
    url: str,
    send: Callable[[str], bool],
    seconds: float,
    server_pid: int | None,
    clients: int = CLIENTS,
) -> Run:
    run = Run()
    swarm = Swarm(url, clients, CLIENT_PROCESSES, deadline=seconds + 150)
    try:
        swarm.ready(run)
        time.sleep(0.5)  # the last group_add lands before the first produce
        cpu_before, wall_before = cpu_seconds(server_pid or 0), time.monotonic()
        pace(send, run, seconds)
        swarm.stop(run)
        if server_pid:
            run.server_cpu = (cpu_seconds(server_pid) - cpu_before) / (
                time.monotonic() - wall_before
            )
    finally:
        swarm.close()
    return run


def bare(seconds: float, clients: int = CLIENTS) -> Run:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_server", str(port)],
        cwd=ROOT,
        env=server_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        readable, _, _ = select.select([server.stdout], [], [], 30)
        ready = server.stdout.readline() if readable else ""  # type: ignore[union-attr]
        if ready.strip() != "READY":
            raise RuntimeError("the bare websockets server did not start")
        with ws_connect(f"ws://127.0.0.1:{port}/produce", open_timeout=10) as producer:

            def send(value: str) -> bool:
                producer.send(value)
                return True

            return measure(f"ws://127.0.0.1:{port}/", send, seconds, server.pid, clients)
    finally:
        terminate(server)


class FormPoster:
    """The board's produce form, posted as htmx does, on one keep-alive connection."""

    def __init__(self, base: str, code: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.path = f"/r/{code}/produce/"
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        self.connection.request("GET", f"/r/{code}/")
        page = self.connection.getresponse()
        html = page.read().decode()
        cookie = page.getheader("Set-Cookie") or ""
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        csrf = re.search(r"csrftoken=([^;]+)", cookie)
        if not (token and csrf):
            raise RuntimeError("the board page has no CSRF token/cookie to post the form with")
        self.token, self.cookie = token.group(1), f"csrftoken={csrf.group(1)}"

    def send(self, value: str) -> bool:
        body = urllib.parse.urlencode(
            {"topic": "orders", "key": "bench", "value": value, "csrfmiddlewaretoken": self.token}
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": self.cookie,
            "HX-Request": "true",
            "Origin": ORIGIN + f":{self.port}",
        }
        for attempt in range(2):
            try:
                self.connection.request("POST", self.path, body=body, headers=headers)
                response = self.connection.getresponse()
                response.read()
                return response.status == 200
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt:
                    return False
        return False


def loglab(tmp: Path, seconds: float) -> Run:
    env = scratch_env(tmp, "fanout.sqlite3")
    code = run_json("bench.roomsetup", env=env, timeout=60)["code"]
    with serve(env) as base:
        poster = FormPoster(base, code)
        url = base.replace("http://", "ws://") + f"/ws/rooms/{code}/"
        return measure(url, poster.send, seconds, child_pid("uvicorn"))


def describe(run: Run) -> str:
    return (
        f"p50 {percentile(run.latencies_ms, 50):.1f} ms, p99 {percentile(run.latencies_ms, 99):.1f}"
        f" ms, max {max(run.latencies_ms, default=float('nan')):.1f} ms; delivered "
        f"{run.delivered}/{run.expected} ({run.connected} clients connected, "
        f"{run.connect_failed} failed; {run.sent} sent, {run.failed_sends} failed sends); "
        f"server CPU {run.server_cpu:.0%} of a core; client process CPU "
        + ", ".join(f"{c:.0%}" for c in run.client_cpu)
        + f" of a core, its event loop lag p99 {run.loop_lag_p99_ms:.1f} ms"
    )


def run(*, quick: bool, tmp: Path) -> Result:
    seconds = QUICK_SECONDS if quick else SECONDS
    base = bare(seconds)
    lab = loglab(tmp, seconds)
    lab_p50, base_p50 = percentile(lab.latencies_ms, 50), percentile(base.latencies_ms, 50)
    lab_p99, base_p99 = percentile(lab.latencies_ms, 99), percentile(base.latencies_ms, 99)
    ratio = lab_p99 / base_p99 if base_p99 > 0 else float("inf")
    lossless = lab.expected > 0 and lab.delivered == lab.expected and lab.connected == CLIENTS
    rows = [
        Row("fan-out p50", f"{lab_p50:.1f} ms", f"bare websockets {base_p50:.1f} ms", "-", "-"),
        Row(
            "fan-out p99",
            f"{lab_p99:.1f} ms ({ratio:.1f}x)",
            f"bare websockets {base_p99:.1f} ms",
            f"<={P99_TARGET_MS:.0f}ms, <={RATIO_TARGET:.0f}x",
            yes_no(lab_p99 <= P99_TARGET_MS and ratio <= RATIO_TARGET),
        ),
        Row(
            "fan-out delivered",
            f"{lab.delivered}/{lab.expected}",
            f"bare websockets {base.delivered}/{base.expected}",
            "no loss",
            yes_no(lossless),
        ),
    ]
    notes = [
        f"{CLIENTS} clients in {CLIENT_PROCESSES} process(es), {RATE:g} produces/s for "
        f"{seconds:g} s; latency = client receipt - the send time carried in the event.",
        "LogLab (htmx POST of the produce form -> uvicorn, in-memory layer): "
        + describe(lab)
        + f"; POST round trip p50 {percentile(lab.send_ms, 50):.1f} ms, "
        f"p99 {percentile(lab.send_ms, 99):.1f} ms.",
        "bare websockets server: " + describe(base) + ".",
    ]
    return Result("fanout", rows, notes)
