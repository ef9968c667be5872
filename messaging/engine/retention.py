"""A partition's log in segments: time and size retention, and log compaction.

Facts reproduced (Apache Kafka's UnifiedLog and LogCleaner):

* Deletion removes WHOLE segments, oldest first, and stops at the first segment that must stay.
  By time: a segment goes when ``now - largest timestamp in it > retention.ms``. By size: while
  ``log size - segment size >= retention.bytes`` (nothing when ``retention.bytes`` is -1 or the
  log is smaller than it). Time rules run first, size rules on what is left.
* The active (last) segment is not spared: when every segment has expired Kafka rolls a new empty
  active segment first, so a log can be emptied; an empty active segment is never deleted.
* Offsets are never reused or renumbered: the log start offset moves to the first surviving
  segment's base offset, which is the log end offset when everything went.
* ``cleanup.policy=compact`` keeps the latest record per key in the cleanable part (every segment
  but the active one), offsets unchanged, order preserved. A tombstone (null value) is kept, and
  stamped with a delete horizon of ``now + delete.retention.ms`` the first time the cleaner sees
  it; a later cleaning at or after that horizon removes it (KIP-534, Kafka 3.1+).
* A compacted topic rejects records without a key (``InvalidRecordException``); the cleaner drops
  any keyless record it finds (left over from before the topic became compacted).

Simplifications (shown on screen): a segment rolls after ``segment_records`` records instead of
``segment.bytes`` bytes (``segment.ms`` is kept); the cleaner runs whenever asked (no
``min.cleanable.dirty.ratio``, ``min.compaction.lag.ms`` or cleaner threads); cleaned segments keep
their boundaries (Kafka may merge small neighbours) and their largest timestamp (Kafka keeps the
last-modified time, so cleaning does not postpone time retention); the high watermark is the log
end offset (every write is replicated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from messaging.engine.offsets import (
    AUTO_OFFSET_RESET_DEFAULT,
    AutoOffsetReset,
    PartitionOffsets,
    StartingPosition,
    starting_position,
)

CleanupPolicy = Literal["delete", "compact", "compact,delete"]
DeletionReason = Literal[
    "retention.ms", "retention.bytes", "compaction", "tombstone expired", "null key"
]

RETENTION_MS_DEFAULT = 604_800_000  # 7 days
RETENTION_BYTES_DEFAULT = -1  # unlimited
SEGMENT_MS_DEFAULT = 604_800_000  # 7 days
DELETE_RETENTION_MS_DEFAULT = 86_400_000  # 1 day
RECORD_SIZE_DEFAULT = 100


class RetentionError(ValueError):
    """Base class of the log errors."""


class InvalidRecordError(RetentionError):
    """Kafka's InvalidRecordException: the broker refuses the record."""


class InvalidConfigurationError(RetentionError):
    """Kafka's InvalidConfigurationException: a topic config value Kafka would not accept."""


@dataclass(frozen=True)
class LogConfig:
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int = RETENTION_MS_DEFAULT  # -1: no time limit
    retention_bytes: int = RETENTION_BYTES_DEFAULT  # -1: no size limit
    segment_records: int = 100  # stands in for segment.bytes
    segment_ms: int = SEGMENT_MS_DEFAULT
    delete_retention_ms: int = DELETE_RETENTION_MS_DEFAULT

    @property
    def deletes(self) -> bool:
        return "delete" in self.cleanup_policy.split(",")

    @property
    def compacts(self) -> bool:
        return "compact" in self.cleanup_policy.split(",")


@dataclass(frozen=True)
class Record:
    offset: int
    timestamp_ms: int
    key: str | None
    value: str | None  # None is a tombstone on a compacted topic
    size_bytes: int = RECORD_SIZE_DEFAULT
    # Set by the cleaner the first time it keeps this tombstone (KIP-534).
    delete_horizon_ms: int | None = None


@dataclass(frozen=True)
class Segment:
    base_offset: int
    records: tuple[Record, ...] = ()
    # Kept when compaction empties the segment, so time retention still finds it old.
    largest_timestamp_ms: int | None = None

    @property
    def size_bytes(self) -> int:
        return sum(r.size_bytes for r in self.records)


