"""The room's websocket: joins the room's channel group and relays its numbered events.

Thin on purpose: what to send is decided by the services; this only forwards, and replays what
a reconnecting browser missed (or tells it to resync when it missed too much).
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from messaging.errors import NotFound
from messaging.live.broadcast import event_text, room_group_name
from messaging.live.driver import drivers
from messaging.models import Room
from messaging.selectors import events_since, room_get
from messaging.services.classroom import student_set_online

# Close codes in the 4000s are ours: the browser shows the reason instead of reconnecting.
CLOSE_ROOM_NOT_FOUND = 4404


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
        drivers.watch(room.pk)
        await self._student_online(True)
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
        # their permission checks live.
        try:
            message = json.loads(text_data or "")
        except ValueError:
            await self._send({"type": "error", "payload": {"message": "Not JSON."}})
            return
        if isinstance(message, dict) and message.get("type") == "replay":
            since = message.get("since")
            if isinstance(since, int) and since >= 0:
                room = await self._room(self.room_code)
                if room is not None:
                    await self._replay(room.pk, since)
                return
        await self._send({"type": "error", "payload": {"message": "Unknown message."}})

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
            await self._send({"type": "resync", "seq": last_seq, "payload": {}})
            return
        for event in events:
            await self._send(event)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=event_text(message))

    async def _student_online(self, online: bool) -> None:
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if key:
            await database_sync_to_async(student_set_online)(
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
        room = Room.objects.get(pk=room_pk)
        events = events_since(room=room, seq=since, limit=settings.LOGLAB_REPLAY_LIMIT)
        if events is None:
            return room.last_seq, None
        return room.last_seq, [e.as_message() for e in events]
