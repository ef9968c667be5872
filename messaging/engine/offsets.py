"""Consumer offsets: lag, where a consumer starts, and ``kafka-consumer-groups --reset-offsets``.

A committed offset is the offset of the NEXT record the group will read (last processed + 1), so
a group that has read everything has committed the log end offset and has a lag of 0.

Facts reproduced (Apache Kafka clients and tools):

* ``auto.offset.reset`` (default ``latest``) is consulted when the group has no committed offset
  or when the committed offset is outside [log start, log end]; ``none`` raises
  ``NoOffsetForPartitionException`` / ``OffsetOutOfRangeException`` instead.
* The reset tool only works on an inactive group (state ``Empty`` or ``Dead``), is a dry run unless
  ``--execute`` is given, clamps ``--to-offset`` and ``--shift-by`` (and files) to
  [log start, log end], resolves ``--to-datetime`` / ``--by-duration`` with ListOffsets by
  timestamp (first offset whose timestamp is >= the target, else the log end offset), and keeps
  ``--to-current`` as it is (no clamping: the tool does not clamp it either).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

AutoOffsetReset = Literal["earliest", "latest", "none"]
GroupState = Literal["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"]
ResetOption = Literal[
    "to-earliest",
    "to-latest",
    "to-current",
    "to-offset",
    "shift-by",
    "to-datetime",
    "by-duration",
]

AUTO_OFFSET_RESET_DEFAULT: AutoOffsetReset = "latest"
INACTIVE_GROUP_STATES: frozenset[str] = frozenset({"Empty", "Dead"})
GROUP_STATES: frozenset[str] = frozenset(
    {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}
)
RESET_OPTIONS: tuple[str, ...] = (
    "to-earliest",
    "to-latest",
    "to-current",
    "to-offset",
    "shift-by",
    "to-datetime",
    "by-duration",
)


class OffsetError(ValueError):
    """Base class of the offset errors, so callers can catch them as one family."""


class NoOffsetForPartitionError(OffsetError):
    """Kafka's NoOffsetForPartitionException: no committed offset and auto.offset.reset=none."""


class OffsetOutOfRangeError(OffsetError):
    """Kafka's OffsetOutOfRangeException: committed offset outside the log, reset policy none."""


class GroupNotEmptyError(OffsetError):
    """The reset tool refuses a group that still has members (Kafka's NON_EMPTY_GROUP family)."""


class NoCommittedOffsetError(OffsetError):
    """--shift-by needs a committed offset to shift from (the tool's IllegalArgumentException)."""


class InvalidResetOptionError(OffsetError):
    """A reset scenario the tool would reject: unknown option, missing value, bad state name."""


# --- lag ----------------------------------------------------------------------------------------


def lag(log_end_offset: int, committed: int | None) -> int | None:
    """LAG as ``kafka-consumer-groups --describe`` shows it; None where it prints '-'.

    The one definition of lag in LogLab (board, describe table, roster, student page, REST
    Proxy's lags): log end offset - committed offset, '-' until the group's first commit on the
    partition. A committed offset below the log start offset (retention deleted records the
    group never read) is not moved up to it: the tool subtracts the committed offset as it is,
    so the lag counts the deleted records too, until the consumer's auto.offset.reset moves it.
    Never negative: a committed offset beyond the log end (possible after a truncation) shows 0
    rather than a confusing negative backlog.
    """
    if committed is None:
        return None
    return max(0, log_end_offset - committed)


def lag_total(lags: Iterable[int | None]) -> int | None:
    """A consumer's or a group's lag over several partitions: the sum of the partitions' lags,
    '-' (None) while none of them has a committed offset. A partition with nothing committed
    adds nothing, as its own line shows '-'."""
    known = [value for value in lags if value is not None]
    return sum(known) if known else None


def lag_or_backlog(log_start_offset: int, log_end_offset: int, committed: int | None) -> int:
    """An int for UI totals: the lag, or, with no committed offset, every retained record.

    A group without a committed offset has the whole retained log ahead of it if it starts from
    ``earliest``; with ``latest`` it would skip it. Totals count the worst case so a new group
    never looks "caught up" by accident.
    """
    found = lag(log_end_offset, committed)
    if found is None:
        return max(0, log_end_offset - log_start_offset)
    return found


def check_fetch_offset(
    offset: int, log_start_offset: int, log_end_offset: int, partition: str = "topic-0"
) -> None:
    """The broker's answer to a fetch: offsets in [log start, log end] are served (the log end
    gives nothing yet); anything else is OFFSET_OUT_OF_RANGE, and the consumer's
    auto.offset.reset decides what happens next, not the broker."""
    if not log_start_offset <= offset <= log_end_offset:
        raise OffsetOutOfRangeError(
            f"Offset {offset} is out of range for {partition}: the log holds offsets "
            f"{log_start_offset} to {log_end_offset - 1} (log end offset {log_end_offset})."
        )


