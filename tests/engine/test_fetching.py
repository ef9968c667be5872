"""Fetches and polls as Kafka's consumer and broker make them (kafka-reference.md section 5)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.consumption import ConsumerSettings, Cursor, consume
from messaging.engine.fetching import (
    Fetchable,
    FetchLimits,
    FetchState,
    collect,
    fetch,
    partition_fetch_records,
    record_bytes_scaled,
    session_order,
)

MIB = 1_048_576


def test_it_scales_max_partition_fetch_bytes_as_segments_are_scaled():
    # A segment of 10 records stands for segment.bytes (1 GiB): 1 MiB is a 1024th of it, under
    # one record, and Kafka still returns one so the consumer makes progress.
    assert partition_fetch_records(record_bytes_scaled(10)) == 1
    assert partition_fetch_records(record_bytes_scaled(10_240)) == 10
    assert partition_fetch_records(record_bytes_scaled(10_240), 2 * MIB) == 20


def test_a_fetch_brings_each_partition_up_to_max_partition_fetch_bytes():
    rb = record_bytes_scaled(4096)  # 4 records per MiB
    response = fetch(
        (), [Fetchable("t-0", 0, 10, rb), Fetchable("t-1", 3, 5, rb), Fetchable("t-2", 7, 7, rb)]
    )
    assert response.fetched == {"t-0": (0, 4), "t-1": (3, 5)}
    assert response.returned == ("t-0", "t-1")


def test_the_broker_moves_partitions_that_returned_records_to_the_back_of_the_session():
    rb = record_bytes_scaled(4096)
    response = fetch(
        ("t-0", "t-1", "t-2"),
        [Fetchable("t-0", 0, 10, rb), Fetchable("t-1", 0, 0, rb), Fetchable("t-2", 0, 10, rb)],
    )
    assert response.session == ("t-1", "t-0", "t-2")


def test_only_the_first_non_empty_partition_gets_a_record_bigger_than_the_limits():
    rb = record_bytes_scaled(10)  # one record weighs ~102 MiB: more than fetch.max.bytes
    fetchable = [Fetchable(f"t-{i}", 0, 5, rb) for i in range(3)]
    first = fetch((), fetchable)
    assert first.fetched == {"t-0": (0, 1)}
    second = fetch(first.session, fetchable[1:])
    assert second.fetched == {"t-1": (0, 1)}


def test_fetch_max_bytes_bounds_the_whole_response_in_session_order():
    rb = record_bytes_scaled(4096)
    fetchable = [Fetchable(f"t-{i}", 0, 10, rb) for i in range(3)]
    response = fetch(("t-2", "t-0", "t-1"), fetchable, FetchLimits(fetch_max_bytes=MIB + MIB // 2))
    assert response.fetched == {"t-2": (0, 4), "t-0": (0, 2)}
    assert response.session == ("t-1", "t-2", "t-0")


def test_a_partition_left_out_of_a_request_rejoins_the_session_at_the_end():
    assert session_order(("a", "b", "c"), ["c", "a"]) == ["a", "c"]
    assert session_order(("a", "c"), ["a", "b", "c"]) == ["a", "c", "b"]


def test_a_poll_drains_buffered_partitions_in_turn_up_to_max_poll_records():
    buffers = {"t-0": (0, 3), "t-1": (5, 9)}
    got = collect(["t-0", "t-1"], buffers, 5)
    assert got.polled == (("t-0", 0, 3), ("t-1", 5, 7))
    assert got.buffered == ("t-1",)  # what the poll left stays first in line


def test_a_partition_is_fetched_again_only_when_its_buffer_is_empty():
    c = Cursor("t-0", 0, 20, 0, record_bytes=record_bytes_scaled(4096))
    s = ConsumerSettings(max_poll_records=2)
    result = consume([c], s, budget=1, now_ms=0, last_auto_commit_ms=0)
    [after] = result.cursors
    assert (after.position, after.polled_until, after.fetched_until) == (1, 2, 4)
    result = consume(
        list(result.cursors), s, budget=2, now_ms=0, last_auto_commit_ms=0,
        fetch_state=result.fetch_state,
    )  # fmt: skip
    [after] = result.cursors
    # The second poll emptied the buffer (2..4), so it fetched again: 4..8.
    assert (after.position, after.polled_until, after.fetched_until) == (3, 4, 8)


def test_a_revoked_partition_loses_what_was_fetched_for_it():
    rb = record_bytes_scaled(4096)
    two = [Cursor("t-0", 0, 20, 0, record_bytes=rb), Cursor("t-1", 0, 20, 0, record_bytes=rb)]
    s = ConsumerSettings(max_poll_records=2)
    first = consume(two, s, budget=1, now_ms=0, last_auto_commit_ms=0)
    assert first.fetch_state.buffered == ("t-0", "t-1")
    # t-0 moved to another member; t-1 stays. The stored state still names t-0: it is ignored.
    kept = consume(
        [first.cursors[1]], s, budget=0, now_ms=0, last_auto_commit_ms=0,
        fetch_state=first.fetch_state,
    )  # fmt: skip
    assert kept.fetch_state.buffered == ("t-1",) and "t-0" not in kept.fetch_state.session


def test_a_slow_consumer_reads_all_three_partitions_alike():
    """The starvation of issue #12: a consumer slower than its producer, three partitions."""
    rb = record_bytes_scaled(10)
    cursors = [Cursor(f"t-{i}", 0, 0, None, record_bytes=rb) for i in range(3)]
    s = ConsumerSettings(max_poll_records=5, auto_offset_reset="earliest")
    state = FetchState()
    counts = {c.partition: 0 for c in cursors}
    for step in range(600):
        cursors = [replace(c, log_end_offset=c.log_end_offset + 1) for c in cursors]
        result = consume(
            cursors, s, budget=step % 2, now_ms=step, last_auto_commit_ms=0, fetch_state=state
        )
        for tp, _ in result.processed:
            counts[tp] += 1
        cursors, state = list(result.cursors), result.fetch_state
    assert max(counts.values()) - min(counts.values()) <= 1


