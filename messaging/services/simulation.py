"""The room's simulation: autoplay producers, consumers that process at a speed, and the step
that moves them all on the virtual clock.

One step is one transaction and one coalesced "step" event, however many records it moved:
browsers apply it on one animation frame. Rebalances and retention keep their own events
(`group.changed`, `records.deleted`), since the board animates those on their own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

# A module import: selectors imports services in turn, and is only half loaded here.
from messaging import events, selectors
from messaging.engine import clock as clocks
from messaging.engine import consumption, fetching
from messaging.engine import offsets as offset_rules
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    Assignment,
    ConsumerGroup,
    Member,
    Partition,
    ProcessedRecord,
    Producer,
    Room,
    Topic,
)
from messaging.services import groups as group_services
from messaging.services.events import event_record, room_lock
from messaging.services.groups import group_tick, groups_ticking
from messaging.services.records import RecordIn, produced_payload, records_produce
from messaging.services.replication import partitions_offline, replication_step
from messaging.services.rest_consumers import rest_instances_expire
from messaging.services.retention import topic_clean, topics_to_clean
from messaging.services.share_compare import share_compare_tick
from messaging.services.share_groups import share_groups_tick
from messaging.services.sqs import sqs_tick
from messaging.services.text import key_validate, name_validate

MAX_PRODUCERS_PER_ROOM = 10
MAX_PRODUCER_RATE = 200.0  # records per simulated second
MAX_MEMBER_RATE = 100.0
MAX_KEYS = 20
MAX_RECORDS_PER_STEP = 1000
# The simulated time one step may take (a press of the board's "Step", a lesson's advance).
MAX_STEP_MS = 24 * 60 * 60 * 1000
# Ledger lines kept per group; the totals count everything.
LEDGER_KEEP = 300
LEDGER_EVENT_LIMIT = 60


# --- producers -------------------------------------------------------------------------------


def _keys_validate(key_mode: str, keys: list[str]) -> list[str]:
    if key_mode not in Producer.KeyMode.values:
        raise Invalid("The key strategy is fixed, set or null.", field="key_mode")
    keys = [key_validate(k.strip(), field="keys") for k in keys if k.strip()]
    if key_mode == Producer.KeyMode.NULL:
        return []
    if not keys:
        raise Invalid("Give at least one key (or choose null keys).", field="keys")
    if len(keys) > MAX_KEYS:
        raise Invalid(f"At most {MAX_KEYS} keys per producer.", field="keys")
    if any(len(k) > 256 for k in keys):
        raise Invalid("A key has at most 256 characters.", field="keys")
    return keys[:1] if key_mode == Producer.KeyMode.FIXED else keys


def _rate_validate(rate: object, *, limit: float, field: str) -> float:
    try:
        value = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Invalid("A rate is a number of records per second.", field=field) from None
    if not (0 <= value <= limit) or math.isnan(value):
        raise Invalid(f"A rate is between 0 and {limit:g} records per second.", field=field)
    return value


@transaction.atomic
def producer_create(
    *,
    room: Room,
    name: str,
    topic_name: str,
    key_mode: str,
    keys: list[str],
    records_per_second: object,
) -> Producer:
    name = name_validate(name.strip(), field="name", what="A producer's name")
    if not 1 <= len(name) <= 40:
        raise Invalid("A producer's name has 1 to 40 characters.", field="name")
    keys = _keys_validate(key_mode, keys)
    rate = _rate_validate(records_per_second, limit=MAX_PRODUCER_RATE, field="records_per_second")
    room = room_lock(room=room)
    try:
        topic = Topic.objects.get(room=room, name=topic_name)
    except Topic.DoesNotExist:
        raise NotFound(f"Topic '{topic_name}' does not exist in this room.") from None
    if room.producers.filter(name=name).exists():
        raise Conflict(f"There is already a producer called '{name}'.", field="name")
    if room.producers.count() >= MAX_PRODUCERS_PER_ROOM:
        raise Invalid(f"A room has at most {MAX_PRODUCERS_PER_ROOM} producers.")
    producer = Producer.objects.create(
        room=room,
        name=name,
        topic=topic,
        key_mode=key_mode,
        keys=keys,
        records_per_second=rate,
    )
    event_record(
        room=room, type=events.PRODUCER_CHANGED, payload={"producer": name, "action": "add"}
    )
    return producer


@transaction.atomic
def producer_update(
    *, producer: Producer, records_per_second: object = None, running: bool | None = None
) -> Producer:
    room = room_lock(room=producer.room_id)
    producer = Producer.objects.get(pk=producer.pk)
    if records_per_second is not None:
        producer.records_per_second = _rate_validate(
            records_per_second, limit=MAX_PRODUCER_RATE, field="records_per_second"
        )
    if running is not None:
        producer.running = running
    producer.save()
    event_record(
        room=room,
        type=events.PRODUCER_CHANGED,
        payload={"producer": producer.name, "action": "set"},
    )
    return producer


@transaction.atomic
def producer_delete(*, producer: Producer) -> None:
    room = room_lock(room=producer.room_id)
    name = producer.name
    Producer.objects.filter(pk=producer.pk).delete()
    event_record(
        room=room, type=events.PRODUCER_CHANGED, payload={"producer": name, "action": "remove"}
    )


def _producer_keys(producer: Producer, count: int) -> list[str | None]:
    if producer.key_mode == Producer.KeyMode.NULL or not producer.keys:
        return [None] * count
    keys = producer.keys
    # Cycling through the set, from where the producer left off: deterministic, and every key
    # gets its turn, so "same key, same partition" shows within seconds.
    return [keys[(producer.produced + i) % len(keys)] for i in range(count)]


def _earned(carry: float, rate: float, step_ms: int) -> tuple[int, float]:
    total = carry + rate * step_ms / 1000
    whole = int(total)
    return whole, total - whole


def _run_producers(room: Room, step_ms: int) -> list[dict]:
    produced = []
    for producer in Producer.objects.filter(room=room, running=True).select_related("topic"):
        count, carry = _earned(producer.budget_carry, producer.records_per_second, step_ms)
        if count > MAX_RECORDS_PER_STEP:
            # A long jump of the clock (a "+5 min" step) would otherwise append tens of
            # thousands of records at once: the producer is bounded per step instead.
            count, carry = MAX_RECORDS_PER_STEP, 0.0
        producer.budget_carry = carry
        if count:
            keys = _producer_keys(producer, count)
            records = [
                RecordIn(key=key, value=f"{producer.name} #{producer.produced + i + 1}")
                for i, key in enumerate(keys)
            ]
            out = records_produce(
                room=room,
                topic_name=producer.topic.name,
                records=records,
                producer=producer.name,
                emit_event=False,
                skip_unavailable=True,
            )
            producer.produced += len(out)
            produced.append(produced_payload(producer.topic, producer.name, out))
        producer.save(update_fields=["budget_carry", "produced"])
    return produced


# --- consumers --------------------------------------------------------------------------------


@transaction.atomic
def member_set_speed(*, member: Member, records_per_second: object) -> Member:
    room = room_lock(room=member.group.room_id)
    rate = _rate_validate(records_per_second, limit=MAX_MEMBER_RATE, field="records_per_second")
    updated = Member.objects.filter(pk=member.pk).update(records_per_second=rate)
    if not updated:
        raise NotFound("That consumer is no longer in the group.")
    event_record(
        room=room,
        type=events.MEMBER_CHANGED,
        payload={"group": member.group.group_id, "member": member.member_id, "speed": rate},
    )
    member.records_per_second = rate
    return member


def _tp(partition: Partition) -> str:
    return f"{partition.topic.name}-{partition.index}"


def _consume_group(room: Room, group: ConsumerGroup, step_ms: int) -> dict | None:
    """Let every live member of the group process what its speed allows this step."""
    if group.consumers_paused():
        return None
    settings = group.consumer_settings()
    committed = selectors.group_committed(group=group)
    # REST Proxy's consumers and real Kafka clients are driven by the learner's own code, and
    # students' by the buttons on their page, not by the simulation.
    assignments = list(
        Assignment.objects.filter(group=group, member__crashed=False)
        .exclude(member__kind__in=[Member.Kind.REST, Member.Kind.STUDENT, Member.Kind.CLIENT])
        .select_related("partition__topic", "member")
        .order_by("member_id", "partition__topic__name", "partition__index")
    )
    # A partition with no leader (its brokers stopped) cannot be fetched from: its owner waits.
    offline = partitions_offline(room=room, partitions=[a.partition for a in assignments])
    if offline:
        assignments = [a for a in assignments if a.partition_id not in offline]
    by_member: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in assignments:
        by_member[assignment.member_id].append(assignment)

    highest = ledger_highest_processed(group, [a.partition_id for a in assignments])
    auto_committed = False
    members = {a.member_id: a.member for a in assignments}
    moves = MemberMoves()
    for member_pk, owned in by_member.items():
        member = members[member_pk]
        budget, carry = _earned(member.budget_carry, member.records_per_second, step_ms)
        Member.objects.filter(pk=member_pk).update(budget_carry=carry)
        result = consumption.consume(
            group_services.member_cursors(owned, committed),
            settings,
            budget=budget,
            now_ms=room.sim_time_ms,
            last_auto_commit_ms=group.last_auto_commit_ms,
            fetch_state=fetching.FetchState.from_dict(member.fetch_state),
        )
        auto_committed = auto_committed or result.auto_committed
        moves.add(
            member_moves_apply(
                room=room,
                group=group,
                member=member,
                owned=owned,
                result=result,
                highest=highest,
            )
        )

    if not (moves.ledger or moves.commits or moves.starts or moves.stuck):
        if auto_committed:
            ConsumerGroup.objects.filter(pk=group.pk).update(last_auto_commit_ms=room.sim_time_ms)
        return None
    return group_moves_store(
        room=room,
        group=group,
        assignments=assignments,
        moves=moves,
        auto_committed=auto_committed,
    )


def group_moves_store(
    *,
    room: Room,
    group: ConsumerGroup,
    assignments: list[Assignment],
    moves: MemberMoves,
    auto_committed: bool,
) -> dict:
    """Store what the group's members did (ledger lines, commits, totals) and return the
    group's part of a "step" event, which the board applies without refetching anything.
    Used by the simulation's step and by a student's own button alike."""
    ProcessedRecord.objects.bulk_create(moves.ledger)
    _ledger_trim(group)
    partitions = {a.partition_id: a.partition for a in assignments}
    group_services.commits_store(group=group, commits=moves.commits, now_ms=room.sim_time_ms)
    totals = {
        "processed": group.processed_total + sum(1 for r in moves.ledger if r.status != "skipped"),
        "duplicates": group.duplicates_total + moves.duplicates,
        "skipped": group.skipped_total + moves.skipped,
    }
    ConsumerGroup.objects.filter(pk=group.pk).update(
        processed_total=totals["processed"],
        duplicates_total=totals["duplicates"],
        skipped_total=totals["skipped"],
        last_auto_commit_ms=room.sim_time_ms if auto_committed else group.last_auto_commit_ms,
    )
    return {
        "group": group.group_id,
        "processed": [
            {
                "member": r.member_id,
                "tp": _tp(partitions[r.partition_id]),
                "offset": r.offset,
                "status": r.status,
            }
            for r in moves.ledger[-LEDGER_EVENT_LIMIT:]
        ],
        "more": max(0, len(moves.ledger) - LEDGER_EVENT_LIMIT),
        "positions": {_tp(a.partition): a.position for a in assignments if a.position is not None},
        # Where each partition's fetched records end (polled or buffered, not yet processed).
        "fetched": {
            _tp(a.partition): fetching.fetched_end(a.position, a.polled_until, a.fetched_until)
            for a in assignments
            if a.position is not None
        },
        "commits": [
            {
                "tp": _tp(partitions[pid]),
                "offset": offset,
                "lag": offset_rules.lag(partitions[pid].log_end_offset, offset),
            }
            for pid, offset in moves.commits.items()
        ],
        "starts": moves.starts,
        "stuck": moves.stuck,
        "totals": totals,
    }


@dataclass
class MemberMoves:
    """One member's poll, as the engine answered it, turned into rows: its ledger lines (not
    stored yet), the starts and stuck partitions for the event, and the commits to store."""

    ledger: list[ProcessedRecord] = field(default_factory=list)
    starts: list[dict] = field(default_factory=list)
    stuck: list[dict] = field(default_factory=list)
    commits: dict[int, int] = field(default_factory=dict)  # partition id -> offset
    duplicates: int = 0
    skipped: int = 0

    def add(self, other: MemberMoves) -> None:
        """Fold another member's moves into these (a group's step gathers them all)."""
        self.ledger.extend(other.ledger)
        self.starts.extend(other.starts)
        self.stuck.extend(other.stuck)
        self.commits.update(other.commits)
        self.duplicates += other.duplicates
        self.skipped += other.skipped


def member_moves_apply(
    *,
    room: Room,
    group: ConsumerGroup,
    member: Member,
    owned: list[Assignment],
    result: consumption.ConsumeResult,
    highest: dict[int, int],
) -> MemberMoves:
    """Ledger lines for what `member` processed (a duplicate if the group processed it before)
    and skipped (committed past without processing), and its saved positions. Shared by the
    simulation and a student's "process next record", so the board counts both alike."""
    by_name = {_tp(a.partition): a for a in owned}
    moves = MemberMoves()
    for start in result.starts:
        assignment = by_name[start.partition]
        lost = consumption.skipped_offsets(
            highest.get(assignment.partition_id),
            start.offset,
            assignment.partition.log_start_offset,
        )
        moves.ledger.extend(
            _ledger(group, assignment, offset, member, "skipped", room) for offset in lost
        )
        moves.skipped += len(lost)
        moves.starts.append(
            {
                "member": member.member_id,
                "tp": start.partition,
                "offset": start.offset,
                "reason": start.reason,
            }
        )
    moves.stuck.extend(
        {"member": member.member_id, "tp": s.partition, "error": s.error} for s in result.stuck
    )
    seen = _already_processed(group, result.processed, by_name)
    for tp, offset in result.processed:
        assignment = by_name[tp]
        status = "duplicate" if (assignment.partition_id, offset) in seen else "first"
        seen.add((assignment.partition_id, offset))
        moves.duplicates += status == "duplicate"
        moves.ledger.append(_ledger(group, assignment, offset, member, status, room))
    for cursor in result.cursors:
        assignment = by_name[cursor.partition]
        stored = (assignment.position, assignment.polled_until, assignment.fetched_until)
        if stored != (cursor.position, cursor.polled_until, cursor.fetched_until):
            assignment.position = cursor.position
            assignment.polled_until = cursor.polled_until
            assignment.fetched_until = cursor.fetched_until
            assignment.save(update_fields=["position", "polled_until", "fetched_until"])
    fetch_state = result.fetch_state.to_dict()
    if member.fetch_state != fetch_state:
        member.fetch_state = fetch_state
        Member.objects.filter(pk=member.pk).update(fetch_state=fetch_state)
    moves.commits = {by_name[tp].partition_id: offset for tp, offset in result.commits.items()}
    return moves


