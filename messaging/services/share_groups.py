"""Share groups (KIP-932) in a room, decided by `messaging.engine.share_group`.

A share group reads one topic. Every member may fetch from every partition (Kafka's share
assignor gives each member all subscribed partitions), and each share-partition hands a record
to one member at a time under a lock. These services load a group's partitions and members,
ask the engine, store the result and record one "share.changed" event per call.

The simulated consumers live here too: on each room step they fetch when they hold nothing,
process what they fetched at their speed, and acknowledge each record ACCEPT, or on a failure
(by their failure rate) RELEASE or REJECT; a crashed one stops, so its locks run out. Every
decision is the engine's (`consumer_outcome` is a hash, so a replay gives the same story).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from messaging import events, selectors
from messaging.engine import share_group as rules
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    BOARD_MAX_POLL_RECORDS,
    Partition,
    Room,
    ShareGroup,
    ShareMember,
    SharePartitionState,
    Topic,
)
from messaging.services.events import event_record, room_lock
from messaging.services.text import name_validate

# LogLab's bounds. group.share.max.groups is Kafka's own (10); group.share.max.size is 200.
MAX_SHARE_GROUPS_PER_ROOM = 10
MAX_SHARE_MEMBERS = 20
MAX_MEMBER_RATE = 100.0
# How far past the next fetch offset one fetch reads, and what one step may process.
FETCH_SPAN = 500
MAX_PROCESSED_PER_STEP = 500
# The board's memory: final records per partition, narration lines per group.
FINISHED_KEEP = 80
RECENT_KEEP = 30
# A long step is taken in slices, so that locks run out between a consumer's records.
SLICE_MS = 1_000
MAX_SLICES = 60

ACK_KINDS = {"accept": rules.ACCEPT, "release": rules.RELEASE, "reject": rules.REJECT}


# --- validation -------------------------------------------------------------------------------


def _bounded_int(value: object, *, field: str, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(f"{name} is a whole number.", field=field) from None
    if not low <= number <= high:
        raise Invalid(f"{name} must be between {low} and {high}.", field=field)
    return number


def _rate(value: object) -> float:
    try:
        rate = float(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid("A speed is a number of records per second.", field="rate") from None
    if not 0 < rate <= MAX_MEMBER_RATE:
        raise Invalid(
            f"A consumer processes between 0 and {MAX_MEMBER_RATE:g} records per second.",
            field="rate",
        )
    return rate


def _failure_rate(value: object) -> float:
    try:
        rate = float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        raise Invalid("A failure rate is a percentage.", field="failure_rate") from None
    if str(value).strip().endswith("%") or rate > 1:
        rate /= 100
    if not 0 <= rate <= 1:
        raise Invalid("A failure rate is between 0 % and 100 %.", field="failure_rate")
    return round(rate, 4)


def _on_failure(value: object) -> str:
    text = str(value or "release").strip().lower()
    if text not in ShareMember.OnFailure.values:
        raise Invalid("A failed record is released or rejected.", field="on_failure")
    return text


@dataclass(frozen=True)
class ShareSettings:
    """The group's settings, by Kafka's names (`group.share.*`, `share.auto.offset.reset`)."""

    record_lock_duration_ms: int = rules.DEFAULT_RECORD_LOCK_DURATION_MS
    delivery_count_limit: int = rules.DEFAULT_DELIVERY_COUNT_LIMIT
    max_record_locks: int = rules.DEFAULT_MAX_RECORD_LOCKS

    @classmethod
    def parse(cls, lock_ms: object, delivery_limit: object, max_locks: object) -> ShareSettings:
        return cls(
            record_lock_duration_ms=_bounded_int(
                lock_ms,
                field="record_lock_duration_ms",
                name="group.share.record.lock.duration.ms",
                low=rules.MIN_RECORD_LOCK_DURATION_MS,
                high=rules.MAX_RECORD_LOCK_DURATION_MS,
            ),
            delivery_count_limit=_bounded_int(
                delivery_limit,
                field="delivery_count_limit",
                name="group.share.delivery.count.limit",
                low=rules.MIN_DELIVERY_COUNT_LIMIT,
                high=rules.MAX_DELIVERY_COUNT_LIMIT,
            ),
            max_record_locks=_bounded_int(
                max_locks,
                field="max_record_locks",
                name="group.share.partition.max.record.locks",
                low=rules.MIN_MAX_RECORD_LOCKS,
                high=rules.MAX_MAX_RECORD_LOCKS,
            ),
        )


# --- a group's rows, loaded once per call ---------------------------------------------------------


@dataclass
class _Work:
    """A share group's partitions and members while one service call works on them: the
    engine's states, what changed, and the narration; `save` writes only what changed."""

    room: Room
    group: ShareGroup
    now: int = 0  # the room's simulated time of the moment being worked out
    rows: dict[int, SharePartitionState] = field(default_factory=dict)  # by partition index
    states: dict[int, rules.SharePartition] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    members: dict[str, ShareMember] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    records: list[list[Any]] = field(default_factory=list)  # [partition, offset, state, count]
    lines: list[str] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, room: Room, group: ShareGroup) -> _Work:
        work = cls(room=room, group=group, now=room.sim_time_ms)
        for row in selectors.share_partition_rows(group=group):
            work.rows[row.partition.index] = row
            work.states[row.partition.index] = selectors.share_state_load(row)
        work.members = {m.member_id: m for m in group.members.order_by("join_order")}
        return work

    @property
    def config(self) -> rules.ShareConfig:
        return self.group.config()

    def name(self, member_id: str) -> str:
        member = self.members.get(member_id)
        return str(member) if member else member_id[:12]

    def put(self, index: int, state: rules.SharePartition, changes: Iterable[rules.Change]):
        self.states[index] = state
        self.dirty.add(index)
        row = self.rows[index]
        finished = list(row.finished)
        for change in changes:
            self.records.append([index, change.offset, change.state, change.delivery_count])
            self.count(change.why)
            if change.state in rules.FINAL_STATES:
                finished.append([change.offset, change.state, change.delivery_count])
                if change.state == rules.ARCHIVED and change.why in (
                    "release",
                    "lock-expired",
                    "member-left",
                ):
                    self.count("delivery-limit")
        row.finished = finished[-FINISHED_KEEP:]

    def count(self, what: str, n: int = 1) -> None:
        self.tally[what] = self.tally.get(what, 0) + n

    def peak(self, what: str, value: int) -> None:
        """A running maximum kept with the totals (e.g. the most members that read one
        partition), where the other totals add up."""
        self.peaks[what] = max(self.peaks.get(what, 0), value)

    def say(self, text: str) -> None:
        self.lines.append(text)

    def save(self) -> None:
        for index in self.dirty:
            row = self.rows[index]
            state = self.states[index]
            row.state = rules.to_dict(state)
            row.due_ms = rules.lock_due_ms(state)
            row.save(update_fields=["state", "due_ms", "finished"])
        for member_id in self.touched:
            member = self.members.get(member_id)
            if member is not None and member.pk is not None:
                member.save(
                    update_fields=["polled", "counts", "budget_carry", "crashed", "member_epoch"]
                )
        if self.tally or self.lines or self.peaks:
            totals = dict(self.group.totals)
            for key, value in self.tally.items():
                totals[key] = totals.get(key, 0) + value
            for key, value in self.peaks.items():
                totals[key] = max(totals.get(key, 0), value)
            self.group.totals = totals
            recent = [*self.group.recent, *({"at_ms": self.now, "text": t} for t in self.lines)]
            self.group.recent = recent[-RECENT_KEEP:]
            self.group.save(update_fields=["totals", "recent", "group_epoch"])