@dataclass(frozen=True)
class PartitionLog:
    partition: str
    config: LogConfig
    segments: tuple[Segment, ...]  # never empty: the last one is the active segment
    log_start_offset: int
    log_end_offset: int


@dataclass(frozen=True)
class Deletion:
    offset: int
    reason: DeletionReason


@dataclass(frozen=True)
class SegmentView:
    """What the board draws for a segment: the offset range it covers and what survives in it."""

    base_offset: int
    last_offset: int | None  # None for an empty active segment
    offsets: tuple[int, ...]
    size_bytes: int
    largest_timestamp_ms: int | None
    active: bool


@dataclass(frozen=True)
class CleanupResult:
    log: PartitionLog
    deleted: tuple[Deletion, ...]
    deleted_segments: tuple[int, ...]  # base offsets of the segments removed whole
    log_start_offset: int
    segments: tuple[SegmentView, ...]


# --- building a log -----------------------------------------------------------------------------


def new_log(
    partition: str = "topic-0", config: LogConfig | None = None, start_offset: int = 0
) -> PartitionLog:
    """An empty partition: one empty active segment at ``start_offset``."""
    config = config or LogConfig()
    _check_config(config)
    if start_offset < 0:
        raise RetentionError(f"start offset must be >= 0 (got {start_offset})")
    return PartitionLog(partition, config, (Segment(start_offset),), start_offset, start_offset)


def _check_config(config: LogConfig) -> None:
    policies = config.cleanup_policy.split(",")
    if not policies or any(p not in ("delete", "compact") for p in policies):
        raise InvalidConfigurationError(
            f"Invalid value {config.cleanup_policy} for configuration cleanup.policy: "
            "String must be one of: compact, delete"
        )
    if config.segment_records < 1:
        raise InvalidConfigurationError(
            f"segment_records must be >= 1 (got {config.segment_records})"
        )
    for name in ("retention_ms", "retention_bytes"):
        if getattr(config, name) < -1:
            raise InvalidConfigurationError(f"{name.replace('_', '.')} must be >= -1")
    for name in ("segment_ms", "delete_retention_ms"):
        if getattr(config, name) < 0:
            raise InvalidConfigurationError(f"{name.replace('_', '.')} must be >= 0")


def append(
    log: PartitionLog,
    timestamp_ms: int,
    key: str | None,
    value: str | None,
    size_bytes: int = RECORD_SIZE_DEFAULT,
) -> PartitionLog:
    """Append one record at the log end offset, rolling the active segment first if it is full."""
    check_key(log.config, key, log.partition)
    if size_bytes < 0:
        raise InvalidRecordError(f"record size must be >= 0 (got {size_bytes})")
    if _should_roll(log, timestamp_ms):
        log = _roll(log)
    record = Record(log.log_end_offset, timestamp_ms, key, value, size_bytes)
    active = log.segments[-1]
    grown = replace(
        active,
        records=active.records + (record,),
        largest_timestamp_ms=_max_or(active.largest_timestamp_ms, timestamp_ms),
    )
    return replace(log, segments=log.segments[:-1] + (grown,), log_end_offset=record.offset + 1)


def check_key(config: LogConfig, key: str | None, partition: str) -> None:
    """The broker's refusal of a keyless record on a compacted topic: compaction keeps the
    latest record per key, so a record without one has nothing to be kept by."""
    if key is None and config.compacts:
        raise InvalidRecordError(
            f"Compacted topic cannot accept message without key in topic partition {partition}."
        )


def append_all(
    log: PartitionLog, entries: Iterable[tuple[int, str | None, str | None, int]]
) -> PartitionLog:
    """Append (timestamp_ms, key, value, size_bytes) entries in order."""
    for timestamp_ms, key, value, size_bytes in entries:
        log = append(log, timestamp_ms, key, value, size_bytes)
    return log


def _should_roll(log: PartitionLog, timestamp_ms: int) -> bool:
    active = log.segments[-1]
    first = active.records[0].timestamp_ms if active.records else None
    return should_roll(len(active.records), first, timestamp_ms, log.config)


