"""Tests for messaging.engine.partitioner.

Reference values come from published test vectors, never from a second implementation:
- Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils/);
- librdkafka's unittest_murmur2 (src/rdmurmur2.c), whose expected values were produced with
  Java's Utils.murmur2;
- librdkafka's tests/0048-partitioner.c, expected partitions of its "murmur2" partitioner
  ("using tests/java/Murmur2Cli"), which is Kafka's toPositive(murmur2(key)) % partitions;
- Kafka's BuiltInPartitionerTest and DefaultPartitionerTest.
Not encoded: BuiltInPartitionerTest.unavailablePartitionsTest (the simulator has no leaderless
partitions) and DefaultPartitionerTest's round-robin cases (the pre-KIP-794 partitioner).
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.partitioner import (
    DEFAULT_BATCH_SIZE,
    PartitionChoice,
    StickyState,
    choose_partition,
    explain_key,
    murmur2,
    next_sticky_partition,
    partition_for_key,
    random_int,
    to_positive,
)


def signed(value: int) -> int:
    """A 32-bit pattern written in hex (as C tests write it) read as Java's signed int."""
    return value - (1 << 32) if value >= 1 << 31 else value


# UtilsTest.testMurmur2
KAFKA_UTILS_TEST_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]

# librdkafka unittest_murmur2: "1234" and "PreAmble..." from offsets 0..3 (the C code has
# separate paths for unaligned input), and the empty key.
UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
LIBRDKAFKA_UNITTEST_MURMUR2 = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (UNALIGNED, 0x78424F1C),
    (UNALIGNED[1:], 0x4A62B377),
    (UNALIGNED[2:], 0xE0E4E09E),
    (UNALIGNED[3:], 0x62B8B43F),
    (b"", 0x106E08D9),
]

# librdkafka tests/0048-partitioner.c, do_test_partitioners, partitioner "murmur2": the
# positive hash of each key; the test checks hash % 17 (and % 7 in quick mode).
LIBRDKAFKA_0048_POSITIVE_HASHES = [
    (b"", 0x106E08D9),
    (b"23456", 0x058D780F),  # raw murmur2 is negative: toPositive masks, it does not abs()
    (b"this is another string with more length to it perhaps", 0x4F7703DA),
    (b"hejsan", 0x5EC19395),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST_MURMUR2)
def test_murmur2_matches_kafka_utils_test(data: bytes, expected: int) -> None:
    # UtilsTest.testMurmur2
    assert murmur2(data) == expected


@pytest.mark.parametrize(("data", "expected"), LIBRDKAFKA_UNITTEST_MURMUR2)
def test_murmur2_matches_librdkafka_java_vectors(data: bytes, expected: int) -> None:
    # librdkafka rdmurmur2.c unittest_murmur2 (java_murmur2_results)
    assert murmur2(data) == signed(expected)


@pytest.mark.parametrize("num_partitions", [17, 7])
@pytest.mark.parametrize(("key", "positive"), LIBRDKAFKA_0048_POSITIVE_HASHES)
def test_partition_for_key_matches_librdkafka_murmur2_partitioner(
    key: bytes, positive: int, num_partitions: int
) -> None:
    # librdkafka tests/0048-partitioner.c: exp_part = hash % part_cnt (17, or 7 when quick)
    assert to_positive(murmur2(key)) == positive
    assert partition_for_key(key, num_partitions) == positive % num_partitions


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST_MURMUR2)
def test_partition_for_key_is_masked_hash_modulo_count(data: bytes, expected: int) -> None:
    # BuiltInPartitioner.partitionForKey on UtilsTest's keys: toPositive is n & 0x7fffffff.
    for count in (1, 3, 6, 10, 12, 100):
        assert partition_for_key(data, count) == (expected & 0x7FFFFFFF) % count


def test_to_positive_is_a_mask_not_abs() -> None:
    # Utils.toPositive: Integer.MIN_VALUE maps to 0, where abs() would overflow.
    assert to_positive(-(1 << 31)) == 0
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-973932308) == 1173551340  # not 973932308


def test_key_partition_is_stable() -> None:
    # DefaultPartitionerTest.testKeyPartitionIsStable
    first = choose_partition(key="key", num_partitions=3)
    assert choose_partition(key="key", num_partitions=3) == first
    assert first.reason == "key"


def test_string_keys_are_hashed_as_utf8() -> None:
    key = "clé-🔑"
    expected = partition_for_key(key.encode("utf-8"), 12)
    assert choose_partition(key=key, num_partitions=12).partition == expected
    assert choose_partition(key=key.encode("utf-8"), num_partitions=12).partition == expected


def test_empty_key_is_a_key_not_a_null_key() -> None:
    choice = choose_partition(key="", num_partitions=17)
    assert choice.reason == "key"
    assert choice.partition == 0x106E08D9 % 17