def _ledger(group, assignment, offset, member, status, room) -> ProcessedRecord:
    return ProcessedRecord(
        group=group,
        partition_id=assignment.partition_id,
        offset=offset,
        member_id=member.member_id,
        status=status,
        at_ms=room.sim_time_ms,
    )


def ledger_highest_processed(group: ConsumerGroup, partition_ids: list[int]) -> dict[int, int]:

    rows = (
        ProcessedRecord.objects.filter(group=group, partition_id__in=partition_ids)
        .exclude(status=ProcessedRecord.Status.SKIPPED)
        .values("partition_id")
        .annotate(top=Max("offset"))
    )
    return {row["partition_id"]: row["top"] for row in rows}


def _already_processed(group, processed, by_name) -> set[tuple[int, int]]:
    if not processed:
        return set()
    wanted: dict[int, list[int]] = defaultdict(list)
    for tp, offset in processed:
        wanted[by_name[tp].partition_id].append(offset)
    seen: set[tuple[int, int]] = set()
    for partition_id, offsets in wanted.items():
        rows = ProcessedRecord.objects.filter(
            group=group, partition_id=partition_id, offset__in=offsets
        ).exclude(status=ProcessedRecord.Status.SKIPPED)
        seen.update((partition_id, o) for o in rows.values_list("offset", flat=True))
    return seen