def _locked(group: ShareGroup) -> tuple[Room, ShareGroup]:
    room = room_lock(room=group.room_id)
    try:
        return room, ShareGroup.objects.select_related("topic").get(pk=group.pk)
    except ShareGroup.DoesNotExist:
        raise NotFound(f"Share group '{group.group_id}' does not exist any more.") from None


def _changed(work: _Work, action: str, **details: Any) -> None:
    work.save()
    event_record(
        room=work.room,
        type=events.SHARE_CHANGED,
        payload={
            "group": work.group.group_id,
            "action": action,
            "records": work.records[:50],
            "lines": work.lines[:10],
            **details,
        },
    )


# --- partitions: SPSO where share.auto.offset.reset says ------------------------------------------


def _partitions_sync(work: _Work) -> None:
    """Give every partition of the topic its share-partition, SPSO set by
    share.auto.offset.reset (Kafka initialises a share-partition when the group first needs
    it: here, once the group has a member)."""
    partitions = Partition.objects.filter(topic=work.group.topic).order_by("index")
    for partition in partitions:
        if partition.index in work.rows:
            continue
        start = rules.start_offset_for(
            work.group.auto_offset_reset,
            log_start_offset=partition.log_start_offset,
            log_end_offset=partition.consumable_end,
        )
        state = rules.start(start)
        row = SharePartitionState.objects.create(
            group=work.group, partition=partition, state=rules.to_dict(state)
        )
        work.rows[partition.index] = row
        work.states[partition.index] = state


# --- groups and members ---------------------------------------------------------------------------


