"""Share groups (KIP-932, "queues for Kafka"): one share-partition's state, as pure functions.

A share group reads a topic the way a queue is read: every member may fetch from every
partition, and each record is handed to one consumer at a time under a lock. What is kept per
partition is Kafka's `SharePartition` (apache/kafka `core/src/main/java/kafka/server/share/`,
the pre-4.0 code of October 2024 that `../shared/kafka-reference.md` section 3 reads), with its
names:

- The share-partition start offset (SPSO, `startOffset`) and end offset (SPEO, `endOffset`).
  The records between them are in flight: each has a state, a delivery count, the member that
  holds it and when its lock runs out. SPEO is the last offset fetched while something is in
  flight, and the next offset to fetch once nothing is (Kafka's own convention, kept here).
- Record states `AVAILABLE`, `ACQUIRED`, `ACKNOWLEDGED`, `ARCHIVED`. AVAILABLE goes only to
  ACQUIRED; ACQUIRED goes to AVAILABLE, ACKNOWLEDGED or ARCHIVED; the last two are final.
- Acquiring a record raises its delivery count and locks it for
  `group.share.record.lock.duration.ms`. An acknowledgement ACCEPT makes it ACKNOWLEDGED,
  RELEASE makes it AVAILABLE again, REJECT (and GAP, for offsets the log does not hold)
  ARCHIVED. A record that would become AVAILABLE after `group.share.delivery.count.limit`
  deliveries, by a RELEASE or by its lock running out, is ARCHIVED instead.
- SPSO moves past the records that are all ACKNOWLEDGED or ARCHIVED from the start; no new
  record is fetched while `SPEO - SPSO + 1` reaches `group.share.partition.max.record.locks`,
  unless an AVAILABLE record below SPEO can be delivered again.
- The log start offset moving past SPSO (retention) archives what was AVAILABLE below it.

Where LogLab differs, so that the pages can say so: Kafka tracks a fetched batch as one entry
until its records' states differ; LogLab keeps a state per offset from the start, with the
batch it was acquired in (`InFlight.batch`). That gives Kafka's answers, except that an
acknowledgement is checked only on the offsets it names (Kafka also checks the holder of a
whole cached batch that starts before them).
Kafka's `maybeUpdateCachedStateAndOffsets` can set SPSO back to the end of the in-flight
records when the log start offset had already moved past them; LogLab never moves SPSO
backwards. Persisting the state (the share coordinator, `WriteShareGroupState`) is not
modelled: a room's database is the state.

Time is virtual milliseconds passed in by the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

# Broker defaults (apache/kafka ShareGroupConfig / GroupCoordinatorConfig, see the reference).
DEFAULT_RECORD_LOCK_DURATION_MS: Final = 30_000  # group.share.record.lock.duration.ms
MIN_RECORD_LOCK_DURATION_MS: Final = 1_000
MAX_RECORD_LOCK_DURATION_MS: Final = 3_600_000
DEFAULT_DELIVERY_COUNT_LIMIT: Final = 5  # group.share.delivery.count.limit
MIN_DELIVERY_COUNT_LIMIT: Final = 2
MAX_DELIVERY_COUNT_LIMIT: Final = 10
DEFAULT_MAX_RECORD_LOCKS: Final = 200  # group.share.partition.max.record.locks
# Kafka takes 100 to 10000; LogLab also takes fewer, so that the cap shows on a board that
# draws a few dozen records per partition.
MIN_MAX_RECORD_LOCKS: Final = 1
MAX_MAX_RECORD_LOCKS: Final = 10_000
DEFAULT_SESSION_TIMEOUT_MS: Final = 45_000  # group.share.session.timeout.ms
DEFAULT_HEARTBEAT_INTERVAL_MS: Final = 5_000  # group.share.heartbeat.interval.ms

AVAILABLE: Final = "available"
ACQUIRED: Final = "acquired"
ACKNOWLEDGED: Final = "acknowledged"
ARCHIVED: Final = "archived"
STATES: Final = (AVAILABLE, ACQUIRED, ACKNOWLEDGED, ARCHIVED)
FINAL_STATES: Final = frozenset({ACKNOWLEDGED, ARCHIVED})

# AcknowledgeType as the wire carries it (AcknowledgeType.java, SharePartition.fetchRecordState).
GAP: Final = 0
ACCEPT: Final = 1
RELEASE: Final = 2
REJECT: Final = 3
ACK_TYPE_NAMES: Final = {GAP: "GAP", ACCEPT: "ACCEPT", RELEASE: "RELEASE", REJECT: "REJECT"}
_ACK_STATE: Final = {GAP: ARCHIVED, ACCEPT: ACKNOWLEDGED, RELEASE: AVAILABLE, REJECT: ARCHIVED}


class ShareError(ValueError):
    """A refusal Kafka answers with an error code; `code` is the code's name."""

    code: str = "UNKNOWN_SERVER_ERROR"


