from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.consumption import (
    ConsumerSettings,
    Cursor,
    commits_before_revoke,
    consume,
    skipped_offsets,
)


def cursor(**kw) -> Cursor:
    base = {"partition": "orders-0", "log_start_offset": 0, "log_end_offset": 10, "committed": None}
    return Cursor(**(base | kw))


def run(cursors, semantics="at-least-once", budget=3, now=0, last=0, **kw):
    settings_ = ConsumerSettings(semantics=semantics, **kw)
    return consume(cursors, settings_, budget=budget, now_ms=now, last_auto_commit_ms=last)


def test_it_starts_at_the_committed_offset():
    result = run([cursor(committed=4)], budget=2)
    assert result.starts[0].offset == 4
    assert result.processed == (("orders-0", 4), ("orders-0", 5))


def test_it_starts_by_auto_offset_reset_without_a_committed_offset():
    latest = run([cursor()], budget=2)
    assert latest.starts[0].offset == 10 and latest.processed == ()
    earliest = run([cursor()], budget=2, auto_offset_reset="earliest")
    assert earliest.processed == (("orders-0", 0), ("orders-0", 1))


def test_it_reports_a_partition_it_cannot_start_with_reset_none():
    result = run([cursor()], auto_offset_reset="none")
    assert result.stuck and "orders-0" in result.stuck[0].error
    assert result.processed == ()


def test_it_resets_a_position_that_fell_off_the_log():
    result = run([cursor(log_start_offset=6, position=2)], auto_offset_reset="earliest")
    assert result.starts[0].offset == 6
    assert result.processed[0] == ("orders-0", 6)


def test_at_most_once_commits_the_batch_before_processing_it():
    result = run([cursor(committed=0)], semantics="at-most-once", budget=1, max_poll_records=5)
    assert result.commits == {"orders-0": 5}
    assert result.processed == (("orders-0", 0),)
    assert result.cursors[0].polled_until == 5


def test_at_least_once_commits_only_on_the_auto_commit_interval():
    early = run([cursor(committed=0)], budget=2, now=4_999)
    assert early.commits == {} and not early.auto_committed
    due = run([cursor(committed=0)], budget=2, now=5_000)
    assert due.commits == {"orders-0": 2} and due.auto_committed


def test_exactly_once_commits_with_every_record():
    result = run([cursor(committed=0)], semantics="exactly-once", budget=3)
    assert result.commits == {"orders-0": 3}
    assert result.cursors[0].committed == 3


def test_it_processes_a_poll_partition_by_partition_as_the_poll_returned_them():
    # One fetch buffers both partitions; max.poll.records=3 drains orders-0 first, then the
    # next poll finishes orders-0 and moves on to orders-1 (Kafka's FetchCollector).
    two = [cursor(committed=0, log_end_offset=4), cursor(partition="orders-1", committed=0)]
    result = run(two, budget=6, max_poll_records=3)
    assert result.processed == (
        ("orders-0", 0),
        ("orders-0", 1),
        ("orders-0", 2),
        ("orders-0", 3),
        ("orders-1", 0),
        ("orders-1", 1),
    )


def test_it_keeps_what_it_fetched_but_did_not_poll_for_the_next_call():
    result = run([cursor(committed=0)], budget=2, max_poll_records=5)
    [after] = result.cursors
    assert (after.position, after.polled_until, after.fetched_until) == (2, 5, 10)
    assert after.buffered == 5 and after.in_hand == 8
    again = run(list(result.cursors), budget=4, max_poll_records=5)
    assert [o for _, o in again.processed] == [2, 3, 4, 5]


def test_a_crash_before_the_auto_commit_replays_what_was_processed():
    first = run([cursor(committed=0)], budget=3, now=1_000)
    assert first.commits == {}
    # The member crashes: its position is lost; the next owner starts from the committed 0.
    replayed = run([cursor(committed=0)], budget=3, now=50_000, last=0)
    assert [o for _, o in replayed.processed] == [0, 1, 2]  # duplicates of the first run


def test_a_crash_after_an_at_most_once_commit_loses_the_rest_of_the_batch():
    first = run([cursor(committed=0)], semantics="at-most-once", budget=2, max_poll_records=5)
    assert first.commits == {"orders-0": 5}
    nxt = run([cursor(committed=5)], semantics="at-most-once", budget=1, max_poll_records=5)
    assert nxt.processed == (("orders-0", 5),)
    assert list(skipped_offsets(1, 5, 0)) == [2, 3, 4]


def test_a_live_member_commits_what_it_processed_before_a_rebalance():
    settings_ = ConsumerSettings()
    assert commits_before_revoke([cursor(committed=0, position=3)], settings_) == {"orders-0": 3}
    at_most = ConsumerSettings(semantics="at-most-once")
    assert commits_before_revoke([cursor(committed=0, position=3)], at_most) == {}


def test_it_refuses_unknown_semantics():
    with pytest.raises(ValueError):
        ConsumerSettings(semantics="twice")


@settings(max_examples=200, deadline=None)
@given(
    semantics=st.sampled_from(["at-most-once", "at-least-once", "exactly-once"]),
    committed=st.integers(0, 20),
    extra=st.integers(0, 20),
    budget=st.integers(0, 30),
    max_poll=st.integers(1, 8),
)
def test_it_processes_in_order_and_never_past_the_log_end(
    semantics, committed, extra, budget, max_poll
):
    end = committed + extra
    result = run(
        [cursor(committed=committed, log_end_offset=end)],
        semantics=semantics,
        budget=budget,
        max_poll_records=max_poll,
    )
    offsets = [o for _, o in result.processed]
    assert offsets == list(range(committed, committed + len(offsets)))
    assert len(offsets) == min(budget, extra)
    for offset in result.commits.values():
        assert committed <= offset <= end


def test_a_consumer_serves_its_partitions_in_turn_after_the_last_one() -> None:
    from messaging.engine.consumption import turn_order

    assert turn_order(["t-0", "t-1", "t-2"], "t-1") == ["t-2", "t-0", "t-1"]
    assert turn_order(["t-0", "t-1", "t-2"], "t-2") == ["t-0", "t-1", "t-2"]
    assert turn_order(["t-0", "t-1"], None) == ["t-0", "t-1"]
    assert turn_order(["t-0", "t-1"], "gone-3") == ["t-0", "t-1"]  # revoked since
