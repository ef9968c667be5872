"""Share groups (KIP-932): one share-partition's state.

The scenarios are Kafka's own: inputs and expectations of apache/kafka's SharePartitionTest
(core/src/test/java/kafka/server/share/, October 2024), each test named after the case it ports.
Kafka's `memoryRecords(n, start)` is one log batch of n records from `start`; its
`cachedState()` holds batches, which LogLab keeps per offset, so the expectations are read as
each offset's (state, delivery count, holder). The properties at the end hold for any sequence
of calls.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.engine import share_group as sg
from messaging.engine.share_group import ACCEPT, GAP, REJECT, RELEASE

MEMBER = "member-1"
OTHER = "member-2"
BIG = 2**31 - 1  # Kafka's MAX_FETCH_RECORDS
AVAILABLE, ACQUIRED, ACKNOWLEDGED, ARCHIVED = (
    sg.AVAILABLE,
    sg.ACQUIRED,
    sg.ACKNOWLEDGED,
    sg.ARCHIVED,
)
CONFIG = sg.ShareConfig()


def records(count: int, start: int = 0) -> list[sg.Batch]:
    """Kafka's memoryRecords(count, start): one log batch."""
    return [sg.Batch(start, start + count - 1)]


def acquire(p, batches, member=MEMBER, *, max_records=BIG, now=0, config=CONFIG):
    return sg.acquire(p, member, batches, max_records=max_records, now_ms=now, config=config)


def ack(p, *batches, member=MEMBER, config=CONFIG):
    """ShareAcknowledgementBatch(first, last, types) triples."""
    acks = [sg.Acknowledgement(first, last, tuple(types)) for first, last, types in batches]
    return sg.acknowledge(p, member, acks, config=config)[0]


def offsets(acquired) -> dict[int, int]:
    """Acquired offsets -> delivery count (Kafka lists them per batch or per offset)."""
    return {o: r.delivery_count for r in acquired for o in r.offsets()}


def states(p, first=None, last=None) -> dict[int, tuple[str, int, str]]:
    return {
        r.offset: (r.state, r.delivery_count, r.member_id)
        for r in p.in_flight
        if (first is None or r.offset >= first) and (last is None or r.offset <= last)
    }


def held(first, last, state, count=1, member=""):
    return {o: (state, count, member) for o in range(first, last + 1)}


# --- acquire --------------------------------------------------------------------------------


def test_it_acquires_a_single_record():  # testAcquireSingleRecord
    p, got = acquire(sg.start(0), records(1))
    assert offsets(got) == {0: 1}
    assert sg.next_fetch_offset(p) == 1
    assert states(p) == held(0, 0, ACQUIRED, 1, MEMBER)


def test_it_acquires_a_batch_whole():  # testAcquireMultipleRecords
    p, got = acquire(sg.start(0), records(5, 10))
    assert got == (sg.AcquiredRecords(10, 14, 1),)
    assert sg.next_fetch_offset(p) == 15
    assert (p.spso, p.speo) == (10, 14)
    assert states(p) == held(10, 14, ACQUIRED, 1, MEMBER)


def test_it_treats_max_records_as_a_soft_limit_ending_at_a_batch_end():
    # testAcquireWithMaxFetchRecords
    p, got = acquire(sg.start(0), records(5), max_records=10)
    assert got == (sg.AcquiredRecords(0, 4, 1),)
    assert sg.next_fetch_offset(p) == 5
    # One batch of 25 from offset 0: 0-4 are in flight, the new part runs to the batch's end.
    p, got = acquire(p, records(25), max_records=10)
    assert got == (sg.AcquiredRecords(5, 24, 1),)
    assert sg.next_fetch_offset(p) == 25
    assert {r.batch for r in p.in_flight} == {0, 5}


def test_it_stops_acquiring_at_the_batch_holding_the_limit():
    # testAcquireWithMultipleBatchesAndMaxFetchRecords: batches 10-14, 15-29, 30-44, max 10.
    batches = [sg.Batch(10, 14), sg.Batch(15, 29), sg.Batch(30, 44)]
    p, got = acquire(sg.start(0), batches, max_records=10)
    assert got == (sg.AcquiredRecords(10, 29, 1),)
    assert sg.next_fetch_offset(p) == 30
    assert {r.batch for r in p.in_flight} == {10}


def test_it_acquires_only_the_new_part_of_an_overlapping_fetch():
    # testAcquireMultipleRecordsWithOverlapAndNewBatch
    p, got = acquire(sg.start(0), records(5, 0))
    assert offsets(got) == dict.fromkeys(range(5), 1)
    p, got = acquire(p, records(10, 0))
    assert offsets(got) == dict.fromkeys(range(5, 10), 1)
    assert sg.next_fetch_offset(p) == 10
    assert {r.batch for r in p.in_flight} == {0, 5}


