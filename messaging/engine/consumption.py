"""A live consumer's next moves on the board: fetch, process, commit, by delivery semantics.

`delivery.py` is the complete reference model (its own little cluster, crash points, producer
ids, transactions). This module is the part the board runs continuously: given where a member
stands on each of its partitions and how many records its speed lets it process now, it says
which records it processes and which offsets it commits, in the order the real client would.

Facts reproduced (Kafka's consumer):

* A partition without a position starts at the committed offset, or where `auto.offset.reset`
  says when there is none or it is out of range (`offsets.starting_position`). A position that
  fell off the log (retention deleted it) is out of range too, and resets the same way.
* `poll()` returns at most `max.poll.records` records of a partition.
* at-most-once: the polled batch's end is committed at once, before any of it is processed; a
  crash in the middle loses the rest of the batch.
* at-least-once: records are processed, and `enable.auto.commit` commits the positions every
  `auto.commit.interval.ms` (at the next poll); a crash replays what was processed since.
* exactly-once: each record's output and its offset are committed in one transaction: nothing is
  lost or repeated.
* Before a rebalance the client commits what it processed (ConsumerCoordinator.onJoinPrepare
  auto-commits, exactly-once commits with each record), so a clean rebalance repeats nothing:
  only a crash does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from messaging.engine.offsets import AutoOffsetReset, OffsetError, starting_position

Semantics = Literal["at-most-once", "at-least-once", "exactly-once"]
SEMANTICS: tuple[Semantics, ...] = ("at-most-once", "at-least-once", "exactly-once")
AUTO_COMMIT_INTERVAL_MS_DEFAULT = 5_000


@dataclass(frozen=True)
class Cursor:
    """Where one member stands on one partition it owns."""

    partition: str
    log_start_offset: int
    log_end_offset: int
    committed: int | None
    position: int | None = None  # next offset to process; None until the member starts
    polled_until: int | None = None  # end (exclusive) of the last polled batch


@dataclass(frozen=True)
class ConsumerSettings:
    semantics: Semantics = "at-least-once"
    auto_offset_reset: AutoOffsetReset = "latest"
    max_poll_records: int = 500
    auto_commit_interval_ms: int = AUTO_COMMIT_INTERVAL_MS_DEFAULT

    def __post_init__(self) -> None:
        if self.semantics not in SEMANTICS:
            raise ValueError(f"unknown delivery semantics {self.semantics!r}")
        if self.max_poll_records < 1:
            raise ValueError("max.poll.records must be at least 1")
        if self.auto_commit_interval_ms < 0:
            raise ValueError("auto.commit.interval.ms must not be negative")


@dataclass(frozen=True)
class Start:
    """A partition the member began (or resumed) reading, and why there."""

    partition: str
    offset: int
    reason: str


@dataclass(frozen=True)
class Stuck:
    """A partition the member cannot read: auto.offset.reset=none and nothing to start from."""

    partition: str
    error: str


@dataclass(frozen=True)
class ConsumeResult:
    cursors: tuple[Cursor, ...]
    processed: tuple[tuple[str, int], ...] = ()  # (partition, offset) in processing order
    commits: dict[str, int] = field(default_factory=dict)  # partition -> committed offset
    starts: tuple[Start, ...] = ()
    stuck: tuple[Stuck, ...] = ()
    auto_committed: bool = False


def consume(
    cursors: Sequence[Cursor],
    settings: ConsumerSettings,
    *,
    budget: int,
    now_ms: int,
    last_auto_commit_ms: int,
) -> ConsumeResult:
    """Process up to `budget` records over the member's partitions, dealt round-robin.

    Round-robin over partitions is what a fair consumer loop does with records from several
    partitions; within a partition, records are processed strictly in offset order.
    """
    if budget < 0:
        raise ValueError("budget must not be negative")
    starts: list[Start] = []
    stuck: list[Stuck] = []
    commits: dict[str, int] = {}
    working: list[Cursor] = []
    for cursor in cursors:
        started = _start(cursor, settings)
        if isinstance(started, Stuck):
            stuck.append(started)
            working.append(cursor)
            continue
        cursor, start = started
        if start is not None:
            starts.append(start)
        working.append(cursor)

    processed: list[tuple[str, int]] = []
    remaining = budget
    progressed = True
    while remaining > 0 and progressed:
        progressed = False
        for index, cursor in enumerate(working):
            if remaining == 0:
                break
            if cursor.position is None or cursor.position >= cursor.log_end_offset:
                continue
            cursor, committed = _poll_if_needed(cursor, settings)
            if committed is not None:
                commits[cursor.partition] = committed
            assert cursor.position is not None
            processed.append((cursor.partition, cursor.position))
            cursor = replace(cursor, position=cursor.position + 1)
            if settings.semantics == "exactly-once":
                # The record's output and its offset commit in the same transaction.
                commits[cursor.partition] = cursor.position
                cursor = replace(cursor, committed=cursor.position)
            working[index] = cursor
            remaining -= 1
            progressed = True

    auto_committed = False
    interval_over = now_ms - last_auto_commit_ms >= settings.auto_commit_interval_ms
    if settings.semantics == "at-least-once" and interval_over:
        for index, cursor in enumerate(working):
            if cursor.position is not None and cursor.position != cursor.committed:
                commits[cursor.partition] = cursor.position
                working[index] = replace(cursor, committed=cursor.position)
        auto_committed = True
    return ConsumeResult(
        cursors=tuple(working),
        processed=tuple(processed),
        commits=commits,
        starts=tuple(starts),
        stuck=tuple(stuck),
        auto_committed=auto_committed,
    )


def commits_before_revoke(cursors: Sequence[Cursor], settings: ConsumerSettings) -> dict[str, int]:
    """What a live member commits when a rebalance takes its partitions away.

    at-least-once: the auto-commit in onJoinPrepare commits what was processed. at-most-once
    committed at poll time already; exactly-once with every record. A crashed member commits
    nothing: it is not there to.
    """
    if settings.semantics != "at-least-once":
        return {}
    return {
        c.partition: c.position
        for c in cursors
        if c.position is not None and c.position != c.committed
    }


def turn_order(partitions: Sequence[str], last: str | None) -> list[str]:
    """A consumer's partitions in the order it next serves them: starting after `last`, the
    one it processed last. A fair consumer loop takes turns, so no partition starves while
    another keeps filling up (as `consume` deals a budget round-robin)."""
    if last not in partitions:
        return list(partitions)
    turn = list(partitions).index(last) + 1
    return [*partitions[turn:], *partitions[:turn]]


def skipped_offsets(
    highest_processed: int | None, start_offset: int, log_start_offset: int
) -> range:
    """Offsets a group will never process when a member starts at `start_offset`.

    When an earlier member of the group processed up to `highest_processed` and the new start is
    further on, the records in between were committed without being processed (at-most-once
    after a crash) or deleted before anyone read them (retention): either way, lost to the group.
    """
    if highest_processed is None:
        return range(0)
    first = max(highest_processed + 1, log_start_offset)
    return range(first, max(first, start_offset))


def _start(cursor: Cursor, settings: ConsumerSettings) -> tuple[Cursor, Start | None] | Stuck:
    in_range = (
        cursor.position is not None
        and cursor.log_start_offset <= cursor.position <= cursor.log_end_offset
    )
    if in_range:
        return cursor, None
    # No position yet: start from the committed offset. A position that fell off the log is
    # out of range, and the reset policy decides, as after a failed fetch.
    candidate = cursor.committed if cursor.position is None else cursor.position
    try:
        start = starting_position(
            candidate,
            cursor.log_start_offset,
            cursor.log_end_offset,
            settings.auto_offset_reset,
            partition=cursor.partition,
        )
    except OffsetError as error:
        return Stuck(cursor.partition, str(error))
    moved = replace(cursor, position=start.offset, polled_until=None)
    return moved, Start(cursor.partition, start.offset, start.reason)


def _poll_if_needed(cursor: Cursor, settings: ConsumerSettings) -> tuple[Cursor, int | None]:
    assert cursor.position is not None
    if cursor.polled_until is not None and cursor.position < cursor.polled_until:
        return cursor, None
    batch_end = min(cursor.position + settings.max_poll_records, cursor.log_end_offset)
    cursor = replace(cursor, polled_until=batch_end)
    if settings.semantics == "at-most-once":
        # Commit first, then process: a crash from here on loses the rest of the batch.
        return replace(cursor, committed=batch_end), batch_end
    return cursor, None
