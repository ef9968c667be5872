"""The embedded channel layer: Channels' in-memory layer, made cheap for a full classroom."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer


class RoomChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer with its expiry sweep run once a second instead of on every receive.

    The stock layer walks every channel and every group on each `receive`, so one broadcast to
    200 browsers costs 200 x 200 steps: most of the server's CPU in a busy classroom. Messages
    still expire (after `expiry`, 60 s by default); they are just noticed up to a second later.
    """

    sweep_interval = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()
