"""The broker's idempotent-producer checks, adapted from Kafka's own tests.

Each example test names the Kafka test it follows: `ProducerStateManagerTest` (storage module)
and `UnifiedLogTest` (core). Kafka's tests append through ProducerAppendInfo; here `check` says
what the broker does and `record` is the append.
"""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.engine.idempotence import (
    INT32_MAX,
    NUM_BATCHES_TO_RETAIN,
    BatchIdentity,
    ProducerEntry,
    RetainedBatch,
    Verdict,
    check,
    in_sequence,
    increment_sequence,
    record,
)

PID = 1
APPEND = Verdict("append")
OUT_OF_ORDER = Verdict("error", error="OUT_OF_ORDER_SEQUENCE_NUMBER")
FENCED = Verdict("error", error="INVALID_PRODUCER_EPOCH")


def batch(epoch: int, base: int, count: int = 1, pid: int = PID) -> BatchIdentity:
    return BatchIdentity(pid, epoch, base, increment_sequence(base, count - 1))


def appended(
    entry: ProducerEntry | None, b: BatchIdentity, offset: int, ts: int = 0
) -> ProducerEntry:
    """`check` says append, then `record` appends: what a client's produce does."""
    assert check(entry, b) == APPEND
    return record(entry, b, first_offset=offset, timestamp_ms=ts)


# ProducerStateManagerTest ----------------------------------------------------------------------


def test_it_maps_ids_and_sequences_like_kafka_basic_id_mapping():
    # ProducerStateManagerTest.testBasicIdMapping
    entry = appended(None, batch(0, 0), 0)
    entry = appended(entry, batch(0, 1), 1)
    # A batch that starts like the last one but is not exactly it is not a duplicate.
    assert check(entry, batch(0, 1, count=2)) == OUT_OF_ORDER
    # Greater than the next expected sequence.
    assert check(entry, batch(0, 5)) == OUT_OF_ORDER
    # A new epoch starts over at 0.
    entry = appended(entry, batch(1, 0), 3)
    assert check(entry, batch(0, 0)) == FENCED


def test_it_fences_and_resets_an_entry_that_kept_only_its_epoch():
    # ProducerStateManagerTest.testAppendTxnMarkerWithNoProducerState: a marker left the epoch
    # (2) and no batches.
    entry = ProducerEntry(PID, 2, ())
    assert check(entry, batch(0, 0)) == FENCED
    assert check(entry, batch(2, 17)) == OUT_OF_ORDER
    entry = appended(entry, batch(2, 0), 39)
    assert (entry.producer_epoch, entry.batches[-1].last_sequence) == (2, 0)


def test_it_wraps_the_sequence_after_integer_max_value():
    # ProducerStateManagerTest.testProducerSequenceWrapAround
    entry = record(None, batch(15, INT32_MAX), first_offset=735, timestamp_ms=0)
    entry = appended(entry, batch(15, 0), 1235)
    assert (entry.batches[0].first_sequence, entry.batches[-1].last_sequence) == (INT32_MAX, 0)


def test_it_keeps_a_batch_whose_sequences_wrap_inside_it():
    # ProducerStateManagerTest.testProducerSequenceWithWrapAroundBatchRecord
    wrapping = batch(15, INT32_MAX - 10, count=21)
    assert wrapping.last_sequence == 9
    entry = record(None, wrapping, first_offset=2000, timestamp_ms=0)
    assert entry.batches == (RetainedBatch(INT32_MAX - 10, 9, 2000, 0),)
    assert check(entry, batch(15, 10)) == APPEND
    assert check(entry, wrapping).action == "duplicate"


def test_it_refuses_a_wrong_sequence_after_integer_max_value():
    # ProducerStateManagerTest.testProducerSequenceInvalidWrapAround
    entry = record(None, batch(15, INT32_MAX), first_offset=735, timestamp_ms=0)
    assert check(entry, batch(15, 1)) == OUT_OF_ORDER


def test_it_accepts_any_sequence_from_a_producer_it_has_no_state_for():
    # ProducerAppendInfo.checkSequence (as in ProducerStateManagerTest
    # .testNoValidationOnFirstEntryWhenLoadingLog): no epoch yet, no check.
    assert check(None, batch(5, 16)) == APPEND
    assert check(ProducerEntry(PID, -1, ()), batch(5, 16)) == APPEND
    entry = record(None, batch(5, 16), first_offset=735, timestamp_ms=0)
    assert entry.batches == (RetainedBatch(16, 16, 735, 0),)


