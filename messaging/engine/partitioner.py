"""How Kafka's Java producer picks the partition of a record.

An explicit partition wins; a keyed record goes to ``toPositive(murmur2(key)) % partitions``
(``BuiltInPartitioner.partitionForKey``); a record without a key goes to the sticky partition of
KIP-794 (Kafka >= 3.3, ``BuiltInPartitioner``): the producer keeps sending to one partition
until about ``batch.size`` bytes went there, then draws the next one at random, weighted towards
partitions with shorter send queues when it knows their lengths.

The sticky state is plain data passed in and handed back, and the random draws come from an
explicit seed, so a run can be replayed exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

MASK32 = 0xFFFFFFFF
MURMUR2_SEED = 0x9747B28C
MURMUR2_M = 0x5BD1E995
MURMUR2_R = 24

DEFAULT_BATCH_SIZE = 16384  # producer `batch.size`, the sticky partitioner's switch threshold
DEFAULT_RECORD_SIZE = 100  # bytes a record adds to its batch when the caller does not say

Reason = Literal["explicit", "key", "sticky"]


# --- murmur2 -------------------------------------------------------------------------


def _to_signed32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: the signed 32-bit int the Java code returns.

    Python ints never overflow, so every multiplication is masked to 32 bits to wrap like a
    Java ``int``; ``>>`` on the masked (non-negative) value is Java's unsigned ``>>>``.
    """
    length = len(data)
    h = (MURMUR2_SEED ^ length) & MASK32
    full_blocks = length - length % 4
    for i in range(0, full_blocks, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * MURMUR2_M) & MASK32
        k ^= k >> MURMUR2_R
        k = (k * MURMUR2_M) & MASK32
        h = (h * MURMUR2_M) & MASK32
        h ^= k
    tail = length % 4
    # Java's switch falls through: 3 bytes left mixes all three, 2 mixes two, 1 mixes one.
    if tail == 3:
        h ^= data[full_blocks + 2] << 16
    if tail >= 2:
        h ^= data[full_blocks + 1] << 8
    if tail >= 1:
        h ^= data[full_blocks]
        h = (h * MURMUR2_M) & MASK32
    h ^= h >> 13
    h = (h * MURMUR2_M) & MASK32
    h ^= h >> 15
    return _to_signed32(h)


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clears the sign bit (a mask, not ``abs``)."""
    return number & 0x7FFFFFFF


def _check_partition_count(num_partitions: int) -> None:
    if num_partitions < 1:
        raise ValueError(f"a topic has at least one partition (got {num_partitions})")


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """``BuiltInPartitioner.partitionForKey``: where a record with these key bytes goes."""
    _check_partition_count(num_partitions)
    return to_positive(murmur2(key)) % num_partitions


def explain_key(key: str, num_partitions: int) -> dict[str, int | str]:
    """Every step of a keyed choice, for narration.

    ``text`` reads e.g. "murmur2('alice') & 0x7fffffff = N, N % 3 = 2".
    """
    _check_partition_count(num_partitions)
    key_bytes = key.encode("utf-8")
    hashed = murmur2(key_bytes)
    positive = to_positive(hashed)
    partition = positive % num_partitions
    return {
        "key": key,
        "key_bytes": key_bytes.hex(),
        "murmur2": hashed,
        "positive": positive,
        "num_partitions": num_partitions,
        "partition": partition,
        "text": (
            f"murmur2({key!r}) & 0x7fffffff = {positive}, "
            f"{positive} % {num_partitions} = {partition}"
        ),
    }


# --- the sticky partitioner (KIP-794) ----------------------------------------------------


@dataclass(frozen=True)
class StickyState:
    """The built-in partitioner's memory for one topic, between two null-key records.

    ``current_partition``: where null-key records go now (None until the first one).
    ``bytes_in_batch``: bytes sent there since the last switch. ``draws``: random numbers used
    so far; the next draw is derived from the seed and this count, so runs replay exactly.
    """

    current_partition: int | None = None
    bytes_in_batch: int = 0
    draws: int = 0


@dataclass(frozen=True)
class PartitionChoice:
    """Where one record goes, why, and the sticky state to pass with the next record.

    ``switched`` is True when this record filled the sticky partition's quota, so the next
    null-key record goes to a newly drawn partition (which may, by chance, be the same one).
    """

    partition: int
    reason: Reason
    sticky: StickyState
    switched: bool = False


def random_int(seed: int, draw: int) -> int:
    """The ``draw``-th random non-negative 31-bit int of ``seed`` (SplitMix64, then 31 bits).

    Stands in for ``Utils.toPositive(ThreadLocalRandom.current().nextInt())``.
    """
    z = (seed * 0x9E3779B97F4A7C15 + (draw + 1) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return to_positive(z >> 32)


def _cumulative_frequencies(queue_sizes: Sequence[int]) -> list[int] | None:
    """``BuiltInPartitioner.updatePartitionLoadStats``: None means "draw uniformly".

    Each partition's weight is (longest queue + 1 - its queue), so a partition with a shorter
    queue of pending batches is more likely to be drawn.
    """
    if len(queue_sizes) < 2 or len(set(queue_sizes)) == 1:
        return None
    longest_plus_one = max(queue_sizes) + 1
    table: list[int] = []
    running = 0
    for size in queue_sizes:
        running += longest_plus_one - size
        table.append(running)
    return table


def next_sticky_partition(
    random_value: int, num_partitions: int, queue_sizes: Sequence[int] | None = None
) -> int:
    """``BuiltInPartitioner.nextPartition`` for a given non-negative random int.

    ``queue_sizes`` (one per partition) are the batches waiting to be sent to each partition;
    without them, or when they are all equal, the draw is uniform: ``random % partitions``.
    """
    _check_partition_count(num_partitions)
    if queue_sizes is not None and len(queue_sizes) != num_partitions:
        raise ValueError(
            f"queue_sizes has {len(queue_sizes)} entries for {num_partitions} partitions"
        )
    table = _cumulative_frequencies(queue_sizes) if queue_sizes is not None else None
    if table is None:
        return random_value % num_partitions
    # The first entry strictly greater than the weighted random number names the partition.
    return bisect_right(table, random_value % table[-1])


def _sticky_choice(
    state: StickyState,
    *,
    num_partitions: int,
    record_size: int,
    batch_size: int,
    seed: int,
    queue_sizes: Sequence[int] | None,
) -> PartitionChoice:
    def draw(current: StickyState) -> StickyState:
        value = random_int(seed, current.draws)
        partition = next_sticky_partition(value, num_partitions, queue_sizes)
        return StickyState(current_partition=partition, bytes_in_batch=0, draws=current.draws + 1)

    current = state
    # First null-key record, or the topic shrank under us (Kafka re-reads the metadata).
    if current.current_partition is None or current.current_partition >= num_partitions:
        current = draw(current)
    partition = current.current_partition
    assert partition is not None
    produced = current.bytes_in_batch + record_size
    # The record always lands on the current partition; filling the quota only moves the
    # *next* null-key record (RecordAccumulator appends, then updatePartitionInfo switches).
    if produced >= batch_size:
        return PartitionChoice(partition, "sticky", draw(current), switched=True)
    return PartitionChoice(partition, "sticky", replace(current, bytes_in_batch=produced))


def choose_partition(
    *,
    key: str | bytes | None,
    num_partitions: int,
    explicit_partition: int | None = None,
    sticky: StickyState | None = None,
    record_size: int = DEFAULT_RECORD_SIZE,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    queue_sizes: Sequence[int] | None = None,
) -> PartitionChoice:
    """Pick a record's partition the way the Java producer does (Kafka >= 3.3).

    ``key`` is the record key (a string is sent as its UTF-8 bytes; ``None`` is a null key,
    while ``""`` is a key). Explicit partitions and keyed records leave the sticky state alone,
    as in Kafka, where only null-key records go through the built-in sticky partitioner.
    """
    _check_partition_count(num_partitions)
    state = sticky if sticky is not None else StickyState()
    if explicit_partition is not None:
        _check_explicit_partition(explicit_partition, num_partitions)
        return PartitionChoice(explicit_partition, "explicit", state)
    if key is not None:
        key_bytes = key.encode("utf-8") if isinstance(key, str) else key
        return PartitionChoice(partition_for_key(key_bytes, num_partitions), "key", state)
    if batch_size < 1:
        raise ValueError(f"batch.size must be >= 1 for the sticky partitioner (got {batch_size})")
    if record_size < 0:
        raise ValueError(f"record_size cannot be negative (got {record_size})")
    return _sticky_choice(
        state,
        num_partitions=num_partitions,
        record_size=record_size,
        batch_size=batch_size,
        seed=seed,
        queue_sizes=queue_sizes,
    )


def _check_explicit_partition(partition: int, num_partitions: int) -> None:
    # The same two checks, and wording, as ProducerRecord's constructor and
    # KafkaProducer.waitOnMetadata.
    if partition < 0:
        raise ValueError(
            f"Invalid partition: {partition}. "
            "Partition number should always be non-negative or null."
        )
    if partition >= num_partitions:
        raise ValueError(
            f"Invalid partition given with record: {partition} is not in the range "
            f"[0...{num_partitions})."
        )
