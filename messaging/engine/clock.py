"""The virtual clock every simulation reads its time from.

Simulated time is an int of milliseconds that only moves when the services tell it how much wall
time went by. That keeps the engine deterministic (replaying the same wall deltas replays the
same lesson) and lets a learner slow a rebalance down to 0.25x or skip a 45 s session timeout
at 20x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

MIN_SPEED = 0.25
MAX_SPEED = 20.0
# What the speed selector offers; any speed inside [MIN_SPEED, MAX_SPEED] is accepted.
SPEED_PRESETS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
DEFAULT_STEP_MS = 100

MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"


ALLOWED_TRANSITIONS: dict[ClockState, frozenset[ClockState]] = {
    ClockState.PAUSED: frozenset({ClockState.RUNNING}),
    ClockState.RUNNING: frozenset({ClockState.PAUSED}),
}


class IllegalClockTransition(ValueError):
    """Raised when asked to play a running clock or pause a paused one."""


def transition(current: ClockState, target: ClockState) -> ClockState:
    """Return ``target`` if the table allows ``current -> target``, else refuse loudly."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise IllegalClockTransition(
            f"the clock cannot go from {current.value} to {target.value}; "
            f"allowed from {current.value}: "
            + ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current]))
        )
    return target


@dataclass(frozen=True)
class VirtualClock:
    """Simulated time in ms, whether it runs, and how fast relative to wall time.

    ``carry_ms`` keeps the sub-millisecond part of ``wall_ms * speed`` so that many small
    advances at 0.25x add up exactly instead of being rounded away one tick at a time.
    """

    now_ms: int = 0
    state: ClockState = ClockState.PAUSED
    speed: float = 1.0
    carry_ms: float = 0.0

    def __post_init__(self) -> None:
        check_speed(self.speed)
        if self.now_ms < 0:
            raise ValueError(f"simulated time cannot be negative (got {self.now_ms} ms)")
        if not 0.0 <= self.carry_ms < 1.0:
            raise ValueError(f"carry_ms must be in [0, 1) (got {self.carry_ms})")

    @property
    def running(self) -> bool:
        return self.state is ClockState.RUNNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "now_ms": self.now_ms,
            "state": self.state.value,
            "speed": self.speed,
            "carry_ms": self.carry_ms,
            "display": format_time(self.now_ms),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VirtualClock:
        return cls(
            now_ms=int(data["now_ms"]),
            state=ClockState(data["state"]),
            speed=float(data["speed"]),
            carry_ms=float(data.get("carry_ms", 0.0)),
        )


def check_speed(speed: float) -> float:
    """Refuse speeds outside what the board can show meaningfully."""
    if isinstance(speed, bool) or not isinstance(speed, int | float) or math.isnan(speed):
        raise ValueError(f"speed must be a number between {MIN_SPEED}x and {MAX_SPEED}x")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed {speed}x is out of range: allowed {MIN_SPEED}x to {MAX_SPEED:g}x")
    return float(speed)


def new_clock(now_ms: int = 0, speed: float = 1.0, running: bool = False) -> VirtualClock:
    state = ClockState.RUNNING if running else ClockState.PAUSED
    return VirtualClock(now_ms=now_ms, state=state, speed=check_speed(speed))


def play(clock: VirtualClock) -> VirtualClock:
    return replace(clock, state=transition(clock.state, ClockState.RUNNING))


def pause(clock: VirtualClock) -> VirtualClock:
    return replace(clock, state=transition(clock.state, ClockState.PAUSED))


def toggle(clock: VirtualClock) -> VirtualClock:
    return pause(clock) if clock.running else play(clock)


def set_speed(clock: VirtualClock, speed: float) -> VirtualClock:
    return replace(clock, speed=check_speed(speed))


def advance(clock: VirtualClock, wall_ms: int | float) -> VirtualClock:
    """Let ``wall_ms`` of real time pass: a running clock moves ``wall_ms * speed``."""
    if wall_ms < 0:
        raise ValueError(f"wall time only moves forward (got {wall_ms} ms)")
    if not clock.running:
        return clock
    exact = wall_ms * clock.speed + clock.carry_ms
    whole = math.floor(exact)
    return replace(clock, now_ms=clock.now_ms + whole, carry_ms=exact - whole)


def step(clock: VirtualClock, step_ms: int = DEFAULT_STEP_MS) -> VirtualClock:
    """Move simulated time by exactly ``step_ms``, whatever the speed or state.

    Stepping is how a learner walks through a rebalance frame by frame, usually while paused,
    so the speed multiplier deliberately does not apply.
    """
    if isinstance(step_ms, bool) or not isinstance(step_ms, int) or step_ms <= 0:
        raise ValueError(f"step_ms must be a positive whole number of ms (got {step_ms!r})")
    return replace(clock, now_ms=clock.now_ms + step_ms)


def format_time(now_ms: int, with_ms: bool = False) -> str:
    """Simulated time as a learner reads it: ``day 2, 14:03:20`` (the first day is day 1)."""
    if now_ms < 0:
        raise ValueError(f"simulated time cannot be negative (got {now_ms} ms)")
    days, rest = divmod(now_ms, MS_PER_DAY)
    hours, rest = divmod(rest, MS_PER_HOUR)
    minutes, rest = divmod(rest, MS_PER_MINUTE)
    seconds, millis = divmod(rest, MS_PER_SECOND)
    text = f"day {days + 1}, {hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{millis:03d}" if with_ms else text


_UNITS: tuple[tuple[int, str], ...] = (
    (MS_PER_DAY, "d"),
    (MS_PER_HOUR, "h"),
    (MS_PER_MINUTE, "min"),
    (MS_PER_SECOND, "s"),
    (1, "ms"),
)


def format_duration(duration_ms: int) -> str:
    """A config value in words a learner can compare: 45000 -> ``45 s``, 90000 -> ``1 min 30 s``.

    Only the largest unit and the one just below it are kept; a narration needs the order of
    magnitude, not the last millisecond.
    """
    if duration_ms < 0:
        raise ValueError(f"a duration cannot be negative (got {duration_ms} ms)")
    if duration_ms == 0:
        return "0 ms"
    first = next(i for i, (size, _) in enumerate(_UNITS) if duration_ms >= size)
    parts: list[str] = []
    rest = duration_ms
    for size, unit in _UNITS[first : first + 2]:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts)


def clock_payload(clock: VirtualClock) -> dict:
    """The clock as events and pages carry it."""
    return {
        "now_ms": clock.now_ms,
        "display": format_time(clock.now_ms),
        "running": clock.running,
        "speed": clock.speed,
    }