def test_it_judges_without_changing_the_entry():
    # ProducerStateManagerTest.testPrepareUpdateDoesNotMutate
    entry = appended(None, batch(0, 0, count=6), 15)
    before = entry.to_dict()
    assert check(entry, batch(0, 6, count=5)) == APPEND
    later = record(entry, batch(0, 6, count=5), first_offset=26, timestamp_ms=0)
    assert entry.to_dict() == before
    assert (later.batches[0].first_sequence, later.batches[-1].last_sequence) == (0, 10)
    with pytest.raises(FrozenInstanceError):
        entry.producer_epoch = 3  # type: ignore[misc]


def test_it_wants_sequence_zero_after_an_epoch_bump():
    # ProducerStateManagerTest.testOutOfSequenceAfterControlRecordEpochBump: the abort marker
    # bumped the epoch to 1 and dropped the batches.
    entry = appended(None, batch(0, 0), 0)
    entry = appended(entry, batch(0, 1), 1)
    bumped = ProducerEntry(PID, 1, ())
    assert check(bumped, batch(1, 2)) == OUT_OF_ORDER
    assert check(bumped, batch(2, 2)) == OUT_OF_ORDER
    after = appended(bumped, batch(1, 0), 2)
    assert (after.producer_epoch, after.batches[-1].last_sequence) == (1, 0)


# UnifiedLogTest ---------------------------------------------------------------------------------


def test_it_answers_duplicates_of_the_last_five_batches_with_their_offsets():
    # UnifiedLogTest.testDuplicateAppends
    entry, offset, seq = None, 0, 0
    for _ in range(6):  # pad the log: sequences 0..5 at offsets 0..5
        entry = appended(entry, batch(0, seq), offset, ts=100 + offset)
        seq, offset = seq + 1, offset + 1
    multi = batch(0, seq, count=3)
    entry = appended(entry, multi, offset, ts=999)
    # A duplicate of the tail with several records: the original offsets.
    assert check(entry, multi) == Verdict("duplicate", first_offset=6, timestamp_ms=999)
    seq += 3
    # A partial duplicate of the tail is not allowed.
    assert check(entry, batch(0, seq - 2, count=2)) == OUT_OF_ORDER
    # The batch 4th from the tail (sequence 2) is still kept: a duplicate.
    assert check(entry, batch(0, 2)) == Verdict("duplicate", first_offset=2, timestamp_ms=102)
    # Older than the last 5 (sequence 1): out of order.
    assert check(entry, batch(0, 1)) == OUT_OF_ORDER
    # A single-record duplicate at the tail.
    entry = appended(entry, batch(0, seq), 9, ts=1)
    assert check(entry, batch(0, seq)) == Verdict("duplicate", first_offset=9, timestamp_ms=1)
    assert len(entry.batches) == NUM_BATCHES_TO_RETAIN


def test_it_fences_an_older_epoch():
    # UnifiedLogTest.testOldProducerEpoch
    entry = appended(None, batch(1, 0), 0)
    assert check(entry, batch(0, 0)) == FENCED


def test_it_does_not_take_a_batch_of_another_epoch_for_a_duplicate():
    # ProducerStateEntry.findDuplicateBatch compares the epoch first.
    entry = appended(None, batch(0, 0), 0)
    assert check(entry, batch(1, 0)) == APPEND
    entry = appended(entry, batch(1, 0), 1)
    assert entry.batches == (RetainedBatch(0, 0, 1, 0),)  # the new epoch starts afresh
    assert check(entry, batch(0, 0)) == FENCED


def test_it_never_checks_a_batch_without_a_producer_id():
    entry = appended(None, batch(0, 0), 0)
    assert check(entry, batch(-1, -1, pid=-1)) == APPEND
    with pytest.raises(ValueError):
        record(entry, batch(-1, -1, pid=-1), first_offset=1, timestamp_ms=0)


def test_it_refuses_an_entry_of_another_producer():
    entry = appended(None, batch(0, 0), 0)
    with pytest.raises(ValueError):
        check(entry, batch(0, 1, pid=2))