class InvalidRecordState(ShareError):
    """INVALID_RECORD_STATE: acknowledging a record this member does not hold."""

    code = "INVALID_RECORD_STATE"


class InvalidRequest(ShareError):
    """INVALID_REQUEST: offsets past what was fetched, or an unknown acknowledge type."""

    code = "INVALID_REQUEST"


# --- configuration and state ------------------------------------------------------------------


@dataclass(frozen=True)
class ShareConfig:
    record_lock_duration_ms: int = DEFAULT_RECORD_LOCK_DURATION_MS
    delivery_count_limit: int = DEFAULT_DELIVERY_COUNT_LIMIT
    max_record_locks: int = DEFAULT_MAX_RECORD_LOCKS

    def __post_init__(self) -> None:
        bounds = (
            (
                "group.share.record.lock.duration.ms",
                self.record_lock_duration_ms,
                MIN_RECORD_LOCK_DURATION_MS,
                MAX_RECORD_LOCK_DURATION_MS,
            ),
            (
                "group.share.delivery.count.limit",
                self.delivery_count_limit,
                MIN_DELIVERY_COUNT_LIMIT,
                MAX_DELIVERY_COUNT_LIMIT,
            ),
            (
                "group.share.partition.max.record.locks",
                self.max_record_locks,
                MIN_MAX_RECORD_LOCKS,
                MAX_MAX_RECORD_LOCKS,
            ),
        )
        for name, value, low, high in bounds:
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high} (got {value}).")


@dataclass(frozen=True)
class InFlight:
    """One in-flight offset. `member_id` is "" unless ACQUIRED; `batch` is the first offset of
    the acquisition that brought it in (Kafka's cached batch), which decides how much one
    acquisition takes."""

    offset: int
    state: str
    delivery_count: int
    member_id: str = ""
    lock_until_ms: int | None = None
    batch: int = 0


@dataclass(frozen=True)
class SharePartition:
    start_offset: int = 0
    end_offset: int = 0
    in_flight: tuple[InFlight, ...] = ()  # by offset

    @property
    def spso(self) -> int:
        return self.start_offset

    @property
    def speo(self) -> int:
        return self.end_offset

    def record(self, offset: int) -> InFlight | None:
        return next((r for r in self.in_flight if r.offset == offset), None)


@dataclass(frozen=True)
class Batch:
    """A batch the fetch read from the log: its base and last offset (compaction can leave
    offsets in between that the log no longer holds)."""

    base_offset: int
    last_offset: int


@dataclass(frozen=True)
class AcquiredRecords:
    """ShareFetch's AcquiredRecords: a range handed to the member, with its delivery count."""

    first_offset: int
    last_offset: int
    delivery_count: int

    def offsets(self) -> range:
        return range(self.first_offset, self.last_offset + 1)


@dataclass(frozen=True)
class Acknowledgement:
    """ShareAcknowledge's AcknowledgementBatch: one type for the whole range, or one per offset."""

    first_offset: int
    last_offset: int
    types: tuple[int, ...]


@dataclass(frozen=True)
class Change:
    """What happened to one offset, for the board's narration."""

    offset: int
    state: str
    delivery_count: int
    why: str  # acquired, accept, release, reject, gap, lock-expired, member-left, log-start