@transaction.atomic
def share_group_create(
    *,
    room: Room,
    group_id: str,
    topic: str,
    auto_offset_reset: str = ShareGroup.OffsetReset.LATEST,
    settings: ShareSettings | None = None,
    consumers: int = 0,
    records_per_second: object = 1.0,
    failure_rate: object = 0.0,
    on_failure: object = "release",
) -> ShareGroup:
    """A share group on `topic`, with `consumers` simulated share consumers."""
    group_id = name_validate((group_id or "").strip(), field="group_id", what="A group.id")
    if not group_id or len(group_id) > 249:
        raise Invalid("A group.id has 1 to 249 characters.", field="group_id")
    if auto_offset_reset not in ShareGroup.OffsetReset.values:
        raise Invalid("share.auto.offset.reset is latest or earliest.", field="auto_offset_reset")
    settings = settings or ShareSettings()
    if not 0 <= consumers <= MAX_SHARE_MEMBERS:
        raise Invalid(f"Start with 0 to {MAX_SHARE_MEMBERS} consumers.", field="consumers")
    rate, failures, mode = (
        _rate(records_per_second),
        _failure_rate(failure_rate),
        _on_failure(on_failure),
    )
    room = room_lock(room=room)
    try:
        subscribed = Topic.objects.get(room=room, name=(topic or "").strip())
    except Topic.DoesNotExist:
        raise NotFound(f"No such topic: {(topic or '').strip()[:249]}.", field="topic") from None
    if ShareGroup.objects.filter(room=room, group_id=group_id).exists():
        raise Conflict(f"Share group '{group_id}' already exists.", field="group_id")
    if ShareGroup.objects.filter(room=room).count() >= MAX_SHARE_GROUPS_PER_ROOM:
        raise Invalid(
            f"A room holds at most {MAX_SHARE_GROUPS_PER_ROOM} share groups "
            "(Kafka's group.share.max.groups).",
            field="group_id",
        )
    group = ShareGroup.objects.create(
        room=room,
        group_id=group_id,
        topic=subscribed,
        auto_offset_reset=auto_offset_reset,
        record_lock_duration_ms=settings.record_lock_duration_ms,
        delivery_count_limit=settings.delivery_count_limit,
        max_record_locks=settings.max_record_locks,
    )
    work = _Work.load(room, group)
    work.say(
        f"Share group {group_id} created on {subscribed.name} "
        f"(share.auto.offset.reset={auto_offset_reset})."
    )
    for _ in range(consumers):
        _join(work, display_name="", rate=rate, failures=failures, mode=mode)
    _changed(work, "create", topic=subscribed.name, consumers=consumers)
    return group


def _member_id(room: Room, group: ShareGroup, number: int) -> str:
    """A member id as Kafka makes them (a UUID), derived from the room so that a replay of the
    room names its members the same."""
    digest = hashlib.sha256(f"{room.code}|{group.group_id}|{number}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _join(
    work: _Work,
    *,
    display_name: str,
    rate: float,
    failures: float,
    mode: str,
    kind: str = ShareMember.Kind.SIMULATED,
    member_id: str | None = None,
) -> ShareMember:
    group = work.group
    if len(work.members) >= MAX_SHARE_MEMBERS:
        raise Invalid(f"A share group holds at most {MAX_SHARE_MEMBERS} members here.")
    number = group.member_counter
    group.member_counter += 1
    group.group_epoch += 1
    group.save(update_fields=["member_counter", "group_epoch"])
    member = ShareMember.objects.create(
        group=group,
        member_id=member_id or _member_id(work.room, group, number),
        display_name=display_name or f"consumer-{number}",
        kind=kind,
        member_epoch=group.group_epoch,
        join_order=number,
        records_per_second=rate,
        failure_rate=failures,
        on_failure=mode,
        last_heartbeat_ms=work.now,
    )
    work.members[member.member_id] = member
    _partitions_sync(work)
    work.say(f"{member} joined (group epoch {group.group_epoch}): it may fetch every partition.")
    return member


@transaction.atomic
def share_member_join(
    *,
    group: ShareGroup,
    display_name: str = "",
    records_per_second: object = 1.0,
    failure_rate: object = 0.0,
    on_failure: object = "release",
) -> ShareMember:
    """A simulated share consumer joins: ShareGroupHeartbeat with epoch 0."""
    name = name_validate((display_name or "").strip()[:40], field="display_name", what="A name")
    rate, failures, mode = (
        _rate(records_per_second),
        _failure_rate(failure_rate),
        _on_failure(on_failure),
    )
    room, group = _locked(group)
    work = _Work.load(room, group)
    member = _join(work, display_name=name, rate=rate, failures=failures, mode=mode)
    _changed(work, "join", member=str(member))
    return member


def _member_locked(member: ShareMember) -> tuple[_Work, ShareMember]:
    room = room_lock(room=member.group.room_id)
    try:
        group = ShareGroup.objects.select_related("topic").get(pk=member.group_id)
    except ShareGroup.DoesNotExist:
        raise NotFound("That share group does not exist any more.") from None
    work = _Work.load(room, group)
    fresh = work.members.get(member.member_id)
    if fresh is None:
        raise NotFound(f"{member} is no longer a member of {group.group_id}.")
    return work, fresh


def _remove(work: _Work, member: ShareMember, why: str, *, release: bool = True) -> None:
    """The member leaves the group. With `release`, its share sessions close too and what it
    held goes back (releaseAcquiredRecords); a real client's session closes on its own (its
    last ShareFetch or ShareAcknowledge, or its connection), and until then it may still
    acknowledge what it holds."""
    for index, state in list(work.states.items()) if release else ():
        state, changes = rules.release_member(state, member.member_id, config=work.config)
        if changes:
            work.put(index, state, changes)
    work.group.group_epoch += 1
    member.delete()
    work.members.pop(member.member_id, None)
    work.say(f"{member} {why} (group epoch {work.group.group_epoch}).")