def test_explain_key_shows_every_step() -> None:
    explained = explain_key("21", 3)
    positive = -973932308 & 0x7FFFFFFF  # UtilsTest: murmur2("21") = -973932308
    assert explained == {
        "key": "21",
        "key_bytes": "3231",
        "murmur2": -973932308,
        "positive": positive,
        "num_partitions": 3,
        "partition": positive % 3,
        "text": f"murmur2('21') & 0x7fffffff = {positive}, {positive} % 3 = {positive % 3}",
    }
    assert explain_key("alice", 3)["partition"] == partition_for_key(b"alice", 3)


# --- explicit partitions -----------------------------------------------------------------


def test_explicit_partition_wins_over_the_key() -> None:
    keyed = choose_partition(key="alice", num_partitions=6).partition
    explicit = (keyed + 1) % 6
    choice = choose_partition(key="alice", num_partitions=6, explicit_partition=explicit)
    assert (choice.partition, choice.reason) == (explicit, "explicit")


def test_explicit_partition_out_of_range_is_rejected_like_kafka() -> None:
    # KafkaProducer.waitOnMetadata's message
    message = r"Invalid partition given with record: 3 is not in the range \[0\.\.\.3\)\."
    with pytest.raises(ValueError, match=message):
        choose_partition(key=None, num_partitions=3, explicit_partition=3)


def test_negative_explicit_partition_is_rejected_like_kafka() -> None:
    # ProducerRecord's constructor
    with pytest.raises(ValueError, match="Partition number should always be non-negative"):
        choose_partition(key="k", num_partitions=3, explicit_partition=-1)


def test_a_topic_needs_a_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        choose_partition(key="k", num_partitions=0)
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for_key(b"k", 0)


def test_keyed_and_explicit_records_leave_the_sticky_state_alone() -> None:
    # RecordAccumulator only updates the built-in partitioner for records it placed itself.
    state = StickyState(current_partition=2, bytes_in_batch=500, draws=4)
    assert choose_partition(key="k", num_partitions=3, sticky=state).sticky == state
    explicit = choose_partition(key=None, num_partitions=3, explicit_partition=0, sticky=state)
    assert explicit.sticky == state


# --- the sticky partitioner (BuiltInPartitioner, KIP-794) ---------------------------------


def produce_null_keys(
    count: int, *, num_partitions: int, seed: int = 0, **options: int
) -> list[PartitionChoice]:
    state = StickyState()
    choices = []
    for _ in range(count):
        choice = choose_partition(
            key=None, num_partitions=num_partitions, sticky=state, seed=seed, **options
        )
        choices.append(choice)
        state = choice.sticky
    return choices


def test_sticky_partitioning_switches_after_batch_size() -> None:
    # BuiltInPartitionerTest.testStickyPartitioning: sticky batch size of 3 one-byte records;
    # the partition holds for 3 records and is redrawn after the third. With Kafka's mocked
    # random numbers 0, 1 the two draws are partitions 0 and 1 of 3.
    assert [next_sticky_partition(r, 3) for r in (0, 1)] == [0, 1]
    choices = produce_null_keys(4, num_partitions=3, batch_size=3, record_size=1)
    assert {c.partition for c in choices[:3]} == {choices[0].partition}
    assert [c.switched for c in choices] == [False, False, True, False]
    assert all(c.reason == "sticky" for c in choices)
    assert choices[3].partition == choices[2].sticky.current_partition
    assert choices[2].sticky == StickyState(choices[3].partition, 0, draws=2)


def test_sticky_partitioning_with_one_partition() -> None:
    # BuiltInPartitionerTest.testStickyPartitioning: "switching works even when there is one
    # partition" (sticky batch size 1).
    choices = produce_null_keys(10, num_partitions=1, batch_size=1, record_size=1)
    assert [c.partition for c in choices] == [0] * 10
    assert all(c.switched for c in choices)


def test_adaptive_partitioning_favours_short_queues() -> None:
    # BuiltInPartitionerTest.adaptivePartitionsTest: queue sizes 5, 0, 3, 0, 1 and the mocked
    # random numbers 0, 1, 2, ... over two cycles of the cumulative frequency table (whose end
    # is 21): each partition is drawn (max queue + 1 - its queue) times per cycle.
    queue_sizes = [5, 0, 3, 0, 1]
    cycle = sum(6 - q for q in queue_sizes)
    drawn = Counter(next_sticky_partition(r, 5, queue_sizes) for r in range(cycle * 2))
    assert [drawn[p] for p in range(5)] == [(6 - q) * 2 for q in queue_sizes]