@settings(max_examples=60, deadline=None)
@given(
    partitions=st.integers(2, 6),
    segment_records=st.sampled_from([1, 10, 100, 1000, 3000, 20_000, 100_000]),
    max_poll_records=st.integers(1, 8),
    fetch_max_bytes=st.sampled_from([1, MIB, 2 * MIB, 52_428_800]),
    plan=st.lists(
        st.tuples(st.lists(st.integers(0, 3), min_size=6, max_size=6), st.integers(0, 3)),
        min_size=20,
        max_size=120,
    ),
)
def test_no_partition_with_records_waits_longer_than_one_pass_over_the_others(
    partitions, segment_records, max_poll_records, fetch_max_bytes, plan
):
    """A consumer slower than its producer: while a partition has records to read, the others
    get at most one pass over what the consumer fetched from them: the poll in its hands and its
    buffered fetch, at most one max.partition.fetch.bytes each."""
    rb = record_bytes_scaled(segment_records)
    limits = FetchLimits(fetch_max_bytes=fetch_max_bytes)
    s = ConsumerSettings(
        max_poll_records=max_poll_records, fetch_limits=limits, auto_offset_reset="earliest"
    )
    cap = partition_fetch_records(rb, limits.max_partition_fetch_bytes)
    bound = 2 * cap * (partitions - 1)
    cursors = [Cursor(f"t-{i}", 0, 0, None, record_bytes=rb) for i in range(partitions)]
    state = FetchState()
    waited = {c.partition: 0 for c in cursors}
    for now, (produced, budget) in enumerate(plan):
        cursors = [
            replace(c, log_end_offset=c.log_end_offset + produced[i]) for i, c in enumerate(cursors)
        ]
        result = consume(
            cursors, s, budget=budget, now_ms=now, last_auto_commit_ms=0, fetch_state=state
        )
        position = {c.partition: c.position or 0 for c in cursors}
        end = {c.partition: c.log_end_offset for c in cursors}
        for tp, offset in result.processed:
            assert offset == position[tp]
            position[tp] = offset + 1
            for other in waited:
                has_records = position[other] < end[other]
                waited[other] = waited[other] + 1 if other != tp and has_records else 0
                assert waited[other] <= bound, (other, waited)
        cursors, state = list(result.cursors), result.fetch_state


def test_a_poll_handing_records_to_its_caller_moves_past_them_and_keeps_the_rest_buffered():
    from messaging.engine.consumption import poll

    two = [Cursor("t-0", 0, 3, None), Cursor("t-1", 0, 4, None)]
    s = ConsumerSettings(max_poll_records=5, auto_offset_reset="earliest")
    first = poll(two, s)
    assert first.polled == (("t-0", 0, 3), ("t-1", 0, 2))
    assert [(c.position, c.fetched_until) for c in first.cursors] == [(3, 3), (2, 4)]
    nxt = poll(list(first.cursors), s, fetch_state=first.fetch_state)
    assert nxt.polled == (("t-1", 2, 4),)  # what the last poll left is first in line
