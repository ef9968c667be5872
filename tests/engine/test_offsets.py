"""Offsets: lag, auto.offset.reset and kafka-consumer-groups --reset-offsets."""

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.engine.offsets import (
    GroupNotEmptyError,
    InvalidResetOptionError,
    NoCommittedOffsetError,
    NoOffsetForPartitionError,
    OffsetError,
    OffsetOutOfRangeError,
    PartitionOffsets,
    lag,
    lag_or_backlog,
    offset_for_timestamp,
    reset_offsets,
    starting_position,
)

# orders-0 holds offsets 7..19 (0..6 were deleted by retention); the group committed 12.
ORDERS_0 = PartitionOffsets("orders-0", log_start_offset=7, log_end_offset=20, committed=12)
# orders-1 was never read by the group.
ORDERS_1 = PartitionOffsets("orders-1", log_start_offset=0, log_end_offset=5, committed=None)


def plan(option, value=None, partitions=(ORDERS_0,), **kwargs):
    return reset_offsets("billing", "Empty", partitions, option, value, **kwargs)


# --- lag ----------------------------------------------------------------------------------------


def test_lag_is_log_end_minus_committed():
    assert lag(log_end_offset=20, committed=12) == 8
    assert lag(log_end_offset=20, committed=20) == 0


def test_lag_without_committed_offset_is_none_like_the_dash_in_describe():
    assert lag(log_end_offset=20, committed=None) is None


def test_lag_for_totals_counts_the_whole_retained_log_when_nothing_was_committed():
    assert lag_or_backlog(log_start_offset=7, log_end_offset=20, committed=None) == 13
    assert lag_or_backlog(log_start_offset=7, log_end_offset=20, committed=15) == 5


@given(st.integers(0, 10_000), st.one_of(st.none(), st.integers(0, 20_000)))
def test_lag_is_never_negative(log_end, committed):
    found = lag(log_end, committed)
    assert found is None or found >= 0
    assert lag_or_backlog(0, log_end, committed) >= 0


# --- auto.offset.reset --------------------------------------------------------------------------


def test_a_committed_offset_inside_the_log_wins_whatever_the_policy():
    for policy in ("earliest", "latest", "none"):
        start = starting_position(12, 7, 20, policy)
        assert (start.offset, start.reason, start.reset_applied) == (12, "committed", False)


def test_the_log_end_offset_is_a_valid_committed_offset():
    assert starting_position(20, 7, 20, "none").offset == 20


def test_no_committed_offset_earliest_starts_at_log_start():
    start = starting_position(None, 7, 20, "earliest")
    assert start.offset == 7
    assert start.reason == "reset-earliest (no committed offset)"
    assert start.reset_applied


def test_no_committed_offset_latest_is_kafkas_default_and_skips_the_backlog():
    start = starting_position(None, 7, 20)
    assert start.offset == 20
    assert start.reason == "reset-latest (no committed offset)"


def test_no_committed_offset_none_raises_no_offset_for_partition():
    with pytest.raises(NoOffsetForPartitionError, match="Undefined offset with no reset policy"):
        starting_position(None, 7, 20, "none", partition="orders-0")


def test_committed_offset_deleted_by_retention_is_reset_and_says_why():
    start = starting_position(3, 7, 10, "latest")
    assert start.offset == 10
    assert start.reason == "reset-latest (committed offset 3 fell off the log, log start 7)"
    assert starting_position(3, 7, 10, "earliest").offset == 7


def test_committed_offset_past_the_log_end_is_out_of_range_too():
    start = starting_position(25, 7, 20, "earliest")
    assert start.offset == 7
    assert "past the log end 20" in start.reason


def test_out_of_range_with_policy_none_raises_offset_out_of_range():
    with pytest.raises(OffsetOutOfRangeError, match="offset=3 is out of range for partition o-0"):
        starting_position(3, 7, 10, "none", partition="o-0")


def test_offset_errors_are_value_errors():
    assert issubclass(NoOffsetForPartitionError, ValueError)
    assert issubclass(OffsetOutOfRangeError, OffsetError)


def test_unknown_reset_policy_is_refused():
    with pytest.raises(InvalidResetOptionError, match="auto.offset.reset"):
        starting_position(None, 0, 5, "smallest")  # the pre-0.9 name


@given(
    st.integers(0, 100),
    st.integers(0, 100),
    st.one_of(st.none(), st.integers(0, 300)),
    st.sampled_from(["earliest", "latest"]),
)
def test_starting_position_is_always_inside_the_log(start, length, committed, policy):
    position = starting_position(committed, start, start + length, policy)
    assert start <= position.offset <= start + length


# --- reset-offsets: the rules of the tool ------------------------------------------------------


@pytest.mark.parametrize("state", ["Stable", "PreparingRebalance", "CompletingRebalance"])
def test_reset_refuses_an_active_group_with_the_tools_message(state):
    with pytest.raises(GroupNotEmptyError) as caught:
        reset_offsets("billing", state, [ORDERS_0], "to-earliest")
    assert str(caught.value) == (
        "Assignments can only be reset if the group 'billing' is inactive, "
        f"but the current state is {state}."
    )


@pytest.mark.parametrize("state", ["Empty", "Dead"])
def test_reset_works_on_an_inactive_group(state):
    assert reset_offsets("billing", state, [ORDERS_0], "to-earliest").lines[0].new == 7


def test_reset_is_a_dry_run_unless_execute_is_given():
    dry = plan("to-earliest")
    assert not dry.executed
    executed = plan("to-earliest", execute=True)
    assert executed.executed
    assert executed.new_offsets() == {"orders-0": 7}