def should_roll(
    records_in_active: int, first_timestamp_ms: int | None, timestamp_ms: int, config: LogConfig
) -> bool:
    """Whether appending a record at ``timestamp_ms`` first rolls a new active segment.

    For callers that keep only the active segment's size and first timestamp (the database
    stores records, not segments) and must roll exactly where this engine would.
    """
    if records_in_active == 0 or first_timestamp_ms is None:
        return False
    full = records_in_active >= config.segment_records
    # segment.ms counts from the first record in the segment, as LogSegment.shouldRoll does.
    too_old = timestamp_ms - first_timestamp_ms > config.segment_ms
    return full or too_old


def segment_bases(
    *,
    active_base: int,
    records_in_active: int,
    first_timestamp_ms: int | None,
    log_end_offset: int,
    count: int,
    timestamp_ms: int,
    config: LogConfig,
) -> tuple[list[int], ActiveSegment]:
    """Where `count` records appended at `timestamp_ms` from `log_end_offset` go: each one's
    active segment base, rolling exactly where `should_roll` would, and the active segment
    afterwards (for a batch of a client's records, appended at once)."""
    bases: list[int] = []
    rolled = False
    for offset in range(log_end_offset, log_end_offset + count):
        if should_roll(records_in_active, first_timestamp_ms, timestamp_ms, config):
            active_base, records_in_active, first_timestamp_ms = offset, 0, None
            rolled = True
        if records_in_active == 0:
            first_timestamp_ms = timestamp_ms
        records_in_active += 1
        bases.append(active_base)
    return bases, ActiveSegment(active_base, records_in_active, first_timestamp_ms, rolled)


@dataclass(frozen=True)
class ActiveSegment:
    base_offset: int
    records: int
    first_timestamp_ms: int | None
    rolled: bool


def _roll(log: PartitionLog) -> PartitionLog:
    return replace(log, segments=log.segments + (Segment(log.log_end_offset),))


def _max_or(current: int | None, candidate: int) -> int:
    return candidate if current is None else max(current, candidate)


# --- reading ------------------------------------------------------------------------------------


def records(log: PartitionLog) -> tuple[Record, ...]:
    return tuple(r for segment in log.segments for r in segment.records)


def log_size_bytes(log: PartitionLog) -> int:
    return sum(segment.size_bytes for segment in log.segments)


def segment_views(log: PartitionLog) -> tuple[SegmentView, ...]:
    views = []
    for index, segment in enumerate(log.segments):
        is_active = index == len(log.segments) - 1
        end = log.log_end_offset if is_active else log.segments[index + 1].base_offset
        views.append(
            SegmentView(
                base_offset=segment.base_offset,
                last_offset=end - 1 if end > segment.base_offset else None,
                offsets=tuple(r.offset for r in segment.records),
                size_bytes=segment.size_bytes,
                largest_timestamp_ms=segment.largest_timestamp_ms,
                active=is_active,
            )
        )
    return tuple(views)


def timestamp_index(log: PartitionLog) -> tuple[tuple[int, int], ...]:
    """(offset, timestamp_ms) of every record still in the log, for ListOffsets by timestamp."""
    return tuple((r.offset, r.timestamp_ms) for r in records(log))


def partition_offsets(log: PartitionLog, committed: int | None) -> PartitionOffsets:
    """What ``kafka-consumer-groups --reset-offsets`` reads about this partition."""
    return PartitionOffsets(
        log.partition, log.log_start_offset, log.log_end_offset, committed, timestamp_index(log)
    )


def resume_position(
    log: PartitionLog,
    committed: int | None,
    auto_offset_reset: AutoOffsetReset = AUTO_OFFSET_RESET_DEFAULT,
) -> StartingPosition:
    """Where a consumer resumes after retention may have deleted its committed offset."""
    return starting_position(
        committed, log.log_start_offset, log.log_end_offset, auto_offset_reset, log.partition
    )


# --- deletion (cleanup.policy=delete) -----------------------------------------------------------


def delete_old_segments(log: PartitionLog, now_ms: int) -> CleanupResult:
    """Time retention, then size retention, as UnifiedLog.deleteOldSegments runs them."""
    if not log.config.deletes:
        return _result(log, (), ())
    log, by_time = _delete_prefix(log, _time_breached_count(log, now_ms))
    log, by_size = _delete_prefix(log, _size_breached_count(log))
    deleted = _deletions(by_time, "retention.ms") + _deletions(by_size, "retention.bytes")
    bases = tuple(s.base_offset for s in by_time + by_size)
    return _result(log, deleted, bases)


