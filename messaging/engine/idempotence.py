"""The broker's checks of an idempotent producer's batches, per (producer id, partition).

Kafka's rules (`ProducerStateEntry.java`, `ProducerAppendInfo.java`, and the order in which
`UnifiedLog.analyzeAndValidateProducerState` applies them to a client's batch):

1. Duplicate: the producer's entry keeps its last NUM_BATCHES_TO_RETAIN (5) batches. A batch of
   the same epoch whose (base sequence, last sequence) is exactly one of them was appended
   before (its response got lost and the producer retried): nothing is appended and the answer
   is success with the original batch's first offset and timestamp. That is why producers cap
   `max.in.flight.requests.per.connection` at 5 with idempotence.
2. An epoch older than the entry's: INVALID_PRODUCER_EPOCH (Kafka 2.7+; PRODUCER_FENCED before).
3. A newer epoch must start at sequence 0, unless the entry has no epoch at all; the same epoch
   must continue at last sequence + 1, where 0 follows Integer.MAX_VALUE: else
   OUT_OF_ORDER_SEQUENCE_NUMBER. A retry of a batch older than the last 5 lands here too.
4. No entry at all (a producer the partition never saw, or whose state retention removed):
   any sequence is accepted, as Kafka does when its entry has no epoch.

A batch without a producer id (-1, or any negative id: Kafka's `hasProducerId` is `id >= 0`) is
not idempotent and is never checked. `check` only judges; after an "append" the caller writes
the records and then calls `record` with the offset the batch got, which starts a new epoch's
list afresh, as `ProducerStateEntry.maybeUpdateProducerEpoch` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

NUM_BATCHES_TO_RETAIN = 5
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
INT32_MAX = 2**31 - 1

OUT_OF_ORDER_SEQUENCE_NUMBER = "OUT_OF_ORDER_SEQUENCE_NUMBER"
INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"


@dataclass(frozen=True)
class BatchIdentity:
    producer_id: int
    producer_epoch: int
    base_sequence: int
    last_sequence: int  # increment_sequence(base_sequence, last_offset_delta)


@dataclass(frozen=True)
class RetainedBatch:
    first_sequence: int
    last_sequence: int
    first_offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class ProducerEntry:
    producer_id: int
    producer_epoch: int
    batches: tuple[RetainedBatch, ...]  # oldest first, at most NUM_BATCHES_TO_RETAIN

    def to_dict(self) -> dict:
        """The entry as plain JSON data."""
        return {
            "producer_id": self.producer_id,
            "producer_epoch": self.producer_epoch,
            "batches": [
                {
                    "first_sequence": b.first_sequence,
                    "last_sequence": b.last_sequence,
                    "first_offset": b.first_offset,
                    "timestamp_ms": b.timestamp_ms,
                }
                for b in self.batches
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProducerEntry:
        """The entry `to_dict` wrote, equal to the original; keys it does not know are ignored."""
        batches = data["batches"]
        if not isinstance(batches, list | tuple):
            raise ValueError("batches must be a list")
        return cls(
            producer_id=int(data["producer_id"]),
            producer_epoch=int(data["producer_epoch"]),
            batches=tuple(
                RetainedBatch(
                    first_sequence=int(b["first_sequence"]),
                    last_sequence=int(b["last_sequence"]),
                    first_offset=int(b["first_offset"]),
                    timestamp_ms=int(b["timestamp_ms"]),
                )
                for b in batches
            ),
        )


@dataclass(frozen=True)
class Verdict:
    action: Literal["append", "duplicate", "error"]
    error: str | None = None  # Kafka's error name when action == "error"
    first_offset: int | None = None  # the original batch's, when action == "duplicate"
    timestamp_ms: int | None = None  # the original batch's, when action == "duplicate"


APPEND = Verdict("append")


def increment_sequence(sequence: int, increment: int) -> int:
    """`sequence + increment`, wrapping to 0 after Integer.MAX_VALUE (DefaultRecordBatch's)."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def in_sequence(last_sequence: int, next_sequence: int) -> bool:
    """Whether `next_sequence` directly follows `last_sequence` (ProducerAppendInfo.inSequence)."""
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == INT32_MAX)


def check(entry: ProducerEntry | None, batch: BatchIdentity) -> Verdict:
    """What the broker does with a client's batch given the producer's entry on the partition."""
    if batch.producer_id < 0 or entry is None:
        return APPEND
    if entry.producer_id != batch.producer_id:
        raise ValueError(f"entry of producer {entry.producer_id} for producer {batch.producer_id}")
    if batch.producer_epoch == entry.producer_epoch:
        for retained in entry.batches:
            if (retained.first_sequence, retained.last_sequence) == (
                batch.base_sequence,
                batch.last_sequence,
            ):
                return Verdict(
                    "duplicate",
                    first_offset=retained.first_offset,
                    timestamp_ms=retained.timestamp_ms,
                )
    if batch.producer_epoch < entry.producer_epoch:
        return Verdict("error", error=INVALID_PRODUCER_EPOCH)
    if batch.producer_epoch != entry.producer_epoch:
        if batch.base_sequence != 0 and entry.producer_epoch != NO_PRODUCER_EPOCH:
            return Verdict("error", error=OUT_OF_ORDER_SEQUENCE_NUMBER)
        return APPEND
    # Same epoch. An entry that kept its epoch but lost its batches (Kafka: after a transaction
    # marker, or retention) has last sequence -1, so only 0 continues it.
    last_sequence = entry.batches[-1].last_sequence if entry.batches else NO_SEQUENCE
    if entry.producer_epoch != NO_PRODUCER_EPOCH and not in_sequence(
        last_sequence, batch.base_sequence
    ):
        return Verdict("error", error=OUT_OF_ORDER_SEQUENCE_NUMBER)
    return APPEND


def record(
    entry: ProducerEntry | None, batch: BatchIdentity, *, first_offset: int, timestamp_ms: int
) -> ProducerEntry:
    """The entry after `batch` was appended at `first_offset` (its max timestamp: `timestamp_ms`).

    A new epoch drops the old epoch's batches; the oldest batch goes once 5 are kept.
    """
    if batch.producer_id < 0:
        raise ValueError("a batch without a producer id is not tracked")
    if entry is not None and entry.producer_id != batch.producer_id:
        raise ValueError(f"entry of producer {entry.producer_id} for producer {batch.producer_id}")
    retained = RetainedBatch(
        first_sequence=batch.base_sequence,
        last_sequence=batch.last_sequence,
        first_offset=first_offset,
        timestamp_ms=timestamp_ms,
    )
    kept: tuple[RetainedBatch, ...] = ()
    if entry is not None and entry.producer_epoch == batch.producer_epoch:
        kept = entry.batches[-(NUM_BATCHES_TO_RETAIN - 1) :]
    return ProducerEntry(
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        batches=(*kept, retained),
    )
