"""Sending a room's events to every browser connected to it.

Events are hints, not the truth: channel layers may drop messages (channels-redis does so
silently when a channel is full), so every event carries its seq and a browser that sees a gap
resyncs from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from messaging.infra.layers import ROOM_EVENT

log = logging.getLogger(__name__)


class LayerHealth:
    """Whether the channel layer (Redis, with REDIS_URL) works, so that an outage is logged
    once when it starts and once when it ends, not once per broadcast or per socket: a busy
    room broadcasts ten times a second and a classroom holds two hundred sockets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures = 0

    def failed(self, what: str) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        if first:
            log.exception(
                "channel layer failed (%s): live updates stop until it is back; browsers "
                "reconnect and resync. Further failures are counted, not logged.",
                what,
            )

    def ok(self) -> None:
        if not self.failures:
            return
        with self._lock:
            failures, self.failures = self.failures, 0
        if failures:
            log.warning("channel layer is back after %d failed operations", failures)


layer_health = LayerHealth()


# The event loop whose worker threads hand their broadcasts to it (serving_loop_use).
_serving_loop: asyncio.AbstractEventLoop | None = None
SEND_TIMEOUT = 5.0


def serving_loop_use(loop: asyncio.AbstractEventLoop | None) -> None:
    """Threads with no loop of their own broadcast through `loop` (None: each its own)."""
    global _serving_loop
    _serving_loop = loop


def room_group_name(room_code: str) -> str:
    return f"room.{room_code}"


def event_text(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def broadcast_event(room_code: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # Serialised once here, not once per browser: the layer copies and the consumers forward a
    # string, which is what keeps a 200-browser room cheap.
    event = {"type": ROOM_EVENT, "text": event_text(message)}

    async def send() -> None:
        try:
            await layer.group_send(room_group_name(room_code), event)
        except Exception:
            # The write is committed and the browsers will resync: a lost hint must not turn
            # a successful produce into an error page.
            layer_health.failed(f"broadcast to room {room_code}")
        else:
            layer_health.ok()

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        serving = _serving_loop
        if serving is None or not serving.is_running():
            async_to_sync(send)()
            return
        # A database thread of a loop that serves (the Kafka listener's): the send runs on
        # that loop, where the browsers' consumers wait on the layer's queues. async_to_sync
        # would start an event loop of its own for each event (about 1 ms) and wake those
        # queues from the wrong thread. Waiting for it keeps one thread's events in order.
        try:
            asyncio.run_coroutine_threadsafe(send(), serving).result(timeout=SEND_TIMEOUT)
        except Exception:
            layer_health.failed(f"broadcast to room {room_code}")
    else:
        # Called from code already on an event loop: hand it the send instead of blocking.
        loop.create_task(send())
