"""A Kafka consumer's fetches and polls: the fetch buffer and the broker's fetch session order.

Facts reproduced (apache/kafka `AbstractFetch`, `FetchCollector`, `FetchBuffer`,
`FetchSessionHandler`, broker `FetchSession` and `ReplicaManager.readFromLog`; see
shared/kafka-reference.md section 5):

* A fetch asks only for the partitions with nothing buffered ("excluding any partitions for
  which we still have buffered data"). A partition left out of a request leaves the fetch
  session; when it comes back it is added at the end of the session.
* The broker reads the session's partitions in the session's order. Each partition gets at most
  `max.partition.fetch.bytes`, the whole response at most `fetch.max.bytes`; the first non-empty
  partition gets at least one record even when it is bigger than those limits (so the consumer
  always makes progress), later ones only what fits. Every partition that returned records is
  moved to the back of the session: the broker's round-robin, which keeps later partitions from
  starving.
* The responses are buffered per partition, in response order. `poll()` drains the buffered
  partitions in that order, up to `max.poll.records` in all; a partition with more buffered than
  the poll takes stays next in line for the next poll.

Sizes: the board's records are tiny, and its segments hold a few records where Kafka's hold
`segment.bytes` (1 GiB). Fetch sizes are scaled the same way, so one record stands for
`segment.bytes / segment_records` bytes of its topic (`record_bytes_scaled`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

SEGMENT_BYTES_DEFAULT = 1_073_741_824  # segment.bytes, 1 GiB
MAX_PARTITION_FETCH_BYTES_DEFAULT = 1_048_576  # max.partition.fetch.bytes, 1 MiB
FETCH_MAX_BYTES_DEFAULT = 52_428_800  # fetch.max.bytes, 50 MiB
# What a record weighs when nothing scales it (the retention engine's default record size).
RECORD_BYTES_UNSCALED = 100


def record_bytes_scaled(segment_records: int) -> Fraction:
    """The bytes one record stands for when a segment (segment.bytes) holds `segment_records`."""
    if segment_records < 1:
        raise ValueError(f"segment_records must be >= 1 (got {segment_records})")
    return Fraction(SEGMENT_BYTES_DEFAULT, segment_records)


def records_within(limit_bytes: int | Fraction, record_bytes: int | Fraction) -> int:
    """How many whole records of `record_bytes` fit in `limit_bytes` (0 when not one fits)."""
    if limit_bytes <= 0:
        return 0
    return math.floor(Fraction(limit_bytes) / Fraction(record_bytes))


def partition_fetch_records(
    record_bytes: int | Fraction, max_partition_fetch_bytes: int = MAX_PARTITION_FETCH_BYTES_DEFAULT
) -> int:
    """The records one fetch brings from a partition at most, as the board shows it: what fits
    in max.partition.fetch.bytes, and at least one (Kafka returns the first record batch of the
    first non-empty partition even when it is bigger than the limit)."""
    return max(1, records_within(max_partition_fetch_bytes, record_bytes))


@dataclass(frozen=True)
class FetchLimits:
    max_partition_fetch_bytes: int = MAX_PARTITION_FETCH_BYTES_DEFAULT
    fetch_max_bytes: int = FETCH_MAX_BYTES_DEFAULT

    def __post_init__(self) -> None:
        if self.max_partition_fetch_bytes < 1:
            raise ValueError("max.partition.fetch.bytes must be at least 1")
        if self.fetch_max_bytes < 1:
            raise ValueError("fetch.max.bytes must be at least 1")


@dataclass(frozen=True)
class Fetchable:
    """A partition the next fetch asks for: its buffer is empty, its position known."""

    partition: str
    fetch_offset: int  # the consumer's position: the next offset poll() returns
    log_end_offset: int
    record_bytes: int | Fraction = RECORD_BYTES_UNSCALED


@dataclass(frozen=True)
class FetchResponse:
    session: tuple[str, ...]  # the broker's session order after the fetch
    fetched: dict[str, tuple[int, int]]  # partition -> (first, end) of the records it returned
    returned: tuple[str, ...]  # partitions with records, in response order


def session_order(session: Sequence[str], requested: Sequence[str]) -> list[str]:
    """The session as the next request leaves it: the partitions still asked for keep their
    place; the ones left out are forgotten; new or returning ones join at the end, in the
    order the client adds them."""
    wanted = set(requested)
    kept = [p for p in session if p in wanted]
    known = set(kept)
    return kept + [p for p in requested if p not in known]


def fetch(
    session: Sequence[str], fetchable: Sequence[Fetchable], limits: FetchLimits = FetchLimits()
) -> FetchResponse:
    """One Fetch request for `fetchable` (in the client's order) and the broker's answer."""
    by_name = {f.partition: f for f in fetchable}
    order = session_order(session, [f.partition for f in fetchable])
    remaining: Fraction = Fraction(limits.fetch_max_bytes)
    min_one = True
    fetched: dict[str, tuple[int, int]] = {}
    returned: list[str] = []
    for name in order:
        slot = by_name[name]
        available = slot.log_end_offset - slot.fetch_offset
        if available <= 0:
            continue
        limit = min(Fraction(limits.max_partition_fetch_bytes), remaining)
        count = min(available, records_within(limit, slot.record_bytes))
        if count == 0 and min_one:
            count = 1  # minOneMessage: the first non-empty partition always makes progress
        if count == 0:
            continue
        min_one = False
        remaining -= count * Fraction(slot.record_bytes)
        fetched[name] = (slot.fetch_offset, slot.fetch_offset + count)
        returned.append(name)
    moved = set(returned)
    after = [p for p in order if p not in moved] + returned
    return FetchResponse(session=tuple(after), fetched=fetched, returned=tuple(returned))


@dataclass(frozen=True)
class Collected:
    polled: tuple[tuple[str, int, int], ...]  # (partition, first, end), in poll order
    buffered: tuple[str, ...]  # the buffer's partitions still holding records, in order


def collect(
    buffered: Sequence[str], buffers: Mapping[str, tuple[int, int]], max_poll_records: int
) -> Collected:
    """`poll()` returning records: drain the buffered partitions in turn, up to
    max.poll.records in all. A partition the poll leaves records in stays first in line."""
    if max_poll_records < 1:
        raise ValueError("max.poll.records must be at least 1")
    remaining = max_poll_records
    polled: list[tuple[str, int, int]] = []
    left: list[str] = []
    for name in buffered:
        first, end = buffers[name]
        if end <= first:
            continue
        if remaining == 0:
            left.append(name)
            continue
        count = min(end - first, remaining)
        polled.append((name, first, first + count))
        remaining -= count
        if first + count < end:
            left.append(name)
    return Collected(polled=tuple(polled), buffered=tuple(left))


@dataclass(frozen=True)
class FetchState:
    """What a consumer keeps between polls besides its per-partition offsets."""

    session: tuple[str, ...] = ()  # the broker's fetch session order
    buffered: tuple[str, ...] = ()  # partitions with fetched, unpolled records, in order
    polled: tuple[str, ...] = ()  # the last poll's partitions, in the order it returned them

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": list(self.session),
            "buffered": list(self.buffered),
            "polled": list(self.polled),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FetchState:
        data = data or {}

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            return tuple(str(p) for p in value) if isinstance(value, list) else ()

        return cls(session=names("session"), buffered=names("buffered"), polled=names("polled"))


def fetched_end(
    position: int | None, polled_until: int | None, fetched_until: int | None
) -> int | None:
    """Where what a consumer fetched of a partition and did not process yet ends (exclusive):
    past its last poll's records and its buffered fetch. None before it starts reading."""
    if position is None:
        return None
    return max(position, polled_until or 0, fetched_until or 0)
