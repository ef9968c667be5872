"""Consumer groups with a real Kafka client in them: Kafka's join and sync phases in real time.

While a group has a member on the wire (kafka-python, librdkafka, aiokafka, kcat, Java), its
coordinator is engine/joining.py: a rebalance lasts until every member has rejoined or the
rebalance timeout passes, a new group's first join waits group.initial.rebalance.delay.ms, and
SyncGroup hands out the leader's assignment. The simulated consumers, students and REST Proxy
instances in the same group are members living in the server: they rejoin the moment a
rebalance starts and, when one of them leads, LogLab's assignors assign at once.

The state is `ConsumerGroup.live` (the engine's LiveGroup as JSON); the Member and Assignment
rows mirror it after every change, so the board, the student pages and the simulation read a
live group as they read any other. When the last real client is gone and the group is at
rest, `live` is cleared and the group goes back to the board's one-step coordinator, which
reads the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction

from messaging import events
from messaging.engine import consumer_group as kip848
from messaging.engine import consumer_protocol, joining
from messaging.engine.group import GroupState
from messaging.errors import Invalid
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
    members_mirror,
    offset_store,
    reconciled_record,
)

# The broker's group configs; group.initial.rebalance.delay.ms can be set (Kafka's own test
# clusters set it to 0, and so do LogLab's real-client tests).
TIMING = joining.Timing(initial_rebalance_delay_ms=settings.LOGLAB_KAFKA_INITIAL_REBALANCE_DELAY_MS)
PROTOCOL_TYPE = "consumer"
# Java's max.poll.interval.ms default: what a simulated member would send as its rebalance
# timeout (librdkafka and kafka-python send the same).
SERVER_REBALANCE_TIMEOUT_MS = 300_000
EAGER_ASSIGNORS = ("range", "roundrobin", "sticky")
MAX_GROUPS_PER_ROOM = 20
# offset.metadata.max.bytes, Kafka's default.
OFFSET_METADATA_MAX_BYTES = 4096


@dataclass(frozen=True)
class ClientInfo:
    """What the board shows of a real client's member (not part of Kafka's group state)."""

    client_id: str
    software: str = ""
    display_name: str = ""


# --- loading and storing ------------------------------------------------------------------------


def _server_protocols(group: ConsumerGroup, subscription: bytes) -> tuple[tuple[str, bytes], ...]:
    """A member living in the server speaks the group's assignor first, then the others of the
    same rebalance protocol: LogLab implements them all."""
    if group.protocol == ConsumerGroup.Protocol.COOPERATIVE:
        names: tuple[str, ...] = ("cooperative-sticky",)
    else:
        names = (group.assignor, *(n for n in EAGER_ASSIGNORS if n != group.assignor))
    return tuple((name, subscription) for name in names)


def _owned(group: ConsumerGroup) -> dict[int, list[tuple[str, int]]]:
    owned: dict[int, list[tuple[str, int]]] = {}
    for member_pk, topic, index in Assignment.objects.filter(group=group).values_list(
        "member_id", "partition__topic__name", "partition__index"
    ):
        owned.setdefault(member_pk, []).append((topic, index))
    return owned


def live_load(group: ConsumerGroup) -> joining.LiveGroup:
    """The group as the real-time coordinator sees it: its stored state, or (for a group that
    had no real client so far) its rows, every member one living in the server."""
    if group.live:
        return joining.LiveGroup.from_dict(group.live)
    owned = _owned(group)
    members = []
    for row in group.members.order_by("join_order"):
        partitions = sorted(owned.get(row.pk, []))
        grouped: dict[str, list[int]] = {}
        for topic, index in partitions:
            grouped.setdefault(topic, []).append(index)
        subscription = consumer_protocol.encode_subscription(
            consumer_protocol.Subscription(
                topics=tuple(row.subscription),
                owned_partitions=tuple((t, tuple(ps)) for t, ps in grouped.items()),
                generation_id=row.generation,
            ),
            version=2,
        )
        members.append(
            joining.LiveMember(
                member_id=row.member_id,
                client_id=row.client_id,
                group_instance_id=row.group_instance_id,
                protocol_type=PROTOCOL_TYPE,
                protocols=_server_protocols(group, subscription),
                session_timeout_ms=group.session_timeout_ms,
                rebalance_timeout_ms=SERVER_REBALANCE_TIMEOUT_MS,
                last_heartbeat_ms=row.last_heartbeat_ms,
                server_side=True,
                joined_generation=row.generation,
                synced=True,
                assignment=consumer_protocol.assignment_of(partitions),
                expires_at_ms=row.last_heartbeat_ms + group.session_timeout_ms,
            )
        )
    return joining.LiveGroup(
        group_id=group.group_id,
        state=GroupState(group.state) if members else GroupState.EMPTY,
        generation=group.generation,
        protocol_type=PROTOCOL_TYPE if members else None,
        protocol_name=group.assignor if members else None,
        leader_id=group.leader_member_id or None,
        members=tuple(members),
    )


def _subscribed_topics(member: joining.LiveMember) -> tuple[str, ...]:
    for _, metadata in member.protocols[:1]:
        try:
            return consumer_protocol.decode_subscription(metadata).topics
        except consumer_protocol.ProtocolBytesError:
            return ()
    return ()


def _room_topics(room: Room, names: Iterable[str]) -> dict[str, Topic]:
    return {t.name: t for t in Topic.objects.filter(room=room, name__in=set(names))}


def topic_counts(room: Room, group: ConsumerGroup, live: joining.LiveGroup) -> dict[str, int]:
    names = {name for m in live.members for name in _subscribed_topics(m)}
    names |= set(group.topics.values_list("name", flat=True))
    return {t.name: t.partition_count for t in _room_topics(room, names).values()}


def _assign(room: Room, group: ConsumerGroup, live: joining.LiveGroup) -> joining.ServerAssign:
    return joining.assign_with_loglab(topic_counts(room, group, live))


def live_store(
    room: Room,
    group: ConsumerGroup,
    outcome: joining.Outcome,
    *,
    clients: dict[str, ClientInfo] | None = None,
) -> joining.LiveGroup:
    """Write the coordinator's state and mirror it in the rows the board reads; a change the
    board should draw becomes a `group.changed` event."""
    live = outcome.group
    clients = clients or {}
    before = (group.state, group.generation, group.leader_member_id)
    has_client = any(not m.server_side for m in live.members) or bool(live.pending)
    at_rest = live.state in (GroupState.STABLE, GroupState.EMPTY)
    group.live = live.to_dict() if has_client or not at_rest else {}
    group.state = str(live.state)
    group.generation = live.generation
    group.leader_member_id = live.leader_id or ""
    fields = ["live", "state", "generation", "leader_member_id"]
    if live.protocol_name in ConsumerGroup.Assignor.values and group.assignor != live.protocol_name:
        group.assignor = live.protocol_name
        group.protocol = (
            ConsumerGroup.Protocol.COOPERATIVE
            if live.protocol_name == "cooperative-sticky"
            else ConsumerGroup.Protocol.EAGER
        )
        fields += ["assignor", "protocol"]
    group.save(update_fields=fields)

    subscribed = _room_topics(room, {n for m in live.members for n in _subscribed_topics(m)})
    read = set(group.topics.values_list("pk", flat=True))
    missing = [t for t in subscribed.values() if t.pk not in read]
    if missing:
        group.topics.add(*missing)

    mirrored = []
    for order, member in enumerate(live.members):
        info = clients.get(member.member_id) or ClientInfo(member.client_id)
        mirrored.append(
            MemberRow(
                member.member_id,
                values={
                    "generation": member.joined_generation,
                    "last_heartbeat_ms": member.last_heartbeat_ms,
                    "join_order": order,
                    "subscription": list(_subscribed_topics(member)),
                },
                new={
                    "client_id": member.client_id[:64],
                    "group_instance_id": member.group_instance_id,
                    "kind": Member.Kind.SIMULATED if member.server_side else Member.Kind.CLIENT,
                    "display_name": (info.display_name or info.client_id or member.member_id)[:40],
                    "software": info.software[:80],
                },
            )
        )
    rows = members_mirror(group=group, members=mirrored)

    if live.state is GroupState.STABLE or live.state is GroupState.EMPTY:
        _assignments_mirror(room, group, live, rows)
    if outcome.narration or before != (group.state, group.generation, group.leader_member_id):
        event_record(
            room=room,
            type=events.GROUP_CHANGED,
            payload={
                "group": group.group_id,
                "state": group.state,
                "generation": group.generation,
                "narration": outcome.narration,
                "removed": [],
                "plan": None,
                "at_ms": room.sim_time_ms,
            },
        )
    return live


def _assignments_mirror(
    room: Room, group: ConsumerGroup, live: joining.LiveGroup, rows: dict[str, Member]
) -> None:
    partitions = {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(topic__room=room).select_related("topic")
    }
    wanted: dict[int, Member] = {}
    for member in live.members:
        for tp in joining.member_partitions(member):
            partition = partitions.get(tuple(tp))
            if partition is not None and partition.pk not in wanted:
                wanted[partition.pk] = rows[member.member_id]
    assignments_write(group=group, wanted=wanted, generation=live.generation)


def _locked(room: Room, group_id: str) -> tuple[Room, ConsumerGroup | None]:
    room = room_lock(room=room)
    return room, ConsumerGroup.objects.filter(room=room, group_id=group_id).first()


def _classic_locked(room: Room, group_id: str) -> tuple[Room, ConsumerGroup | None]:
    """The group for a classic request of a member: a group.protocol=consumer group has no
    classic members here, so to such a request it is as good as absent (UNKNOWN_MEMBER_ID)."""
    room, group = _locked(room, group_id)
    if group is not None and group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        return room, None
    return room, group


def _classic_join_refused(room: Room, group: ConsumerGroup, client: ClientInfo) -> joining.Outcome:
    """A JoinGroup for a group.protocol=consumer group. Kafka 4 would run the client as a
    classic member inside the consumer group; LogLab keeps the protocols apart and refuses
    with INCONSISTENT_GROUP_PROTOCOL, and the board says why."""
    who = client.display_name or client.client_id or "A Kafka client"
    reconciled_record(
        room=room,
        group=group,
        narration=(
            f"{who} tried to join '{group.group_id}' with the classic protocol (JoinGroup), "
            "but the group uses group.protocol=consumer (KIP-848): refused with "
            "INCONSISTENT_GROUP_PROTOCOL. The client must set group.protocol=consumer "
            "(librdkafka 2.12+, the Java client 3.7+); kafka-python and aiokafka cannot."
        ),
        refused=True,
    )
    return joining.Outcome(
        group=joining.LiveGroup(group.group_id), error="INCONSISTENT_GROUP_PROTOCOL"
    )


def _group_new(room: Room, group_id: str) -> ConsumerGroup:
    """A group a real client names for the first time: Kafka creates it on the first JoinGroup
    (or offset commit), with no topics of its own; its members' subscriptions decide."""
    group_id = group_id.strip()
    if not group_id or len(group_id) > 249:
        raise Invalid("A group.id has 1 to 249 characters.", field="group_id")
    if ConsumerGroup.objects.filter(room=room).count() >= MAX_GROUPS_PER_ROOM:
        raise Invalid(f"A room holds at most {MAX_GROUPS_PER_ROOM} consumer groups.")
    group = ConsumerGroup.objects.create(
        room=room, group_id=group_id, auto_offset_reset=ConsumerGroup.OffsetReset.LATEST
    )
    event_record(
        room=room,
        type=events.GROUP_CREATED,
        payload={
            "group": group.group_id,
            "topics": [],
            "assignor": group.assignor,
            "protocol": group.protocol,
            "delivery": group.delivery,
        },
    )
    return group