def test_it_acquires_nothing_already_acquired():  # testAcquireSameBatchAgain
    p, _ = acquire(sg.start(0), records(5, 10))
    p, got = acquire(p, records(5, 10))
    assert got == ()
    p, got = acquire(p, records(2, 10))
    assert got == ()
    assert sg.next_fetch_offset(p) == 15


def test_it_acquires_nothing_from_an_empty_fetch():  # testAcquireWithEmptyFetchRecords
    p, got = acquire(sg.start(0), [])
    assert got == ()
    assert sg.next_fetch_offset(p) == 0


def test_it_fetches_next_past_what_is_in_flight():
    # testNextFetchOffsetInitialState, testNextFetchOffsetWithCachedStateAcquired
    assert sg.next_fetch_offset(sg.start(0)) == 0
    p, _ = acquire(sg.start(0), records(5))
    assert sg.next_fetch_offset(p) == 5


def test_it_caps_new_acquisitions_at_max_record_locks():
    # testCanAcquireRecordsWithEmptyCache / ...LimitNotReached / ...LimitReached
    assert sg.can_acquire(sg.start(0), sg.ShareConfig(max_record_locks=1))
    p, _ = acquire(sg.start(0), records(5), config=sg.ShareConfig(max_record_locks=6))
    assert sg.can_acquire(p, sg.ShareConfig(max_record_locks=6))
    assert not sg.can_acquire(p, sg.ShareConfig(max_record_locks=1))


def test_it_may_acquire_again_below_the_cap_once_a_record_is_available():
    # testCanAcquireRecordsAfterReleaseAcknowledgement
    config = sg.ShareConfig(max_record_locks=5)
    p, _ = acquire(sg.start(0), records(5), config=config)
    assert not sg.can_acquire(p, config)
    p = ack(p, (0, 1, [RELEASE]), config=config)
    assert sg.can_acquire(p, config)


# --- acknowledge ------------------------------------------------------------------------------


def test_it_acknowledges_a_single_record():  # testAcknowledgeSingleRecordBatch
    p, _ = acquire(sg.start(0), records(1, 0))
    p, _ = acquire(p, records(1, 1))
    p = ack(p, (1, 1, [ACCEPT]))
    assert sg.next_fetch_offset(p) == 2
    assert states(p) == {0: (ACQUIRED, 1, MEMBER), 1: (ACKNOWLEDGED, 1, "")}
    assert p.spso == 0


def test_it_empties_the_window_when_everything_is_accepted():
    # testAcknowledgeMultipleRecordBatch
    p, _ = acquire(sg.start(0), records(10, 5))
    p = ack(p, (5, 14, [ACCEPT]))
    assert sg.next_fetch_offset(p) == 15
    assert p.in_flight == ()
    assert (p.spso, p.speo) == (15, 15)


def test_it_takes_one_type_per_offset_with_gaps():
    # testAcknowledgeMultipleRecordBatchWithGapOffsets: 5-6, then one batch 10..18 (15-17 gap).
    p, got = acquire(sg.start(0), records(2, 5))
    assert sg.next_fetch_offset(p) == 7
    p, got = acquire(p, [sg.Batch(10, 18)])
    assert got == (sg.AcquiredRecords(10, 18, 1),)
    assert sg.next_fetch_offset(p) == 19
    p = ack(p, (5, 6, [RELEASE]), (10, 18, [2, 2, 2, 2, 2, GAP, GAP, GAP, ACCEPT]))
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == {
        **held(5, 6, AVAILABLE),
        **held(10, 14, AVAILABLE),
        **held(15, 17, ARCHIVED),
        18: (ACKNOWLEDGED, 1, ""),
    }


def test_it_acknowledges_a_subset_spanning_batches_and_ignores_untracked_offsets():
    # testAcknowledgeMultipleSubsetRecordBatchWithGapOffsets: 7-9 were never fetched.
    p, _ = acquire(sg.start(0), records(2, 5))
    p, got = acquire(p, [sg.Batch(10, 20)])
    assert sum(len(r.offsets()) for r in got) == 11
    assert sg.next_fetch_offset(p) == 21
    types = [ACCEPT] * 6 + [GAP, GAP, ACCEPT, GAP, ACCEPT, GAP, ACCEPT]
    p = ack(p, (6, 18, types))
    assert sg.next_fetch_offset(p) == 21
    assert states(p) == {
        5: (ACQUIRED, 1, MEMBER),
        6: (ACKNOWLEDGED, 1, ""),
        **held(10, 11, ACKNOWLEDGED),
        **held(12, 13, ARCHIVED),
        14: (ACKNOWLEDGED, 1, ""),
        15: (ARCHIVED, 1, ""),
        16: (ACKNOWLEDGED, 1, ""),
        17: (ARCHIVED, 1, ""),
        18: (ACKNOWLEDGED, 1, ""),
        **held(19, 20, ACQUIRED, 1, MEMBER),
    }
    assert p.spso == 5