def test_equal_queue_sizes_mean_a_uniform_draw() -> None:
    # updatePartitionLoadStats: all queues equal -> no adaptive logic, random % partitions.
    assert [next_sticky_partition(r, 4, [2, 2, 2, 2]) for r in range(8)] == [0, 1, 2, 3] * 2


def test_sticky_batch_size_must_be_positive() -> None:
    # BuiltInPartitionerTest.testStickyBatchSizeMoreThatZero
    with pytest.raises(ValueError, match="batch.size"):
        choose_partition(key=None, num_partitions=3, batch_size=0)
    assert choose_partition(key=None, num_partitions=3, batch_size=1).reason == "sticky"


def test_null_keys_stick_for_about_one_batch_of_16384_bytes() -> None:
    # batch.size=16384 and 100-byte records: 164 records fill it (16,400 bytes), so records
    # 1..164 share a partition and record 165 goes to a freshly drawn one.
    choices = produce_null_keys(165, num_partitions=6, record_size=100)
    assert DEFAULT_BATCH_SIZE == 16384
    assert len({c.partition for c in choices[:164]}) == 1
    assert [i for i, c in enumerate(choices) if c.switched] == [163]
    assert choices[164].partition == choices[163].sticky.current_partition


def test_null_keys_spread_over_all_partitions_in_the_long_run() -> None:
    choices = produce_null_keys(3000, num_partitions=4, batch_size=1000, record_size=100)
    per_partition = Counter(c.partition for c in choices)
    assert set(per_partition) == {0, 1, 2, 3}
    assert all(count >= 400 for count in per_partition.values())


def test_sticky_choices_replay_from_the_seed() -> None:
    first = produce_null_keys(500, num_partitions=5, seed=42, batch_size=300, record_size=100)
    again = produce_null_keys(500, num_partitions=5, seed=42, batch_size=300, record_size=100)
    other = produce_null_keys(500, num_partitions=5, seed=43, batch_size=300, record_size=100)
    assert first == again
    assert [c.partition for c in first] != [c.partition for c in other]


def test_random_numbers_are_31_bit_and_seeded() -> None:
    values = [random_int(7, draw) for draw in range(1000)]
    assert all(0 <= v < 1 << 31 for v in values)
    assert len(set(values)) == 1000
    assert values == [random_int(7, draw) for draw in range(1000)]


def test_sticky_partition_is_redrawn_when_the_topic_shrinks() -> None:
    stale = StickyState(current_partition=5, bytes_in_batch=10, draws=3)
    choice = choose_partition(key=None, num_partitions=3, sticky=stale)
    assert 0 <= choice.partition < 3
    assert choice.sticky.draws == 4


def test_queue_sizes_must_match_the_partition_count() -> None:
    with pytest.raises(ValueError, match="queue_sizes"):
        choose_partition(key=None, num_partitions=3, queue_sizes=[1, 2])


# --- properties ----------------------------------------------------------------------


@given(data=st.binary(max_size=64), count=st.integers(1, 1000))
def test_keyed_partition_properties(data: bytes, count: int) -> None:
    hashed = murmur2(data)
    assert -(1 << 31) <= hashed < 1 << 31
    assert 0 <= partition_for_key(data, count) < count
    assert partition_for_key(data, count) == (hashed & 0x7FFFFFFF) % count


@given(key=st.text(max_size=20), count=st.integers(1, 64))
def test_choose_partition_for_string_keys(key: str, count: int) -> None:
    choice = choose_partition(key=key, num_partitions=count)
    assert choice == PartitionChoice(partition_for_key(key.encode(), count), "key", StickyState())
    explained = explain_key(key, count)
    assert explained["partition"] == choice.partition
    assert explained["murmur2"] == murmur2(key.encode())


@settings(max_examples=50)
@given(
    count=st.integers(1, 12),
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=60),
    batch_size=st.integers(1, 20000),
    seed=st.integers(0, 2**32),
    queues=st.none() | st.lists(st.integers(0, 9), min_size=12, max_size=12),
)
def test_sticky_state_invariants(
    count: int, sizes: list[int], batch_size: int, seed: int, queues: list[int] | None
) -> None:
    state = StickyState()
    queue_sizes = queues[:count] if queues is not None else None
    for size in sizes:
        choice = choose_partition(
            key=None,
            num_partitions=count,
            sticky=state,
            seed=seed,
            record_size=size,
            batch_size=batch_size,
            queue_sizes=queue_sizes,
        )
        assert 0 <= choice.partition < count
        if state.current_partition is not None:
            # A record always joins the current sticky partition.
            assert choice.partition == state.current_partition
        filled = (state.bytes_in_batch if state.current_partition is not None else 0) + size
        assert choice.switched == (filled >= batch_size)
        if not choice.switched:
            assert choice.sticky.bytes_in_batch == filled < batch_size
        else:
            assert choice.sticky.bytes_in_batch == 0
        state = choice.sticky
