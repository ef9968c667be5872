"""The virtual clock: simulated ms moved only by the wall time the services report."""

import json
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.engine.clock import (
    ALLOWED_TRANSITIONS,
    MAX_SPEED,
    MIN_SPEED,
    SPEED_PRESETS,
    ClockState,
    IllegalClockTransition,
    VirtualClock,
    advance,
    format_duration,
    format_time,
    new_clock,
    pause,
    play,
    set_speed,
    step,
    toggle,
    transition,
)


def test_a_new_clock_starts_paused_at_zero_at_normal_speed():
    clock = new_clock()
    assert (clock.now_ms, clock.state, clock.speed, clock.running) == (
        0,
        ClockState.PAUSED,
        1.0,
        False,
    )


def test_clock_is_frozen():
    with pytest.raises(FrozenInstanceError):
        new_clock().now_ms = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("current", "target", "legal"),
    [
        (ClockState.PAUSED, ClockState.RUNNING, True),
        (ClockState.RUNNING, ClockState.PAUSED, True),
        (ClockState.PAUSED, ClockState.PAUSED, False),
        (ClockState.RUNNING, ClockState.RUNNING, False),
    ],
)
def test_transition_table(current, target, legal):
    assert (target in ALLOWED_TRANSITIONS[current]) is legal
    if legal:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalClockTransition, match=f"from {current.value} to"):
            transition(current, target)


def test_play_pause_and_toggle():
    clock = play(new_clock())
    assert clock.running
    assert not pause(clock).running
    assert toggle(clock).state is ClockState.PAUSED
    assert toggle(toggle(clock)).state is ClockState.RUNNING
    with pytest.raises(IllegalClockTransition):
        play(clock)
    with pytest.raises(IllegalClockTransition):
        pause(pause(clock))


def test_a_paused_clock_does_not_move():
    clock = new_clock(now_ms=1_000)
    assert advance(clock, 5_000) == clock


@pytest.mark.parametrize(
    ("speed", "wall", "simulated"),
    [(1, 1_000, 1_000), (20, 500, 10_000), (0.25, 1_000, 250), (2.5, 4, 10)],
)
def test_a_running_clock_moves_wall_time_times_speed(speed, wall, simulated):
    clock = new_clock(speed=speed, running=True)
    assert advance(clock, wall).now_ms == simulated


def test_slow_motion_keeps_the_fractions_of_a_millisecond():
    clock = new_clock(speed=0.25, running=True)
    for _ in range(10):
        clock = advance(clock, 1)  # 0.25 ms each: rounding each tick would lose them all
    assert clock.now_ms == 2
    assert clock.carry_ms == pytest.approx(0.5)


def test_wall_time_never_goes_backwards():
    with pytest.raises(ValueError, match="forward"):
        advance(new_clock(running=True), -1)


@pytest.mark.parametrize("speed", [MIN_SPEED, 1, 7.5, MAX_SPEED, *SPEED_PRESETS])
def test_speeds_in_range_are_accepted(speed):
    assert set_speed(new_clock(), speed).speed == speed


@pytest.mark.parametrize("speed", [0, 0.2, 20.01, 100, -1, float("nan"), "2", True])
def test_speeds_out_of_range_are_refused(speed):
    with pytest.raises(ValueError, match="speed"):
        set_speed(new_clock(), speed)
    with pytest.raises(ValueError, match="speed"):
        new_clock(speed=speed)


def test_step_moves_exactly_step_ms_whatever_the_speed_or_state():
    clock = new_clock(speed=20)
    assert step(clock).now_ms == 100
    assert step(clock, 250).now_ms == 250
    assert step(play(clock), 1).now_ms == 1


@pytest.mark.parametrize("bad", [0, -100, 1.5, True])
def test_step_needs_a_positive_whole_number_of_ms(bad):
    with pytest.raises(ValueError, match="step_ms"):
        step(new_clock(), bad)


def test_invalid_clock_values_are_refused():
    with pytest.raises(ValueError, match="negative"):
        VirtualClock(now_ms=-1)
    with pytest.raises(ValueError, match="carry"):
        VirtualClock(carry_ms=1.0)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "day 1, 00:00:00"),
        (999, "day 1, 00:00:00"),
        (45_000, "day 1, 00:00:45"),
        (86_400_000, "day 2, 00:00:00"),
        (86_400_000 + 14 * 3_600_000 + 3 * 60_000 + 20_000, "day 2, 14:03:20"),
        (7 * 86_400_000 - 1, "day 7, 23:59:59"),
    ],
)
def test_format_time(ms, text):
    assert format_time(ms) == text


def test_format_time_with_milliseconds():
    assert format_time(61_250, with_ms=True) == "day 1, 00:01:01.250"
    with pytest.raises(ValueError):
        format_time(-1)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (250, "250 ms"),
        (3_000, "3 s"),
        (45_000, "45 s"),
        (90_000, "1 min 30 s"),
        (300_000, "5 min"),
        (3_600_005, "1 h"),
        (86_400_000, "1 d"),
        (604_800_000, "7 d"),
    ],
)
def test_format_duration(ms, text):
    assert format_duration(ms) == text


def test_format_duration_refuses_negative():
    with pytest.raises(ValueError):
        format_duration(-1)


def test_round_trip_through_json():
    clock = advance(new_clock(now_ms=10, speed=0.25, running=True), 3)
    data = json.loads(json.dumps(clock.to_dict()))
    assert data["display"] == "day 1, 00:00:00"
    assert VirtualClock.from_dict(data) == clock


@given(
    speed=st.sampled_from(SPEED_PRESETS),
    walls=st.lists(st.integers(min_value=0, max_value=5_000), max_size=30),
)
def test_many_small_advances_add_up_like_one_big_one(speed, walls):
    clock = new_clock(speed=speed, running=True)
    for wall in walls:
        clock = advance(clock, wall)
    assert clock.now_ms == int(sum(walls) * speed)
    assert clock.now_ms >= 0