def test_it_refuses_acknowledgements_outside_what_was_fetched():
    # testAcknowledgeOutOfRangeCachedData
    with pytest.raises(sg.InvalidRecordState):
        ack(sg.start(0), (0, 15, [REJECT]))
    p, _ = acquire(sg.start(0), records(5, 5))
    with pytest.raises(sg.InvalidRequest):
        ack(p, (20, 25, [REJECT]))


def test_it_refuses_the_whole_request_when_one_batch_is_out_of_range():
    # testAcknowledgeOutOfRangeCachedDataFirstBatch
    p, _ = acquire(sg.start(0), records(5, 0))
    p, _ = acquire(p, records(5, 20))
    batches = [(0, 10, [ACCEPT]), (20, 24, [ACCEPT])]
    with pytest.raises(sg.InvalidRequest):
        ack(p, *batches)
    p, got = acquire(p, records(6, 5))
    assert offsets(got) == dict.fromkeys(range(5, 11), 1)
    p = ack(p, *batches)
    # Everything cached is final, so the window empties past it (11-19 were never fetched).
    assert (p.spso, p.in_flight) == (25, ())


def test_it_refuses_an_acknowledgement_from_a_member_that_does_not_hold_the_records():
    # testAcknowledgeWithAnotherMember, testAcknowledgeSubsetWithAnotherMember
    p, _ = acquire(sg.start(0), records(5, 5))
    with pytest.raises(sg.InvalidRecordState):
        ack(p, (5, 9, [REJECT]), member=OTHER)
    with pytest.raises(sg.InvalidRecordState):
        ack(p, (6, 8, [REJECT]), member=OTHER)


def test_it_refuses_to_acknowledge_a_record_twice():  # testAcknowledgeWhenOffsetNotAcquired
    p, _ = acquire(sg.start(0), records(5, 5))
    p = ack(p, (5, 9, [RELEASE]))
    with pytest.raises(sg.InvalidRecordState):
        ack(p, (5, 9, [ACCEPT]))
    p, got = acquire(p, records(5, 5))
    assert offsets(got) == dict.fromkeys(range(5, 10), 2)
    p = ack(p, (6, 8, [REJECT]))
    with pytest.raises(sg.InvalidRecordState):
        ack(p, (6, 8, [REJECT]))


@pytest.mark.parametrize("last", [(15, 19), (16, 19)])
def test_it_rolls_every_batch_back_when_one_fails(last):
    # testAcknowledgeRollbackWithFullBatchError, testAcknowledgeRollbackWithSubsetError
    p = sg.start(0)
    for first in (5, 10, 15):
        p, _ = acquire(p, records(5, first))
    before = p
    with pytest.raises(sg.InvalidRecordState):
        ack(p, (5, 9, [RELEASE]), (10, 14, [ACCEPT]), (15, 19, [ACCEPT]), (*last, [ACCEPT]))
    assert states(before) == held(5, 19, ACQUIRED, 1, MEMBER)


def test_it_refuses_unknown_acknowledge_types():
    p, _ = acquire(sg.start(0), records(5, 5))
    with pytest.raises(sg.InvalidRequest, match="Invalid acknowledge type: 4"):
        ack(p, (5, 9, [4]))
    with pytest.raises(sg.InvalidRequest):
        ack(p, (5, 9, [ACCEPT, ACCEPT]))


# --- release and redelivery -----------------------------------------------------------------------


def test_it_redelivers_released_records_with_a_higher_count():  # testAcquireReleasedRecord
    p, _ = acquire(sg.start(0), records(5, 10))
    p = ack(p, (12, 13, [RELEASE]))
    assert sg.next_fetch_offset(p) == 12
    assert states(p) == {
        **held(10, 11, ACQUIRED, 1, MEMBER),
        **held(12, 13, AVAILABLE),
        14: (ACQUIRED, 1, MEMBER),
    }
    p, got = acquire(p, records(5, 10))
    assert offsets(got) == {12: 2, 13: 2}
    assert sg.next_fetch_offset(p) == 15