def start(offset: int) -> SharePartition:
    """A share-partition nobody fetched from yet, starting at `offset` (chosen by
    `share.auto.offset.reset`: the log end for `latest`, the log start for `earliest`)."""
    return SharePartition(start_offset=offset, end_offset=offset)


def start_offset_for(reset: str, *, log_start_offset: int, log_end_offset: int) -> int:
    if reset == "earliest":
        return log_start_offset
    if reset == "latest":
        return log_end_offset
    raise ValueError("share.auto.offset.reset is latest or earliest.")


# --- reads ------------------------------------------------------------------------------------


def next_fetch_offset(p: SharePartition) -> int:
    """Where the next fetch reads from: the first AVAILABLE in-flight offset, else past SPEO."""
    available = next((r.offset for r in p.in_flight if r.state == AVAILABLE), None)
    if available is not None:
        return available
    if not p.in_flight or p.start_offset > p.in_flight[-1].offset:
        return p.end_offset
    return p.end_offset + 1


def in_flight_count(p: SharePartition) -> int:
    """`SPEO - SPSO + 1` while something is cached: what max.record.locks caps."""
    if not p.in_flight:
        return 0
    return max(0, p.end_offset - p.start_offset + 1)


def can_acquire(p: SharePartition, config: ShareConfig) -> bool:
    """`canAcquireRecords`: a fetch may acquire if an AVAILABLE record can be delivered again,
    or while fewer than max.record.locks records are in flight."""
    if next_fetch_offset(p) != p.end_offset + 1:
        return True
    return in_flight_count(p) < config.max_record_locks


def held_by(p: SharePartition, member_id: str) -> tuple[InFlight, ...]:
    return tuple(r for r in p.in_flight if r.state == ACQUIRED and r.member_id == member_id)


def lock_due_ms(p: SharePartition) -> int | None:
    """When the next acquisition lock runs out, None when nothing is acquired."""
    deadlines = [r.lock_until_ms for r in p.in_flight if r.lock_until_ms is not None]
    return min(deadlines) if deadlines else None


def state_counts(p: SharePartition) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for r in p.in_flight:
        counts[r.state] += 1
    return counts


# --- acquiring --------------------------------------------------------------------------------


def acquire(
    p: SharePartition,
    member_id: str,
    batches: Sequence[Batch],
    *,
    max_records: int,
    now_ms: int,
    config: ShareConfig,
) -> tuple[SharePartition, tuple[AcquiredRecords, ...]]:
    """`SharePartition.acquire`: what a ShareFetch of `batches` hands to `member_id`.

    Records already in flight are taken if AVAILABLE (their delivery count goes up); the rest of
    the fetch, past what is cached, becomes a new in-flight batch. `max_records` is a soft limit,
    as in Kafka: a cached batch is taken whole, and new records run to the end of the log batch
    that holds the limit. The caller checks `can_acquire` first, as the broker does before it
    fetches. Every acquired offset is locked until `now_ms + record.lock.duration.ms`.
    """
    if max_records <= 0 or not batches:
        return p, ()
    first, last = batches[0].base_offset, batches[-1].last_offset
    lock_until = now_ms + config.record_lock_duration_ms
    records = {r.offset: r for r in p.in_flight}
    spans = _cached_batches(p)
    base = first
    floor = [key for key in spans if key <= first]
    if floor and spans[floor[-1]] >= first:
        base = floor[-1]
    overlapping = [key for key in spans if base <= key <= last]
    taken: list[InFlight] = []
    count = 0
    new_from: int | None = first
    if overlapping:
        for key in overlapping:
            if count >= max_records:
                break
            for offset in range(max(key, first), min(spans[key], last) + 1):
                record = records.get(offset)
                if record is None or record.batch != key or record.state != AVAILABLE:
                    continue
                record = replace(
                    record,
                    state=ACQUIRED,
                    delivery_count=record.delivery_count + 1,
                    member_id=member_id,
                    lock_until_ms=lock_until,
                )
                records[offset] = record
                taken.append(record)
                count += 1
        tail = spans[overlapping[-1]]
        new_from = tail + 1 if count < max_records and tail < last else None
    start_offset, end_offset = p.start_offset, p.end_offset
    if new_from is not None:
        fresh = _new_batch(p, records, batches, new_from, last, max_records - count)
        if fresh:
            for record in fresh:
                records[record.offset] = replace(
                    record, member_id=member_id, lock_until_ms=lock_until
                )
                taken.append(records[record.offset])
            if min(records) == fresh[0].offset:
                start_offset = fresh[0].offset
            end_offset = fresh[-1].offset
    state = replace(
        p,
        start_offset=start_offset,
        end_offset=end_offset,
        in_flight=tuple(records[o] for o in sorted(records)),
    )
    return state, _ranges(taken)