def test_it_counts_sequences_as_kafka_does():
    assert increment_sequence(INT32_MAX - 1, 1) == INT32_MAX
    assert increment_sequence(INT32_MAX, 1) == 0
    assert increment_sequence(INT32_MAX - 10, 20) == 9
    assert in_sequence(-1, 0) and in_sequence(INT32_MAX, 0) and in_sequence(4, 5)
    assert not in_sequence(4, 4) and not in_sequence(4, 6) and not in_sequence(INT32_MAX, 1)


# Properties -------------------------------------------------------------------------------------

# A producer's batches (record counts), a starting sequence (near the wrap sometimes), and
# after each append which of the last batches get retried because their answers were lost.
producer_run = st.tuples(
    st.lists(st.integers(1, 50), min_size=1, max_size=30),
    st.one_of(st.integers(0, 100), st.integers(INT32_MAX - 200, INT32_MAX)),
    st.lists(st.lists(st.integers(0, NUM_BATCHES_TO_RETAIN - 1), max_size=3), max_size=30),
)


@given(producer_run)
def test_it_never_appends_a_retried_batch_twice(run):
    counts, start, retries = run
    entry: ProducerEntry | None = None
    log: list[tuple[int, int]] = []  # (first sequence, last sequence) per appended batch
    sent: list[tuple[BatchIdentity, int]] = []  # each batch and the offset it got
    seq, offset = start, 0
    for i, count in enumerate(counts):
        b = batch(0, seq, count)
        assert check(entry, b) == APPEND
        entry = record(entry, b, first_offset=offset, timestamp_ms=i)
        log.append((b.base_sequence, b.last_sequence))
        sent.append((b, offset))
        seq, offset = increment_sequence(b.last_sequence, 1), offset + count
        # A producer retries at most max.in.flight (5) unanswered batches: the latest ones.
        for back in retries[i] if i < len(retries) else []:
            if back < len(sent):
                again, original_offset = sent[-1 - back]
                verdict = check(entry, again)
                assert verdict.action == "duplicate"
                assert verdict.first_offset == original_offset
    assert len(log) == len(set(log)) == len(counts)


@given(producer_run, st.integers(-5, 2**31 - 1))
def test_it_always_refuses_a_gap(run, base):
    counts, start, _ = run
    entry: ProducerEntry | None = None
    seq = start
    for count in counts:
        b = batch(0, seq, count)
        entry = record(entry, b, first_offset=0, timestamp_ms=0)
        seq = increment_sequence(b.last_sequence, 1)
    assert entry is not None
    next_expected = seq
    kept = {(r.first_sequence, r.last_sequence) for r in entry.batches}
    probe = BatchIdentity(PID, 0, base, increment_sequence(base, 0) if base >= 0 else base)
    if base == next_expected:
        assert check(entry, probe) == APPEND
    elif (probe.base_sequence, probe.last_sequence) in kept:
        assert check(entry, probe).action == "duplicate"
    else:
        assert check(entry, probe) == OUT_OF_ORDER


@given(producer_run, st.integers(0, 100), st.integers(1, 3))
def test_it_always_fences_an_older_epoch_and_restarts_a_newer_one_at_zero(run, base, bump):
    counts, start, _ = run
    entry: ProducerEntry | None = None
    seq = start
    for count in counts:
        b = batch(5, seq, count)
        entry = record(entry, b, first_offset=0, timestamp_ms=0)
        seq = increment_sequence(b.last_sequence, 1)
    assert check(entry, batch(5 - bump, base)) == FENCED
    expected = APPEND if base == 0 else OUT_OF_ORDER
    assert check(entry, batch(5 + bump, base)) == expected


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, INT32_MAX), st.integers(1, 10)), max_size=20
    )
)
def test_it_keeps_at_most_five_batches_of_the_latest_epoch_through_json(appends):
    entry: ProducerEntry | None = None
    for i, (epoch, base, count) in enumerate(appends):
        entry = record(entry, batch(epoch, base, count), first_offset=i, timestamp_ms=i)
        assert len(entry.batches) <= NUM_BATCHES_TO_RETAIN
        assert entry.producer_epoch == epoch
        assert entry.batches[-1].first_offset == i
        data = json.loads(json.dumps(entry.to_dict()))
        assert ProducerEntry.from_dict({**data, "note": "ignored"}) == entry
