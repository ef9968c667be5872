"""The bytes a "consumer" protocol member puts inside JoinGroup and SyncGroup.

A classic group's coordinator never reads these bytes; the leader does: each member's
``ConsumerProtocolSubscription`` travels in its JoinGroup protocol metadata, and the leader's
SyncGroup carries one ``ConsumerProtocolAssignment`` per member. LogLab reads them when the
leader is a member living in the server, and to show what a real client was given.

Schemas: apache/kafka ``clients/src/main/resources/common/message/``
``ConsumerProtocolSubscription.json`` and ``ConsumerProtocolAssignment.json`` (versions 0-3,
never flexible), written after an int16 version
(``MessageUtil.toVersionPrefixedByteBuffer``). Reading follows
``clients/.../consumer/internals/ConsumerProtocol.java``: a version above the highest known is
read as the highest known (``checkSubscriptionVersion``), so newer clients' extra fields, which
may only be appended, are ignored along with any trailing bytes; a negative version is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")

HIGHEST_VERSION = 3
# Kafka's default for ConsumerProtocolSubscription.GenerationId ("default": "-1").
NO_GENERATION = -1


class ProtocolBytesError(ValueError):
    """The embedded bytes do not parse (Kafka throws SchemaException here)."""


@dataclass(frozen=True)
class Subscription:
    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[tuple[str, tuple[int, ...]], ...] = ()  # v1+
    generation_id: int = NO_GENERATION  # v2+
    rack_id: str | None = None  # v3+
    version: int = 0

    def owned(self) -> tuple[tuple[str, int], ...]:
        return tuple((topic, p) for topic, parts in self.owned_partitions for p in parts)


@dataclass(frozen=True)
class Assignment:
    assigned_partitions: tuple[tuple[str, tuple[int, ...]], ...]
    user_data: bytes | None = None
    version: int = 0

    def partitions(self) -> tuple[tuple[str, int], ...]:
        return tuple((topic, p) for topic, parts in self.assigned_partitions for p in parts)


# --- encoding ------------------------------------------------------------------------------


def encode_subscription(subscription: Subscription, version: int | None = None) -> bytes:
    """Write ``subscription`` at ``version`` (default: its own ``version``, 0 unless set)."""
    v = _check_version(subscription.version if version is None else version)
    out = bytearray(struct.pack(">h", v))
    _write_array_len(out, len(subscription.topics))
    for topic in subscription.topics:
        _write_string(out, topic)
    _write_bytes(out, subscription.user_data)
    if v >= 1:
        _write_topic_partitions(out, subscription.owned_partitions)
    if v >= 2:
        out += struct.pack(">i", subscription.generation_id)
    if v >= 3:
        _write_nullable_string(out, subscription.rack_id)
    return bytes(out)


def encode_assignment(assignment: Assignment, version: int | None = None) -> bytes:
    v = _check_version(assignment.version if version is None else version)
    out = bytearray(struct.pack(">h", v))
    _write_topic_partitions(out, assignment.assigned_partitions)
    _write_bytes(out, assignment.user_data)
    return bytes(out)


def assignment_of(partitions: Sequence[tuple[str, int]], version: int = 0) -> bytes:
    """An assignment of (topic, partition) pairs, grouped by topic in first-seen order as
    ``ConsumerProtocol.serializeAssignment`` groups them."""
    grouped: dict[str, list[int]] = {}
    for topic, partition in partitions:
        grouped.setdefault(topic, []).append(partition)
    body = tuple((topic, tuple(parts)) for topic, parts in grouped.items())
    return encode_assignment(Assignment(body, None, version))


def _check_version(version: int) -> int:
    if not 0 <= version <= HIGHEST_VERSION:
        raise ValueError(f"consumer protocol version {version} is not in 0..{HIGHEST_VERSION}")
    return version


def _write_array_len(out: bytearray, n: int) -> None:
    out += struct.pack(">i", n)


def _write_string(out: bytearray, text: str) -> None:
    data = text.encode("utf-8")
    if len(data) > 0x7FFF:
        raise ValueError("a string longer than 32767 bytes cannot be written")
    out += struct.pack(">h", len(data)) + data


def _write_nullable_string(out: bytearray, text: str | None) -> None:
    if text is None:
        out += struct.pack(">h", -1)
    else:
        _write_string(out, text)


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(data)) + data


def _write_topic_partitions(out: bytearray, items: Sequence[tuple[str, Sequence[int]]]) -> None:
    _write_array_len(out, len(items))
    for topic, partitions in items:
        _write_string(out, topic)
        _write_array_len(out, len(partitions))
        for p in partitions:
            out += struct.pack(">i", p)


# --- decoding ------------------------------------------------------------------------------


def decode_subscription(data: bytes) -> Subscription:
    """Read a version-prefixed ConsumerProtocolSubscription; ``ProtocolBytesError`` if it does
    not parse."""
    reader = _Reader(data, "subscription")
    version = reader.version()
    read_as = min(version, HIGHEST_VERSION)
    topics = reader.array(reader.string, "topics", min_size=2)
    user_data = reader.nullable_bytes()
    owned: tuple[tuple[str, tuple[int, ...]], ...] = ()
    generation = NO_GENERATION
    rack: str | None = None
    if read_as >= 1:
        owned = reader.array(reader.topic_partitions, "owned_partitions", min_size=6)
    if read_as >= 2:
        generation = reader.int32()
    if read_as >= 3:
        rack = reader.nullable_string()
    return Subscription(tuple(topics), user_data, tuple(owned), generation, rack, read_as)


def decode_assignment(data: bytes) -> Assignment:
    """Read a version-prefixed ConsumerProtocolAssignment; ``ProtocolBytesError`` if it does
    not parse."""
    reader = _Reader(data, "assignment")
    version = reader.version()
    parts = reader.array(reader.topic_partitions, "assigned_partitions", min_size=6)
    user_data = reader.nullable_bytes()
    return Assignment(tuple(parts), user_data, min(version, HIGHEST_VERSION))


class _Reader:
    """Reads Kafka's non-flexible primitives; every length is checked against what is left
    before anything is allocated, so garbage cannot make it build a huge list."""

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProtocolBytesError(f"consumer protocol {what}: expected bytes")
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def fail(self, message: str) -> ProtocolBytesError:
        return ProtocolBytesError(f"consumer protocol {self.what}: {message} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("buffer underflow")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int16(self) -> int:
        value: int = struct.unpack(">h", self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self.take(4))[0]
        return value

    def version(self) -> int:
        if len(self.data) < 2:
            raise self.fail("buffer underflow while reading the version")
        version = self.int16()
        if version < 0:
            raise self.fail(f"unsupported version {version}")
        return version

    def string(self) -> str:
        length = self.int16()
        if length < 0:
            raise self.fail("a non-nullable string was serialized as null")
        # Java's new String(bytes, UTF_8) replaces malformed input rather than failing.
        return self.take(length).decode("utf-8", errors="replace")

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        return self.take(length).decode("utf-8", errors="replace")

    def nullable_bytes(self) -> bytes | None:
        length = self.int32()
        if length < 0:
            return None
        return self.take(length)

    def array(self, read: Callable[[], _T], name: str, *, min_size: int) -> list[_T]:
        count = self.int32()
        if count < 0:
            raise self.fail(f"non-nullable field {name} was serialized as null")
        if count * min_size > len(self.data) - self.pos:
            raise self.fail(f"{name} claims {count} elements, more than the bytes left")
        return [read() for _ in range(count)]

    def topic_partitions(self) -> tuple[str, tuple[int, ...]]:
        topic = self.string()
        partitions = self.array(self.int32, "partitions", min_size=4)
        return topic, tuple(partitions)