def _ledger_trim(group: ConsumerGroup) -> None:
    ids = ProcessedRecord.objects.filter(group=group).order_by("-id").values_list("id", flat=True)
    cutoff = list(ids[LEDGER_KEEP : LEDGER_KEEP + 1])
    if cutoff:
        ProcessedRecord.objects.filter(group=group, id__lte=cutoff[0]).delete()


# --- the step ---------------------------------------------------------------------------------


@transaction.atomic
def room_step(*, room: Room, step_ms: int = clocks.DEFAULT_STEP_MS) -> dict[str, Any]:
    """Advance the room by `step_ms` of simulated time and report it as one event.

    Order within a step: the clock moves; producers append what their rate earned; the group
    coordinators' timers fire (heartbeats, session timeouts, rebalances); members process and
    commit; the log cleaner runs. What a browser needs to redraw goes in one "step" event.
    """
    if not 0 < step_ms <= MAX_STEP_MS:
        raise Invalid("A step is between 1 ms and one simulated day.", field="step_ms")
    room = room_lock(room=room)
    clock = clocks.step(room.clock(), step_ms)
    room.sim_time_ms = clock.now_ms
    room.save(update_fields=["sim_time_ms"])

    produced = _run_producers(room, step_ms)
    # Followers fetch what the producers appended before the consumers read (up to the HW).
    replicated = replication_step(room=room)
    for group in groups_ticking(room=room):
        group_tick(group=group)
    rest_instances_expire(room=room)
    consumed = [
        summary
        for group in ConsumerGroup.objects.filter(room=room).order_by("group_id")
        if (summary := _consume_group(room, group, step_ms)) is not None
    ]
    for topic in topics_to_clean(room=room):
        topic_clean(topic=topic)
    sqs_tick(room=room)
    if share_groups_tick(room=room, step_ms=step_ms) is not None:
        share_compare_tick(room=room, step_ms=step_ms)
    payload = {"clock": clocks.clock_payload(clock), "produced": produced, "groups": consumed}
    if replicated:
        payload["replication"] = replicated
    event_record(room=room, type=events.STEP, payload=payload)
    return payload