@transaction.atomic
def share_member_leave(*, member: ShareMember) -> None:
    """`ShareConsumer.close()`: the member leaves (epoch -1) and what it held is released at
    once, to be delivered to another member with its delivery count one higher."""
    work, member = _member_locked(member)
    name = str(member)
    _remove(work, member, "left: what it held is released")
    _changed(work, "leave", member=name)


@transaction.atomic
def share_member_crash(*, member: ShareMember) -> None:
    """The consumer's process dies: it stops acknowledging and heartbeating. Its records come
    back when their locks run out; the member goes at group.share.session.timeout.ms."""
    work, member = _member_locked(member)
    if member.crashed:
        raise Conflict(f"{member} has already crashed.")
    member.crashed = True
    member.last_heartbeat_ms = work.now
    member.save(update_fields=["crashed", "last_heartbeat_ms"])
    work.say(
        f"{member} crashed holding {len(member.polled)} records: their locks run out after "
        f"{work.group.record_lock_duration_ms // 1000} s."
    )
    _changed(work, "crash", member=str(member))


@transaction.atomic
def share_member_update(
    *, member: ShareMember, records_per_second: object, failure_rate: object, on_failure: object
) -> ShareMember:
    rate, failures, mode = (
        _rate(records_per_second),
        _failure_rate(failure_rate),
        _on_failure(on_failure),
    )
    work, member = _member_locked(member)
    member.records_per_second, member.failure_rate, member.on_failure = rate, failures, mode
    member.save(update_fields=["records_per_second", "failure_rate", "on_failure"])
    work.say(f"{member} now processes {rate:g}/s, failing {failures:.0%} ({mode} on failure).")
    _changed(work, "member", member=str(member))
    return member


@transaction.atomic
def share_group_configure(*, group: ShareGroup, settings: ShareSettings) -> ShareGroup:
    """New settings apply to the next acquisitions and acknowledgements; locks already
    granted keep their deadline (Kafka schedules each lock's timer when it acquires)."""
    room, group = _locked(group)
    group.record_lock_duration_ms = settings.record_lock_duration_ms
    group.delivery_count_limit = settings.delivery_count_limit
    group.max_record_locks = settings.max_record_locks
    group.save(
        update_fields=["record_lock_duration_ms", "delivery_count_limit", "max_record_locks"]
    )
    work = _Work.load(room, group)
    work.say(
        f"Settings: record.lock.duration.ms={settings.record_lock_duration_ms}, "
        f"delivery.count.limit={settings.delivery_count_limit}, "
        f"partition.max.record.locks={settings.max_record_locks}."
    )
    _changed(work, "settings")
    return group


@transaction.atomic
def share_group_delete(*, group: ShareGroup) -> None:
    room, group = _locked(group)
    name = group.group_id
    group.delete()
    event_record(room=room, type=events.SHARE_CHANGED, payload={"group": name, "action": "delete"})


# --- fetching and acknowledging -------------------------------------------------------------------


@dataclass(frozen=True)
class Polled:
    """A record a member fetched: where, its delivery count, and whether the log holds it (a
    gap is acquired with its range and acknowledged with GAP)."""

    partition: int
    offset: int
    delivery_count: int
    gap: bool = False


def _fetch(
    work: _Work, member: ShareMember, max_records: int, partitions: set[int] | None = None
) -> list[Polled]:
    """ShareFetch: from each partition in turn (starting at a different one each time), the
    records the share-partition lets this member acquire, up to `max_records`. A real client
    names its share session's `partitions`; a simulated member fetches from all."""
    got: list[Polled] = []
    indexes = sorted(i for i in work.states if partitions is None or i in partitions)
    if not indexes:
        return got
    counts = dict(member.counts)
    turn = counts.get("fetches", 0)
    counts["fetches"] = turn + 1
    member.counts = counts
    first = (turn + member.join_order) % len(indexes)
    for index in indexes[first:] + indexes[:first]:
        remaining = max_records - len(got)
        if remaining <= 0:
            break
        state = work.states[index]
        partition = work.rows[index].partition
        start = max(rules.next_fetch_offset(state), partition.log_start_offset)
        end = partition.consumable_end
        if start >= end or not rules.can_acquire(state, work.config):
            continue
        held = selectors.share_log_window(
            partition=partition, start=start, end=end, limit=FETCH_SPAN
        )
        if not held:
            continue
        batches = [rules.Batch(o, o) for o in held]
        state, acquired = rules.acquire(
            state,
            member.member_id,
            batches,
            max_records=remaining,
            now_ms=work.now,
            config=work.config,
        )
        if not acquired:
            continue
        present = set(held)
        changes = []
        for block in acquired:
            for offset in block.offsets():
                got.append(Polled(index, offset, block.delivery_count, offset not in present))
                changes.append(
                    rules.Change(offset, rules.ACQUIRED, block.delivery_count, "acquired")
                )
        work.put(index, state, changes)
    if got:
        counts = dict(member.counts)
        counts["from"] = sorted(set(counts.get("from", [])) | {p.partition for p in got})
        member.counts = counts
        if member.kind == ShareMember.Kind.CLIENT:
            work.touched.add(member.member_id)
            work.say(f"{member} acquired {_where(got)} over the Kafka protocol.")
            return got
        for index in {p.partition for p in got}:
            readers = sum(1 for m in work.members.values() if index in m.counts.get("from", []))
            work.peak("partition-readers", readers)
        member.polled = [
            *member.polled,
            *([p.partition, p.offset, p.delivery_count, p.gap] for p in got),
        ]
        work.touched.add(member.member_id)
        again = sum(1 for p in got if p.delivery_count > 1)
        if again:
            work.count("redelivered", again)
        work.say(
            f"{member} acquired {_where(got)}"
            + (f" ({again} redelivered)" if again else "")
            + f", locked for {work.group.record_lock_duration_ms // 1000} s."
        )
    else:
        work.touched.add(member.member_id)
    return got