def _new_batch(
    p: SharePartition,
    records: Mapping[int, InFlight],
    batches: Sequence[Batch],
    first: int,
    last: int,
    max_records: int,
) -> list[InFlight]:
    """`acquireNewBatchRecords`: offsets `first..` of the fetch, none of them cached yet."""
    if not records and p.end_offset > first:
        first = p.end_offset
    if first > last or max_records <= 0:
        return []
    end = last
    if max_records < last - first + 1:
        end = _batch_end(batches, first + max_records - 1)
    return [InFlight(o, ACQUIRED, 1, batch=first) for o in range(first, end + 1)]


def _batch_end(batches: Sequence[Batch], offset: int) -> int:
    """`lastOffsetFromBatchWithRequestOffset`: the last offset of the log batch holding
    `offset`, or `offset` itself when it falls between batches."""
    holder = None
    for batch in batches:
        if offset >= batch.base_offset:
            holder = batch
            continue
        break
    if holder is not None and offset <= holder.last_offset:
        return holder.last_offset
    return offset


def _cached_batches(p: SharePartition) -> dict[int, int]:
    """Each cached batch's first offset -> its last cached offset, in order."""
    spans: dict[int, int] = {}
    for record in p.in_flight:
        spans[record.batch] = max(spans.get(record.batch, record.offset), record.offset)
    return dict(sorted(spans.items()))


def _ranges(taken: Iterable[InFlight]) -> tuple[AcquiredRecords, ...]:
    """Acquired offsets as ShareFetch ranges: runs of consecutive offsets with one count."""
    out: list[AcquiredRecords] = []
    for record in sorted(taken, key=lambda r: r.offset):
        follows = out and out[-1].last_offset == record.offset - 1
        if follows and out[-1].delivery_count == record.delivery_count:
            out[-1] = replace(out[-1], last_offset=record.offset)
            continue
        out.append(AcquiredRecords(record.offset, record.offset, record.delivery_count))
    return tuple(out)


# --- acknowledging, releasing, timing out -------------------------------------------------------


def acknowledge(
    p: SharePartition,
    member_id: str,
    acknowledgements: Sequence[Acknowledgement],
    *,
    config: ShareConfig,
) -> tuple[SharePartition, tuple[Change, ...]]:
    """`SharePartition.acknowledge`: all of the acknowledgements, or none of them.

    Each named offset from SPSO on must be ACQUIRED by `member_id` (else INVALID_RECORD_STATE);
    offsets below SPSO are skipped (already archived), and offsets past what was fetched are
    INVALID_REQUEST. A RELEASE at the delivery count limit archives the record.
    """
    records = {r.offset: r for r in p.in_flight}
    changes: list[Change] = []
    for ack in acknowledgements:
        types = _ack_types(ack)
        if ack.last_offset < p.start_offset:
            continue
        for offset in _ack_offsets(p, records, ack):
            if offset < p.start_offset:
                continue
            record = records[offset]
            if record.state != ACQUIRED:
                raise InvalidRecordState(
                    f"The batch cannot be acknowledged: offset {offset} is not acquired "
                    f"(it is {record.state})."
                )
            if record.member_id != member_id:
                raise InvalidRecordState(
                    f"Member {member_id} does not hold offset {offset}; {record.member_id} does."
                )
            kind = types[offset - ack.first_offset] if len(types) > 1 else types[0]
            record = _settle(record, _ACK_STATE[kind], config)
            records[offset] = record
            changes.append(
                Change(offset, record.state, record.delivery_count, ACK_TYPE_NAMES[kind].lower())
            )
    state = replace(p, in_flight=tuple(records[o] for o in sorted(records)))
    return _offsets_update(state), tuple(changes)