def _ticked(room: Room, group: ConsumerGroup, alive: Iterable[str] = ()) -> joining.Outcome:
    """The coordinator's timers up to now, with the server-side members' heartbeats kept."""
    live = live_load(group)
    server_alive = [m.member_id for m in live.members if m.server_side and m.member_id in alive]
    if server_alive:
        live = joining.heartbeats_kept(live, server_alive, room.sim_time_ms)
    return joining.tick(
        live, now_ms=room.sim_time_ms, timing=TIMING, assign=_assign(room, group, live)
    )


def _server_alive(group: ConsumerGroup) -> list[str]:
    return list(group.members.filter(Member.heartbeating()).values_list("member_id", flat=True))


# --- the wire's group APIs ----------------------------------------------------------------------


@transaction.atomic
def client_group_join(
    *,
    room: Room,
    group_id: str,
    request: joining.JoinRequest,
    client: ClientInfo,
) -> joining.Outcome:
    room, group = _locked(room, group_id)
    if group is None:
        group = _group_new(room, group_id)
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        return _classic_join_refused(room, group, client)
    ticked = _ticked(room, group, _server_alive(group))
    live = ticked.group
    outcome = joining.join(
        live, request, room.sim_time_ms, timing=TIMING, assign=_assign(room, group, live)
    )
    narration = "; ".join(n for n in (ticked.narration, outcome.narration) if n)
    live_store(
        room,
        group,
        replace(outcome, narration=narration),
        clients={request.new_member_id: client, request.member_id: client},
    )
    return outcome


