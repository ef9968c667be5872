"""Retention and compaction: what stays in a partition's log, and what a consumer meets later."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.offsets import reset_offsets
from messaging.engine.retention import (
    InvalidConfigurationError,
    InvalidRecordError,
    LogConfig,
    append,
    append_all,
    clean,
    compact,
    delete_old_segments,
    log_size_bytes,
    new_log,
    partition_offsets,
    records,
    resume_position,
    segment_views,
)

HOUR = 3_600_000
DAY = 24 * HOUR


def daily_log(days, *, per_segment=3, **config):
    """One 100-byte record a day, at day 0, 1, 2, ... (offset n is written on day n)."""
    log = new_log("orders-0", LogConfig(segment_records=per_segment, **config))
    return append_all(log, ((day * DAY, f"k{day}", f"v{day}", 100) for day in range(days)))


def ranges(log):
    return [(view.base_offset, view.last_offset) for view in segment_views(log)]


def offsets(log):
    return [record.offset for record in records(log)]


# --- segments -----------------------------------------------------------------------------------


def test_the_log_is_cut_into_segments_the_last_one_active():
    log = daily_log(10)
    assert ranges(log) == [(0, 2), (3, 5), (6, 8), (9, 9)]
    assert [view.active for view in segment_views(log)] == [False, False, False, True]


def test_segment_ms_rolls_a_segment_that_is_not_full_but_old():
    log = new_log("t-0", LogConfig(segment_records=100, segment_ms=DAY))
    log = append_all(log, [(0, "a", "1", 10), (HOUR, "b", "2", 10), (DAY + HOUR + 1, "c", "3", 10)])
    assert ranges(log) == [(0, 1), (2, 2)]


# --- time retention -----------------------------------------------------------------------------


def test_time_retention_deletes_whole_segments_oldest_first():
    log = daily_log(10, retention_ms=4 * DAY)
    result = delete_old_segments(log, now_ms=11 * DAY)
    # Segment 0-2 (newest record day 2) and 3-5 (day 5) are older than 4 days: gone.
    assert result.deleted_segments == (0, 3)
    assert [d.offset for d in result.deleted] == [0, 1, 2, 3, 4, 5]
    assert {d.reason for d in result.deleted} == {"retention.ms"}
    # Record 6 is 5 days old, past retention, but its segment holds day 8: it stays, whole.
    assert offsets(result.log) == [6, 7, 8, 9]


def test_the_log_start_offset_moves_to_the_first_surviving_segment():
    result = delete_old_segments(daily_log(10, retention_ms=4 * DAY), now_ms=11 * DAY)
    assert result.log_start_offset == 6 == result.log.log_start_offset
    assert ranges(result.log)[0] == (6, 8)


def test_a_segment_exactly_retention_ms_old_stays():
    log = daily_log(10, retention_ms=6 * DAY)
    assert delete_old_segments(log, now_ms=8 * DAY).deleted_segments == ()  # 8 - 2 = 6, not > 6
    assert delete_old_segments(log, now_ms=8 * DAY + 1).deleted_segments == (0,)


def test_deletion_stops_at_the_first_segment_that_must_stay():
    # CreateTime comes from producers: here the second segment holds older timestamps.
    log = new_log("t-0", LogConfig(segment_records=2, retention_ms=DAY))
    stamps = [5 * DAY, 5 * DAY, 0, 0, 9 * DAY]
    log = append_all(log, ((ts, "k", "v", 100) for ts in stamps))
    result = delete_old_segments(log, now_ms=5 * DAY + HOUR)
    assert result.deleted == ()  # segment 2-3 is expired but segment 0-1 is not: nothing goes


def test_offsets_are_never_reused_after_deletion():
    result = delete_old_segments(daily_log(10, retention_ms=4 * DAY), now_ms=11 * DAY)
    grown = append(result.log, 11 * DAY, "k11", "v11")
    assert offsets(grown) == [6, 7, 8, 9, 10]


def test_the_active_segment_goes_too_when_all_of_it_expired():
    log = daily_log(5, retention_ms=DAY)  # segments 0-2 and the active 3-4
    result = delete_old_segments(log, now_ms=30 * DAY)
    assert result.deleted_segments == (0, 3)
    assert records(result.log) == ()
    # Kafka rolled an empty active segment at the log end first: nothing is renumbered.
    assert ranges(result.log) == [(5, None)]
    assert result.log_start_offset == 5 == result.log.log_end_offset
    assert offsets(append(result.log, 31 * DAY, "k", "v")) == [5]


def test_an_empty_active_segment_is_never_deleted():
    emptied = delete_old_segments(daily_log(5, retention_ms=DAY), now_ms=30 * DAY).log
    again = delete_old_segments(emptied, now_ms=60 * DAY)
    assert again.deleted_segments == () and again.log == emptied
    # Not even by size: 0 bytes minus an empty segment still "fits" retention.bytes=0.
    no_bytes = dataclasses.replace(emptied, config=LogConfig(segment_records=3, retention_bytes=0))
    assert delete_old_segments(no_bytes, now_ms=60 * DAY).deleted_segments == ()


def test_retention_ms_minus_one_keeps_everything_by_time():
    log = daily_log(10, retention_ms=-1)
    assert delete_old_segments(log, now_ms=10_000 * DAY).deleted == ()


def test_compact_only_topics_are_not_deleted_by_time():
    log = daily_log(10, retention_ms=DAY, cleanup_policy="compact")
    assert delete_old_segments(log, now_ms=100 * DAY).deleted == ()


# --- size retention -----------------------------------------------------------------------------


def sized_log(count, retention_bytes):
    log = new_log("t-0", LogConfig(segment_records=2, retention_bytes=retention_bytes))
    return append_all(log, ((i, "k", "v", 100) for i in range(count)))


def test_size_retention_deletes_oldest_segments_while_the_rest_stays_at_least_retention_bytes():
    log = sized_log(7, retention_bytes=350)  # segments of 200, 200, 200 and 100 bytes: 700
    result = delete_old_segments(log, now_ms=10)
    # 700 - 200 = 500 >= 350: delete; 500 - 200 = 300 < 350: stop.
    assert result.deleted_segments == (0,)
    assert {d.reason for d in result.deleted} == {"retention.bytes"}
    assert log_size_bytes(result.log) == 500
    assert result.log_start_offset == 2


def test_size_retention_may_land_exactly_on_retention_bytes():
    result = delete_old_segments(sized_log(7, retention_bytes=300), now_ms=10)
    assert result.deleted_segments == (0, 2)
    assert log_size_bytes(result.log) == 300


def test_size_retention_minus_one_is_unlimited():
    assert delete_old_segments(sized_log(7, retention_bytes=-1), now_ms=10).deleted == ()


def test_a_log_smaller_than_retention_bytes_is_untouched():
    assert delete_old_segments(sized_log(3, retention_bytes=1000), now_ms=10).deleted == ()


def test_time_runs_before_size():
    log = daily_log(10, retention_ms=7 * DAY, retention_bytes=400)
    result = delete_old_segments(log, now_ms=10 * DAY)
    assert [(d.offset, d.reason) for d in result.deleted] == [
        (0, "retention.ms"),
        (1, "retention.ms"),
        (2, "retention.ms"),
        (3, "retention.bytes"),
        (4, "retention.bytes"),
        (5, "retention.bytes"),
    ]


# --- compaction ---------------------------------------------------------------------------------


def keyed_log(pairs, *, per_segment=3, policy="compact", timestamp=0):
    log = new_log("users-0", LogConfig(segment_records=per_segment, cleanup_policy=policy))
    return append_all(log, ((timestamp, key, value, 100) for key, value in pairs))


def test_compaction_keeps_the_latest_record_per_key_with_offsets_and_order_unchanged():
    log = keyed_log(
        [("A", "1"), ("B", "1"), ("A", "2"), ("C", "1"), ("B", "2"), ("A", "3"), ("A", "4")]
    )
    result = compact(log, now_ms=0)
    kept = [(r.offset, r.key, r.value) for r in records(result.log)]
    assert kept == [(3, "C", "1"), (4, "B", "2"), (5, "A", "3"), (6, "A", "4")]
    assert [(d.offset, d.reason) for d in result.deleted] == [
        (0, "compaction"),
        (1, "compaction"),
        (2, "compaction"),
    ]


def test_the_active_segment_is_never_compacted():
    # A=3 (offset 5) stays although A=4 exists: A=4 sits in the active segment.
    log = keyed_log(
        [("A", "1"), ("B", "1"), ("A", "2"), ("C", "1"), ("B", "2"), ("A", "3"), ("A", "4")]
    )
    assert 5 in offsets(compact(log, now_ms=0).log)


def test_compaction_leaves_holes_but_keeps_segment_ranges_and_the_log_start():
    log = keyed_log([("A", "1"), ("A", "2"), ("A", "3"), ("A", "4")])
    result = compact(log, now_ms=0)
    assert segment_views(result.log)[0].offsets == (2,)
    assert ranges(result.log) == [(0, 2), (3, 3)]
    assert result.log_start_offset == 0


def test_compaction_never_reuses_offsets():
    log = compact(keyed_log([("A", "1"), ("A", "2"), ("A", "3"), ("A", "4")]), now_ms=0).log
    assert records(append(log, 0, "A", "5"))[-1].offset == 4


def test_a_compacted_topic_refuses_a_record_without_key():
    log = keyed_log([])
    with pytest.raises(InvalidRecordError) as caught:
        append(log, 0, None, "orphan")
    assert str(caught.value) == (
        "Compacted topic cannot accept message without key in topic partition users-0."
    )


def test_the_cleaner_drops_keyless_records_left_from_before_the_topic_was_compacted():
    log = keyed_log([(None, "x"), ("A", "1"), ("A", "2"), ("B", "1")], policy="delete")
    log = dataclasses.replace(log, config=LogConfig(segment_records=3, cleanup_policy="compact"))
    result = compact(log, now_ms=0)
    assert [(d.offset, d.reason) for d in result.deleted] == [(0, "null key"), (1, "compaction")]


def test_a_tombstone_deletes_the_key_and_expires_delete_retention_ms_after_the_first_cleaning():
    log = keyed_log([("B", "1"), ("B", None), ("X", "1"), ("Y", "1")])
    first = compact(log, now_ms=10 * DAY)
    assert [(d.offset, d.reason) for d in first.deleted] == [(0, "compaction")]
    tombstone = records(first.log)[0]
    assert (tombstone.offset, tombstone.value) == (1, None)
    assert tombstone.delete_horizon_ms == 10 * DAY + DAY  # delete.retention.ms = 1 day

    still_there = compact(first.log, now_ms=11 * DAY - 1)
    assert 1 in offsets(still_there.log)  # consumers still have time to see the delete

    gone = compact(still_there.log, now_ms=11 * DAY)
    assert [(d.offset, d.reason) for d in gone.deleted] == [(1, "tombstone expired")]
    assert offsets(gone.log) == [2, 3]


def test_delete_only_topics_are_not_compacted():
    log = keyed_log([("A", "1"), ("A", "2"), ("A", "3"), ("A", "4")], policy="delete")
    assert compact(log, now_ms=0).deleted == ()


def test_compact_delete_does_both():
    log = new_log(
        "t-0", LogConfig(segment_records=2, cleanup_policy="compact,delete", retention_ms=5 * DAY)
    )
    log = append_all(
        log,
        [
            (0, "A", "1", 100),
            (0, "B", "1", 100),
            (9 * DAY, "A", "2", 100),
            (9 * DAY, "A", "3", 100),
            (9 * DAY, "C", "1", 100),
        ],
    )
    result = clean(log, now_ms=10 * DAY)
    assert [(d.offset, d.reason) for d in result.deleted] == [
        (0, "retention.ms"),
        (1, "retention.ms"),
        (2, "compaction"),
    ]
    assert offsets(result.log) == [3, 4]


def test_unknown_cleanup_policy_is_refused():
    with pytest.raises(InvalidConfigurationError, match="cleanup.policy"):
        new_log("t-0", LogConfig(cleanup_policy="archive"))


def test_cleanup_result_is_json_serialisable():
    result = clean(daily_log(10, retention_ms=DAY), now_ms=10 * DAY)
    json.dumps(dataclasses.asdict(result))


# --- what the consumer meets afterwards ---------------------------------------------------------


def test_a_consumer_whose_committed_offset_was_deleted_is_reset_by_auto_offset_reset():
    log = delete_old_segments(daily_log(10, retention_ms=4 * DAY), now_ms=11 * DAY).log
    latest = resume_position(log, committed=3)
    assert (latest.offset, latest.reason) == (
        10,
        "reset-latest (committed offset 3 fell off the log, log start 6)",
    )
    earliest = resume_position(log, committed=3, auto_offset_reset="earliest")
    assert earliest.offset == 6  # offsets 3, 4, 5 are lost to this group
    assert resume_position(log, committed=7).reason == "committed"


def hourly_topic(retention_ms):
    """Ten days of hourly events, one segment a day, read up to the end by the warehouse loader."""
    log = new_log("events-0", LogConfig(segment_records=24, retention_ms=retention_ms))
    log = append_all(log, ((hour * HOUR, f"order-{hour}", "{}", 100) for hour in range(240)))
    return clean(log, now_ms=240 * HOUR).log


def test_data_warehouse_replay_three_days_back_with_seven_days_retention():
    log = hourly_topic(retention_ms=7 * DAY)
    assert log.log_start_offset == 72  # the first three daily segments are past 7 days
    now = 240 * HOUR
    result = reset_offsets(
        "warehouse", "Empty", [partition_offsets(log, 240)], "by-duration", 3 * DAY, now_ms=now
    )
    line = result.lines[0]
    assert (line.current, line.new) == (240, 168)  # the event of hour 168 = now - 72 hours
    assert records(log)[168 - 72].timestamp_ms == now - 3 * DAY


def test_data_warehouse_replay_three_days_back_with_one_day_retention_clamps_to_log_start():
    log = hourly_topic(retention_ms=DAY)
    assert log.log_start_offset == 216  # only the last day is left
    target = 240 * HOUR - 3 * DAY
    result = reset_offsets(
        "warehouse", "Empty", [partition_offsets(log, 240)], "to-datetime", target
    )
    line = result.lines[0]
    assert line.new == 216  # the data of 3 days ago is gone: the earliest record left
    assert "log start 216" in line.note


# --- properties ---------------------------------------------------------------------------------

configs = st.builds(
    LogConfig,
    cleanup_policy=st.sampled_from(["delete", "compact", "compact,delete"]),
    retention_ms=st.sampled_from([-1, 0, 5, 20]),
    retention_bytes=st.sampled_from([-1, 0, 3, 10]),
    segment_records=st.integers(1, 4),
    segment_ms=st.sampled_from([3, 1000]),
    delete_retention_ms=st.sampled_from([0, 5]),
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.integers(0, 40),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["v", None]),
            st.integers(0, 3),
        ),
        st.tuples(st.just("clean"), st.integers(0, 60)),
    ),
    max_size=40,
)


def run(config, ops):
    """Replay operations; yield the log after each, checking every append's offset."""
    log = new_log("p-0", config)
    for op in ops:
        if op[0] == "append":
            _, ts, key, value, size = op
            before = log.log_end_offset
            log = append(log, ts, key, value, size)
            assert records(log)[-1].offset == before  # a new record always takes the log end
        else:
            log = clean(log, now_ms=op[1]).log
        yield log