def _ack_types(ack: Acknowledgement) -> tuple[int, ...]:
    if ack.first_offset > ack.last_offset or ack.first_offset < 0:
        raise InvalidRequest(
            f"An acknowledgement's offsets {ack.first_offset}..{ack.last_offset} are not a range."
        )
    if len(ack.types) not in (1, ack.last_offset - ack.first_offset + 1):
        raise InvalidRequest(
            "An acknowledgement carries one type for its whole range, or one per offset."
        )
    for kind in ack.types:
        if kind not in _ACK_STATE:
            raise InvalidRequest(f"Invalid acknowledge type: {kind}.")
    return tuple(ack.types)


def _ack_offsets(
    p: SharePartition, records: Mapping[int, InFlight], ack: Acknowledgement
) -> list[int]:
    """`fetchSubMapForAcknowledgementBatch`: the cached offsets an acknowledgement names,
    refused when it starts before anything cached or runs past what was fetched."""
    spans = {}
    for record in sorted(records.values(), key=lambda r: r.offset):
        spans[record.batch] = max(spans.get(record.batch, record.offset), record.offset)
    keys = sorted(spans)
    floor = [key for key in keys if key <= ack.first_offset]
    if not floor:
        moved = ack.first_offset < p.start_offset <= ack.last_offset
        floor = [key for key in keys if key <= p.start_offset] if moved else []
        if not floor:
            raise InvalidRecordState(
                "Batch record not found: the acknowledged offsets were never acquired."
            )
    last_cached = spans[max(key for key in keys if key <= ack.last_offset)]
    if last_cached < ack.first_offset:
        raise InvalidRequest(
            "Batch record not found: the first offset acknowledged is past the acquired records."
        )
    if ack.last_offset > last_cached:
        raise InvalidRequest(
            "Batch record not found: the last offset acknowledged is past the acquired records."
        )
    return [o for o in sorted(records) if ack.first_offset <= o <= ack.last_offset]


def _settle(
    record: InFlight, target: str, config: ShareConfig, *, archive: bool = False
) -> InFlight:
    """`InFlightState.tryUpdateState` out of ACQUIRED: back to AVAILABLE unless the delivery
    count reached the limit (or the offset is below SPSO: `archive`), else final."""
    if target == AVAILABLE and (archive or record.delivery_count >= config.delivery_count_limit):
        target = ARCHIVED
    return replace(record, state=target, member_id="", lock_until_ms=None)


def release_member(
    p: SharePartition, member_id: str, *, config: ShareConfig
) -> tuple[SharePartition, tuple[Change, ...]]:
    """`releaseAcquiredRecords`: the member's share session closed (it left, or was fenced);
    what it held becomes AVAILABLE for the others, or ARCHIVED at the limit or below SPSO."""
    return _release(p, config, lambda r: r.member_id == member_id, "member-left")


def expire_locks(
    p: SharePartition, *, now_ms: int, config: ShareConfig
) -> tuple[SharePartition, tuple[Change, ...]]:
    """The acquisition lock timer: every lock due by `now_ms` hands its record back."""
    return _release(
        p,
        config,
        lambda r: r.lock_until_ms is not None and r.lock_until_ms <= now_ms,
        "lock-expired",
    )


def _release(
    p: SharePartition, config: ShareConfig, which: Callable[[InFlight], bool], why: str
) -> tuple[SharePartition, tuple[Change, ...]]:
    changes: list[Change] = []
    settled: list[InFlight] = []
    for record in p.in_flight:
        if record.state == ACQUIRED and which(record):
            record = _settle(record, AVAILABLE, config, archive=record.offset < p.start_offset)
            changes.append(Change(record.offset, record.state, record.delivery_count, why))
        settled.append(record)
    if not changes:
        return p, ()
    return _offsets_update(replace(p, in_flight=tuple(settled))), tuple(changes)


