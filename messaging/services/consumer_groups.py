"""Consumer groups with ``group.protocol=consumer`` (KIP-848): the coordinator assigns.

engine/consumer_group.py holds Kafka's rules; this module keeps its state in
``ConsumerGroup.consumer`` (the engine's Group as JSON) and mirrors it after every change in
the Member and Assignment rows, so the board, the student pages and the simulation read such a
group as any other. Nobody stops: each member goes on consuming what it owns while the group
reconciles, so the simulation lets a KIP-848 group's members process in every group state
(``ConsumerGroup.consumers_paused``).

Members living in the server (simulated consumers, students, REST Proxy instances) heartbeat
from the room's step, every ``heartbeat.interval.ms`` of the group (the broker's
``group.consumer.heartbeat.interval.ms``, 5 s) and at once after an answer changed their
assignment, as the Java client acknowledges; a real client (librdkafka with
``group.protocol=consumer``) heartbeats over the wire (api/kafka_wire/consumer_groups.py).
Every change the board should draw becomes a ``group.reconciled`` event with the engine's
moves: what was assigned, what is being revoked, what was released, the epochs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from django.db import transaction

from messaging import events, selectors
from messaging.engine import consumer_group as kip848
from messaging.engine import consumption
from messaging.engine.server_assignors import TopicMeta
from messaging.errors import Conflict, Invalid
from messaging.models import (
    Assignment,
    ConsumerGroup,
    Member,
    Partition,
    Room,
    Topic,
)
from messaging.services.events import event_record, room_lock
from messaging.services.group_rows import (
    MemberRow,
    assignments_write,
    commits_store,
    member_cursors,
    members_mirror,
    reconciled_record,
)
from messaging.services.live_groups import ClientInfo

CONSUMER = ConsumerGroup.GroupProtocol.CONSUMER
# What a simulated member sends as RebalanceTimeoutMs: the Java client's max.poll.interval.ms.
SERVER_REBALANCE_TIMEOUT_MS = 300_000
GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"


def _topics(room: Room) -> dict[str, TopicMeta]:
    return selectors.kafka_topic_metas(room=room)


def _locked(room: Room, group_id: str) -> tuple[Room, ConsumerGroup | None]:
    room = room_lock(room=room)
    return room, ConsumerGroup.objects.filter(room=room, group_id=group_id).first()


# --- storing the coordinator's state ------------------------------------------------------------


def state_store(
    room: Room,
    group: ConsumerGroup,
    before: kip848.Group,
    after: kip848.Group,
    narration: str,
    *,
    clients: Mapping[str, ClientInfo] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> None:
    """Write the coordinator's state and mirror it in the rows; a change the board should draw
    becomes a ``group.reconciled`` event."""
    clients = clients or {}
    kinds = kinds or {}
    _commit_before_revoke(room, group, before, after)
    group.consumer = after.to_dict()
    group.state = str(after.state())
    group.generation = max(0, after.group_epoch)
    group.save(update_fields=["consumer", "state", "generation"])

    subscribed = {name for m in after.members for name in m.subscribed}
    if subscribed:
        read = set(group.topics.values_list("name", flat=True))
        missing = list(Topic.objects.filter(room=room, name__in=subscribed - read))
        if missing:
            group.topics.add(*missing)

    mirrored = []
    for order, member in enumerate(after.members):
        info = clients.get(member.member_id) or ClientInfo(member.client_id)
        kind = kinds.get(member.member_id) or (
            Member.Kind.SIMULATED if member.server_side else Member.Kind.CLIENT
        )
        mirrored.append(
            MemberRow(
                member.member_id,
                values={
                    "generation": member.member_epoch,
                    "last_heartbeat_ms": member.last_heartbeat_ms,
                    "join_order": order,
                    "subscription": list(member.subscribed),
                    "group_instance_id": member.instance_id,
                },
                new={
                    "client_id": (member.client_id or info.client_id)[:64],
                    "kind": kind,
                    "display_name": (info.display_name or info.client_id or member.member_id)[:40],
                    "software": info.software[:80],
                },
            )
        )
    rows = members_mirror(group=group, members=mirrored)
    _assignments_mirror(room, group, after, rows)

    moves = kip848.moves(before, after)
    if narration or moves:
        reconciled_record(
            room=room,
            group=group,
            narration=narration,
            group_epoch=after.group_epoch,
            assignment_epoch=after.assignment_epoch,
            moves=moves,
        )


def _assignments_mirror(
    room: Room, group: ConsumerGroup, state: kip848.Group, rows: Mapping[str, Member]
) -> None:
    """Who owns what, for the board and the simulation. A member in the server stops
    consuming a partition the moment an answer takes it away (its client revokes at once), so
    its rows are its assigned partitions; a real client's are what the coordinator still counts
    as its own until its heartbeat says the revocation is done."""
    partitions = {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(topic__room=room).select_related("topic")
    }
    wanted: dict[int, Member] = {}
    for member in state.members:
        owned = member.assigned if member.server_side else member.owned()
        for tp in kip848.flat(owned):
            partition = partitions.get(tp)
            if partition is not None:
                wanted[partition.pk] = rows[member.member_id]
    assignments_write(group=group, wanted=wanted, generation=max(0, state.group_epoch))


def _commit_before_revoke(
    room: Room, group: ConsumerGroup, before: kip848.Group, after: kip848.Group
) -> None:
    """A simulated member losing partitions commits what it processed on them first, as the
    Java client does in its revocation callback (at-least-once), and so does one that leaves.
    A crashed one is not there to; a student commits with their own button."""
    settings_ = group.consumer_settings()
    if settings_.semantics != "at-least-once":
        return
    still = {(m.member_id, t, p) for m in after.members for t, p in kip848.flat(m.assigned)}
    losing = [
        a
        for a in Assignment.objects.filter(
            group=group,
            member__kind=Member.Kind.SIMULATED,
            member__crashed=False,
            position__isnull=False,
        ).select_related("partition__topic", "member")
        if (a.member.member_id, a.partition.topic.name, a.partition.index) not in still
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
        now_ms=room.sim_time_ms,
    )


def _applied(
    room: Room,
    group: ConsumerGroup,
    outcome: kip848.Outcome,
    *,
    before: kip848.Group,
    narration: Iterable[str] = (),
    clients: Mapping[str, ClientInfo] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> kip848.Answer:
    told = "; ".join(n for n in (*narration, outcome.narration) if n)
    state_store(room, group, before, outcome.group, told, clients=clients, kinds=kinds)
    return outcome.answer


# --- the room's step: timers and the heartbeats of members living in the server -------------------


def consumer_tick(*, room: Room, group: ConsumerGroup, alive: Iterable[str]) -> None:
    """The coordinator's timers at the room's time, then the heartbeats due of the members in
    the server whose heartbeat thread is beating (a crashed one is silent, and its session
    runs out)."""
    before = group.kip848_state()
    if not before.members:
        return  # no timers, no heartbeats: spare the room's step the queries
    config = group.kip848_config()
    now = room.sim_time_ms
    beating = set(alive)
    due = [m for m in kip848.server_heartbeats_due(before, now, config) if m in beating]
    deadline = kip848.next_deadline(before)
    if not due and (deadline is None or deadline > now):
        return  # the step comes ten times a second; a heartbeat, every five seconds
    topics = _topics(room)
    timed = kip848.tick(before, now_ms=now, topics=topics)
    state, told = timed.group, [timed.narration]
    for member_id in kip848.server_heartbeats_due(state, now, config):
        if member_id not in beating:
            continue
        outcome = kip848.heartbeat(
            state,
            kip848.server_heartbeat(state, member_id),
            now_ms=now,
            topics=topics,
            config=config,
        )
        if outcome.answer.error is not None:
            # Fenced: its client drops everything and joins again with epoch 0.
            member = state.member(member_id)
            state = kip848.fence(state, member_id, topics=topics, reason="was fenced").group
            if member is not None:
                rejoin = _rejoin_request(group, member)
                outcome = kip848.heartbeat(state, rejoin, now_ms=now, topics=topics, config=config)
        state = outcome.group
        told.append(outcome.narration)
    if state == before:
        return
    state_store(room, group, before, state, "; ".join(t for t in told if t))


def _rejoin_request(group: ConsumerGroup, member: kip848.Member) -> kip848.Heartbeat:
    return kip848.server_join(
        member.member_id,
        client_id=member.client_id,
        subscribed=member.subscribed,
        server_assignor=group.remote_assignor or None,
        instance_id=member.instance_id,
    )


# --- the board's members ------------------------------------------------------------------------


def consumer_member_join(
    *,
    room: Room,
    group: ConsumerGroup,
    client_id: str,
    member_id: str,
    display_name: str,
    kind: str,
    group_instance_id: str | None = None,
) -> kip848.Outcome:
    """A simulated consumer, a student or a REST instance joins: its first heartbeat (epoch 0)
    with the group's topics and ``group.remote.assignor``. The caller holds the room's lock."""
    topics = _topics(room)
    subscribed = sorted(group.topics.values_list("name", flat=True))
    before = group.kip848_state()
    timed = kip848.tick(before, now_ms=room.sim_time_ms, topics=topics)
    outcome = kip848.heartbeat(
        timed.group,
        kip848.server_join(
            member_id,
            client_id=client_id,
            subscribed=subscribed,
            server_assignor=group.remote_assignor or None,
            instance_id=group_instance_id,
        ),
        now_ms=room.sim_time_ms,
        topics=topics,
        config=group.kip848_config(),
    )
    if outcome.answer.error is not None:
        raise Conflict(f"The group refused the join: {outcome.answer.error_message}")
    # A static member taking its old place over keeps its name on the board.
    kinds = {outcome.answer.member_id or member_id: kind}
    clients = {member_id: ClientInfo(client_id, "", display_name)}
    _applied(
        room,
        group,
        outcome,
        before=before,
        narration=[timed.narration],
        clients=clients,
        kinds=kinds,
    )
    return outcome


def consumer_member_leave(*, room: Room, group: ConsumerGroup, member: Member) -> kip848.Outcome:
    """``consumer.close()``: a heartbeat with epoch -1 (a static member sends -2: it will be
    back, and keeps its partitions until its session runs out)."""
    topics = _topics(room)
    before = group.kip848_state()
    timed = kip848.tick(before, now_ms=room.sim_time_ms, topics=topics)
    engine_member = timed.group.member(member.member_id)
    if engine_member is None:
        raise Conflict("That consumer is no longer in the group.")
    epoch = kip848.LEAVE_EPOCH if engine_member.instance_id is None else kip848.STATIC_LEAVE_EPOCH
    outcome = kip848.heartbeat(
        timed.group,
        kip848.Heartbeat(
            member_id=member.member_id, member_epoch=epoch, instance_id=engine_member.instance_id
        ),
        now_ms=room.sim_time_ms,
        topics=topics,
        config=group.kip848_config(),
    )
    if outcome.answer.error is not None:
        raise Conflict(outcome.answer.error_message or outcome.answer.error)
    _applied(room, group, outcome, before=before, narration=[timed.narration])
    return outcome


def consumer_topics_changed(*, room: Room, group: ConsumerGroup) -> None:
    """Kafka notices new topic metadata at the next heartbeat of a member (the group epoch goes
    up there): nothing moves now, the board says what will."""
    reconciled_record(
        room=room,
        group=group,
        narration=(
            f"{group.group_id}: the topics changed; the coordinator bumps the group epoch and "
            "computes a new target at the next heartbeat"
        ),
    )


def group_protocol_check(
    *,
    group_protocol: str,
    remote_assignor: str,
    heartbeat_interval_ms: int,
    session_timeout_ms: int,
) -> None:
    if group_protocol not in ConsumerGroup.GroupProtocol.values:
        raise Invalid("group.protocol is classic or consumer.", field="group_protocol")
    if group_protocol != CONSUMER:
        return
    if remote_assignor and remote_assignor not in kip848.Config().assignors:
        raise Invalid(
            f"group.remote.assignor is {' or '.join(kip848.Config().assignors)} "
            f"(not {remote_assignor!r}).",
            field="remote_assignor",
        )
    try:
        kip848.config_check(heartbeat_interval_ms, session_timeout_ms)
    except ValueError as error:
        raise Invalid(str(error)) from None


# --- the wire -------------------------------------------------------------------------------------


@transaction.atomic
def client_heartbeat(
    *, room: Room, group_id: str, request: kip848.Heartbeat, client: ClientInfo
) -> kip848.Answer:
    """ConsumerGroupHeartbeat from a real client (GMM.consumerGroupHeartbeat): a first
    heartbeat (epoch 0) naming no group creates it (GMM.getOrMaybeCreateConsumerGroup)."""
    room, group = _locked(room, group_id)
    if group is None:
        if request.member_epoch != kip848.JOIN_EPOCH:
            return kip848.Answer(
                error=GROUP_ID_NOT_FOUND, error_message=f"Consumer group {group_id} not found."
            )
        group = _group_new(room, group_id)
    if group.group_protocol != CONSUMER:
        refused = _classic_group(room, group, request, client)
        if refused is not None:
            return refused
    before = group.kip848_state()
    topics = _topics(room)
    timed = kip848.tick(before, now_ms=room.sim_time_ms, topics=topics)
    outcome = kip848.heartbeat(
        timed.group,
        replace(request, client_id=client.client_id, server_side=False),
        now_ms=room.sim_time_ms,
        topics=topics,
        config=group.kip848_config(),
    )
    joined = outcome.answer.member_id or request.member_id or request.new_member_id
    return _applied(
        room,
        group,
        outcome,
        before=before,
        narration=[timed.narration],
        clients={joined: client},
        kinds={joined: Member.Kind.CLIENT},
    )


MAX_GROUPS_PER_ROOM = 20


def _group_new(room: Room, group_id: str) -> ConsumerGroup:
    """A group a real client names for the first time, with its heartbeat: a consumer group
    with no topics of its own (its members' subscriptions decide)."""
    group_id = group_id.strip()
    if not group_id or len(group_id) > 249:
        raise Invalid("A group.id has 1 to 249 characters.", field="group_id")
    if ConsumerGroup.objects.filter(room=room).count() >= MAX_GROUPS_PER_ROOM:
        raise Invalid(f"A room holds at most {MAX_GROUPS_PER_ROOM} consumer groups.")
    defaults = kip848.Config()
    group = ConsumerGroup.objects.create(
        room=room,
        group_id=group_id,
        auto_offset_reset=ConsumerGroup.OffsetReset.LATEST,
        group_protocol=CONSUMER,
        heartbeat_interval_ms=defaults.heartbeat_interval_ms,
        session_timeout_ms=defaults.session_timeout_ms,
    )
    event_record(
        room=room,
        type=events.GROUP_CREATED,
        payload={
            "group": group.group_id,
            "topics": [],
            "assignor": "",
            "protocol": CONSUMER,
            "delivery": group.delivery,
        },
    )
    return group


def _classic_group(
    room: Room, group: ConsumerGroup, request: kip848.Heartbeat, client: ClientInfo
) -> kip848.Answer | None:
    """A ConsumerGroupHeartbeat naming a classic group. An empty one is replaced by a
    consumer group (GMM.maybeDeleteEmptyClassicGroup; its committed offsets stay); one with
    members is not a consumer group (Kafka would convert it if every member speaks the
    consumer embedded protocol, group.consumer.migration.policy: LogLab does not)."""
    if request.member_epoch == kip848.JOIN_EPOCH and not group.members.exists() and not group.live:
        group.group_protocol = CONSUMER
        group.consumer = {}
        group.heartbeat_interval_ms = kip848.Config().heartbeat_interval_ms
        group.session_timeout_ms = kip848.Config().session_timeout_ms
        group.save(
            update_fields=[
                "group_protocol",
                "consumer",
                "heartbeat_interval_ms",
                "session_timeout_ms",
            ]
        )
        reconciled_record(
            room=room,
            group=group,
            narration=(
                f"{client.display_name or client.client_id} joins '{group.group_id}' with "
                "group.protocol=consumer: the empty classic group becomes a consumer group "
                "(KIP-848); its committed offsets stay"
            ),
            group_epoch=0,
            assignment_epoch=0,
        )
        return None
    message = f"Group {group.group_id} is not a consumer group"
    _refusal_tell(
        room,
        group,
        f"{client.display_name or client.client_id} sent ConsumerGroupHeartbeat "
        f"(group.protocol=consumer) for '{group.group_id}', a classic group with members: "
        "refused with GROUP_ID_NOT_FOUND. Kafka can convert such a group "
        "(group.consumer.migration.policy); LogLab keeps the two protocols apart.",
    )
    return kip848.Answer(error=GROUP_ID_NOT_FOUND, error_message=message)


def _refusal_tell(room: Room, group: ConsumerGroup, text: str) -> None:
    reconciled_record(room=room, group=group, narration=text, refused=True)


def consumer_offsets_check(
    group: ConsumerGroup, *, member_id: str, member_epoch: int, api_version: int
) -> str | None:
    return kip848.offset_commit_check(
        group.kip848_state(),
        member_id=member_id,
        member_epoch=member_epoch,
        api_version=api_version,
    )


def consumer_fetch_check(
    group: ConsumerGroup, *, member_id: str | None, member_epoch: int
) -> str | None:
    return kip848.offset_fetch_check(
        group.kip848_state(), member_id=member_id, member_epoch=member_epoch
    )