# --- auto.offset.reset --------------------------------------------------------------------------


@dataclass(frozen=True)
class StartingPosition:
    """Where a consumer starts reading a partition, and why."""

    offset: int
    reason: str
    reset_applied: bool


def starting_position(
    committed: int | None,
    log_start_offset: int,
    log_end_offset: int,
    auto_offset_reset: AutoOffsetReset = AUTO_OFFSET_RESET_DEFAULT,
    partition: str = "topic-0",
) -> StartingPosition:
    """The fetch position a consumer of a partition starts from.

    The committed offset wins when it lies in [log start, log end] (the log end itself is valid:
    the consumer simply waits for new records). Otherwise ``auto.offset.reset`` decides.
    """
    _check_log_bounds(log_start_offset, log_end_offset)
    if committed is not None and log_start_offset <= committed <= log_end_offset:
        return StartingPosition(committed, "committed", reset_applied=False)
    why = _why_reset(committed, log_start_offset, log_end_offset)
    if auto_offset_reset == "earliest":
        return StartingPosition(log_start_offset, f"reset-earliest ({why})", reset_applied=True)
    if auto_offset_reset == "latest":
        return StartingPosition(log_end_offset, f"reset-latest ({why})", reset_applied=True)
    if auto_offset_reset == "none":
        raise _no_reset_policy_error(committed, log_start_offset, log_end_offset, partition)
    raise InvalidResetOptionError(
        f"Invalid value {auto_offset_reset!r} for configuration auto.offset.reset: "
        "expected one of earliest, latest, none"
    )


def _why_reset(committed: int | None, log_start: int, log_end: int) -> str:
    if committed is None:
        return "no committed offset"
    if committed < log_start:
        return f"committed offset {committed} fell off the log, log start {log_start}"
    return f"committed offset {committed} is past the log end {log_end}"


def _no_reset_policy_error(
    committed: int | None, log_start: int, log_end: int, partition: str
) -> OffsetError:
    if committed is None:
        return NoOffsetForPartitionError(
            f"Undefined offset with no reset policy for partition: {partition}"
        )
    return OffsetOutOfRangeError(
        f"Fetch position offset={committed} is out of range for partition {partition} "
        f"(log start {log_start}, log end {log_end}) and auto.offset.reset=none"
    )


def _check_log_bounds(log_start_offset: int, log_end_offset: int) -> None:
    if not 0 <= log_start_offset <= log_end_offset:
        raise OffsetError(
            f"log start offset {log_start_offset} must be >= 0 and <= log end offset "
            f"{log_end_offset}"
        )


# --- ListOffsets by timestamp -------------------------------------------------------------------


def offset_for_timestamp(
    timestamps: Sequence[tuple[int, int]], timestamp_ms: int, log_start_offset: int = 0
) -> int | None:
    """ListOffsets by timestamp: the first offset whose timestamp is >= ``timestamp_ms``.

    ``timestamps`` holds the (offset, timestamp_ms) pairs of the records in the log. Records
    below the log start are gone, so they cannot be found. None means Kafka's UNKNOWN_OFFSET
    (no such record); the reset tool then falls back to the log end offset.
    """
    for offset, record_timestamp in sorted(timestamps):
        if offset >= log_start_offset and record_timestamp >= timestamp_ms:
            return offset
    return None


# --- kafka-consumer-groups --reset-offsets ------------------------------------------------------


@dataclass(frozen=True)
class PartitionOffsets:
    """What the reset tool reads about one partition before planning."""

    partition: str
    log_start_offset: int
    log_end_offset: int
    committed: int | None
    # (offset, timestamp_ms) of the records in the log; only --to-datetime/--by-duration use it.
    timestamps: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ResetLine:
    """One row of the plan: CURRENT-OFFSET -> NEW-OFFSET, with the tool's warning if any."""

    partition: str
    current: int | None
    new: int
    note: str = ""


@dataclass(frozen=True)
class ResetPlan:
    """The tool's answer. A dry run (the default) changes nothing; ``executed`` says which."""

    group_id: str
    option: str
    value: int | None
    executed: bool
    lines: tuple[ResetLine, ...]

    def new_offsets(self) -> dict[str, int]:
        """The committed offsets the group has after an execute (partition -> offset)."""
        return {line.partition: line.new for line in self.lines}


def reset_offsets(
    group_id: str,
    group_state: GroupState,
    partitions: Sequence[PartitionOffsets],
    option: ResetOption,
    value: int | None = None,
    *,
    now_ms: int | None = None,
    execute: bool = False,
) -> ResetPlan:
    """Plan (and with ``execute=True`` apply) ``--reset-offsets --<option> [value]``.

    ``value`` is N for ``to-offset``, +-N for ``shift-by``, a timestamp in ms for
    ``to-datetime`` and a duration in ms for ``by-duration`` (which also needs ``now_ms``).
    """
    _check_group_inactive(group_id, group_state)
    _check_option(option, value, now_ms)
    lines = tuple(_plan_line(p, option, value, now_ms) for p in partitions)
    return ResetPlan(group_id, option, value, executed=execute, lines=lines)