def move_log_start(
    p: SharePartition, log_start_offset: int
) -> tuple[SharePartition, tuple[Change, ...]]:
    """`updateCacheAndOffsets`: retention moved the log start past SPSO. AVAILABLE records
    below it are archived; acquired ones stay with their holder until acknowledged or timed
    out (then archived, being below SPSO)."""
    if log_start_offset <= p.start_offset:
        return p, ()
    if not p.in_flight:
        return replace(p, start_offset=log_start_offset, end_offset=log_start_offset), ()
    changes: list[Change] = []
    records: list[InFlight] = []
    for record in p.in_flight:
        if record.state == AVAILABLE and p.start_offset <= record.offset < log_start_offset:
            record = replace(record, state=ARCHIVED, member_id="")
            changes.append(Change(record.offset, ARCHIVED, record.delivery_count, "log-start"))
        records.append(record)
    moved = replace(
        p,
        start_offset=log_start_offset,
        end_offset=max(p.end_offset, log_start_offset),
        in_flight=tuple(records),
    )
    # Kafka leaves a final record below the new start cached until the next acknowledgement
    # tidies up; LogLab tidies at once, so that nothing looks in flight that is not.
    return _offsets_update(moved), tuple(changes)


def _offsets_update(p: SharePartition) -> SharePartition:
    """`maybeUpdateCachedStateAndOffsets`: SPSO moves past the final records at the start,
    whole batches that are final leave the cache, and an all-final cache empties."""
    if not p.in_flight:
        return p
    at = p.record(p.start_offset)
    if at is None:
        below = [r for r in p.in_flight if r.offset < p.start_offset]
        at = below[-1] if below else None
    if at is None or at.state not in FINAL_STATES:
        return p
    last_final = -1
    for record in p.in_flight:
        if record.state not in FINAL_STATES:
            break
        last_final = record.offset
    if last_final == -1:
        return p
    if last_final == p.in_flight[-1].offset:
        after = max(p.start_offset, last_final + 1)
        return replace(p, start_offset=after, end_offset=max(p.end_offset, after), in_flight=())
    following = next(r.offset for r in p.in_flight if r.offset > last_final)
    spans = _cached_batches(p)
    done = {key for key, end in spans.items() if end <= last_final}
    return replace(
        p,
        start_offset=max(p.start_offset, following),
        in_flight=tuple(r for r in p.in_flight if r.batch not in done),
    )


# --- simulated consumers ------------------------------------------------------------------------


def consumer_outcome(
    *,
    seed: str,
    member_id: str,
    partition: int,
    offset: int,
    delivery_count: int,
    failure_rate: float,
    on_failure: str,
) -> int:
    """What a simulated share consumer does with a record it processed: ACCEPT, or on a
    failure (with probability `failure_rate`) RELEASE (a retryable error) or REJECT (a poison
    record). Decided by a hash, so a replay of the same room gives the same outcomes."""
    text = f"{seed}|{member_id}|{partition}|{offset}|{delivery_count}"
    digest = hashlib.sha256(text.encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    if draw >= failure_rate:
        return ACCEPT
    return REJECT if on_failure == "reject" else RELEASE


# --- serialisation ------------------------------------------------------------------------------


def to_dict(p: SharePartition) -> dict:
    return {
        "start_offset": p.start_offset,
        "end_offset": p.end_offset,
        "in_flight": [
            [r.offset, r.state, r.delivery_count, r.member_id, r.lock_until_ms, r.batch]
            for r in p.in_flight
        ],
    }


def from_dict(data: Mapping[str, object]) -> SharePartition:
    rows = data.get("in_flight") or []
    return SharePartition(
        start_offset=int(data.get("start_offset", 0)),  # type: ignore[arg-type]
        end_offset=int(data.get("end_offset", 0)),  # type: ignore[arg-type]
        in_flight=tuple(
            InFlight(
                offset=int(o),
                state=str(s),
                delivery_count=int(c),
                member_id=str(m),
                lock_until_ms=None if u is None else int(u),
                batch=int(b),
            )
            for o, s, c, m, u, b in rows  # type: ignore[union-attr]
        ),
    )
