"""The embedded channel layer: Channels' in-memory layer, made cheap for a full classroom."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import Callable

import redis
import redis.asyncio
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

# What broadcast.py sends a room's sockets: {"type": ROOM_EVENT, "text": the event's JSON}.
ROOM_EVENT = "room.event"


class RoomChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer with two shortcuts for a room's events to a full classroom.

    - Its expiry sweep runs once a second instead of on every receive. The stock layer walks
      every channel and every group on each `receive`, so one broadcast to 200 browsers cost
      200 x 200 steps. Messages still expire (after `expiry`, 60 s by default); they are just
      noticed up to a second later.
    - A socket may take its room's events directly (`direct_add`): the event's text is handed
      to the socket's own sender instead of going through a queue, the consumer's receive
      task, Channels' dispatch and a copy of the message per socket. That path cost about
      135 µs per socket per event, most of a broadcast to 250 sockets (docs/benchmarks.md).
      The socket keeps the events in order and bounds what it holds (RoomConsumer).
    """

    sweep_interval = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0
        # channel name -> a function taking a room event's text (it must not block)
        self.direct: dict[str, Callable[[str], None]] = {}

    def direct_add(self, channel: str, sender: Callable[[str], None]) -> None:
        self.direct[channel] = sender

    def direct_discard(self, channel: str) -> None:
        self.direct.pop(channel, None)

    async def group_send(self, group: str, message: dict) -> None:
        if message.get("type") != ROOM_EVENT or not self.direct:
            await super().group_send(group, message)
            return
        self.require_valid_group_name(group)
        self._clean_expired()
        text = message["text"]
        queued = []
        for channel in list(self.groups.get(group, ())):
            sender = self.direct.get(channel)
            if sender is None:
                queued.append(channel)
            else:
                sender(text)
        for channel in queued:
            with contextlib.suppress(ChannelFull):  # a full socket's browser resyncs
                await self.send(channel, message)

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()


class LayerFailed(Exception):
    """This process lost its subscription to Redis: the socket's events are lost."""


_FAILED = "layer.failed"


class _Subscription:
    """One event loop's connection to Redis pub/sub, and the task reading from it."""

    def __init__(self, url: str, deliver) -> None:
        self.client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2)
        self.pubsub = self.client.pubsub()
        self.channels: set[str] = set()
        self.lock = asyncio.Lock()
        self.broken = False
        self._deliver = deliver
        self._reader: asyncio.Task | None = None

    async def subscribe(self, name: str) -> None:
        async with self.lock:
            if name not in self.channels:
                await self.pubsub.subscribe(name)
                self.channels.add(name)
            if self._reader is None:
                self._reader = asyncio.get_running_loop().create_task(self._read())

    async def unsubscribe(self, name: str) -> None:
        async with self.lock:
            if name in self.channels:
                self.channels.discard(name)
                await self.pubsub.unsubscribe(name)

    async def _read(self) -> None:
        try:
            while True:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message["type"] == "message":
                    await self._deliver(message["channel"], message["data"])
        except asyncio.CancelledError:
            raise
        except Exception:
            self.broken = True
            await self._deliver(None, None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


class RoomRedisLayer:
    """The channel layer of several server processes (REDIS_URL): Redis pub/sub between the
    processes, this process's own queues within it.

    channels_redis' RedisChannelLayer pushes a group's message into one Redis list per socket,
    which its process then pops with a round trip of its own: 500 sockets in a room, 500
    messages through Redis for each event. Over two processes the fan-out's p99 was 253 ms
    where the bare websockets server's was 29 ms (docs/benchmarks.md). Here a group's message
    is published once; each process with a socket in the group receives it once and puts it
    in its own sockets' queues (the embedded RoomChannelLayer).

    What pub/sub does not do, the app does already. A message published while a process is cut
    off from Redis is lost, as are a full socket's messages with the lists: room events are
    numbered, and a browser that misses one resyncs from the database. When this process's
    subscription fails, every socket it serves finds out (`receive` raises LayerFailed), so it
    closes with 1011 and its browser reconnects and resyncs; a group_add while Redis is away
    raises, and the socket is refused with the same code. The next group_add connects again.

    A channel belongs to this process: LogLab sends only to groups (`send` to a channel of this
    process works; another process's is not reached).
    """

    extensions = ["groups", "flush"]

    def __init__(
        self, hosts=None, prefix: str = "asgi", expiry: int = 60, capacity: int = 100, **kwargs
    ) -> None:
        host = (hosts or ["redis://127.0.0.1:6379/0"])[0]
        self.url = host if isinstance(host, str) else host["address"]
        self.prefix = prefix
        self.capacity = capacity
        self.local = RoomChannelLayer(expiry=expiry, capacity=capacity)
        self._subscriptions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # Which of this process's channels joined which group, per event loop.
        self._groups: dict[str, set[str]] = {}
        self._publisher: redis.Redis | None = None

    def _topic(self, group: str) -> str:
        return f"{self.prefix}:group:{group}"

    def _subscription(self) -> _Subscription:
        loop = asyncio.get_running_loop()
        subscription = self._subscriptions.get(loop)
        if subscription is None or subscription.broken:
            subscription = _Subscription(self.url, self._deliver)
            self._subscriptions[loop] = subscription
        return subscription

    async def _deliver(self, topic: bytes | None, data: bytes | None) -> None:
        if topic is None:
            # The subscription failed: every socket of this loop learns it now.
            for channels in self._groups.values():
                for channel in list(channels):
                    with contextlib.suppress(Exception):  # a full queue: it fails anyway
                        await self.local.send(channel, {"type": _FAILED})
            self._groups.clear()
            return
        group = topic.decode().removeprefix(f"{self.prefix}:group:")
        try:
            message = json.loads(data)
        except ValueError:
            return
        await self.local.group_send(group, message)

    # --- the channel layer API ----------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self.local.new_channel(prefix)

    async def send(self, channel: str, message: dict) -> None:
        await self.local.send(channel, message)

    async def receive(self, channel: str) -> dict:
        message = await self.local.receive(channel)
        if message.get("type") == _FAILED:
            raise LayerFailed("this process lost its subscription to Redis")
        return message

    async def group_add(self, group: str, channel: str) -> None:
        await self._subscription().subscribe(self._topic(group))
        await self.local.group_add(group, channel)
        self._groups.setdefault(group, set()).add(channel)

    def direct_add(self, channel: str, sender: Callable[[str], None]) -> None:
        self.local.direct_add(channel, sender)

    def direct_discard(self, channel: str) -> None:
        self.local.direct_discard(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self.local.group_discard(group, channel)
        members = self._groups.get(group)
        if members is None:
            return
        members.discard(channel)
        if not members:
            del self._groups[group]
            subscription = self._subscriptions.get(asyncio.get_running_loop())
            if subscription is not None and not subscription.broken:
                await subscription.unsubscribe(self._topic(group))

    async def group_send(self, group: str, message: dict) -> None:
        data = json.dumps(message, separators=(",", ":"))
        subscription = self._subscriptions.get(asyncio.get_running_loop())
        if subscription is not None and not subscription.broken:
            await subscription.client.publish(self._topic(group), data)
            return
        # A loop with no sockets (async_to_sync's own, in a thread): the thread-safe client,
        # rather than a connection opened for one message on a loop about to close.
        if self._publisher is None:
            self._publisher = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        await asyncio.to_thread(self._publisher.publish, self._topic(group), data)

    async def flush(self) -> None:
        await self.local.flush()
        self._groups.clear()
        for subscription in list(self._subscriptions.values()):
            await subscription.close()
        self._subscriptions = weakref.WeakKeyDictionary()
