"""A swarm of websocket clients in one asyncio process, measuring produce-to-receipt latency.

`python -m bench.wsclients URL CLIENTS DEADLINE_SECONDS`. Protocol on stdio:
  out `READY <connected> <failed>` once every client has connected (or given up);
  in  `STOP <sent>` when the producer is done: clients then wait (at most DRAIN_SECONDS) until
      each has `sent` events, close, and the process prints `RESULT <json>` and exits.
Without a STOP the process stops itself at DEADLINE_SECONDS. Each `records.produced` event
carries its send time (ns since the epoch) as `payload.records[0].value`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

ORIGIN = "http://127.0.0.1"
CONNECT_CONCURRENCY = 20
DRAIN_SECONDS = 10.0
LAG_TICK = 0.01


class Swarm:
    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.count = clients
        self.latencies_us: list[int] = []
        self.seen: list[set[int]] = [set() for _ in range(clients)]
        self.bad = 0  # events that could not be read as a timed record
        self.lags_ms: list[float] = []
        self.measuring = False

    async def open(self, index: int, gate: asyncio.Semaphore) -> ClientConnection | None:
        async with gate:
            try:
                return await connect(
                    self.url,
                    origin=ORIGIN,
                    open_timeout=30,
                    ping_interval=None,
                    max_queue=None,
                )
            except Exception:  # noqa: BLE001 - counted as a failed connection
                return None

    async def listen(self, index: int, connection: ClientConnection) -> None:
        seen = self.seen[index]
        try:
            async for raw in connection:
                now = time.time_ns()
                try:
                    event = json.loads(raw)
                    if event.get("type") != "records.produced":
                        continue
                    sent = int(event["payload"]["records"][0]["value"])
                except (ValueError, KeyError, IndexError, TypeError):
                    self.bad += 1
                    continue
                seen.add(event["seq"])
                self.latencies_us.append((now - sent) // 1000)
        except Exception:  # noqa: BLE001 - a dropped connection shows up as missing events
            pass

    async def loop_lag(self) -> None:
        """How late this process's event loop wakes up: above a few ms, the clients lag."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            if self.measuring:
                self.lags_ms.append((time.monotonic() - before - LAG_TICK) * 1000)


async def read_stop(deadline: float) -> int | None:
    loop = asyncio.get_running_loop()
    remaining = deadline - time.monotonic()
    try:
        line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), remaining)
    except TimeoutError:
        return None
    parts = line.split()
    return int(parts[1]) if len(parts) == 2 and parts[0] == "STOP" else None


async def main(url: str, clients: int, deadline_seconds: float) -> dict:
    deadline = time.monotonic() + deadline_seconds
    swarm = Swarm(url, clients)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connections = await asyncio.gather(*(swarm.open(i, gate) for i in range(clients)))
    listeners = [asyncio.create_task(swarm.listen(i, c)) for i, c in enumerate(connections) if c]
    lag = asyncio.create_task(swarm.loop_lag())
    connected = sum(1 for c in connections if c)
    print(f"READY {connected} {clients - connected}", flush=True)

    cpu_before, wall_before = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    swarm.measuring = True
    sent = await read_stop(deadline)
    if sent is not None:
        drain_until = min(deadline, time.monotonic() + DRAIN_SECONDS)
        while time.monotonic() < drain_until and any(
            len(s) < sent for s, c in zip(swarm.seen, connections, strict=True) if c
        ):
            await asyncio.sleep(0.05)
    swarm.measuring = False
    cpu_after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall_before
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)

    lag.cancel()
    await asyncio.wait_for(
        asyncio.gather(*(c.close() for c in connections if c), return_exceptions=True), 10
    )
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, lag, return_exceptions=True)
    return {
        "connected": connected,
        "failed": clients - connected,
        "delivered": sum(len(s) for s in swarm.seen),
        "bad": swarm.bad,
        "latencies_us": swarm.latencies_us,
        "cpu_fraction": cpu / wall if wall > 0 else 0.0,
        "loop_lag_ms": sorted(swarm.lags_ms),
    }


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
