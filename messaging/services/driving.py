"""The room driver: steps a room's simulation on the server, ten times a second.

The simulation advances on the server, never in a browser. Each server process runs one
driver task per room that has a websocket connected to it here (a room nobody watches costs
nothing), and the room's lease in the database makes sure exactly one process steps it: the
others tick idly until the holder goes. All state is in the database, so after a restart the
room continues where it was as soon as someone reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from channels.db import database_sync_to_async

from messaging.errors import NotFound
from messaging.infra import checkpointer
from messaging.models import Room
from messaging.services.simulation import room_drive, room_release
from messaging.services.timeline import timeline_driven, timeline_flush, timeline_unwatched

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RoomDrivers:
    def __init__(self, owner: str = OWNER) -> None:
        self.owner = owner
        self.watchers: dict[int, int] = {}
        self.tasks: dict[int, asyncio.Task] = {}

    def watch(self, room_pk: int) -> None:
        checkpointer.ensure_started()
        self.watchers[room_pk] = self.watchers.get(room_pk, 0) + 1
        task = self.tasks.get(room_pk)
        if task is None or task.done():
            self.tasks[room_pk] = asyncio.get_running_loop().create_task(self._run(room_pk))
            timeline_driven(room_pk, True)

    async def unwatch(self, room_pk: int) -> None:
        left = self.watchers.get(room_pk, 0) - 1
        if left > 0:
            self.watchers[room_pk] = left
            return
        self.watchers.pop(room_pk, None)
        timeline_driven(room_pk, False)
        task = self.tasks.pop(room_pk, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _release(room_pk, self.owner)

    async def _run(self, room_pk: int) -> None:
        last = time.monotonic()
        while True:
            started = time.monotonic()
            wall_ms = int((started - last) * 1000)
            last = started
            try:
                await _drive(room_pk, self.owner, wall_ms)
            except NotFound:
                return  # the room was deleted or expired
            except Exception:
                # A failed step is rolled back; the next tick tries again from the database.
                log.exception("room %s: simulation step failed", room_pk)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, TICK_SECONDS - elapsed))


# Steps run in the default thread pool, not in the one thread Django gives every synchronous
# view: a busy room's steps must not queue in front of everybody's page loads and forms.
def _drive_sync(room_pk: int, owner: str, wall_ms: int) -> bool:

    held = room_drive(room=Room(pk=room_pk), owner=owner, wall_ms=wall_ms)
    # A commit that came too soon after the room's last capture is captured now.
    timeline_flush(room_pk)
    return held


_drive = database_sync_to_async(_drive_sync, thread_sensitive=False)


@database_sync_to_async
def _release(room_pk: int, owner: str) -> None:

    room_release(room=Room(pk=room_pk), owner=owner)
    timeline_unwatched(room_pk)


drivers = RoomDrivers()