# --- who drives the room ----------------------------------------------------------------------

LEASE_SECONDS = 2.0
# A stalled process must not jump the simulation by minutes when it wakes up.
MAX_WALL_STEP_MS = 1_000


def room_drive(*, room: Room, owner: str, wall_ms: int) -> bool:
    """One tick of the room driver of server process `owner`, `wall_ms` after its last one.

    Exactly one process drives a room: the holder of the room's lease, renewed as it ticks.
    Another process's driver only takes over once the lease has run out (its holder stopped
    or died). Returns whether this process holds the lease.

    A paused room whose lease is ours and fresh needs no write at all: the look before the
    lock keeps an idle watched room from taking the database's write lock ten times a second.
    """
    seen = (
        Room.objects.filter(pk=room.pk)
        .values("driver_owner", "driver_lease_until", "clock_running")
        .first()
    )
    if seen is None:
        raise NotFound("That room does not exist (it may have expired).")
    now = timezone.now()
    lease_fresh = (
        seen["driver_lease_until"] is not None
        and (seen["driver_lease_until"] - now).total_seconds() > LEASE_SECONDS / 2
    )
    if seen["driver_owner"] not in ("", owner) and lease_fresh:
        return False
    if seen["driver_owner"] == owner and lease_fresh and not seen["clock_running"]:
        return True
    return _room_drive_locked(room=room, owner=owner, wall_ms=wall_ms)


