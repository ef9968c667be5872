"""Browsers for the soak: websocket clients of a room that reconnect the way room-socket.js
does (`?since=<last seq>`, full-jitter backoff from 1 s doubling to a 5 s cap, reset only after a
socket stayed open 5 s), on an
asyncio loop of their own in a background thread, so that the soak's main thread can kill and
start servers meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field

ORIGIN = "http://127.0.0.1"
# As static/loglab/room-socket.js: RETRY_FIRST_MS, RETRY_CAP_MS, RETRY_FLOOR_MS, STABLE_MS.
RETRY_FIRST_S, RETRY_CAP_S, RETRY_FLOOR_S, STABLE_S = 1.0, 5.0, 0.1, 5.0
CONNECT_CONCURRENCY = 50


def backoff(attempt: int) -> float:
    ceiling = min(RETRY_CAP_S, RETRY_FIRST_S * 2**attempt)
    return RETRY_FLOOR_S + random.random() * (ceiling - RETRY_FLOOR_S)


@dataclass
class Browser:
    url: str  # ws://host:port/ws/rooms/CODE/
    reconnect: bool = True
    connected: bool = False
    connects: int = 0  # successful handshakes
    attempts: int = 0  # handshakes tried
    refused_5xx: int = 0  # handshakes answered with a 5xx status
    seq: int = 0  # the last seq applied (a page starts from the seq it was rendered at)
    gaps: int = 0  # events that arrived after a hole in the seqs (a browser would resync)
    resyncs: int = 0
    received: list[tuple[float, int, str]] = field(default_factory=list)  # (time, seq, type)
    dropped_at: list[float] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)

    def first_after(self, moment: float, *, seq_above: int = -1) -> float | None:
        for when, seq, kind in self.received:
            if when >= moment and (seq > seq_above or kind == "resync"):
                return when
        return None


class Fleet:
    """`browsers` run on their own loop until `close()`."""

    def __init__(self, browsers: list[Browser]) -> None:
        self.browsers = browsers
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._run())

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        tasks = [asyncio.create_task(self._browse(b, gate)) for b in self.browsers]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _browse(self, browser: Browser, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        attempt = 0
        while True:
            url = f"{browser.url}?since={browser.seq}"
            browser.attempts += 1
            try:
                async with gate:
                    connection = await connect(
                        url, origin=ORIGIN, open_timeout=10, ping_interval=None, max_queue=None
                    )
            except InvalidStatus as error:
                if error.response.status_code >= 500:
                    browser.refused_5xx += 1
                connection = None
            except Exception:  # noqa: BLE001 - refused or timed out: back off and retry
                connection = None
            if connection is not None:
                opened = time.monotonic()
                browser.connects += 1
                browser.connected = True
                browser.connected_at.append(time.monotonic())
                try:
                    async for raw in connection:
                        self._apply(browser, raw)
                except Exception:  # noqa: BLE001 - a dropped socket: reconnect below
                    pass
                finally:
                    browser.connected = False
                    browser.dropped_at.append(time.monotonic())
                    await connection.close()
                if time.monotonic() - opened >= STABLE_S:
                    attempt = 0
            if not browser.reconnect:
                return
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    @staticmethod
    def _apply(browser: Browser, raw: str | bytes) -> None:
        now = time.monotonic()
        try:
            event = json.loads(raw)
            seq, kind = int(event.get("seq") or 0), str(event.get("type"))
        except (ValueError, TypeError, AttributeError):
            return
        if kind == "resync":
            browser.resyncs += 1
            browser.seq = max(browser.seq, seq)
        elif seq:
            if seq <= browser.seq:
                return  # seen already (a replay overlapping the live stream): dropped
            if browser.seq and seq > browser.seq + 1:
                browser.gaps += 1
            browser.seq = seq
        browser.received.append((now, seq, kind))

    def wait(self, condition, timeout: float, step: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(step)
        return True

    def all_connected(self) -> bool:
        return all(b.connected for b in self.browsers)

    def close(self, timeout: float = 15) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
