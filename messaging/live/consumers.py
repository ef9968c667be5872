"""The room's websocket: joins the room's channel group and relays its numbered events.

Thin on purpose: what to send is decided by the services; this only forwards, and replays what
a reconnecting browser missed (or tells it to resync when it missed too much).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from messaging.errors import NotFound
from messaging.events import RESYNC
from messaging.infra.broadcast import event_text, room_group_name
from messaging.live.driver import drivers
from messaging.models import STUDENT_SEEN_REFRESH_S, Room
from messaging.selectors import events_since, room_by_pk, room_get
from messaging.services.classroom import students_seen
from messaging.services.rooms import room_touch
from messaging.services.student_consumers import student_presence_changed

log = logging.getLogger(__name__)

# Close codes in the 4000s are ours: the browser shows the reason instead of reconnecting.
CLOSE_ROOM_NOT_FOUND = 4404
# Abuse closes the socket: a frame no browser of ours sends (1009: too big), or a flood.
CLOSE_TOO_BIG = 1009
CLOSE_FLOOD = 4429
# The only message a browser sends is {"type": "replay", "since": <seq>}: a few dozen bytes.
MAX_FRAME_CHARS = 1024
# Messages a socket may send per second, with bursts of as many (each replay reads the log).
MAX_MESSAGES_PER_SECOND = 5.0


class Presence:
    """The student pages connected to this process, per room, and one task that tells the
    database they are still there every STUDENT_SEEN_REFRESH_S: one write per room, whatever
    the number of students, instead of one per student heartbeat."""

    def __init__(self) -> None:
        self.sessions: dict[int, Counter[str]] = {}
        self.task: asyncio.Task | None = None

    def add(self, room_pk: int, session_key: str) -> None:
        self.sessions.setdefault(room_pk, Counter())[session_key] += 1
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run())

    def discard(self, room_pk: int, session_key: str) -> int:
        """Forget one page of the session; returns how many it still has open here."""
        sessions = self.sessions.get(room_pk)
        if sessions is None:
            return 0
        sessions[session_key] -= 1
        left = sessions[session_key]
        if left <= 0:
            del sessions[session_key]
        if not sessions:
            del self.sessions[room_pk]
        return max(left, 0)

    async def _run(self) -> None:
        while self.sessions:
            await asyncio.sleep(STUDENT_SEEN_REFRESH_S)
            await self.flush()

    async def flush(self) -> None:
        for room_pk, sessions in list(self.sessions.items()):
            try:
                await database_sync_to_async(students_seen)(
                    room_pk=room_pk, session_keys=list(sessions)
                )
            except Exception:
                log.exception("room %s: refreshing students' presence failed", room_pk)


presence = Presence()


class RoomConsumer(AsyncWebsocketConsumer):
    room_code: str
    group_name: str

    async def connect(self) -> None:
        code = self.scope["url_route"]["kwargs"]["code"]
        room = await self._room(code)
        if room is None:
            await self.close(code=CLOSE_ROOM_NOT_FOUND)
            return
        self.room_code = room.code
        self.group_name = room_group_name(room.code)
        # Join before reading the backlog: an event committed in between then arrives twice
        # (the browser drops seqs it has seen) rather than never.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        self.room_pk = room.pk
        self.allowance = MAX_MESSAGES_PER_SECOND
        self.allowance_at = time.monotonic()
        drivers.watch(room.pk)
        await self._student_online(True)
        # A watched room is not idle (room_touch writes at most every few minutes).
        await database_sync_to_async(room_touch)(room=room)
        since = self._since()
        if since is not None:
            await self._replay(room.pk, since)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group_name", None):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        if getattr(self, "room_pk", None) is not None:
            await self._student_online(False)
            await drivers.unwatch(self.room_pk)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        # Browsers only ask for a replay here; actions go through HTTP, where the services and
        # their permission checks live. Nothing a browser sends here writes anything.
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME_CHARS:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self._allowed():
            await self.close(code=CLOSE_FLOOD)
            return
        if text_data is None:
            await self._error("Binary frames are not accepted: send JSON text.")
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            await self._error("Not JSON.")
            return
        if isinstance(message, dict) and message.get("type") == "replay":
            since = message.get("since")
            if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
                room = await self._room(self.room_code)
                if room is not None:
                    await self._replay(room.pk, since)
                return
        await self._error(
            "Unknown message: this socket only replays events (actions go through the page)."
        )

    def _allowed(self) -> bool:
        """A token bucket per socket: a browser sends a replay now and then, not a stream."""
        now = time.monotonic()
        self.allowance = min(
            MAX_MESSAGES_PER_SECOND,
            self.allowance + (now - self.allowance_at) * MAX_MESSAGES_PER_SECOND,
        )
        self.allowance_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True

    async def _error(self, text: str) -> None:
        await self._send({"type": "error", "payload": {"message": text}})

    async def dispatch(self, message: dict) -> None:
        # A room event only forwards a string: skip Channels' per-message hop to a thread to
        # close old database connections (our database calls close their own, through
        # database_sync_to_async). With 200 browsers that hop was most of a broadcast's cost.
        if message.get("type") == "room.event":
            await self.room_event(message)
            return
        await super().dispatch(message)

    async def room_event(self, message: dict) -> None:
        await self.send(text_data=message["text"])

    def _since(self) -> int | None:
        query = self.scope.get("query_string", b"").decode()
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name == "since" and value.isdigit():
                return int(value)
        return None

    async def _replay(self, room_pk: int, since: int) -> None:
        last_seq, events = await self._events_since(room_pk, since)
        if events is None:
            await self._send({"type": RESYNC, "seq": last_seq, "payload": {}})
            return
        for event in events:
            await self._send(event)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=event_text(message))

    async def _student_online(self, online: bool) -> None:
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if not key:
            return
        if online:
            presence.add(self.room_pk, key)
        elif presence.discard(self.room_pk, key):
            return  # another page of theirs (a second tab) still keeps them in the group
        with contextlib.suppress(NotFound):
            # Records member.presence when the flag flips: boards redraw the member card, with
            # its countdown to the session timeout once the page is closed.
            await database_sync_to_async(student_presence_changed)(
                room_pk=self.room_pk, session_key=key, online=online
            )

    @database_sync_to_async
    def _room(self, code: str) -> Room | None:
        try:
            return room_get(code=code)
        except NotFound:
            return None

    @database_sync_to_async
    def _events_since(self, room_pk: int, since: int) -> tuple[int, list[dict] | None]:
        room = room_by_pk(pk=room_pk)
        events = events_since(room=room, seq=since, limit=settings.LOGLAB_REPLAY_LIMIT)
        if events is None:
            return room.last_seq, None
        return room.last_seq, [e.as_message() for e in events]
