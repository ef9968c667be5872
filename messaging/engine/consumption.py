"""A live consumer's next moves on the board: fetch, process, commit, by delivery semantics.

`delivery.py` is the complete reference model (its own little cluster, crash points, producer
ids, transactions). This module is the part the board runs continuously: given where a member
stands on each of its partitions and how many records its speed lets it process now, it says
which records it processes and which offsets it commits, in the order the real client would.

Facts reproduced (Kafka's consumer):

* A partition without a position starts at the committed offset, or where `auto.offset.reset`
  says when there is none or it is out of range (`offsets.starting_position`). A position that
  fell off the log (retention deleted it) is out of range too, and resets the same way; what was
  fetched for it is dropped.
* Records come by fetch, then poll (`fetching.py`): a fetch asks for the partitions with nothing
  buffered, the broker answers in its session order and moves the partitions that returned
  records to the back; `poll()` drains the buffered partitions in turn, at most
  `max.poll.records` records in all, and sends the next fetch before it returns (the client
  pipelines). The records of a poll are processed in the order the poll returned them.
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

from messaging.engine.fetching import (
    RECORD_BYTES_UNSCALED,
    Fetchable,
    FetchLimits,
    FetchState,
    collect,
    fetch,
)
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
    # End (exclusive) of the records fetched and buffered, not yet returned by a poll: the
    # buffer is [polled_until (or position), fetched_until).
    fetched_until: int | None = None
    # The bytes one record stands for against the fetch limits (the board's scale:
    # models.BOARD_RECORD_BYTES).
    record_bytes: int | Fraction = RECORD_BYTES_UNSCALED

    @property
    def fetch_position(self) -> int | None:
        """Kafka's position: the next offset poll() returns (past what was polled)."""
        if self.polled_until is None or self.position is None:
            return self.position
        return max(self.position, self.polled_until)

    @property
    def buffered(self) -> int:
        """Records fetched and not yet returned by a poll."""
        start = self.fetch_position
        if start is None or self.fetched_until is None:
            return 0
        return max(0, self.fetched_until - start)

    @property
    def in_hand(self) -> int:
        """Records fetched (polled or still buffered) and not yet processed."""
        if self.position is None:
            return 0
        end = max(self.polled_until or 0, self.fetched_until or 0)
        return max(0, end - self.position)


@dataclass(frozen=True)
class ConsumerSettings:
    semantics: Semantics = "at-least-once"
    auto_offset_reset: AutoOffsetReset = "latest"
    max_poll_records: int = 500
    auto_commit_interval_ms: int = AUTO_COMMIT_INTERVAL_MS_DEFAULT
    fetch_limits: FetchLimits = FetchLimits()

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
    fetch_state: FetchState = FetchState()


def consume(
    cursors: Sequence[Cursor],
    settings: ConsumerSettings,
    *,
    budget: int,
    now_ms: int,
    last_auto_commit_ms: int,
    fetch_state: FetchState | None = None,
) -> ConsumeResult:
    """Process up to `budget` records over the member's partitions, as its poll loop would.

    The member processes the records of its last poll in the order the poll returned them;
    when they are done it polls again (and a poll with nothing buffered fetches first). Within
    a partition, records are processed strictly in offset order.
    """
    if budget < 0:
        raise ValueError("budget must not be negative")
    commits: dict[str, int] = {}
    loop = _Loop(settings, fetch_state or FetchState())
    starts, stuck = loop.begin(cursors)

    processed: list[tuple[str, int]] = []
    remaining = budget
    while remaining > 0:
        name = loop.next_polled()
        if name is None:
            polled = loop.poll()
            if not polled:
                break
            if settings.semantics == "at-most-once":
                # Commit first, then process: a crash from here on loses the rest of the batch.
                for tp in polled:
                    end = loop.cursors[tp].polled_until
                    assert end is not None
                    commits[tp] = end
                    loop.cursors[tp] = replace(loop.cursors[tp], committed=end)
            continue
        cursor = loop.cursors[name]
        assert cursor.position is not None
        processed.append((name, cursor.position))
        cursor = replace(cursor, position=cursor.position + 1)
        if settings.semantics == "exactly-once":
            # The record's output and its offset commit in the same transaction.
            commits[name] = cursor.position
            cursor = replace(cursor, committed=cursor.position)
        loop.cursors[name] = cursor
        remaining -= 1

    working = [loop.cursors[c.partition] for c in cursors]
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
        fetch_state=loop.state(),
    )


@dataclass(frozen=True)
class PollResult:
    cursors: tuple[Cursor, ...]
    polled: tuple[tuple[str, int, int], ...]  # (partition, first, end) in the order returned
    starts: tuple[Start, ...] = ()
    stuck: tuple[Stuck, ...] = ()
    fetch_state: FetchState = FetchState()