def _where(polled: list[Polled]) -> str:
    by_partition: dict[int, list[int]] = {}
    for p in polled:
        by_partition.setdefault(p.partition, []).append(p.offset)
    parts = []
    for index, offsets in sorted(by_partition.items()):
        text = str(offsets[0]) if len(offsets) == 1 else f"{offsets[0]}-{offsets[-1]}"
        parts.append(f"P{index}@{text}")
    return ", ".join(parts)


@dataclass(frozen=True)
class AckResult:
    kind: str  # accept, release, reject, gap
    partition: int
    offset: int
    state: str | None  # the record's state after, None when refused
    delivery_count: int
    refused: str = ""  # INVALID_RECORD_STATE's reason when Kafka refused it


def _ack(work: _Work, member: ShareMember, polled: list[Any], kind: int) -> AckResult:
    """One ShareAcknowledge of one record the member polled; it leaves the member's hands
    whether or not the broker takes it (a refused one was no longer the member's)."""
    index, offset, count, _gap = polled
    name = rules.ACK_TYPE_NAMES[kind].lower()
    member.polled = [p for p in member.polled if p[:2] != [index, offset]]
    work.touched.add(member.member_id)
    counts = dict(member.counts)
    state = work.states.get(index)
    try:
        if state is None:
            raise rules.InvalidRecordState("The partition is not part of this share group.")
        ack = rules.Acknowledgement(offset, offset, (kind,))
        state, changes = rules.acknowledge(state, member.member_id, [ack], config=work.config)
    except rules.ShareError as error:
        counts["refused"] = counts.get("refused", 0) + 1
        member.counts = counts
        work.count("refused")
        holder = state.record(offset) if state is not None else None
        now = (
            f"{work.name(holder.member_id)} holds it now"
            if holder is not None and holder.member_id
            else f"it is {holder.state if holder else 'no longer in flight'}"
        )
        reason = f"{error.code}: {error}"
        work.say(f"{member}'s {name.upper()} of P{index}@{offset} was refused ({now}).")
        return AckResult(name, index, offset, None, count, refused=reason)
    counts[name] = counts.get(name, 0) + 1
    member.counts = counts
    work.put(index, state, changes)
    after = changes[0] if changes else None
    final = after.state if after else rules.ACKNOWLEDGED
    if kind != rules.GAP:
        note = {
            rules.ACCEPT: "acknowledged",
            rules.REJECT: "archived (rejected)",
        }.get(kind, "available again" if final == rules.AVAILABLE else "archived")
        if kind == rules.RELEASE and final == rules.ARCHIVED:
            note = f"archived: delivery {count} reached group.share.delivery.count.limit"
        work.say(f"{member}: {name.upper()} P{index}@{offset} (delivery {count}) → {note}.")
    return AckResult(name, index, offset, final, count)


@transaction.atomic
def share_fetch(
    *, member: ShareMember, max_records: object = BOARD_MAX_POLL_RECORDS
) -> list[Polled]:
    """The member polls: ShareFetch acquires records for it (a button on the board)."""
    count = _bounded_int(max_records, field="max_records", name="max.poll.records", low=1, high=500)
    work, member = _member_locked(member)
    if member.crashed:
        raise Conflict(f"{member} has crashed: it fetches nothing.")
    got = _fetch(work, member, count)
    if not got:
        work.say(f"{member} fetched nothing: no record is available to it.")
    _changed(work, "acquire", member=str(member), acquired=len(got))
    return got