@transaction.atomic
def _room_drive_locked(*, room: Room, owner: str, wall_ms: int) -> bool:

    room = room_lock(room=room)
    now = timezone.now()
    held_by_other = (
        room.driver_owner not in ("", owner)
        and room.driver_lease_until is not None
        and room.driver_lease_until > now
    )
    if held_by_other:
        return False
    renew_by = now + timedelta(seconds=LEASE_SECONDS / 2)
    if (
        room.driver_owner != owner
        or room.driver_lease_until is None
        or (room.driver_lease_until < renew_by)
    ):
        room.driver_owner = owner
        room.driver_lease_until = now + timedelta(seconds=LEASE_SECONDS)
        room.save(update_fields=["driver_owner", "driver_lease_until"])
    if room.clock_running:
        wall = max(0, min(int(wall_ms), MAX_WALL_STEP_MS))
        advanced = clocks.advance(room.clock(), wall).now_ms - room.sim_time_ms
        if advanced > 0:
            room_step(room=room, step_ms=advanced)
    return True


@transaction.atomic
def room_release(*, room: Room, owner: str) -> None:
    """The driver of `owner` stops (nobody watches here any more): let another take over now."""
    Room.objects.filter(pk=room.pk, driver_owner=owner).update(
        driver_owner="", driver_lease_until=None
    )