@transaction.atomic
def client_join_poll(*, room: Room, group_id: str, member_id: str) -> joining.JoinAnswer | None:
    """A parked JoinGroup looks again: its answer once the join phase has ended."""
    room, group = _classic_locked(room, group_id)
    if group is None:
        return joining.JoinAnswer(-1, None, None, "", member_id, (), "UNKNOWN_MEMBER_ID")
    ticked = _ticked(room, group, _server_alive(group))
    live, answer = joining.join_answer_take(ticked.group, member_id)
    live_store(room, group, replace(ticked, group=live))
    return answer


@transaction.atomic
def client_group_sync(
    *,
    room: Room,
    group_id: str,
    member_id: str,
    generation: int,
    group_instance_id: str | None,
    protocol_type: str | None,
    protocol_name: str | None,
    assignments: dict[str, bytes],
) -> joining.Outcome:
    room, group = _classic_locked(room, group_id)
    if group is None:
        return joining.Outcome(group=joining.LiveGroup(group_id), error="UNKNOWN_MEMBER_ID")
    ticked = _ticked(room, group, _server_alive(group))
    outcome = joining.sync(
        ticked.group,
        member_id=member_id,
        generation=generation,
        group_instance_id=group_instance_id,
        protocol_type=protocol_type,
        protocol_name=protocol_name,
        assignments=assignments,
        now_ms=room.sim_time_ms,
    )
    narration = "; ".join(n for n in (ticked.narration, outcome.narration) if n)
    live_store(room, group, replace(outcome, narration=narration))
    return outcome


