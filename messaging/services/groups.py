"""Consumer groups: creation, membership and commits, decided by the engine's coordinator.

The engine (`messaging.engine.group`) holds the rules: who joins, who times out, how partitions
are dealt and in how many rounds. These functions load the group from its rows, ask the engine,
store what it returns and record the rebalance plan as a room event for the board to animate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

# A module import: selectors imports services in turn, and is only half loaded here.
from messaging import events, selectors
from messaging.engine import consumer_group as kip848_rules
from messaging.engine import consumption
from messaging.engine import group as coordinator
from messaging.engine import offsets as offset_rules
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    Assignment,
    CommittedOffset,
    ConsumerGroup,
    Member,
    Partition,
    Record,
    Room,
    Topic,
)
from messaging.services import consumer_groups, live_groups
from messaging.services.events import event_record, room_lock
from messaging.services.group_rows import (
    assignments_write,
    commits_store,
    member_cursors,
    offset_store,
)
from messaging.services.text import name_validate

MAX_GROUPS_PER_ROOM = 20
# A classroom of 200 students, with room to spare: the lessons put 150 consumers on 100
# partitions.
MAX_MEMBERS_PER_GROUP = 300
MAX_CLIENT_ID_CHARS = 64


def group_id_validate(group_id: str) -> str:
    group_id = group_id.strip()
    if not group_id:
        raise Invalid("A consumer group needs a group.id.", field="group_id")
    if len(group_id) > settings.LOGLAB_MAX_TOPIC_NAME:
        raise Invalid("A group.id has at most 249 characters here.", field="group_id")
    return name_validate(group_id, field="group_id", what="A group.id")


def choice_validate(value: str, choices: type, field: str) -> str:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise Invalid(f"{field} must be one of {allowed} (not {value!r}).", field=field)
    return value


def _partition_counts(topics: list[Topic]) -> dict[str, int]:
    return {t.name: t.partition_count for t in topics}


@transaction.atomic
def group_create(
    *,
    room: Room,
    group_id: str,
    topics: list[str],
    assignor: str = ConsumerGroup.Assignor.RANGE,
    protocol: str = ConsumerGroup.Protocol.EAGER,
    delivery: str = ConsumerGroup.Delivery.AT_LEAST_ONCE,
    auto_offset_reset: str = ConsumerGroup.OffsetReset.LATEST,
    session_timeout_ms: int | None = None,
    group_protocol: str = ConsumerGroup.GroupProtocol.CLASSIC,
    remote_assignor: str = "",
) -> ConsumerGroup:
    """A group of the board. With ``group_protocol="consumer"`` (KIP-848) the coordinator
    assigns with ``remote_assignor`` (group.remote.assignor: uniform or range, "" for the
    broker's default), and heartbeat and session times are the broker's
    (group.consumer.heartbeat.interval.ms 5 s, group.consumer.session.timeout.ms 45 s);
    ``assignor`` and ``protocol`` are the classic protocol's."""
    group_id = group_id_validate(group_id)
    kip848 = group_protocol == ConsumerGroup.GroupProtocol.CONSUMER
    heartbeat_interval_ms = coordinator.DEFAULT_HEARTBEAT_INTERVAL_MS
    if kip848:
        defaults = kip848_rules.Config()
        heartbeat_interval_ms = defaults.heartbeat_interval_ms
        session_timeout_ms = session_timeout_ms or defaults.session_timeout_ms
    elif session_timeout_ms is None:
        session_timeout_ms = coordinator.DEFAULT_SESSION_TIMEOUT_MS
    consumer_groups.group_protocol_check(
        group_protocol=group_protocol,
        remote_assignor=remote_assignor,
        heartbeat_interval_ms=heartbeat_interval_ms,
        session_timeout_ms=session_timeout_ms,
    )
    choice_validate(assignor, ConsumerGroup.Assignor, "partition.assignment.strategy")
    choice_validate(protocol, ConsumerGroup.Protocol, "rebalance protocol")
    choice_validate(delivery, ConsumerGroup.Delivery, "delivery")
    choice_validate(auto_offset_reset, ConsumerGroup.OffsetReset, "auto.offset.reset")
    if not topics:
        raise Invalid("A consumer group subscribes to at least one topic.", field="topics")
    room = room_lock(room=room)
    if ConsumerGroup.objects.filter(room=room, group_id=group_id).exists():
        raise Conflict(f"Consumer group '{group_id}' already exists.", field="group_id")
    if ConsumerGroup.objects.filter(room=room).count() >= MAX_GROUPS_PER_ROOM:
        raise Invalid(f"A room holds at most {MAX_GROUPS_PER_ROOM} consumer groups.")
    subscribed = list(Topic.objects.filter(room=room, name__in=topics))
    missing = sorted(set(topics) - {t.name for t in subscribed})
    if missing:
        raise NotFound(f"No such topic: {', '.join(missing)}.", field="topics")
    group = ConsumerGroup(
        room=room,
        group_id=group_id,
        assignor=assignor,
        protocol=protocol,
        delivery=delivery,
        auto_offset_reset=auto_offset_reset,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        group_protocol=group_protocol,
        remote_assignor=remote_assignor if kip848 else "",
    )
    if not kip848:
        try:
            # The engine knows which combinations Kafka accepts (cooperative needs
            # cooperative-sticky; session.timeout.ms within the broker's bounds).
            state = coordinator.new_group(group.coordinator_config(), _partition_counts(subscribed))
        except ValueError as error:
            raise Invalid(str(error)) from None
        group.known_partitions = [list(item) for item in state.topics]
    group.save()
    group.topics.set(subscribed)
    event_record(
        room=room,
        type=events.GROUP_CREATED,
        payload={
            "group": group.group_id,
            "topics": sorted(t.name for t in subscribed),
            "assignor": remote_assignor if kip848 else assignor,
            "protocol": group_protocol if kip848 else protocol,
            "delivery": delivery,
        },
    )
    return group


# --- the engine's view of a stored group ---------------------------------------------------


@dataclass(frozen=True)
class NewMember:
    """What the engine does not know about a member but the board shows."""

    display_name: str = ""
    kind: str = Member.Kind.SIMULATED
    records_per_second: float = 1.0


def group_state_store(
    group: ConsumerGroup,
    state: coordinator.ConsumerGroup,
    *,
    newcomers: dict[str, NewMember] | None = None,
    assignments_changed: bool = True,
) -> None:
    """Write the engine's ConsumerGroup back to the rows, changing only what changed."""
    newcomers = newcomers or {}
    group.state = str(state.state)
    group.generation = state.generation
    group.leader_member_id = state.leader_id or ""
    group.known_partitions = [[t, c] for t, c in state.topics]
    group.member_counter = state.next_member_number
    group.save(
        update_fields=[
            "state",
            "generation",
            "leader_member_id",
            "known_partitions",
            "member_counter",
        ]
    )

    rows = {m.member_id: m for m in group.members.all()}
    wanted = {m.member_id for m in state.members}
    gone = [row for member_id, row in rows.items() if member_id not in wanted]
    # A static member that came back gets a new member id for its old slot: it keeps what the
    # board knew of it (its name, its speed).
    by_instance = {row.group_instance_id: row for row in gone if row.group_instance_id}
    if assignments_changed:
        _commit_before_revoke(group, state, gone)
    Member.objects.filter(pk__in=[row.pk for row in gone]).delete()

    for order, engine_member in enumerate(state.members):
        row = rows.get(engine_member.member_id)
        if row is None:
            previous = by_instance.get(engine_member.group_instance_id)
            extra = newcomers.get(engine_member.member_id) or (
                NewMember(previous.display_name, previous.kind, previous.records_per_second)
                if previous is not None
                else NewMember()
            )
            row = Member(
                group=group,
                member_id=engine_member.member_id,
                client_id=engine_member.client_id,
                display_name=extra.display_name,
                kind=extra.kind,
                records_per_second=extra.records_per_second,
            )
            rows[engine_member.member_id] = row
        wanted_fields = {
            "subscription": list(engine_member.subscription),
            "group_instance_id": engine_member.group_instance_id,
            "last_heartbeat_ms": engine_member.last_heartbeat_ms,
            "generation": engine_member.generation,
            "join_order": order,
        }
        changed = [name for name, value in wanted_fields.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, wanted_fields[name])
        if row.pk is None:
            row.save()
        elif changed:
            row.save(update_fields=changed)

    if assignments_changed:
        _assignments_store(group, state, rows)


def _commit_before_revoke(
    group: ConsumerGroup, state: coordinator.ConsumerGroup, gone: list[Member]
) -> None:
    """Partitions leaving a live member: it commits what it processed first, as the Java
    client does in onJoinPrepare (and close()) with at-least-once. Without this a clean leave
    or an eager rebalance would make the next owner reprocess records, which Kafka avoids.
    Under eager every partition is revoked, so every one is committed; under cooperative only
    the ones that move.

    Only the simulation's members: a crashed one is not there to commit, a student commits with
    their own button (forgetting to is the lesson), a REST consumer as its instance says.
    """
    settings_ = group.consumer_settings()
    if settings_.semantics != "at-least-once":
        return  # the engine would commit nothing: spare the queries
    keeps: set[tuple[str, str, int]] = {
        (m.member_id, tp.topic, tp.partition) for m in state.members for tp in m.assignment
    }
    eager = group.protocol == ConsumerGroup.Protocol.EAGER
    gone_ids = {row.pk for row in gone}
    losing = [
        a
        for a in Assignment.objects.filter(
            group=group,
            member__kind=Member.Kind.SIMULATED,
            member__crashed=False,
            position__isnull=False,
        ).select_related("partition__topic", "member")
        if eager
        or a.member_id in gone_ids
        or (a.member.member_id, a.partition.topic.name, a.partition.index) not in keeps
    ]
    if not losing:
        return
    committed = selectors.group_committed(
        group=group, partition_ids=[a.partition_id for a in losing]
    )
    by_name = {f"{a.partition.topic.name}-{a.partition.index}": a for a in losing}
    commits = consumption.commits_before_revoke(member_cursors(losing, committed), settings_)
    commits_store(
        group=group,
        commits={by_name[name].partition_id: offset for name, offset in commits.items()},
        now_ms=Room.objects.values_list("sim_time_ms", flat=True).get(pk=group.room_id),
    )


def _assignments_store(
    group: ConsumerGroup, state: coordinator.ConsumerGroup, rows: dict[str, Member]
) -> None:
    partitions = {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(topic__in=group.topics.all()).select_related("topic")
    }
    wanted: dict[int, Member] = {}
    for engine_member in state.members:
        for tp in engine_member.assignment:
            wanted[partitions[(tp.topic, tp.partition)].pk] = rows[engine_member.member_id]
    assignments_write(group=group, wanted=wanted, generation=state.generation)


# What browsers do not read of a rebalance plan: its last step's `owned` is the final
# assignment, and why each idle member has nothing is on the board's rows already. In a class of
# 300 they were 19 KB of the 44 KB every phone received.
_PLAN_NOT_SENT = ("final_assignment", "idle")


def _plan_for_browsers(plan: coordinator.RebalancePlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    shown = plan.to_dict()
    for name in _PLAN_NOT_SENT:
        shown.pop(name, None)
    return shown


def _group_event(room: Room, group: ConsumerGroup, result: coordinator.GroupResult) -> None:
    payload: dict[str, Any] = {
        "group": group.group_id,
        "state": str(result.group.state),
        "generation": result.group.generation,
        "narration": result.narration,
        "removed": list(result.removed),
        "plan": _plan_for_browsers(result.plan),
        "at_ms": room.sim_time_ms,
    }
    event_record(room=room, type=events.GROUP_CHANGED, payload=payload)


def _locked(group: ConsumerGroup) -> tuple[Room, ConsumerGroup]:
    room = room_lock(room=group.room_id)
    try:
        return room, ConsumerGroup.objects.get(pk=group.pk)
    except ConsumerGroup.DoesNotExist:
        raise NotFound("That consumer group no longer exists.") from None


def _subscription(group: ConsumerGroup) -> tuple[list[str], dict[str, int]]:
    topics = list(group.topics.all())
    return sorted(t.name for t in topics), _partition_counts(topics)


def _refused(result: coordinator.GroupResult) -> None:
    if result.error is None:
        return
    if result.error.code == coordinator.UNKNOWN_MEMBER_ID:
        raise NotFound(result.error.message)
    raise Conflict(result.error.message)


# --- membership -------------------------------------------------------------------------------


@transaction.atomic
def member_join(
    *,
    group: ConsumerGroup,
    client_id: str,
    display_name: str = "",
    group_instance_id: str | None = None,
    kind: str = Member.Kind.SIMULATED,
) -> tuple[Member, coordinator.GroupResult]:
    """A consumer with `client_id` joins the group: JoinGroup, then whatever rebalance follows."""
    client_id = name_validate(client_id.strip(), field="client_id", what="A client.id")
    if not client_id or len(client_id) > MAX_CLIENT_ID_CHARS:
        raise Invalid(f"A client.id has 1 to {MAX_CLIENT_ID_CHARS} characters.", field="client_id")
    if group_instance_id is not None:
        group_instance_id = name_validate(
            group_instance_id.strip(), field="group_instance_id", what="A group.instance.id"
        )
        if not group_instance_id or len(group_instance_id) > MAX_CLIENT_ID_CHARS:
            raise Invalid(
                f"A group.instance.id has 1 to {MAX_CLIENT_ID_CHARS} characters.",
                field="group_instance_id",
            )
    room, group = _locked(group)
    if group.members.count() >= MAX_MEMBERS_PER_GROUP:
        raise Invalid(f"A group holds at most {MAX_MEMBERS_PER_GROUP} members here.")
    display_name = name_validate(display_name.strip()[:40], field="display_name", what="A name")
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        return _consumer_join(room, group, client_id, display_name, kind, group_instance_id)
    if group.live:
        return _live_join(room, group, client_id, display_name, kind)
    subscription, counts = _subscription(group)
    result = coordinator.join(
        selectors.group_state_load(group),
        client_id,
        subscription,
        room.sim_time_ms,
        group_instance_id=group_instance_id,
        topics=counts,
    )
    _refused(result)
    assert result.member_id is not None
    newcomer = NewMember(display_name=display_name or result.member_id, kind=kind)
    group_state_store(group, result.group, newcomers={result.member_id: newcomer})
    _group_event(room, group, result)
    return group.members.get(member_id=result.member_id), result


def _live_join(
    room: Room, group: ConsumerGroup, client_id: str, display_name: str, kind: str
) -> tuple[Member, coordinator.GroupResult]:
    """A group with a real client in it runs Kafka's phases in real time (live_groups): this
    member joins as one living in the server, and the rebalance ends when the clients rejoin."""
    member_id = f"{client_id}-{uuid.uuid4()}"
    outcome = live_groups.live_member_join(
        room=room,
        group=group,
        client_id=client_id,
        member_id=member_id,
        display_name=display_name or member_id,
        kind=kind,
    )
    if outcome.error:
        raise Conflict(f"The group refused the join: {outcome.error}.")
    state = selectors.group_state_load(ConsumerGroup.objects.get(pk=group.pk))
    result = coordinator.GroupResult(group=state, member_id=member_id, narration=outcome.narration)
    return group.members.get(member_id=member_id), result


def _consumer_join(
    room: Room,
    group: ConsumerGroup,
    client_id: str,
    display_name: str,
    kind: str,
    group_instance_id: str | None = None,
) -> tuple[Member, coordinator.GroupResult]:
    """A member of a group.protocol=consumer group: its first ConsumerGroupHeartbeat. A Java
    client draws a random member id (KIP-1082); the board numbers its own, to be readable."""
    taken = set(group.members.values_list("member_id", flat=True))
    number = group.member_counter
    while f"{client_id}-{number}" in taken:
        number += 1
    member_id = f"{client_id}-{number}"
    group.member_counter = number + 1
    group.save(update_fields=["member_counter"])
    outcome = consumer_groups.consumer_member_join(
        room=room,
        group=group,
        client_id=client_id,
        member_id=member_id,
        display_name=display_name or member_id,
        kind=kind,
        group_instance_id=group_instance_id,
    )
    joined = outcome.answer.member_id or member_id
    Member.objects.filter(group=group, member_id=joined).update(
        kind=kind, display_name=(display_name or joined)[:40]
    )
    state = coordinator.ConsumerGroup(config=group.coordinator_config())
    result = coordinator.GroupResult(group=state, member_id=joined, narration=outcome.narration)
    return group.members.get(member_id=joined), result


@transaction.atomic
def members_join(
    *, group: ConsumerGroup, client_id: str, count: int
) -> tuple[list[Member], coordinator.GroupResult]:
    """`count` consumers started together (the tasks of one service): their JoinGroups land in
    the same join window, which `group.initial.rebalance.delay.ms` holds open for an empty
    group, so they make one rebalance and one generation, not one each."""
    client_id = name_validate(client_id.strip(), field="client_id", what="A client.id")
    if not client_id or len(client_id) > MAX_CLIENT_ID_CHARS:
        raise Invalid(f"A client.id has 1 to {MAX_CLIENT_ID_CHARS} characters.", field="client_id")
    if count < 1:
        raise Invalid("Add at least one consumer.")
    return members_join_named(group=group, joiners=[(client_id, NewMember())] * count)


@transaction.atomic
def members_join_named(
    *, group: ConsumerGroup, joiners: list[tuple[str, NewMember]]
) -> tuple[list[Member], coordinator.GroupResult]:
    """Consumers joining in one join window, each a (client.id, what the board shows of it):
    one rebalance for all. Returns their members in the order given."""
    room, group = _locked(group)
    if len(joiners) > MAX_MEMBERS_PER_GROUP - group.members.count():
        raise Invalid(f"A group holds at most {MAX_MEMBERS_PER_GROUP} members here.")
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        # No join window under KIP-848: each heartbeat bumps the epoch on its own.
        consumers = [
            _consumer_join(room, group, client_id, extra.display_name, extra.kind)
            for client_id, extra in joiners
        ]
        for (member, _), (_, extra) in zip(consumers, joiners, strict=True):
            if extra.records_per_second != member.records_per_second:
                Member.objects.filter(pk=member.pk).update(
                    records_per_second=extra.records_per_second
                )
        return [member for member, _ in consumers], consumers[-1][1]
    if group.live:
        joined = [
            _live_join(room, group, client_id, extra.display_name, extra.kind)
            for client_id, extra in joiners
        ]
        return [member for member, _ in joined], joined[-1][1]
    subscription, counts = _subscription(group)
    before = set(group.members.values_list("member_id", flat=True))
    result = coordinator.join_many(
        selectors.group_state_load(group),
        [coordinator.JoinRequest(client_id, tuple(subscription)) for client_id, _ in joiners],
        room.sim_time_ms,
        topics=counts,
    )
    _refused(result)
    # The coordinator admits the requests in order, so the new member ids follow the joiners.
    new_ids = [m.member_id for m in result.group.members if m.member_id not in before]
    newcomers = {
        member_id: NewMember(
            display_name=extra.display_name or member_id,
            kind=extra.kind,
            records_per_second=extra.records_per_second,
        )
        for member_id, (_, extra) in zip(new_ids, joiners, strict=True)
    }
    group_state_store(group, result.group, newcomers=newcomers)
    _group_event(room, group, result)
    rows = {m.member_id: m for m in group.members.filter(member_id__in=new_ids)}
    return [rows[member_id] for member_id in new_ids], result


@transaction.atomic
def member_leave(*, member: Member) -> coordinator.GroupResult:
    """`consumer.close()`: a dynamic member sends LeaveGroup; a static one just goes quiet."""
    room, group = _locked(member.group)
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        left = consumer_groups.consumer_member_leave(room=room, group=group, member=member)
        state = coordinator.ConsumerGroup(config=group.coordinator_config())
        return coordinator.GroupResult(group=state, narration=left.narration)
    if group.live:
        outcome = live_groups.live_member_leave(room=room, group=group, member=member)
        state = selectors.group_state_load(ConsumerGroup.objects.get(pk=group.pk))
        return coordinator.GroupResult(group=state, narration=outcome.narration)
    result = coordinator.close(selectors.group_state_load(group), member.member_id)
    _refused(result)
    group_state_store(group, result.group)
    _group_event(room, group, result)
    return result


@transaction.atomic
def member_crash(*, member: Member) -> None:
    """The process dies: no LeaveGroup, no more heartbeats. Only the session timeout tells."""
    room, group = _locked(member.group)
    updated = Member.objects.filter(pk=member.pk, group=group).update(crashed=True)
    if not updated:
        raise NotFound("That consumer is no longer in the group.")
    deadline = member.session_expires_at(group.session_timeout_ms)
    event_record(
        room=room,
        type=events.MEMBER_CRASHED,
        payload={
            "group": group.group_id,
            "member": member.member_id,
            "session_expires_at_ms": deadline,
        },
    )


def members_heartbeating() -> Q:
    """The members whose heartbeat thread is beating (Member.heartbeating)."""
    return Member.heartbeating()


@transaction.atomic
def heartbeat_due(now_ms: int) -> Q:
    """Members with a heartbeat due at `now_ms`. A group with none, and no real client, has
    nothing for the coordinator's timers to do: no session can run out before a heartbeat is
    due (session.timeout.ms is longer than heartbeat.interval.ms). The room's step comes ten
    times a second; a heartbeat, every three seconds."""
    return Q(last_heartbeat_ms__lte=now_ms - F("group__heartbeat_interval_ms"))


def groups_ticking(*, room: Room) -> list[ConsumerGroup]:
    """The room's groups whose timers have something to do at its time (see heartbeat_due):
    two queries for the room rather than a lock and two queries per group, every step."""
    due = set(
        Member.objects.filter(heartbeat_due(room.sim_time_ms), group__room=room).values_list(
            "group_id", flat=True
        )
    )
    return [
        g
        for g in ConsumerGroup.objects.filter(room=room)
        if g.live or g.pk in due or g.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER
    ]


def group_tick(*, group: ConsumerGroup) -> list[coordinator.GroupResult]:
    """One pass of the coordinator's timers at the room's simulated time.

    Live members heartbeat every heartbeat.interval.ms, as the client's heartbeat thread does
    (through a long step too), and every member silent for session.timeout.ms is removed,
    which rebalances the group. Returns the results that rebalanced it, in order.
    """
    room, group = _locked(group)
    now = room.sim_time_ms
    alive = group.members.filter(members_heartbeating())
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        consumer_groups.consumer_tick(
            room=room, group=group, alive=alive.values_list("member_id", flat=True)
        )
        return []
    if not group.live and not group.members.filter(heartbeat_due(now)).exists():
        return []
    if group.live:
        live_groups.live_tick(
            room=room, group=group, alive=alive.values_list("member_id", flat=True)
        )
        return []
    state = selectors.group_state_load(group)
    # The live members' heartbeat threads beat every heartbeat.interval.ms all through the
    # step, however long it was (a slow tick at 20x jumps seconds); the silent ones' session
    # timers fire below.
    state = coordinator.heartbeats_kept(state, alive.values_list("member_id", flat=True), now)
    expired = coordinator.expire(state, now)
    rebalances = [expired] if expired.plan is not None else []
    group_state_store(group, expired.group, assignments_changed=bool(rebalances))
    for result in rebalances:
        _group_event(room, group, result)
    return rebalances


# --- offsets ----------------------------------------------------------------------------------


@transaction.atomic
def offset_commit(
    *, group: ConsumerGroup, topic_name: str, partition: int, offset: int
) -> CommittedOffset:
    """Store the offset of the NEXT record the group will read (last processed + 1)."""
    room, group = _locked(group)
    try:
        target = Partition.objects.get(topic__room=room, topic__name=topic_name, index=partition)
    except Partition.DoesNotExist:
        raise NotFound(f"There is no partition {topic_name}-{partition}.") from None
    if not group.topics.filter(pk=target.topic_id).exists():
        raise Invalid(f"Group '{group.group_id}' does not read topic '{topic_name}'.")
    if not 0 <= offset <= target.log_end_offset:
        raise Invalid(
            f"Offset {offset} is beyond {target}'s log end offset {target.log_end_offset}: "
            "a committed offset names the next record to read, at most the log end.",
            field="offset",
        )
    return offset_store(room=room, group=group, partition=target, offset=offset)


def group_topics_changed(*, room: Room, group: ConsumerGroup) -> None:
    """New topic metadata reached the group: the engine decides whether it rebalances.

    Called inside the transaction that changed the topics, with the room lock held.
    """
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        consumer_groups.consumer_topics_changed(room=room, group=group)
        return
    if group.live:
        live_groups.live_rebalance(room=room, group=group, reason="the topics changed")
        return
    _, counts = _subscription(group)
    try:
        result = coordinator.update_topics(selectors.group_state_load(group), counts)
    except ValueError as error:
        raise Invalid(str(error)) from None
    group_state_store(group, result.group)
    if result.plan is not None:
        _group_event(room, group, result)


RESET_OPTIONS = offset_rules.RESET_OPTIONS


@transaction.atomic
def group_offsets_reset(
    *, group: ConsumerGroup, option: str, value: int | None = None, execute: bool = False
) -> offset_rules.ResetPlan:
    """`kafka-consumer-groups --reset-offsets --<option> [value] [--execute]` for every partition
    of the group's topics. A dry run (the tool's default) changes nothing."""
    if option not in RESET_OPTIONS:
        raise Invalid(f"Unknown reset option {option!r}.", field="option")
    room, group = _locked(group)
    partitions = list(
        Partition.objects.filter(topic__in=group.topics.all())
        .select_related("topic")
        .order_by("topic__name", "index")
    )
    committed = selectors.group_committed(group=group)
    needs_times = option in ("to-datetime", "by-duration")
    lines = []
    for p in partitions:
        timestamps: tuple[tuple[int, int], ...] = ()
        if needs_times:
            timestamps = tuple(
                Record.objects.filter(partition=p)
                .order_by("offset")
                .values_list("offset", "timestamp_ms")
            )
        lines.append(
            offset_rules.PartitionOffsets(
                partition=f"{p.topic.name}-{p.index}",
                log_start_offset=p.log_start_offset,
                log_end_offset=p.log_end_offset,
                committed=committed.get(p.pk),
                timestamps=timestamps,
            )
        )
    try:
        plan = offset_rules.reset_offsets(
            group.group_id,
            group.state,
            lines,
            option,
            value,  # type: ignore[arg-type]
            now_ms=room.sim_time_ms,
            execute=execute,
        )
    except offset_rules.GroupNotEmptyError as error:
        raise Conflict(str(error)) from None
    except offset_rules.OffsetError as error:
        raise Invalid(str(error)) from None
    if execute:
        by_name = {f"{p.topic.name}-{p.index}": p for p in partitions}
        for name, offset in plan.new_offsets().items():
            CommittedOffset.objects.update_or_create(
                group=group,
                partition=by_name[name],
                defaults={"offset": offset, "committed_at_ms": room.sim_time_ms},
            )
        event_record(
            room=room,
            type=events.OFFSETS_RESET,
            payload={
                "group": group.group_id,
                "option": option,
                "value": value,
                "offsets": plan.new_offsets(),
            },
        )
    return plan