def poll(
    cursors: Sequence[Cursor], settings: ConsumerSettings, *, fetch_state: FetchState | None = None
) -> PollResult:
    """One `poll()` whose records go to the caller at once (REST Proxy's GET records: the HTTP
    client has them, so each returned partition's position moves past them). Buffered records
    come first, partition after partition; with nothing buffered it fetches, and it sends the
    next fetch for the partitions it emptied before it returns, as the consumer does."""
    loop = _Loop(settings, fetch_state or FetchState())
    starts, stuck = loop.begin(cursors)
    loop.polled = []  # the caller took the last poll's records when it returned them
    loop.poll()
    polled = loop.last_polled
    for name, _, end in polled:
        loop.cursors[name] = replace(loop.cursors[name], position=end)
    return PollResult(
        cursors=tuple(loop.cursors[c.partition] for c in cursors),
        polled=polled,
        starts=tuple(starts),
        stuck=tuple(stuck),
        fetch_state=loop.state(),
    )


class _Loop:
    """One member's poll loop over its cursors: its polled batch, its buffer, its session."""

    def __init__(self, settings: ConsumerSettings, state: FetchState) -> None:
        self.settings = settings
        self.given = state
        self.cursors: dict[str, Cursor] = {}
        self.usable: list[str] = []  # started partitions, in the client's (assignment) order
        self.session: list[str] = []
        self.buffered: list[str] = []
        self.polled: list[str] = []
        self.last_polled: tuple[tuple[str, int, int], ...] = ()

    def begin(self, cursors: Sequence[Cursor]) -> tuple[list[Start], list[Stuck]]:
        """Start (or resume) every partition, then take in the stored fetch state."""
        starts: list[Start] = []
        stuck: list[Stuck] = []
        for cursor in cursors:
            started = _start(cursor, self.settings)
            if isinstance(started, Stuck):
                stuck.append(started)
                self.cursors[cursor.partition] = cursor
                continue
            cursor, start = started
            if start is not None:
                starts.append(start)
            self.cursors[cursor.partition] = cursor
            self.usable.append(cursor.partition)
        self.normalise()
        return starts, stuck

    def normalise(self) -> None:
        """Keep only what still belongs to the member (a revoked partition's buffer is gone), and
        take in any polled or buffered records the stored order does not list."""
        owned = set(self.usable)
        self.session = [p for p in self.given.session if p in owned]
        self.polled = _ordered(self.given.polled, self.usable, self._has_polled)
        self.buffered = _ordered(self.given.buffered, self.usable, self._has_buffered)

    def _has_polled(self, name: str) -> bool:
        c = self.cursors[name]
        return c.position is not None and c.polled_until is not None and c.position < c.polled_until

    def _has_buffered(self, name: str) -> bool:
        return self.cursors[name].buffered > 0

    def next_polled(self) -> str | None:
        while self.polled and not self._has_polled(self.polled[0]):
            self.polled.pop(0)
        return self.polled[0] if self.polled else None

    def poll(self) -> list[str]:
        """poll(): return buffered records, fetching first when nothing is buffered, then send
        the next fetch for the partitions it emptied. Returns the partitions polled."""
        got = self._collect()
        if not got:
            self._fetch()
            got = self._collect()
        if got:
            self._fetch()
        return got

    def _collect(self) -> list[str]:
        buffers = {}
        for name in self.buffered:
            c = self.cursors[name]
            start = c.fetch_position
            assert start is not None and c.fetched_until is not None
            buffers[name] = (start, c.fetched_until)
        result = collect(self.buffered, buffers, self.settings.max_poll_records)
        self.last_polled = result.polled
        self.buffered = list(result.buffered)
        self.polled = [name for name, _, _ in result.polled]
        for name, _, end in result.polled:
            self.cursors[name] = replace(self.cursors[name], polled_until=end)
        return self.polled

    def _fetch(self) -> None:
        fetchable = []
        for name in self.usable:
            c = self.cursors[name]
            start = c.fetch_position
            if start is None or c.buffered > 0:
                continue
            fetchable.append(Fetchable(name, start, c.log_end_offset, c.record_bytes))
        if not fetchable:
            return
        response = fetch(self.session, fetchable, self.settings.fetch_limits)
        self.session = list(response.session)
        for name in response.returned:
            first, end = response.fetched[name]
            c = self.cursors[name]
            self.cursors[name] = replace(c, polled_until=first, fetched_until=end)
            self.buffered.append(name)

    def state(self) -> FetchState:
        self.next_polled()
        return FetchState(
            session=tuple(self.session), buffered=tuple(self.buffered), polled=tuple(self.polled)
        )


def _ordered(stored: Sequence[str], usable: Sequence[str], has: Callable[[str], bool]) -> list[str]:
    allowed = set(usable)
    kept = [p for p in dict.fromkeys(stored) if p in allowed and has(p)]
    seen = set(kept)
    return kept + [p for p in usable if p not in seen and has(p)]


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
    another keeps filling up."""
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
    moved = replace(cursor, position=start.offset, polled_until=None, fetched_until=None)
    return moved, Start(cursor.partition, start.offset, start.reason)