def _check_group_inactive(group_id: str, group_state: str) -> None:
    if group_state not in GROUP_STATES:
        raise InvalidResetOptionError(
            f"unknown group state {group_state!r}: expected one of {sorted(GROUP_STATES)}"
        )
    if group_state not in INACTIVE_GROUP_STATES:
        # Running members would overwrite the new offsets with their next commit.
        raise GroupNotEmptyError(
            f"Assignments can only be reset if the group '{group_id}' is inactive, "
            f"but the current state is {group_state}."
        )


_NEEDS_VALUE = {
    "to-offset": "an offset N",
    "shift-by": "a shift +-N",
    "to-datetime": "a timestamp in ms",
    "by-duration": "a duration in ms",
}


def _check_option(option: str, value: int | None, now_ms: int | None) -> None:
    if option not in RESET_OPTIONS:
        raise InvalidResetOptionError(
            f"Option '--reset-offsets' requires one of the following scenarios: "
            f"{', '.join('--' + name for name in RESET_OPTIONS)} (got {option!r})"
        )
    if option in _NEEDS_VALUE and value is None:
        raise InvalidResetOptionError(f"--{option} needs {_NEEDS_VALUE[option]}")
    if option not in _NEEDS_VALUE and value is not None:
        raise InvalidResetOptionError(f"--{option} takes no value (got {value})")
    if option == "by-duration" and now_ms is None:
        raise InvalidResetOptionError("--by-duration needs now_ms: it counts back from now")
    if option == "by-duration" and value is not None and value < 0:
        raise InvalidResetOptionError(f"--by-duration needs a positive duration (got {value})")


def _plan_line(
    p: PartitionOffsets, option: str, value: int | None, now_ms: int | None
) -> ResetLine:
    _check_log_bounds(p.log_start_offset, p.log_end_offset)
    if option == "to-earliest":
        return ResetLine(p.partition, p.committed, p.log_start_offset)
    if option == "to-latest":
        return ResetLine(p.partition, p.committed, p.log_end_offset)
    if option == "to-current":
        return _to_current(p)
    if option == "to-offset":
        return _clamped(p, _required(value))
    if option == "shift-by":
        return _shifted(p, _required(value))
    if option == "to-datetime":
        return _by_timestamp(p, _required(value))
    return _by_timestamp(p, _required(now_ms) - _required(value))


def _required(value: int | None) -> int:
    if value is None:  # _check_option already refused this; kept for the type checker
        raise InvalidResetOptionError("a value is required for this reset option")
    return value


def _to_current(p: PartitionOffsets) -> ResetLine:
    if p.committed is None:
        return ResetLine(
            p.partition, None, p.log_end_offset, "no committed offset: set to the log end offset"
        )
    line = ResetLine(p.partition, p.committed, p.committed)
    if p.log_start_offset <= p.committed <= p.log_end_offset:
        return line
    # The tool does not clamp --to-current; the consumer will apply auto.offset.reset later.
    return replace(line, note="kept as is (out of range): the consumer applies auto.offset.reset")


def _clamped(p: PartitionOffsets, requested: int) -> ResetLine:
    if requested > p.log_end_offset:
        note = (
            f"New offset ({requested}) is higher than latest offset for topic partition "
            f"{p.partition}. Value will be set to {p.log_end_offset}"
        )
        return ResetLine(p.partition, p.committed, p.log_end_offset, note)
    if requested < p.log_start_offset:
        note = (
            f"New offset ({requested}) is lower than earliest offset for topic partition "
            f"{p.partition}. Value will be set to {p.log_start_offset}"
        )
        return ResetLine(p.partition, p.committed, p.log_start_offset, note)
    return ResetLine(p.partition, p.committed, requested)


def _shifted(p: PartitionOffsets, shift: int) -> ResetLine:
    if p.committed is None:
        raise NoCommittedOffsetError(
            f"Cannot shift offset for partition {p.partition} since there is no current "
            "committed offset"
        )
    return _clamped(p, p.committed + shift)


def _by_timestamp(p: PartitionOffsets, timestamp_ms: int) -> ResetLine:
    found = offset_for_timestamp(p.timestamps, timestamp_ms, p.log_start_offset)
    if found is None:
        note = f"no record at or after timestamp {timestamp_ms}: falling back to the log end offset"
        return ResetLine(p.partition, p.committed, p.log_end_offset, note)
    if found == p.log_start_offset > 0:
        # The records of that time may have been deleted: the earliest one left is the answer.
        note = f"the earliest retained record (log start {found}) is already at or after that time"
        return ResetLine(p.partition, p.committed, found, note)
    return ResetLine(p.partition, p.committed, found)