@transaction.atomic
def share_acknowledge(
    *, member: ShareMember, partition: object, offset: object, kind: str
) -> AckResult:
    """The member acknowledges one record it fetched: accept, release or reject (buttons)."""
    if kind not in ACK_KINDS:
        raise Invalid("Acknowledge with accept, release or reject.", field="kind")
    index = _bounded_int(partition, field="partition", name="A partition", low=0, high=127)
    number = _bounded_int(offset, field="offset", name="An offset", low=0, high=2**62)
    work, member = _member_locked(member)
    if member.crashed:
        raise Conflict(f"{member} has crashed: it acknowledges nothing.")
    polled = next((p for p in member.polled if p[:2] == [index, number]), None)
    if polled is None:
        raise NotFound(f"{member} did not fetch P{index}@{number}.")
    result = _ack(work, member, polled, ACK_KINDS[kind])
    _changed(work, "ack", member=str(member), kind=kind, refused=bool(result.refused))
    return result


# --- the room step --------------------------------------------------------------------------------


def share_groups_tick(*, room: Room, step_ms: int) -> int | None:
    """The share groups' part of a room step (the caller holds the room's lock and has moved
    its clock): locks run out, the log start moves, crashed members time out, and simulated
    consumers fetch, process and acknowledge. One "share.changed" event for all the groups
    that changed; returns how many did, None when the room has no share group (one query)."""
    groups = list(ShareGroup.objects.filter(room=room).select_related("topic"))
    if not groups:
        return None
    end = room.sim_time_ms
    slices = share_slices(step_ms)
    summaries: dict[str, dict[str, int]] = {}
    records: list[list[Any]] = []
    for group in groups:
        work = _Work.load(room, group)
        if not work.members and not any(s.in_flight for s in work.states.values()):
            continue
        for now, slice_ms in _moments(end, step_ms, slices):
            work.now = now
            _tick_slice(work, now, slice_ms)
        work.now = end
        if work.tally or work.lines or work.dirty:
            work.save()
            summaries[group.group_id] = dict(work.tally)
            records.extend([[group.group_id, *r] for r in work.records[:20]])
    if summaries:
        event_record(
            room=room,
            type=events.SHARE_CHANGED,
            payload={"group": None, "action": "tick", "groups": summaries, "records": records[:50]},
        )
    return len(summaries)