def test_it_redelivers_released_records_across_batches():
    # testAcquireReleasedRecordMultipleBatches
    p = sg.start(0)
    for count, first in ((5, 10), (5, 15), (5, 23), (5, 28)):
        p, _ = acquire(p, records(count, first))
    assert sg.next_fetch_offset(p) == 33
    p = ack(p, (12, 30, [RELEASE]))
    assert sg.next_fetch_offset(p) == 12
    assert states(p, 10, 14) == {**held(10, 11, ACQUIRED, 1, MEMBER), **held(12, 14, AVAILABLE)}
    assert states(p, 28, 32) == {**held(28, 30, AVAILABLE), **held(31, 32, ACQUIRED, 1, MEMBER)}
    p, got = acquire(p, records(5, 10))
    assert offsets(got) == dict.fromkeys(range(12, 15), 2)
    assert sg.next_fetch_offset(p) == 15
    p, got = acquire(p, records(5, 23))
    assert offsets(got) == dict.fromkeys(range(23, 28), 2)
    assert sg.next_fetch_offset(p) == 15
    p, got = acquire(p, records(2, 17))
    assert offsets(got) == {17: 2, 18: 2}
    p, got = acquire(p, records(1, 28))
    assert offsets(got) == {28: 2}
    assert sg.next_fetch_offset(p) == 15
    p, got = acquire(p, records(5, 15))
    assert offsets(got) == {15: 2, 16: 2, 19: 2}
    assert sg.next_fetch_offset(p) == 29


def test_it_releases_what_a_leaving_member_held():
    # testReleaseSingleRecordBatch, testReleaseMultipleRecordBatch
    p, _ = acquire(sg.start(0), records(1, 0))
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 0
    assert states(p) == {0: (AVAILABLE, 1, "")}
    p, _ = acquire(sg.start(0), records(10, 5))
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == held(5, 14, AVAILABLE)


def test_it_leaves_acknowledged_records_alone_on_release():
    # testReleaseMultipleAcknowledgedRecordBatch
    p = sg.start(0)
    for count, first in ((5, 0), (2, 5), (9, 10)):
        p, _ = acquire(p, records(count, first))
    p = ack(p, (5, 18, [ACCEPT]))
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 0
    assert states(p) == {
        **held(0, 4, AVAILABLE),
        **held(5, 6, ACKNOWLEDGED),
        **held(10, 18, ACKNOWLEDGED),
    }


