"""The Kafka protocol listener: every room is a cluster of one broker.

asyncio in the server's own process (`manage.py serve`). Each connection reads one frame at a
time and answers it before reading the next, as a Kafka broker mutes a channel while a request
is in flight, so responses keep the order of requests. The work behind a request runs in a
thread pool through the same services as the board (`handlers`); a request that waits (a
Fetch's long poll, a JoinGroup parked until the group's join phase ends) polls the database,
so whichever process moves the group on, the answer is the same.

A frame this connection cannot go on from (a bad size, a header that does not parse, an API
key Kafka does not have, a version outside the advertised range) closes that connection only,
as Kafka's SocketServer does; nothing a client sends reaches another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from messaging.api.kafka_wire import brokers, handlers
from messaging.api.kafka_wire import groups as _groups  # noqa: F401  (registers the group APIs)
from messaging.api.kafka_wire.protocol import (
    API_VERSIONS,
    SUPPORTED,
    Malformed,
    header_parse,
    nulls_refuse,
    response_encode,
)
from messaging.api.kafka_wire.session import Session
from messaging.infra import broadcast
from messaging.services.driving import drivers

log = logging.getLogger("loglab.kafka")

_SIZE = struct.Struct(">i")
# connections.max.idle.ms: Kafka closes a connection idle this long.
IDLE_SECONDS = 600.0


@dataclass
class _Bucket:
    """requests per second on one connection; past it the connection is muted for a while,
    which is what Kafka's request quotas do (and they say so in throttle_time_ms)."""

    rate: float
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def wait(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        self.tokens -= 1
        return wait


# At most this many Produce requests of one connection are stored together: one transaction
# of up to 8,000 records of the bench's size holds the database's write lock for about 120 ms
# (a page's write waits that long at worst while a client floods the room).
COALESCE_REQUESTS = 16
READ_BUFFER_BYTES = 1024 * 1024
PRODUCE = 0


def _api_key(frame: bytes) -> int:
    return int.from_bytes(frame[:2], "big", signed=True) if len(frame) >= 2 else -1


def _buffered_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame if it is already whole in the reader's buffer (not taken out of it).

    asyncio's StreamReader has no public way to ask what it holds without waiting; its
    `_buffer` has been there since Python 3.4. Without it, nothing is coalesced."""
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray) or len(buffer) < _SIZE.size:
        return None
    (size,) = _SIZE.unpack_from(buffer, 0)
    if size < 0 or size > settings.LOGLAB_KAFKA_MAX_FRAME_BYTES:
        return None  # the loop's own read refuses it
    if len(buffer) < _SIZE.size + size:
        return None
    return bytes(buffer[_SIZE.size : _SIZE.size + size])


class Listener:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.server: asyncio.base_events.Server | None = None
        self.per_address: Counter[str] = Counter()
        self.per_room: Counter[int] = Counter()
        # A room's brokers 1-5, each on its own port (#16: brokers.py); broker 1 on `port`.
        self.broker_ports: dict[int, int] = {}
        self._broker_servers: list[asyncio.base_events.Server] = []

    async def start(self) -> None:
        # A connection's buffer may hold a few whole Produce requests (librdkafka keeps several
        # in flight), which are then stored together; asyncio's default (64 KiB) held one or
        # two. Reading pauses past twice this; one frame may be bigger (message.max.bytes).
        self.server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=READ_BUFFER_BYTES
        )
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        self.broker_ports, self._broker_servers = await brokers.brokers_listen(
            self.host, self.port, self._serve, READ_BUFFER_BYTES
        )
        log.info("Kafka protocol on %s:%s", self.host, self.port)
        # The listener's database threads broadcast their events through this loop.
        broadcast.serving_loop_use(asyncio.get_running_loop())

    async def stop(self) -> None:
        broadcast.serving_loop_use(None)
        for server in self._broker_servers:
            server.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or (self.host, self.port)
        address = str(peer[0])
        if self.per_address[address] >= settings.LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ADDRESS:
            # max.connections.per.ip: Kafka closes the new connection at once.
            log.info("kafka: %s has too many connections; closed the new one", address)
            writer.close()
            return
        self.per_address[address] += 1
        session = Session(peer=address, host=str(local[0]), port=int(local[1]), listener=self)
        session.broker = next((b for b, p in self.broker_ports.items() if p == session.port), 1)
        bucket = _Bucket(settings.LOGLAB_KAFKA_REQUESTS_PER_SECOND)
        try:
            await self._loop(reader, writer, session, bucket)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: the connection just closes
        except Malformed as error:
            log.info("kafka: closed %s (%s): %s", address, session.label(), error)
        except Exception:
            # A bug on our side: this connection closes, every other one goes on.
            log.exception("kafka: closed %s (%s) on an unexpected error", address, session.label())
        finally:
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]
            await self._unbind(session)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _loop(self, reader, writer, session: Session, bucket: _Bucket) -> None:
        limit = settings.LOGLAB_KAFKA_MAX_FRAME_BYTES
        while True:
            (size,) = _SIZE.unpack(await asyncio.wait_for(reader.readexactly(4), IDLE_SECONDS))
            if size < 0 or size > limit:
                # Kafka's InvalidReceiveException: the size alone closes the connection.
                raise Malformed(f"a frame of {size} bytes (socket.request.max.bytes here: {limit})")
            frame = await reader.readexactly(size)
            throttle = bucket.wait()
            if throttle:
                await asyncio.sleep(throttle)
            if session.raw_sasl:
                # SaslHandshake v0: the next frame is the bare SASL token, no Kafka header.
                answer = await handlers.sasl_raw_token(session, frame)
                writer.write(_SIZE.pack(len(answer)) + answer)
                await writer.drain()
                if not session.authenticated:
                    return
                continue
            if _api_key(frame) == PRODUCE and handlers.produces_ready(session):
                await self._produces(reader, writer, session, bucket, frame, throttle)
            else:
                response = await self._request(session, frame, int(throttle * 1000))
                if response is not None:
                    writer.write(response)
                    await writer.drain()
            if session.closing:
                return

    async def _produces(self, reader, writer, session, bucket, frame: bytes, throttle: float):
        """A Produce, and the Produce requests already waiting whole in the socket's buffer
        after it (librdkafka sends one per partition, several in flight), stored together and
        answered in order. To the client this is what one request at a time looks like: the
        same offsets, the same answers, in the same order; it spares the room's lock, its
        event and the queries around them for each request (docs/benchmarks.md). A frame
        that is not a Produce, or does not parse, waits for its turn."""
        parsed = [self._parse(session, frame)]
        while len(parsed) < COALESCE_REQUESTS and not throttle:
            following = _buffered_frame(reader)
            if following is None or _api_key(following) != PRODUCE:
                break
            try:
                request = self._parse(session, following)
            except Malformed:
                break
            # Parsed: now it is taken out of the buffer, and counted as a request.
            await reader.readexactly(_SIZE.size + len(following))
            throttle = bucket.wait()
            parsed.append(request)
        bodies = await handlers.produces_handle(
            session, [(request, header.api_version) for _api, header, request in parsed]
        )
        ms = int(throttle * 1000)
        for (api, header, _request), body in zip(parsed, bodies, strict=True):
            if body is None:
                continue  # acks=0: no response at all
            if ms:
                body.setdefault("throttle_time_ms", ms)
            writer.write(response_encode(api, header.api_version, header.correlation_id, body))
        await writer.drain()
        if throttle:
            await asyncio.sleep(throttle)

    def _parse(self, session: Session, frame: bytes):
        """A Produce frame's header and request (raising Malformed as _request would)."""
        header = header_parse(frame)
        api = SUPPORTED[PRODUCE]
        if not api.min_version <= header.api_version <= api.max_version:
            raise Malformed(
                f"{api.name} v{header.api_version} (LogLab speaks "
                f"v{api.min_version}-{api.max_version}, as ApiVersions said)"
            )
        try:
            request = api.request.decode(frame[header.body_offset :], version=header.api_version)
        except Exception as error:
            raise Malformed(f"{api.name} v{header.api_version} did not parse: {error}") from None
        nulls_refuse(request, header.api_version)
        session.seen(header)
        return api, header, request

    async def _request(self, session: Session, frame: bytes, throttle_ms: int) -> bytes | None:
        header = header_parse(frame)
        api = SUPPORTED.get(header.api_key)
        if api is None:
            raise Malformed(f"API key {header.api_key} is not one Kafka (or LogLab) has")
        if not api.min_version <= header.api_version <= api.max_version:
            if header.api_key == API_VERSIONS:
                # KIP-511: answered in v0 with UNSUPPORTED_VERSION and the range to retry in.
                return response_encode(
                    api, 0, header.correlation_id, handlers.api_versions_unsupported()
                )
            raise Malformed(
                f"{api.name} v{header.api_version} (LogLab speaks "
                f"v{api.min_version}-{api.max_version}, as ApiVersions said)"
            )
        try:
            request = api.request.decode(frame[header.body_offset :], version=header.api_version)
        except Exception as error:
            raise Malformed(f"{api.name} v{header.api_version} did not parse: {error}") from None
        nulls_refuse(request, header.api_version)
        session.seen(header)
        body = await handlers.handle(session, api, header, request)
        if body is None:
            return None  # Produce with acks=0: no response at all
        if throttle_ms and "throttle_time_ms" in api.response._struct.fields:
            body.setdefault("throttle_time_ms", throttle_ms)
        return response_encode(api, header.api_version, header.correlation_id, body)

    # --- rooms ---------------------------------------------------------------------------------

    def room_admit(self, room_pk: int) -> bool:
        return self.per_room[room_pk] < settings.LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ROOM

    def bind(self, session: Session, room_pk: int) -> None:
        """The connection now belongs to a room: the room's clock and timers run while any
        client is connected (session timeouts, the join phase's deadline)."""
        self.per_room[room_pk] += 1
        drivers.watch(room_pk)

    async def _unbind(self, session: Session) -> None:
        if session.room_pk is None:
            return
        room_pk = session.room_pk
        session.room_pk = None
        self.per_room[room_pk] -= 1
        if not self.per_room[room_pk]:
            del self.per_room[room_pk]
        await drivers.unwatch(room_pk)
        await handlers.session_closed(session, room_pk)