@transaction.atomic
def client_sync_poll(
    *, room: Room, group_id: str, member_id: str, generation: int
) -> joining.Outcome:
    room, group = _classic_locked(room, group_id)
    if group is None:
        return joining.Outcome(group=joining.LiveGroup(group_id), error="UNKNOWN_MEMBER_ID")
    ticked = _ticked(room, group, _server_alive(group))
    outcome = joining.sync_poll(ticked.group, member_id=member_id, generation=generation)
    live_store(room, group, replace(outcome, narration=ticked.narration))
    return outcome


@transaction.atomic
def client_heartbeat(
    *, room: Room, group_id: str, member_id: str, generation: int, group_instance_id: str | None
) -> str | None:
    room, group = _classic_locked(room, group_id)
    if group is None:
        return "UNKNOWN_MEMBER_ID"
    ticked = _ticked(room, group, _server_alive(group))
    outcome = joining.heartbeat(
        ticked.group,
        member_id=member_id,
        generation=generation,
        group_instance_id=group_instance_id,
        now_ms=room.sim_time_ms,
    )
    live_store(room, group, replace(outcome, narration=ticked.narration or outcome.narration))
    return outcome.error


@transaction.atomic
def client_group_leave(
    *, room: Room, group_id: str, members: list[tuple[str, str | None]]
) -> tuple[str | None, dict[tuple[str, str | None], str | None]]:
    room, group = _classic_locked(room, group_id)
    if group is None:
        return "UNKNOWN_MEMBER_ID", dict.fromkeys(members, "UNKNOWN_MEMBER_ID")
    ticked = _ticked(room, group, _server_alive(group))
    outcome, results = joining.leave(
        ticked.group,
        members=members,
        now_ms=room.sim_time_ms,
        assign=_assign(room, group, ticked.group),
        timing=TIMING,
    )
    narration = "; ".join(n for n in (ticked.narration, outcome.narration) if n)
    live_store(room, group, replace(outcome, narration=narration))
    return outcome.error, results


# --- the board's side: server-side members of a live group ------------------------------------


def live_tick(*, room: Room, group: ConsumerGroup, alive: Iterable[str]) -> None:
    """The room's step for a live group: timers (sessions, join and sync deadlines)."""
    outcome = _ticked(room, group, alive)
    live_store(room, group, outcome)