def test_it_releases_only_the_leaving_members_records():
    # testReleaseAcquiredRecordsWithAnotherMember
    p, _ = acquire(sg.start(0), records(1, 5), OTHER)
    p, _ = acquire(p, [sg.Batch(10, 20)])
    p = ack(p, (10, 18, [ACCEPT, ACCEPT, GAP, GAP, ACCEPT, GAP, ACCEPT, GAP, ACCEPT]))
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 19
    assert states(p, 5, 5) == {5: (ACQUIRED, 1, OTHER)}
    assert states(p, 19, 20) == held(19, 20, AVAILABLE)
    p, _ = sg.release_member(p, OTHER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 5
    assert states(p, 5, 5) == {5: (AVAILABLE, 1, "")}


def test_it_releases_after_different_acknowledgements():
    # testReleaseAcquiredRecordsAfterDifferentAcknowledges
    p, _ = acquire(sg.start(0), records(5, 5))
    p = ack(p, (5, 6, [RELEASE]))
    p = ack(p, (8, 9, [ACCEPT]))
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == {**held(5, 7, AVAILABLE), **held(8, 9, ACKNOWLEDGED)}


def test_it_archives_released_records_at_the_delivery_count_limit():
    # testMaxDeliveryCountLimitExceededForRecordsSubsetAfterReleaseAcquiredRecords
    config = sg.ShareConfig(delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(10, 0), config=config)
    p, _ = acquire(p, records(5, 10), config=config)
    p = ack(p, (10, 14, [RELEASE]), config=config)
    p, _ = acquire(p, records(5, 10), config=config)
    p, _ = sg.release_member(p, MEMBER, config=config)
    assert sg.next_fetch_offset(p) == 0
    assert states(p, 10, 14) == held(10, 14, ARCHIVED, 2)


def test_it_archives_and_moves_the_start_when_every_delivery_was_released():
    # testMaxDeliveryCountLimitExceededForRecordBatch
    config = sg.ShareConfig(delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(10, 5), config=config)
    p = ack(p, (5, 14, [RELEASE]), config=config)
    p, _ = acquire(p, records(10, 5), config=config)
    p = ack(p, (5, 14, [RELEASE]), config=config)
    assert sg.next_fetch_offset(p) == 15
    assert (p.spso, p.speo, p.in_flight) == (15, 15, ())


def test_it_archives_a_subset_at_the_limit_and_empties_the_window():
    # testMaxDeliveryCountLimitExceededForRecordsSubset
    config = sg.ShareConfig(delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(5, 10), config=config)
    p, _ = acquire(p, records(5, 15), config=config)
    p = ack(p, (10, 12, [ACCEPT]), (13, 16, [RELEASE]), (17, 19, [ACCEPT]), config=config)
    p, got = acquire(p, records(5, 10), config=config)
    assert offsets(got) == {13: 2, 14: 2}
    p, got = acquire(p, records(5, 15), config=config)
    assert offsets(got) == {15: 2, 16: 2}
    p = ack(p, (13, 16, [RELEASE]), config=config)
    assert sg.next_fetch_offset(p) == 20
    assert p.in_flight == ()


def test_it_keeps_the_window_while_later_records_are_available():
    # testMaxDeliveryCountLimitExceededForRecordsSubsetAndCachedStateNotCleared
    config = sg.ShareConfig(delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(5, 0), config=config)
    p = ack(p, (0, 1, [RELEASE]), config=config)
    p, got = acquire(p, records(2, 0), config=config)
    assert offsets(got) == {0: 2, 1: 2}
    p = ack(p, (0, 4, [RELEASE]), config=config)
    assert sg.next_fetch_offset(p) == 2
    assert states(p) == {**held(0, 1, ARCHIVED, 2), **held(2, 4, AVAILABLE)}
    assert p.spso == 2


def test_it_follows_several_consumers_on_one_partition():
    # testNextFetchOffsetWithMultipleConsumers
    p, _ = acquire(sg.start(0), records(3, 0))
    assert sg.next_fetch_offset(p) == 3
    p = ack(p, (0, 2, [RELEASE]))
    assert sg.next_fetch_offset(p) == 0
    p, _ = acquire(p, records(2, 3), OTHER)
    assert sg.next_fetch_offset(p) == 0
    p, _ = acquire(p, records(3, 0))
    assert sg.next_fetch_offset(p) == 5
    p = ack(p, (3, 4, [RELEASE]), member=OTHER)
    assert sg.next_fetch_offset(p) == 3


def test_it_reacquires_for_another_member_only_what_was_released():
    # testReacquireSubsetWithAnotherMember
    p, _ = acquire(sg.start(0), records(5, 5))
    p, _ = acquire(p, records(12, 10))
    p = ack(p, (5, 11, [RELEASE]), (12, 13, [GAP]), (14, 15, [RELEASE]), (17, 20, [RELEASE]))
    p, _ = acquire(p, records(5, 5), OTHER)
    assert sg.next_fetch_offset(p) == 10
    p, _ = acquire(p, records(7, 10), OTHER)
    assert sg.next_fetch_offset(p) == 17
    assert states(p) == {
        **held(5, 9, ACQUIRED, 2, OTHER),
        **held(10, 11, ACQUIRED, 2, OTHER),
        **held(12, 13, ARCHIVED, 1),
        **held(14, 15, ACQUIRED, 2, OTHER),
        16: (ACQUIRED, 1, MEMBER),
        **held(17, 20, AVAILABLE, 1),
        21: (ACQUIRED, 1, MEMBER),
    }


# --- acquisition locks ---------------------------------------------------------------------------


def test_it_hands_a_record_back_when_its_lock_runs_out():
    # testAcquisitionLockForAcquiringSingleRecord, testAcknowledgeAfterAcquisitionLockTimeout
    config = sg.ShareConfig(record_lock_duration_ms=1_000)
    p, _ = acquire(sg.start(0), records(5, 5), now=0, config=config)
    assert sg.lock_due_ms(p) == 1_000
    same, changed = sg.expire_locks(p, now_ms=999, config=config)
    assert changed == () and same == p
    p, changed = sg.expire_locks(p, now_ms=1_000, config=config)
    assert [c.why for c in changed] == ["lock-expired"] * 5
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == held(5, 9, AVAILABLE)
    assert sg.lock_due_ms(p) is None
    for kind in (ACCEPT, REJECT):
        with pytest.raises(sg.InvalidRecordState):
            ack(p, (5, 9, [kind]), config=config)


def test_it_archives_on_a_lock_timeout_at_the_limit():
    # testAcquisitionLockTimeoutCauseMaxDeliveryCountExceed
    config = sg.ShareConfig(record_lock_duration_ms=1_000, delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(10, 0), config=config)
    p, _ = acquire(p, records(10, 10), config=config)
    p, _ = sg.expire_locks(p, now_ms=1_000, config=config)
    assert sg.next_fetch_offset(p) == 0
    assert states(p, 10, 19) == held(10, 19, AVAILABLE, 1)
    p, _ = acquire(p, records(10, 10), now=1_000, config=config)
    assert states(p, 10, 19) == held(10, 19, ACQUIRED, 2, MEMBER)
    p, _ = sg.expire_locks(p, now_ms=2_000, config=config)
    assert sg.next_fetch_offset(p) == 0
    assert states(p, 10, 19) == held(10, 19, ARCHIVED, 2)


def test_it_moves_the_start_when_timeouts_archive_the_first_records():
    # testAcquisitionLockTimeoutCauseSPSOMoveForward
    config = sg.ShareConfig(record_lock_duration_ms=1_000, delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(10, 0), config=config)
    p, _ = sg.expire_locks(p, now_ms=1_000, config=config)
    p, _ = acquire(p, records(5, 0), now=1_000, config=config)
    p, _ = sg.expire_locks(p, now_ms=2_000, config=config)
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == {**held(0, 4, ARCHIVED, 2), **held(5, 9, AVAILABLE, 1)}
    assert p.spso == 5


def test_it_empties_the_window_when_timeouts_archive_everything():
    # testAcquisitionLockTimeoutCauseSPSOMoveForwardAndClearCachedState
    config = sg.ShareConfig(record_lock_duration_ms=1_000, delivery_count_limit=2)
    p, _ = acquire(sg.start(0), records(10, 0), config=config)
    p, _ = sg.expire_locks(p, now_ms=1_000, config=config)
    p, _ = acquire(p, records(10, 0), now=1_000, config=config)
    p, _ = sg.expire_locks(p, now_ms=2_000, config=config)
    assert p.in_flight == ()
    assert sg.next_fetch_offset(p) == 10


def test_it_times_out_only_what_is_still_acquired():
    # testAcquisitionLockAfterDifferentAcknowledges
    config = sg.ShareConfig(record_lock_duration_ms=1_000)
    p, _ = acquire(sg.start(0), records(5, 5), config=config)
    p = ack(p, (5, 6, [RELEASE]), config=config)
    p = ack(p, (8, 9, [ACCEPT]), config=config)
    assert [r.offset for r in p.in_flight if r.lock_until_ms is not None] == [7]
    p, _ = sg.expire_locks(p, now_ms=1_000, config=config)
    assert sg.next_fetch_offset(p) == 5
    assert states(p) == {**held(5, 7, AVAILABLE), **held(8, 9, ACKNOWLEDGED)}


# --- the log start offset moving (retention) ------------------------------------------------------


def test_it_follows_the_log_start_when_nothing_is_in_flight():
    # testLsoMovementOnInitializationSharePartition
    p, _ = sg.move_log_start(sg.start(0), 0)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (0, 0, 0)
    p, _ = sg.move_log_start(p, 5)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (5, 5, 5)


def test_it_archives_available_records_below_the_new_log_start():
    # testLsoMovementForArchivingBatches
    p = sg.start(0)
    for first in (2, 7, 12, 17, 22, 27, 32):
        p, _ = acquire(p, records(5, first))
    p = ack(p, (2, 6, [ACCEPT]), (12, 16, [RELEASE]), (22, 26, [RELEASE]), (27, 31, [REJECT]))
    p, _ = sg.move_log_start(p, 20)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (22, 20, 36)
    assert states(p, 2, 6) == {}
    assert states(p, 7, 11) == held(7, 11, ACQUIRED, 1, MEMBER)
    assert states(p, 12, 16) == held(12, 16, ARCHIVED)
    assert states(p, 17, 21) == held(17, 21, ACQUIRED, 1, MEMBER)
    assert states(p, 22, 26) == held(22, 26, AVAILABLE)
    assert states(p, 27, 31) == held(27, 31, ARCHIVED)


@pytest.mark.parametrize(
    ("released", "log_start", "expected"),
    [
        # testLsoMovementToEndOffset
        ([(7, 8)], 11, (12, 11, 11, ACQUIRED)),
        # testLsoMovementToEndOffsetWhereEndOffsetIsAvailable
        ([(7, 8), (11, 11)], 11, (11, 11, 11, AVAILABLE)),
        # testLsoMovementAheadOfEndOffsetPostAcknowledgment
        ([(7, 8)], 12, (12, 12, 12, ACQUIRED)),
    ],
)
def test_it_moves_the_window_to_the_log_start(released, log_start, expected):
    p, _ = acquire(sg.start(0), records(5, 2))
    p, _ = acquire(p, records(5, 7))
    p = ack(p, *[(first, last, [RELEASE]) for first, last in released])
    p, _ = sg.move_log_start(p, log_start)
    fetch, spso, speo, eleven = expected
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (fetch, spso, speo)
    assert states(p, 7, 10) == {
        **held(7, 8, ARCHIVED),
        **held(9, 10, ACQUIRED, 1, MEMBER),
    }
    assert p.record(11).state == eleven
    assert states(p, 2, 6) == held(2, 6, ACQUIRED, 1, MEMBER)


def test_it_moves_past_everything_in_flight():  # testLsoMovementAheadOfEndOffset
    p, _ = acquire(sg.start(0), records(5, 2))
    p, _ = acquire(p, records(5, 7))
    p, _ = sg.move_log_start(p, 14)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (14, 14, 14)
    assert states(p) == held(2, 11, ACQUIRED, 1, MEMBER)


def test_it_moves_the_log_start_across_gaps():
    # testLsoMovementWithGapsInCachedStateMap, ...AndAcknowledgedBatch
    p = sg.start(0)
    for first in (2, 10, 20):
        p, _ = acquire(p, records(5, first))
    moved, _ = sg.move_log_start(p, 18)
    assert (sg.next_fetch_offset(moved), moved.spso, moved.speo) == (25, 18, 24)
    p = sg.start(0)
    for first in (2, 10):
        p, _ = acquire(p, records(5, first))
    p = ack(p, (10, 14, [RELEASE]))
    p, _ = sg.move_log_start(p, 10)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (10, 10, 14)
    assert states(p, 10, 14) == held(10, 14, AVAILABLE)


def test_it_archives_below_the_log_start_after_gapped_acknowledgements():
    # testLsoMovementPostGapsInAcknowledgments
    p, _ = acquire(sg.start(0), records(2, 5))
    p, _ = acquire(p, [sg.Batch(10, 18)])
    p = ack(p, (5, 6, [RELEASE]), (10, 18, [2, 2, 2, 2, 2, GAP, GAP, GAP, RELEASE]))
    p, _ = sg.move_log_start(p, 18)
    assert (sg.next_fetch_offset(p), p.spso, p.speo) == (18, 18, 18)
    assert states(p) == {**held(5, 6, ARCHIVED), **held(10, 17, ARCHIVED), 18: (AVAILABLE, 1, "")}


def test_it_archives_records_below_the_start_when_they_come_back():
    # testReleaseAcquiredRecordsBatchesPostStartOffsetMovement, in part: a record acquired
    # before the log start moved past it is archived, not made available, when released.
    p, _ = acquire(sg.start(0), records(5, 5))
    p, _ = acquire(p, records(5, 10))
    p, _ = sg.move_log_start(p, 12)
    p, changed = sg.release_member(p, MEMBER, config=CONFIG)
    assert {c.offset: c.state for c in changed} == {
        **dict.fromkeys(range(5, 12), ARCHIVED),
        **dict.fromkeys(range(12, 15), AVAILABLE),
    }
    assert (p.spso, sg.next_fetch_offset(p)) == (12, 12)


def test_it_never_moves_the_start_back_when_the_log_start_passed_everything():
    # Kafka's maybeUpdateCachedStateAndOffsets would set SPSO to 12 here (the end of what was
    # in flight) after the log start had moved it to 14; LogLab keeps 14.
    p, _ = acquire(sg.start(0), records(5, 2))
    p, _ = acquire(p, records(5, 7))
    p, _ = sg.move_log_start(p, 14)
    p, _ = sg.release_member(p, MEMBER, config=CONFIG)
    assert (p.spso, p.speo, p.in_flight) == (14, 14, ())


# --- configuration, outcomes, round trip ---------------------------------------------------------


def test_it_uses_kafkas_defaults_and_bounds():
    config = sg.ShareConfig()
    assert (config.record_lock_duration_ms, config.delivery_count_limit) == (30_000, 5)
    assert config.max_record_locks == 200
    with pytest.raises(ValueError, match="group.share.delivery.count.limit"):
        sg.ShareConfig(delivery_count_limit=1)
    with pytest.raises(ValueError, match="group.share.record.lock.duration.ms"):
        sg.ShareConfig(record_lock_duration_ms=0)


def test_it_starts_at_the_log_end_unless_earliest():
    assert sg.start_offset_for("latest", log_start_offset=3, log_end_offset=9) == 9
    assert sg.start_offset_for("earliest", log_start_offset=3, log_end_offset=9) == 3


def test_it_decides_simulated_outcomes_by_the_failure_rate():
    def outcome(offset, rate, mode="release"):
        return sg.consumer_outcome(
            seed="R1",
            member_id="m",
            partition=0,
            offset=offset,
            delivery_count=1,
            failure_rate=rate,
            on_failure=mode,
        )

    assert {outcome(o, 0.0) for o in range(200)} == {ACCEPT}
    assert {outcome(o, 1.0) for o in range(200)} == {RELEASE}
    assert {outcome(o, 1.0, "reject") for o in range(200)} == {REJECT}
    failed = sum(outcome(o, 0.3) != ACCEPT for o in range(1000))
    assert 240 < failed < 360
    assert outcome(7, 0.5) == outcome(7, 0.5)


def test_it_round_trips_through_json_data():
    p, _ = acquire(sg.start(0), records(5, 5), now=10)
    p = ack(p, (6, 6, [RELEASE]))
    assert sg.from_dict(sg.to_dict(p)) == p


# --- properties ---------------------------------------------------------------------------------

MEMBERS = ("m1", "m2", "m3")
operation = st.one_of(
    st.tuples(st.just("produce"), st.integers(1, 4)),
    st.tuples(st.just("fetch"), st.sampled_from(MEMBERS), st.integers(1, 6)),
    st.tuples(
        st.just("ack"),
        st.sampled_from(MEMBERS),
        st.sampled_from((ACCEPT, RELEASE, REJECT)),
        st.integers(1, 4),
    ),
    st.tuples(st.just("time"), st.integers(100, 3_000)),
    st.tuples(st.just("leave"), st.sampled_from(MEMBERS)),
    st.tuples(st.just("retention"), st.integers(0, 3)),
)


def _check(p, config, holders, spso_before) -> None:
    assert p.spso >= spso_before, "SPSO moved back"
    for r in p.in_flight:
        assert 1 <= r.delivery_count <= config.delivery_count_limit
        assert (r.state == sg.ACQUIRED) == bool(r.member_id)
        if r.state == sg.ACQUIRED:
            assert holders.get(r.offset) == r.member_id
    assert [r.offset for r in p.in_flight] == sorted({r.offset for r in p.in_flight})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(operation, max_size=40),
    limit=st.integers(2, 4),
    locks=st.integers(3, 30),
)
def test_it_keeps_its_promises_whatever_happens(ops, limit, locks):
    """No record is held by two consumers at once, a delivery count never passes the limit,
    SPSO only moves forward, and once consumers keep fetching every record ends acknowledged
    or archived."""
    config = sg.ShareConfig(
        record_lock_duration_ms=1_000, delivery_count_limit=limit, max_record_locks=locks
    )
    p, now, log_start, log_end = sg.start(0), 0, 0, 0
    holders: dict[int, str] = {}  # offset -> who holds it, from what acquire answered
    final: dict[int, str] = {}

    def apply(result):
        p, changes = result
        for c in changes:
            holders.pop(c.offset, None)
            if c.state in sg.FINAL_STATES:
                final[c.offset] = c.state
        return p

    def fetch(p, member, count):
        start = max(sg.next_fetch_offset(p), log_start)
        if start >= log_end or not sg.can_acquire(p, config):
            return p
        batches = [sg.Batch(o, o) for o in range(start, log_end)]
        p, got = sg.acquire(p, member, batches, max_records=count, now_ms=now, config=config)
        for r in got:
            for o in r.offsets():
                assert o not in holders, f"{o} acquired by {member} while {holders[o]} held it"
                holders[o] = member
        return p

    for op in ops:
        before = p.spso
        if op[0] == "produce":
            log_end += op[1]
        elif op[0] == "fetch":
            p = fetch(p, op[1], op[2])
        elif op[0] == "ack":
            _, member, kind, count = op
            mine = [r.offset for r in sg.held_by(p, member)][:count]
            if mine:
                acks = [sg.Acknowledgement(o, o, (kind,)) for o in mine]
                p = apply(sg.acknowledge(p, member, acks, config=config))
        elif op[0] == "time":
            now += op[1]
            p = apply(sg.expire_locks(p, now_ms=now, config=config))
        elif op[0] == "leave":
            p = apply(sg.release_member(p, op[1], config=config))
        else:
            log_start = min(log_end, log_start + op[1])
            p = apply(sg.move_log_start(p, log_start))
        _check(p, config, holders, before)

    # Drain: consumers keep fetching and let every lock run out; each round either archives
    # a record at the limit or delivers it once more, so it ends.
    for _ in range((limit + 1) * (log_end + 2)):
        before = p.spso
        p = fetch(p, "m1", 50)
        now += 1_000
        p = apply(sg.expire_locks(p, now_ms=now, config=config))
        _check(p, config, holders, before)
        if p.spso >= log_end and not p.in_flight:
            break
    assert not p.in_flight
    assert p.spso >= log_end
    # Offsets before the log start went with retention; every other one ended final.
    assert all(final.get(o) in sg.FINAL_STATES for o in range(log_start, log_end))
