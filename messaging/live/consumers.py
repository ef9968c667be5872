"""The room's websocket: joins the room's channel group and relays its numbered events.

Thin on purpose: what to send is decided by the services; this only forwards, and replays what
a reconnecting browser missed (or tells it to resync when it missed too much).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from messaging.errors import NotFound
from messaging.events import RESYNC
from messaging.infra.broadcast import event_text, layer_health, room_group_name
from messaging.infra.layers import ROOM_EVENT
from messaging.models import STUDENT_SEEN_REFRESH_S, Room
from messaging.selectors import events_since, room_by_pk, room_get
from messaging.services.driving import OWNER, drivers
from messaging.services.rooms import room_touch
from messaging.services.student_consumers import (
    student_page_close,
    student_page_open,
    student_pages_refresh,
    student_pages_sweep,
)

log = logging.getLogger(__name__)

# Close codes in the 4000s are ours: the browser shows the reason instead of reconnecting.
CLOSE_ROOM_NOT_FOUND = 4404
# Abuse closes the socket: a frame no browser of ours sends (1009: too big), or a flood.
CLOSE_TOO_BIG = 1009
CLOSE_FLOOD = 4429
# The server cannot serve the socket now (the channel layer or the database failed): the
# browser reconnects, backing off, and resyncs.
CLOSE_SERVER_ERROR = 1011
# The only message a browser sends is {"type": "replay", "since": <seq>}: a few dozen bytes.
MAX_FRAME_CHARS = 1024
# Messages a socket may send per second, with bursts of as many (each replay reads the log).
MAX_MESSAGES_PER_SECOND = 5.0
# Room events a socket holds unsent (a browser that stopped reading), unless the channel layer
# says its capacity: past it the newest are dropped, as a full channel's are, and the browser
# resyncs when it sees the gap.
DIRECT_CAPACITY = 100


class Presence:
    """The student pages this process holds, and one task that tells the database they are
    still open every STUDENT_SEEN_REFRESH_S: a few writes per process, whatever the number of
    students, instead of one per student heartbeat. The rows are shared: every process sees
    every open page (see StudentPage)."""

    def __init__(self, owner: str = OWNER) -> None:
        self.owner = owner
        # page id (the socket's channel name) -> (room pk, session key)
        self.pages: dict[str, tuple[int, str]] = {}
        self.task: asyncio.Task | None = None

    async def open(self, page_id: str, room_pk: int, session_key: str) -> None:
        if not session_key:
            return
        self.pages[page_id] = (room_pk, session_key)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run())
        try:
            student = await database_sync_to_async(student_page_open)(
                room_pk=room_pk, session_key=session_key, page_id=page_id, owner=self.owner
            )
        except NotFound:
            student = False
        if not student:
            self.pages.pop(page_id, None)  # a board, not a student's page: nothing to keep

    async def close(self, page_id: str) -> None:
        if self.pages.pop(page_id, None) is None:
            return
        # Whatever closed the socket: with no other page of theirs open, in any process, the
        # student goes offline and their member's session timeout starts.
        await database_sync_to_async(student_page_close)(page_id=page_id)

    async def _run(self) -> None:
        while self.pages:
            await asyncio.sleep(STUDENT_SEEN_REFRESH_S)
            await self.flush()

    async def flush(self) -> None:
        try:
            gone = await database_sync_to_async(student_pages_refresh)(
                page_ids=list(self.pages), owner=self.owner
            )
            # Swept by another process while this one stalled, yet still open here.
            for page_id in gone:
                if page_id in self.pages:
                    room_pk, key = self.pages[page_id]
                    await database_sync_to_async(student_page_open)(
                        room_pk=room_pk, session_key=key, page_id=page_id, owner=self.owner
                    )
            # Pages of processes that died without closing them.
            await database_sync_to_async(student_pages_sweep)()
        except Exception:
            log.exception("refreshing students' presence failed")


presence = Presence()


class RoomConsumer(AsyncWebsocketConsumer):
    room_code: str
    group_name: str

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop, with three differences: the consumer's cleanup runs however
        it ends (a close by the browser, by us, by the network, or an error), nothing is sent
        after the socket closed, and a failing channel layer closes the socket with a code
        instead of crashing it.

        Without this, a server-initiated close (4429, 1009) lost the student's presence: the
        frames the browser had already sent still reached `receive`, whose second close
        made uvicorn raise ClientDisconnected, and the consumer died without `disconnect`.
        So did a broadcast arriving after the network dropped the socket."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = self._guarded(send)
        self.accepted = self.closed = False
        self.layer_broken = False
        self.left = False
        # The room's events come straight from the channel layer (RoomChannelLayer.direct_add),
        # each sent by a task of its own, in order: they wait on this lock while the backlog
        # is being replayed, so a browser never gets a live event before older ones.
        self.send_lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()
        self.direct_pending = 0
        self.direct_tasks: set[asyncio.Task] = set()
        try:
            await await_many_dispatch([receive, self._layer_receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await asyncio.shield(self._leave())

    def _guarded(self, send):
        async def guarded_send(message: dict) -> None:
            if self.closed:
                return  # closed already, by us or by the browser: nothing more goes out
            if message["type"] == "websocket.close":
                self.closed = True
            elif message["type"] == "websocket.accept":
                if self.accepted:
                    return
                self.accepted = True
            try:
                await send(message)
            except OSError:  # uvicorn's ClientDisconnected: the peer is gone
                self.closed = True
                raise StopConsumer from None

        return guarded_send

    async def _layer_receive(self) -> dict:
        if self.layer_broken:
            await asyncio.Event().wait()  # closing already; the browser's disconnect ends us
        try:
            message = await self.channel_layer.receive(self.channel_name)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.layer_broken = True
            layer_health.failed("receiving a socket's events")
            return {"type": "live.layer_failed"}
        return message

    async def live_layer_failed(self, message: dict) -> None:
        # This socket's events are lost: the browser reconnects and resyncs from the database.
        await self.close(code=CLOSE_SERVER_ERROR)

    async def connect(self) -> None:
        try:
            await self._connect()
        except StopConsumer:
            raise
        except Exception:
            # Never an HTTP 500: the browser gets a close code, reconnects and resyncs.
            log.exception("opening a room's websocket failed")
            await self._refuse(CLOSE_SERVER_ERROR)

    async def _refuse(self, code: int) -> None:
        # Accepted first (unless it was): a close before accept() is an HTTP 403 the browser
        # cannot tell from any other failure, so it could not say why nor stop retrying.
        await self.accept()
        await self.close(code=code)

    async def _connect(self) -> None:
        code = self.scope["url_route"]["kwargs"]["code"]
        room = await self._room(code)
        if room is None:
            await self._refuse(CLOSE_ROOM_NOT_FOUND)
            return
        self.room_code = room.code
        self.group_name = room_group_name(room.code)
        async with self.send_lock:
            # Join before reading the backlog: an event committed in between then arrives
            # twice (the browser drops seqs it has seen) rather than never, after the backlog.
            if not await self._group_add():
                self.group_name = ""
                await self._refuse(CLOSE_SERVER_ERROR)
                return
            direct_add = getattr(self.channel_layer, "direct_add", None)
            if direct_add is not None:
                direct_add(self.channel_name, self._direct)
            await self.accept()
            self.room_pk = room.pk
            self.allowance = MAX_MESSAGES_PER_SECOND
            self.allowance_at = time.monotonic()
            drivers.watch(room.pk)
            session = self.scope.get("session")
            await presence.open(self.channel_name, room.pk, getattr(session, "session_key", None))
            # A watched room is not idle (room_touch writes at most every few minutes).
            await database_sync_to_async(room_touch)(room=room)
            since = self._since()
            if since is not None:
                await self._replay(room.pk, since)

    def _direct(self, text: str) -> None:
        """A room event from the channel layer, sent by a task of its own (a socket whose
        browser reads slowly must not hold up the others), on the socket's own loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._direct_start(text)
        else:  # a layer driven from another loop or thread: the socket's loop sends it
            self.loop.call_soon_threadsafe(self._direct_start, text)

    def _direct_start(self, text: str) -> None:
        if self.closed or self.direct_pending >= getattr(
            self.channel_layer, "capacity", DIRECT_CAPACITY
        ):
            return
        self.direct_pending += 1
        task = self.loop.create_task(self._direct_send(text))
        self.direct_tasks.add(task)
        task.add_done_callback(self.direct_tasks.discard)

    async def _direct_send(self, text: str) -> None:
        try:
            async with self.send_lock:
                await self.send(text_data=text)
        except StopConsumer:
            pass  # the browser went away: the consumer's own loop hears of it and ends
        except Exception:
            log.exception("room %s: sending an event failed", getattr(self, "room_code", "?"))
        finally:
            self.direct_pending -= 1

    async def _group_add(self) -> bool:
        # Twice: after Redis restarts, the first command on a pooled connection fails on the
        # stale connection and the second gets a fresh one.
        for attempt in range(2):
            try:
                await self.channel_layer.group_add(self.group_name, self.channel_name)
            except Exception:
                if attempt:
                    layer_health.failed("joining a room's group")
                    return False
            else:
                layer_health.ok()
                return True
        return False

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        """Everything connect() took, given back once, however the socket ended."""
        if self.left:
            return
        self.left = True
        direct_discard = getattr(self.channel_layer, "direct_discard", None)
        if direct_discard is not None:
            direct_discard(self.channel_name)
        if getattr(self, "group_name", None):
            try:
                await self.channel_layer.group_discard(self.group_name, self.channel_name)
            except Exception:
                layer_health.failed("leaving a room's group")
        try:
            await presence.close(self.channel_name)
        except Exception:
            log.exception("room %s: marking a page closed failed", getattr(self, "room_code", "?"))
        if getattr(self, "room_pk", None) is not None:
            try:
                await drivers.unwatch(self.room_pk)
            except Exception:
                # The lease runs out on its own (LEASE_SECONDS): another driver takes over.
                log.exception("room %s: releasing its driver failed", self.room_code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        # Browsers only ask for a replay here; actions go through HTTP, where the services and
        # their permission checks live. Nothing a browser sends here writes anything.
        if self.closed:
            return  # frames the browser sent before our close reached it
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
                    async with self.send_lock:  # live events wait until the backlog is sent
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
        if message.get("type") == ROOM_EVENT:
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


async def websocket_not_found(scope, receive, send) -> None:
    """A websocket handshake to a path nobody serves: HTTP 404, as a page would get."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b"No websocket is served at this path.\n"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})  # a server without the extension: 403