def live_member_join(
    *,
    room: Room,
    group: ConsumerGroup,
    client_id: str,
    member_id: str,
    display_name: str,
    kind: str,
) -> joining.Outcome:
    """A simulated consumer, a student or a REST instance joins a group with a real client in
    it: a member living in the server, rejoining at once at every rebalance."""
    live = live_load(group)
    topics = tuple(sorted(group.topics.values_list("name", flat=True)))
    subscription = consumer_protocol.encode_subscription(
        consumer_protocol.Subscription(topics=topics), version=1
    )
    outcome = joining.join(
        live,
        joining.JoinRequest(
            member_id="",
            new_member_id=member_id,
            group_instance_id=None,
            client_id=client_id,
            protocol_type=PROTOCOL_TYPE,
            protocols=_server_protocols(group, subscription),
            session_timeout_ms=group.session_timeout_ms,
            rebalance_timeout_ms=SERVER_REBALANCE_TIMEOUT_MS,
            requires_known_member_id=False,
            server_side=True,
        ),
        room.sim_time_ms,
        timing=TIMING,
        assign=_assign(room, group, live),
    )
    live_store(room, group, outcome)
    Member.objects.filter(group=group, member_id=member_id).update(
        kind=kind, display_name=display_name[:40]
    )
    return outcome


def live_member_leave(*, room: Room, group: ConsumerGroup, member: Member) -> joining.Outcome:
    live = live_load(group)
    outcome, _ = joining.leave(
        live,
        members=[(member.member_id, member.group_instance_id)],
        now_ms=room.sim_time_ms,
        assign=_assign(room, group, live),
        timing=TIMING,
    )
    live_store(room, group, outcome)
    return outcome


def live_rebalance(*, room: Room, group: ConsumerGroup, reason: str) -> None:
    live = live_load(group)
    outcome = joining.rebalance(
        live,
        now_ms=room.sim_time_ms,
        reason=reason,
        assign=_assign(room, group, live),
        timing=TIMING,
    )
    live_store(room, group, outcome)


# --- offsets from real clients ------------------------------------------------------------------


@transaction.atomic
def client_offsets_commit(
    *,
    room: Room,
    group_id: str,
    generation: int,
    member_id: str,
    group_instance_id: str | None,
    offsets: list[tuple[str, int, int, str]],
    api_version: int = 0,
) -> tuple[str | None, dict[tuple[str, int], str | None]]:
    """OffsetCommit from a real client, checked as the classic group checks it
    (joining.offset_commit_check), or a consumer-protocol group its member epoch
    (consumer_group.offset_commit_check); a group named for the first time is created to hold
    the offsets, as Kafka does for a standalone consumer's commits."""
    room, group = _locked(room, group_id)
    if group is None:
        if generation >= 0 or member_id:
            return "UNKNOWN_MEMBER_ID", {}
        group = _group_new(room, group_id)
    if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
        error = kip848.offset_commit_check(
            group.kip848_state(),
            member_id=member_id,
            member_epoch=generation,
            api_version=api_version,
        )
    else:
        error = joining.offset_commit_check(
            live_load(group),
            generation=generation,
            member_id=member_id,
            group_instance_id=group_instance_id,
        )
    if error:
        return error, {}
    partitions = {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(
            topic__room=room, topic__name__in={o[0] for o in offsets}
        ).select_related("topic")
    }
    results: dict[tuple[str, int], str | None] = {}
    topics_read = set(group.topics.values_list("pk", flat=True))
    for topic, index, offset, metadata in offsets:
        partition = partitions.get((topic, index))
        if partition is None:
            results[(topic, index)] = "UNKNOWN_TOPIC_OR_PARTITION"
            continue
        if len(metadata) > OFFSET_METADATA_MAX_BYTES:
            results[(topic, index)] = "OFFSET_METADATA_TOO_LARGE"
            continue
        if offset < 0:
            # Kafka stores what it is given; LogLab's offsets are never negative.
            results[(topic, index)] = "INVALID_COMMIT_OFFSET_SIZE"
            continue
        if partition.topic_id not in topics_read:
            group.topics.add(partition.topic)
            topics_read.add(partition.topic_id)
        offset_store(room=room, group=group, partition=partition, offset=offset, metadata=metadata)
        results[(topic, index)] = None
    return None, results


def client_offsets_fetch_check(
    *, room: Room, group_id: str, member_id: str | None, member_epoch: int
) -> str | None:
    """OffsetFetch v9's member id and epoch: a consumer-protocol group checks them
    (ConsumerGroup.validateOffsetFetch); a classic group reads them as nothing."""
    group = ConsumerGroup.objects.filter(room=room, group_id=group_id).first()
    if group is None or group.group_protocol != ConsumerGroup.GroupProtocol.CONSUMER:
        return None
    return kip848.offset_fetch_check(
        group.kip848_state(), member_id=member_id, member_epoch=member_epoch
    )