def _time_breached_count(log: PartitionLog, now_ms: int) -> int:
    """How many oldest segments have only records older than retention.ms."""
    retention_ms = log.config.retention_ms
    count = 0
    for segment in log.segments:
        newest = segment.largest_timestamp_ms
        if retention_ms < 0 or newest is None or now_ms - newest <= retention_ms:
            break
        count += 1
    return count


def _size_breached_count(log: PartitionLog) -> int:
    """How many oldest segments can go while the log stays >= retention.bytes."""
    retention_bytes = log.config.retention_bytes
    excess = log_size_bytes(log) - retention_bytes
    if retention_bytes < 0 or excess < 0:
        return 0
    count = 0
    for segment in log.segments:
        # Deleting only whole segments, the log never drops below retention.bytes.
        if excess - segment.size_bytes < 0:
            break
        excess -= segment.size_bytes
        count += 1
    return count


def _delete_prefix(log: PartitionLog, count: int) -> tuple[PartitionLog, tuple[Segment, ...]]:
    if not log.segments[-1].records:
        count = min(count, len(log.segments) - 1)  # an empty active segment is never deleted
    if count == 0:
        return log, ()
    doomed, survivors = log.segments[:count], log.segments[count:]
    if not survivors:
        # A log always has a segment: Kafka rolls an empty one at the log end before deleting all.
        survivors = (Segment(log.log_end_offset),)
    new_start = max(log.log_start_offset, survivors[0].base_offset)
    return replace(log, segments=survivors, log_start_offset=new_start), doomed


def _deletions(segments: Sequence[Segment], reason: DeletionReason) -> tuple[Deletion, ...]:
    return tuple(Deletion(r.offset, reason) for s in segments for r in s.records)


# --- compaction (cleanup.policy=compact) --------------------------------------------------------


def compact(log: PartitionLog, now_ms: int) -> CleanupResult:
    """One cleaner pass over the cleanable segments (all but the active one)."""
    if not log.config.compacts or len(log.segments) < 2:
        return _result(log, (), ())
    cleanable = log.segments[:-1]
    latest = _latest_offset_per_key(cleanable)
    deleted: list[Deletion] = []
    cleaned = []
    for segment in cleanable:
        kept = []
        for record in segment.records:
            verdict = _clean_record(record, latest, now_ms, log.config.delete_retention_ms)
            if isinstance(verdict, Record):
                kept.append(verdict)
            else:
                deleted.append(Deletion(record.offset, verdict))
        cleaned.append(replace(segment, records=tuple(kept)))
    new_log = replace(log, segments=tuple(cleaned) + (log.segments[-1],))
    return _result(new_log, tuple(deleted), ())


def _latest_offset_per_key(segments: Sequence[Segment]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for segment in segments:
        for record in segment.records:
            if record.key is not None:
                latest[record.key] = record.offset
    return latest


def _clean_record(
    record: Record, latest: dict[str, int], now_ms: int, delete_retention_ms: int
) -> Record | DeletionReason:
    """The record to keep (possibly stamped with a delete horizon), or why it goes."""
    if record.key is None:
        return "null key"
    if record.offset < latest[record.key]:
        return "compaction"
    if record.value is not None:
        return record
    if record.delete_horizon_ms is None:
        # Consumers get delete.retention.ms from now to see the delete before it vanishes.
        return replace(record, delete_horizon_ms=now_ms + delete_retention_ms)
    if now_ms >= record.delete_horizon_ms:
        return "tombstone expired"
    return record


# --- both ---------------------------------------------------------------------------------------


def clean(log: PartitionLog, now_ms: int) -> CleanupResult:
    """Everything ``cleanup.policy`` asks for: deletion, compaction, or both (deletion first)."""
    deletion = delete_old_segments(log, now_ms)
    compaction = compact(deletion.log, now_ms)
    return _result(
        compaction.log,
        deletion.deleted + compaction.deleted,
        deletion.deleted_segments,
    )


def _result(
    log: PartitionLog, deleted: tuple[Deletion, ...], bases: tuple[int, ...]
) -> CleanupResult:
    return CleanupResult(log, deleted, bases, log.log_start_offset, segment_views(log))