def share_slices(step_ms: int) -> int:
    """How many slices a step of `step_ms` is taken in."""
    return max(1, min(MAX_SLICES, -(-step_ms // SLICE_MS)))


def _moments(end: int, step_ms: int, slices: int) -> list[tuple[int, float]]:
    begin = end - step_ms
    return [(begin + step_ms * n // slices, step_ms / slices) for n in range(1, slices + 1)]


def _tick_slice(work: _Work, now: int, slice_ms: float) -> None:
    config = work.config
    for index, partition_row in work.rows.items():
        state = work.states[index]
        log_start = partition_row.partition.log_start_offset
        if log_start > state.start_offset:
            state, changes = rules.move_log_start(state, log_start)
            work.put(index, state, changes)
            if changes:
                work.say(
                    f"Retention moved P{index}'s log start to {log_start}: "
                    f"{len(changes)} available record(s) archived."
                )
        due = rules.lock_due_ms(state)
        if due is not None and due <= now:
            state, changes = rules.expire_locks(state, now_ms=now, config=config)
            work.put(index, state, changes)
            back = sum(1 for c in changes if c.state == rules.AVAILABLE)
            done = len(changes) - back
            work.say(
                f"P{index}: {len(changes)} lock(s) ran out"
                + (f", {back} available again" if back else "")
                + (f", {done} archived at the delivery count limit" if done else "")
                + "."
            )
    for member in list(work.members.values()):
        client = member.kind == ShareMember.Kind.CLIENT
        if (member.crashed or client) and (
            now - member.last_heartbeat_ms >= rules.DEFAULT_SESSION_TIMEOUT_MS
        ):
            _remove(
                work,
                member,
                "timed out (group.share.session.timeout.ms) and was removed",
                release=not client,
            )
    _consume(work, slice_ms)


def _consume(work: _Work, slice_ms: float) -> None:
    """Simulated members, in turn, one record at a time: a gap is acknowledged for free, a
    record takes 1/speed seconds, and a member with nothing in hand fetches."""
    simulated = [
        m for m in work.members.values() if m.kind == ShareMember.Kind.SIMULATED and not m.crashed
    ]
    if not simulated:
        return
    for member in simulated:
        budget = member.budget_carry + member.records_per_second * slice_ms / 1000
        member.budget_carry = min(budget, float(BOARD_MAX_POLL_RECORDS))
        work.touched.add(member.member_id)
    processed = 0
    progress = True
    while progress and processed < MAX_PROCESSED_PER_STEP:
        progress = False
        for member in simulated:
            if not member.polled:
                if _fetch(work, member, BOARD_MAX_POLL_RECORDS):
                    progress = True
                continue
            head = member.polled[0]
            if head[3]:
                _ack(work, member, head, rules.GAP)
                progress = True
                continue
            if member.budget_carry < 1:
                continue
            member.budget_carry -= 1
            kind = rules.consumer_outcome(
                seed=work.room.code,
                member_id=member.member_id,
                partition=head[0],
                offset=head[1],
                delivery_count=head[2],
                failure_rate=member.failure_rate,
                on_failure=member.on_failure,
            )
            _ack(work, member, head, kind)
            processed += 1
            progress = True


# --- real share consumers over the Kafka protocol (api/kafka_wire/share_groups.py) ---------------


@dataclass(frozen=True)
class ClientAnswer:
    """What ShareGroupHeartbeat answers: an error name, or the member's id and epoch and the
    partitions of the group's topic, all of which it may fetch from."""

    error: str | None = None
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    topic: str = ""
    partitions: tuple[int, ...] = ()


def _client_touch(work: _Work, member: ShareMember) -> None:
    member.last_heartbeat_ms = work.now
    member.save(update_fields=["last_heartbeat_ms"])


@transaction.atomic
def client_share_heartbeat(
    *,
    room: Room,
    group_id: str,
    member_id: str,
    member_epoch: int,
    subscribed: list[str] | None,
    software: str,
    display_name: str,
    new_member_id: str,
) -> ClientAnswer:
    """ShareGroupHeartbeat (GroupMetadataManager.shareGroupHeartbeat): epoch 0 joins (the group
    is created on the first topic it subscribes to, as Kafka creates a share group on its
    first heartbeat), -1 leaves and releases what the member held, any other epoch must be the
    member's own (else FENCED_MEMBER_EPOCH)."""
    room = room_lock(room=room)
    group = ShareGroup.objects.select_related("topic").filter(room=room, group_id=group_id).first()
    if member_epoch == 0:
        if not subscribed and group is None:
            return ClientAnswer("INVALID_REQUEST", "SubscribedTopicNames must be set when joining.")
        wanted = sorted(set(subscribed or [group.topic.name]))  # type: ignore[union-attr]
        if group is None:
            if len(wanted) != 1:
                return ClientAnswer("INVALID_REQUEST", "LogLab's share groups read one topic each.")
            try:
                group = share_group_create(room=room, group_id=group_id, topic=wanted[0])
            except (Invalid, NotFound, Conflict) as error:
                return ClientAnswer("INVALID_REQUEST", error.message)
        elif wanted != [group.topic.name]:
            return ClientAnswer(
                "INVALID_REQUEST",
                f"Share group {group_id} reads {group.topic.name} (LogLab's share groups read "
                "one topic each).",
            )
        room, group = _locked(group)
        work = _Work.load(room, group)
        member = work.members.get(member_id or "")
        if member is None:
            try:
                member = _join(
                    work,
                    display_name=(display_name or "kafka-client")[:40],
                    rate=1.0,
                    failures=0.0,
                    mode="release",
                    kind=ShareMember.Kind.CLIENT,
                    member_id=(member_id or new_member_id)[:128],
                )
            except Invalid as error:
                return ClientAnswer("GROUP_MAX_SIZE_REACHED", error.message)
            member.software = software[:80]
            member.save(update_fields=["software"])
            _changed(work, "join", member=str(member), client=True)
        _client_touch(work, member)
        return _client_answer(work, member)
    if group is None:
        return ClientAnswer("GROUP_ID_NOT_FOUND", f"Share group {group_id} does not exist.")
    room, group = _locked(group)
    work = _Work.load(room, group)
    member = work.members.get(member_id)
    if member is None:
        return ClientAnswer("UNKNOWN_MEMBER_ID", f"{member_id} is not a member of {group_id}.")
    if member_epoch == -1:
        name = str(member)
        _remove(work, member, "left (ShareGroupHeartbeat, epoch -1)", release=False)
        _changed(work, "leave", member=name, client=True)
        return ClientAnswer(member_id=member_id, member_epoch=-1)
    if member_epoch != member.member_epoch:
        return ClientAnswer(
            "FENCED_MEMBER_EPOCH",
            f"The member epoch {member_epoch} is not the member's ({member.member_epoch}).",
        )
    _client_touch(work, member)
    return _client_answer(work, member)


def _client_answer(work: _Work, member: ShareMember) -> ClientAnswer:
    return ClientAnswer(
        member_id=member.member_id,
        member_epoch=member.member_epoch,
        topic=work.group.topic.name,
        partitions=tuple(sorted(work.rows)),
    )


@dataclass(frozen=True)
class ClientPartition:
    """One partition of a ShareFetch or ShareAcknowledge answer."""

    partition: int
    error: str | None = None
    ack_error: str | None = None
    ack_message: str | None = None
    acquired: tuple[rules.AcquiredRecords, ...] = ()


ClientAcks = dict[int, list[rules.Acknowledgement]]


def _client_work(room: Room, group_id: str) -> tuple[_Work | None, str | None]:
    room = room_lock(room=room)
    group = ShareGroup.objects.select_related("topic").filter(room=room, group_id=group_id).first()
    if group is None:
        return None, "GROUP_ID_NOT_FOUND"
    return _Work.load(room, group), None


def _client_member(work: _Work, member_id: str) -> ShareMember:
    """The member a share session belongs to. The partition leader keeps share sessions, not
    group membership: a member that already left the group may still acknowledge what it
    holds, so an unsaved stand-in is used for it."""
    return work.members.get(member_id) or ShareMember(
        group=work.group, member_id=member_id, kind=ShareMember.Kind.CLIENT
    )


def _client_acks(work: _Work, member: ShareMember, acks: ClientAcks) -> dict[int, ClientPartition]:
    answered: dict[int, ClientPartition] = {}
    for index, batches in acks.items():
        state = work.states.get(index)
        if state is None:
            answered[index] = ClientPartition(index, ack_error="UNKNOWN_TOPIC_OR_PARTITION")
            continue
        try:
            state, changes = rules.acknowledge(state, member.member_id, batches, config=work.config)
        except rules.ShareError as error:
            work.count("refused")
            work.say(f"{member}'s acknowledgement on P{index} was refused: {error.code}.")
            answered[index] = ClientPartition(index, ack_error=error.code, ack_message=str(error))
            continue
        work.put(index, state, changes)
        counts = dict(member.counts)
        for change in changes:
            counts[change.why] = counts.get(change.why, 0) + 1
        member.counts = counts
        work.touched.add(member.member_id)
        if changes:
            kinds = sorted({c.why.upper() for c in changes})
            work.say(
                f"{member} acknowledged {len(changes)} record(s) of P{index} "
                f"({', '.join(kinds)}) over the Kafka protocol."
            )
        answered[index] = ClientPartition(index)
    return answered


@transaction.atomic
def client_share_fetch(
    *,
    room: Room,
    group_id: str,
    member_id: str,
    acks: ClientAcks,
    partitions: set[int],
    max_records: int,
    close: bool = False,
) -> tuple[str | None, dict[int, ClientPartition]]:
    """ShareFetch: the acknowledgements it carries first (each partition's all or nothing),
    then what the member may acquire from its share session's partitions. `close` (share
    session epoch -1) releases what the member still holds instead of fetching."""
    work, error = _client_work(room, group_id)
    if work is None:
        return error, {}
    # The partition leader keeps share sessions, not membership: a member that has just left
    # the group (its ShareFetch crossed its leaving heartbeat) acquires nothing more.
    member = _client_member(work, member_id)
    answered = _client_acks(work, member, acks)
    if close:
        _client_release(work, member)
    elif max_records > 0 and partitions and member_id in work.members:
        bound = min(max_records, FETCH_SPAN)
        for polled in _fetch(work, member, bound, partitions):
            done = answered.get(polled.partition, ClientPartition(polled.partition))
            block = rules.AcquiredRecords(polled.offset, polled.offset, polled.delivery_count)
            answered[polled.partition] = ClientPartition(
                done.partition,
                ack_error=done.ack_error,
                ack_message=done.ack_message,
                acquired=_merged((*done.acquired, block)),
            )
    if work.tally or work.lines or work.dirty:
        _changed(work, "acquire", member=str(member), client=True)
    return None, answered


def _merged(blocks: tuple[rules.AcquiredRecords, ...]) -> tuple[rules.AcquiredRecords, ...]:
    out: list[rules.AcquiredRecords] = []
    for block in sorted(blocks, key=lambda b: b.first_offset):
        last = out[-1] if out else None
        if (
            last is not None
            and last.last_offset + 1 == block.first_offset
            and last.delivery_count == block.delivery_count
        ):
            out[-1] = rules.AcquiredRecords(
                last.first_offset, block.last_offset, last.delivery_count
            )
        else:
            out.append(block)
    return tuple(out)


def _client_release(work: _Work, member: ShareMember) -> None:
    for index, state in list(work.states.items()):
        state, changes = rules.release_member(state, member.member_id, config=work.config)
        if changes:
            work.put(index, state, changes)
            work.say(
                f"{member}'s share session closed: {len(changes)} record(s) of P{index} released."
            )


@transaction.atomic
def client_share_acknowledge(
    *, room: Room, group_id: str, member_id: str, acks: ClientAcks, close: bool = False
) -> tuple[str | None, dict[int, ClientPartition]]:
    """ShareAcknowledge: acknowledgements only (and, at epoch -1, the session's end)."""
    work, error = _client_work(room, group_id)
    if work is None:
        return error, {}
    member = _client_member(work, member_id)
    answered = _client_acks(work, member, acks)
    if close:
        _client_release(work, member)
    if work.tally or work.lines or work.dirty:
        _changed(work, "ack", member=str(member), client=True)
    return None, answered


@transaction.atomic
def client_share_session_closed(*, room: Room | int, group_id: str, member_id: str) -> None:
    """The connection of a share consumer closed: its share session ends, and what it held
    goes back at once (its membership lasts until group.share.session.timeout.ms)."""
    room = room_lock(room=room)
    group = ShareGroup.objects.select_related("topic").filter(room=room, group_id=group_id).first()
    if group is None:
        return
    work = _Work.load(room, group)
    member = _client_member(work, member_id)
    _client_release(work, member)
    if work.dirty:
        _changed(work, "session_closed", member=str(member), client=True)
