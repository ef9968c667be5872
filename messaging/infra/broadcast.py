"""Sending a room's events to every browser connected to it.

Events are hints, not the truth: channel layers may drop messages (channels-redis does so
silently when a channel is full), so every event carries its seq and a browser that sees a gap
resyncs from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


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
    event = {"type": "room.event", "text": event_text(message)}

    async def send() -> None:
        await layer.group_send(room_group_name(room_code), event)

    try:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(send)()
        else:
            # Called from code already on an event loop: hand it the send instead of blocking.
            loop.create_task(send())
    except Exception:
        # The write is committed and the browsers will resync: a lost hint must not turn a
        # successful produce into an error page.
        log.exception("broadcast to room %s failed", room_code)
