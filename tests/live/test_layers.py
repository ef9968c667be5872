from __future__ import annotations

import time

from messaging.infra.layers import RoomChannelLayer


async def test_it_still_delivers_and_expires_messages_with_a_throttled_sweep():
    layer = RoomChannelLayer(expiry=0.05)
    await layer.group_add("room.X", "a.inmemory!1")
    await layer.group_send("room.X", {"type": "room.event", "text": "{}"})
    assert await layer.receive("a.inmemory!1") == {"type": "room.event", "text": "{}"}
    await layer.send("b.inmemory!2", {"type": "old"})
    time.sleep(0.06)
    layer._next_sweep = 0.0  # the next sweep is due
    layer._clean_expired()
    assert "b.inmemory!2" not in layer.channels


async def test_it_sweeps_at_most_once_per_interval():
    layer = RoomChannelLayer()
    layer._clean_expired()
    first = layer._next_sweep
    layer._clean_expired()
    assert layer._next_sweep == first