@settings(max_examples=150, deadline=None)
@given(configs, operations)
def test_offsets_are_never_reused_or_renumbered(config, ops):
    seen: dict[int, tuple] = {}
    log_end = 0
    for log in run(config, ops):
        assert log.log_end_offset >= log_end
        log_end = log.log_end_offset
        found = offsets(log)
        assert found == sorted(set(found))
        assert all(o < log.log_end_offset for o in found)
        for r in records(log):
            assert seen.setdefault(r.offset, (r.timestamp_ms, r.key)) == (r.timestamp_ms, r.key)


@settings(max_examples=150, deadline=None)
@given(configs, operations)
def test_log_start_is_at_or_below_every_surviving_offset(config, ops):
    for log in run(config, ops):
        found = offsets(log)
        assert all(log.log_start_offset <= o for o in found)
        assert log.log_start_offset <= log.log_end_offset
        views = segment_views(log)
        assert views[0].base_offset == log.log_start_offset
        for view, after in zip(views, views[1:], strict=False):
            assert view.last_offset is not None and view.last_offset + 1 == after.base_offset


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(1, 5)), max_size=40),
    st.integers(1, 4),
    st.integers(-1, 10),
    st.integers(-1, 60),
)
def test_delete_policy_log_start_is_the_minimum_surviving_offset_or_the_log_end(
    entries, per_segment, retention_ms, retention_bytes
):
    config = LogConfig(
        segment_records=per_segment, retention_ms=retention_ms, retention_bytes=retention_bytes
    )
    log = append_all(new_log("p-0", config), ((ts, "k", "v", size) for ts, size in entries))
    result = delete_old_segments(log, now_ms=50)
    found = offsets(result.log)
    assert result.log_start_offset == (found[0] if found else result.log.log_end_offset)
    deleted = [d.offset for d in result.deleted]
    assert deleted == list(range(log.log_start_offset, result.log_start_offset))
    if retention_ms == -1 and retention_bytes >= 0 and log_size_bytes(log) >= retention_bytes:
        assert log_size_bytes(result.log) >= retention_bytes  # whole segments only


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("ABCDE"), max_size=30), st.integers(1, 5))
def test_compaction_output_is_a_subsequence_with_the_latest_record_per_key(keys, per_segment):
    log = new_log("p-0", LogConfig(segment_records=per_segment, cleanup_policy="compact"))
    log = append_all(log, ((0, key, f"{key}@{i}", 1) for i, key in enumerate(keys)))
    before = records(log)
    after = records(compact(log, now_ms=0).log)
    assert [r for r in before if r in after] == list(after)  # a subsequence, same offsets
    active_base = log.segments[-1].base_offset
    cleanable_before = [r for r in before if r.offset < active_base]
    cleanable_after = [r for r in after if r.offset < active_base]
    latest = {r.key: r for r in cleanable_before}
    assert cleanable_after == sorted(latest.values(), key=lambda r: r.offset)
    assert [r for r in after if r.offset >= active_base] == [
        r for r in before if r.offset >= active_base
    ]