def test_reset_plan_shows_current_and_new_per_partition():
    result = plan("to-latest", partitions=(ORDERS_0, ORDERS_1))
    assert [(line.partition, line.current, line.new) for line in result.lines] == [
        ("orders-0", 12, 20),
        ("orders-1", None, 5),
    ]


def test_reset_plan_is_json_serialisable():
    json.dumps(dataclasses.asdict(plan("shift-by", -100)))


# --- reset-offsets: every scenario -------------------------------------------------------------


def test_to_earliest_goes_to_the_log_start_not_to_zero():
    assert plan("to-earliest").lines[0].new == 7


def test_to_latest_goes_to_the_log_end():
    assert plan("to-latest").lines[0].new == 20


def test_to_current_keeps_the_committed_offset():
    assert plan("to-current").lines[0].new == 12


def test_to_current_without_committed_offset_uses_the_log_end():
    line = plan("to-current", partitions=(ORDERS_1,)).lines[0]
    assert (line.current, line.new) == (None, 5)


def test_to_current_does_not_clamp_like_the_real_tool():
    gone = PartitionOffsets("orders-0", 7, 20, committed=3)
    line = plan("to-current", partitions=(gone,)).lines[0]
    assert line.new == 3
    assert "auto.offset.reset" in line.note


def test_to_offset_inside_the_log():
    line = plan("to-offset", 15).lines[0]
    assert (line.current, line.new, line.note) == (12, 15, "")


def test_to_offset_below_the_log_start_is_clamped_with_the_tools_warning():
    line = plan("to-offset", 2).lines[0]
    assert line.new == 7
    assert line.note == (
        "New offset (2) is lower than earliest offset for topic partition orders-0. "
        "Value will be set to 7"
    )


def test_to_offset_above_the_log_end_is_clamped_with_the_tools_warning():
    line = plan("to-offset", 99).lines[0]
    assert line.new == 20
    assert line.note.startswith("New offset (99) is higher than latest offset")


def test_shift_by_moves_back_and_forth_from_the_committed_offset():
    assert plan("shift-by", -3).lines[0].new == 9
    assert plan("shift-by", +5).lines[0].new == 17


def test_shift_by_is_clamped_on_both_sides():
    assert plan("shift-by", -100).lines[0].new == 7
    assert plan("shift-by", +100).lines[0].new == 20


def test_shift_by_without_committed_offset_fails_like_the_tool():
    with pytest.raises(NoCommittedOffsetError, match="Cannot shift offset for partition orders-1"):
        plan("shift-by", 1, partitions=(ORDERS_1,))


HOURLY = PartitionOffsets(
    "events-0",
    log_start_offset=0,
    log_end_offset=5,
    committed=5,
    timestamps=tuple((offset, offset * 3_600_000) for offset in range(5)),
)


def test_to_datetime_finds_the_first_offset_at_or_after_the_time():
    assert plan("to-datetime", 2 * 3_600_000, partitions=(HOURLY,)).lines[0].new == 2
    assert plan("to-datetime", 2 * 3_600_000 - 1, partitions=(HOURLY,)).lines[0].new == 2
    assert plan("to-datetime", 2 * 3_600_000 + 1, partitions=(HOURLY,)).lines[0].new == 3


def test_to_datetime_after_the_last_record_falls_back_to_the_log_end():
    line = plan("to-datetime", 10 * 3_600_000, partitions=(HOURLY,)).lines[0]
    assert line.new == 5
    assert "log end" in line.note


def test_by_duration_counts_back_from_now():
    now = 4 * 3_600_000 + 60_000
    result = plan("by-duration", 2 * 3_600_000, partitions=(HOURLY,), now_ms=now)
    assert result.lines[0].new == 3  # now - 2h = 2h01: the first record at or after it is 3h


def test_by_duration_needs_now():
    with pytest.raises(InvalidResetOptionError, match="now_ms"):
        plan("by-duration", 1000, partitions=(HOURLY,))


@pytest.mark.parametrize("option", ["to-offset", "shift-by", "to-datetime", "by-duration"])
def test_scenarios_that_need_a_value_refuse_to_run_without_one(option):
    with pytest.raises(InvalidResetOptionError):
        plan(option, None, now_ms=0)


def test_unknown_scenario_is_refused():
    with pytest.raises(InvalidResetOptionError, match="requires one of the following"):
        plan("to-yesterday")


def test_offset_for_timestamp_ignores_records_below_the_log_start():
    pairs = ((0, 100), (1, 200), (2, 300))
    assert offset_for_timestamp(pairs, 50) == 0
    assert offset_for_timestamp(pairs, 50, log_start_offset=2) == 2
    assert offset_for_timestamp(pairs, 301) is None


@given(
    st.integers(0, 50),
    st.integers(0, 50),
    st.one_of(st.none(), st.integers(0, 200)),
    st.sampled_from(["to-offset", "shift-by"]),
    st.integers(-300, 300),
)
def test_clamped_scenarios_always_land_inside_the_log(start, length, committed, option, value):
    partition = PartitionOffsets("p-0", start, start + length, committed if committed else 0)
    new = plan(option, value, partitions=(partition,)).lines[0].new
    assert start <= new <= start + length


def test_a_fetch_outside_the_log_is_out_of_range():
    from messaging.engine.offsets import OffsetOutOfRangeError, check_fetch_offset

    check_fetch_offset(7, 7, 20)
    check_fetch_offset(20, 7, 20)  # the log end: nothing yet, but not an error
    for offset in (6, 21):
        with pytest.raises(OffsetOutOfRangeError, match="out of range"):
            check_fetch_offset(offset, 7, 20, "orders-0")
