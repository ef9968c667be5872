"""Kafka's "consumer" group protocol (KIP-848, ``group.protocol=consumer``): the coordinator.

No join barrier, no generation, nobody stops. Each member heartbeats on its own
(ConsumerGroupHeartbeat); the coordinator keeps a *group epoch* (bumped when a member joins,
leaves or changes its subscription, or the subscribed topics change), computes a *target
assignment* with a server-side assignor (``server_assignors``) for that epoch, and walks each
member towards its target one heartbeat at a time: it first asks the member to revoke what
moves away (the member stays at its epoch), and only once the member's heartbeat no longer
lists those partitions are they handed to their new owner, who gets them at its next
heartbeat. A partition therefore never has two owners at once.

Every rule follows apache/kafka's ``group-coordinator`` module (``GMM`` below =
``GroupMetadataManager.java``): the heartbeat is ``GMM.consumerGroupHeartbeat``, the
reconciliation ``modern/consumer/CurrentAssignmentBuilder.java``, the target
``modern/TargetAssignmentBuilder.java``, the group's state ``ConsumerGroup.maybeUpdateGroupState``.
Kafka's timers (session timeout, the revocation's rebalance timeout) are deadlines here, fired by
:func:`tick` in time order.

Where LogLab departs on purpose: the coordinator cannot make a random member id, so the
caller passes one (``Heartbeat.new_member_id``; librdkafka sends its own, KIP-1082);
subscriptions by regular expression (``SubscribedTopicRegex``) are refused; a classic
group with members is not converted (``group.consumer.migration.policy``); Kafka's hash-map
orders are reproduced where they choose partitions (see ``member_order``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from messaging.engine import server_assignors
from messaging.engine.server_assignors import AssignorError, MemberSpec, TopicMeta

# ConsumerGroupHeartbeatRequest.MemberEpoch's special values.
JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2
# ConsumerGroupMember.Builder's previousMemberEpoch default.
NO_EPOCH = -1

# Error names (Kafka's Errors enum).
UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
FENCED_MEMBER_EPOCH = "FENCED_MEMBER_EPOCH"
UNRELEASED_INSTANCE_ID = "UNRELEASED_INSTANCE_ID"
FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
UNSUPPORTED_ASSIGNOR = "UNSUPPORTED_ASSIGNOR"
INVALID_REQUEST = "INVALID_REQUEST"
GROUP_MAX_SIZE_REACHED = "GROUP_MAX_SIZE_REACHED"
UNKNOWN_SERVER_ERROR = "UNKNOWN_SERVER_ERROR"
STALE_MEMBER_EPOCH = "STALE_MEMBER_EPOCH"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
ILLEGAL_GENERATION = "ILLEGAL_GENERATION"

# A member's assignment: ((topic, (partition, ...)), ...), topics and partitions sorted.
Partitions = tuple[tuple[str, tuple[int, ...]], ...]
EMPTY: Partitions = ()


class GroupState(StrEnum):
    """ConsumerGroup.ConsumerGroupState."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(StrEnum):
    """modern/MemberState.java."""

    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Config:
    """The broker's group.consumer.* configs (GroupCoordinatorConfig), or a group's overrides
    (consumer.session.timeout.ms, consumer.heartbeat.interval.ms)."""

    heartbeat_interval_ms: int = 5_000
    session_timeout_ms: int = 45_000
    assignors: tuple[str, ...] = server_assignors.ASSIGNORS
    # group.consumer.max.size is Integer.MAX_VALUE in Kafka; LogLab bounds what a room holds.
    max_size: int = 1000


# group.consumer.{min,max}.heartbeat.interval.ms and {min,max}.session.timeout.ms.
HEARTBEAT_INTERVAL_RANGE_MS = (5_000, 15_000)
SESSION_TIMEOUT_RANGE_MS = (45_000, 60_000)


def config_check(heartbeat_interval_ms: int, session_timeout_ms: int) -> None:
    """GroupConfig's validation of consumer.heartbeat.interval.ms and
    consumer.session.timeout.ms: each within the broker's bounds, the session longer."""
    low, high = HEARTBEAT_INTERVAL_RANGE_MS
    if not low <= heartbeat_interval_ms <= high:
        raise ValueError(f"consumer.heartbeat.interval.ms must be between {low} and {high}.")
    low, high = SESSION_TIMEOUT_RANGE_MS
    if not low <= session_timeout_ms <= high:
        raise ValueError(f"consumer.session.timeout.ms must be between {low} and {high}.")
    if session_timeout_ms <= heartbeat_interval_ms:
        raise ValueError("consumer.session.timeout.ms must be greater than the heartbeat interval.")


# --- topic ids ----------------------------------------------------------------------------------

_TOPIC_IDS = uuid.UUID("1b6f7c1e-4b1a-4c6f-9a3e-6c6f676c6162")


def topic_id(key: str) -> uuid.UUID:
    """The id of the topic LogLab knows as ``key`` (its row: a recreated topic is a new row).

    Kafka draws a random one when a topic is created (``Uuid.randomUuid``), never the reserved
    ZERO or ONE and never one whose base64 starts with "-" (command lines would read it as an
    option); LogLab derives one from the row so every process agrees without storing it."""
    n = 0
    while True:
        candidate = uuid.uuid5(_TOPIC_IDS, f"{key}#{n}")
        if candidate.int > 1 and not base64.urlsafe_b64encode(candidate.bytes).startswith(b"-"):
            return candidate
        n += 1


# --- partitions as values ------------------------------------------------------------------


def partitions_of(mapping: Mapping[str, Iterable[int]]) -> Partitions:
    return tuple(
        (topic, tuple(sorted(set(parts)))) for topic, parts in sorted(mapping.items()) if parts
    )


def as_map(partitions: Partitions | None) -> dict[str, set[int]]:
    return {topic: set(parts) for topic, parts in partitions or ()}


def flat(partitions: Partitions | None) -> list[tuple[str, int]]:
    return [(topic, p) for topic, parts in partitions or () for p in parts]


def _minus(a: Partitions, b: Partitions) -> Partitions:
    gone = set(flat(b))
    kept: dict[str, list[int]] = {}
    for topic, p in flat(a):
        if (topic, p) not in gone:
            kept.setdefault(topic, []).append(p)
    return partitions_of(kept)


def _union(a: Partitions, b: Partitions) -> Partitions:
    merged = as_map(a)
    for topic, parts in b:
        merged.setdefault(topic, set()).update(parts)
    return partitions_of(merged)


# --- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """ConsumerGroupMember, plus the deadlines of its timers and what LogLab draws."""

    member_id: str
    client_id: str = ""
    client_host: str = ""
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed: tuple[str, ...] = ()
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = NO_EPOCH
    state: MemberState = MemberState.STABLE
    assigned: Partitions = EMPTY
    pending_revocation: Partitions = EMPTY
    # The coordinator's timers (GMM.scheduleConsumerGroupSessionTimeout / RebalanceTimeout).
    session_deadline_ms: int = 0
    rebalance_deadline_ms: int | None = None
    last_heartbeat_ms: int = 0
    # A member living in the server (a simulated consumer, a student's, a REST instance): the
    # room heartbeats for it. `ack_due`: its last answer changed its assignment, so its client
    # heartbeats again at once (the Java client's ACKNOWLEDGING state) instead of waiting for
    # the interval.
    server_side: bool = False
    ack_due: bool = False

    def reconciled_to(self, epoch: int) -> bool:
        """ModernGroupMember.isReconciledTo."""
        return self.state is MemberState.STABLE and self.member_epoch == epoch

    def owned(self) -> Partitions:
        """What the coordinator counts as the member's: assigned and not yet revoked."""
        return _union(self.assigned, self.pending_revocation)


@dataclass(frozen=True)
class Group:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: tuple[Member, ...] = ()
    # The target assignment of the assignment epoch, per member id.
    target: tuple[tuple[str, Partitions], ...] = ()
    # ConsumerGroup.subscriptionMetadata: the subscribed topics that exist, with their ids and
    # sizes; a change of it bumps the group epoch.
    subscription_metadata: tuple[tuple[str, str, int], ...] = ()

    def member(self, member_id: str) -> Member | None:
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None

    def static_member(self, instance_id: str | None) -> Member | None:
        if instance_id is None:
            return None
        for m in self.members:
            if m.instance_id == instance_id:
                return m
        return None

    def target_of(self, member_id: str) -> Partitions:
        for mid, parts in self.target:
            if mid == member_id:
                return parts
        return EMPTY

    def state(self) -> GroupState:
        """ConsumerGroup.maybeUpdateGroupState."""
        if not self.members:
            return GroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return GroupState.ASSIGNING
        if any(not m.reconciled_to(self.assignment_epoch) for m in self.members):
            return GroupState.RECONCILING
        return GroupState.STABLE

    def partition_epochs(self) -> dict[tuple[str, int], int]:
        """ConsumerGroup.currentPartitionEpoch: each owned partition and its owner's epoch.
        Kafka refuses to give a partition an epoch while another member holds it; so does this
        (an engine bug would otherwise show as two owners)."""
        epochs: dict[tuple[str, int], int] = {}
        owners: dict[tuple[str, int], str] = {}
        for m in self.members:
            for tp in flat(m.assigned) + flat(m.pending_revocation):
                if tp in owners:
                    raise AssertionError(
                        f"{tp[0]}-{tp[1]} is owned by {owners[tp]} and {m.member_id} at once"
                    )
                owners[tp] = m.member_id
                epochs[tp] = m.member_epoch
        return epochs

    def preferred_assignor(self) -> str | None:
        """ConsumerGroup.preferredServerAssignor: the assignor most members name."""
        return _most_named(m.server_assignor for m in self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "group_epoch": self.group_epoch,
            "assignment_epoch": self.assignment_epoch,
            "members": [_member_dict(m) for m in self.members],
            "target": [[mid, _parts_json(parts)] for mid, parts in self.target],
            "subscription_metadata": [list(t) for t in self.subscription_metadata],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Group:
        return Group(
            group_id=data["group_id"],
            group_epoch=int(data.get("group_epoch", 0)),
            assignment_epoch=int(data.get("assignment_epoch", 0)),
            members=tuple(_member_from(m) for m in data.get("members", ())),
            target=tuple((str(mid), _parts_from(parts)) for mid, parts in data.get("target", ())),
            subscription_metadata=tuple(
                (str(n), str(i), int(c)) for n, i, c in data.get("subscription_metadata", ())
            ),
        )


def _parts_json(parts: Partitions) -> list[list[Any]]:
    return [[topic, list(ps)] for topic, ps in parts]


def _parts_from(data: Any) -> Partitions:
    return tuple((str(topic), tuple(int(p) for p in ps)) for topic, ps in data or ())


def _member_dict(m: Member) -> dict[str, Any]:
    return {
        "member_id": m.member_id,
        "client_id": m.client_id,
        "client_host": m.client_host,
        "instance_id": m.instance_id,
        "rack_id": m.rack_id,
        "rebalance_timeout_ms": m.rebalance_timeout_ms,
        "subscribed": list(m.subscribed),
        "server_assignor": m.server_assignor,
        "member_epoch": m.member_epoch,
        "previous_member_epoch": m.previous_member_epoch,
        "state": m.state.value,
        "assigned": _parts_json(m.assigned),
        "pending_revocation": _parts_json(m.pending_revocation),
        "session_deadline_ms": m.session_deadline_ms,
        "rebalance_deadline_ms": m.rebalance_deadline_ms,
        "last_heartbeat_ms": m.last_heartbeat_ms,
        "server_side": m.server_side,
        "ack_due": m.ack_due,
    }


def _member_from(d: Mapping[str, Any]) -> Member:
    return Member(
        member_id=d["member_id"],
        client_id=d.get("client_id", ""),
        client_host=d.get("client_host", ""),
        instance_id=d.get("instance_id"),
        rack_id=d.get("rack_id"),
        rebalance_timeout_ms=int(d.get("rebalance_timeout_ms", -1)),
        subscribed=tuple(d.get("subscribed", ())),
        server_assignor=d.get("server_assignor"),
        member_epoch=int(d.get("member_epoch", 0)),
        previous_member_epoch=int(d.get("previous_member_epoch", NO_EPOCH)),
        state=MemberState(d.get("state", MemberState.STABLE.value)),
        assigned=_parts_from(d.get("assigned")),
        pending_revocation=_parts_from(d.get("pending_revocation")),
        session_deadline_ms=int(d.get("session_deadline_ms", 0)),
        rebalance_deadline_ms=d.get("rebalance_deadline_ms"),
        last_heartbeat_ms=int(d.get("last_heartbeat_ms", 0)),
        server_side=bool(d.get("server_side", False)),
        ack_due=bool(d.get("ack_due", False)),
    )


# --- requests and answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Heartbeat:
    """A ConsumerGroupHeartbeat request. ``None`` means "unchanged since the last heartbeat"
    (Kafka's nullable fields); ``owned`` is the request's TopicPartitions."""

    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed: tuple[str, ...] | None = None
    regex: str | None = None
    server_assignor: str | None = None
    owned: Partitions | None = None
    client_id: str = ""
    client_host: str = ""
    # The id to give a member that joins with an empty MemberId (Kafka: Uuid.randomUuid()).
    new_member_id: str = ""
    server_side: bool = False


@dataclass(frozen=True)
class Answer:
    """A ConsumerGroupHeartbeat response."""

    error: str | None = None
    error_message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Partitions | None = None


@dataclass(frozen=True)
class Outcome:
    group: Group
    answer: Answer = field(default_factory=Answer)
    narration: str = ""


class _Refused(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


# --- Java's hash-map orders ------------------------------------------------------------------


def _java_string_hash(text: str) -> int:
    """``String.hashCode()`` (over UTF-16 code units) as an unsigned 32-bit value."""
    data = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h


def _java_hash_map_order(keys: Sequence[str]) -> list[str]:
    """Keys in the iteration order of a Java ``HashMap`` filled in the given order: by bucket
    of the final table (16, doubled each time the map passes three quarters full), ties kept
    in insertion order."""
    table = 16
    while len(keys) > table * 0.75:
        table *= 2

    def bucket(key: str) -> int:
        h = _java_string_hash(key)
        return (h ^ (h >> 16)) & (table - 1)

    return sorted(keys, key=bucket)


def member_order(group: Group) -> list[str]:
    """The order the assignors see members in: ``TargetAssignmentBuilder`` collects them in a
    ``HashMap`` of member ids (``memberSpecs``), which the uniform assignor iterates."""
    return _java_hash_map_order([m.member_id for m in group.members])


def _most_named(names: Iterable[str | None]) -> str | None:
    counts: dict[str, int] = {}
    for name in names:
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    best: str | None = None
    # Stream.max over a HashMap's entries keeps the first of equal counts.
    for name in _java_hash_map_order(list(counts)):
        if best is None or counts[name] > counts[best]:
            best = name
    return best


# --- the heartbeat -------------------------------------------------------------------------


def heartbeat(
    group: Group,
    request: Heartbeat,
    *,
    now_ms: int,
    topics: Mapping[str, TopicMeta],
    config: Config = Config(),
) -> Outcome:
    """GMM.consumerGroupHeartbeat (or consumerGroupLeave for epochs -1 and -2)."""
    try:
        _validate(request, config)
        if request.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return _leave(group, request, now_ms=now_ms, topics=topics)
        return _heartbeat(group, request, now_ms=now_ms, topics=topics, config=config)
    except _Refused as refused:
        return Outcome(group, Answer(error=refused.error, error_message=refused.message))


def _validate(request: Heartbeat, config: Config) -> None:
    """GMM.throwIfConsumerGroupHeartbeatRequestIsInvalid."""
    if request.instance_id == "":
        raise _Refused(INVALID_REQUEST, "InstanceId can't be empty.")
    if request.rack_id == "":
        raise _Refused(INVALID_REQUEST, "RackId can't be empty.")
    # librdkafka sends an empty regex when the subscription has none.
    if request.regex:
        raise _Refused(INVALID_REQUEST, "SubscribedTopicRegex is not supported by LogLab.")
    epoch = request.member_epoch
    if epoch > 0 or epoch == LEAVE_EPOCH:
        if not request.member_id:
            raise _Refused(INVALID_REQUEST, "MemberId can't be empty.")
    elif epoch == JOIN_EPOCH:
        if request.rebalance_timeout_ms == -1:
            raise _Refused(INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.")
        if request.owned is None or request.owned:
            raise _Refused(INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
        if not request.subscribed:
            raise _Refused(INVALID_REQUEST, "SubscribedTopicNames must be set in first request.")
    elif epoch == STATIC_LEAVE_EPOCH:
        if not request.member_id:
            raise _Refused(INVALID_REQUEST, "MemberId can't be empty.")
        if request.instance_id is None:
            raise _Refused(INVALID_REQUEST, "InstanceId can't be null.")
    else:
        raise _Refused(INVALID_REQUEST, "MemberEpoch is invalid.")
    if request.server_assignor is not None and request.server_assignor not in config.assignors:
        raise _Refused(
            UNSUPPORTED_ASSIGNOR,
            f"ServerAssignor {request.server_assignor} is not supported. Supported assignors: "
            f"{', '.join(config.assignors)}.",
        )


def _epoch_check(member: Member, received: int, owned: Partitions | None) -> None:
    """GMM.throwIfConsumerGroupMemberEpochIsInvalid: a member one epoch behind is accepted if
    it owns no more than it was assigned (the answer with its new epoch may have been lost)."""
    if received > member.member_epoch:
        raise _Refused(
            FENCED_MEMBER_EPOCH,
            f"The consumer group member has a greater member epoch ({received}) than the one "
            f"known by the group coordinator ({member.member_epoch}). The member must abandon "
            "all its partitions and rejoin.",
        )
    if received < member.member_epoch:
        subset = owned is not None and set(flat(owned)) <= set(flat(member.assigned))
        if received != member.previous_member_epoch or not subset:
            raise _Refused(
                FENCED_MEMBER_EPOCH,
                f"The consumer group member has a smaller member epoch ({received}) than the "
                f"one known by the group coordinator ({member.member_epoch}). The member must "
                "abandon all its partitions and rejoin.",
            )


def _member_for(group: Group, request: Heartbeat, member_id: str) -> tuple[Group, Member]:
    """GMM.getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember: the member the request
    speaks for; a static member rejoining under a new id takes its departed self's place."""
    joining = request.member_epoch == JOIN_EPOCH
    if request.instance_id is None:
        member = group.member(member_id)
        if member is None:
            if not joining:
                raise _Refused(
                    UNKNOWN_MEMBER_ID,
                    f"Member {member_id} is not a member of group {group.group_id}.",
                )
            member = Member(member_id=member_id)
        _epoch_check(member, request.member_epoch, request.owned)
        return group, member
    existing = group.static_member(request.instance_id)
    if joining:
        if existing is None:
            old = group.member(member_id)
            return group, old if old is not None else Member(member_id=member_id)
        if existing.member_epoch != STATIC_LEAVE_EPOCH:
            raise _Refused(
                UNRELEASED_INSTANCE_ID,
                f"Static member {member_id} with instance id {request.instance_id} cannot join "
                f"the group because the instance id is owned by {existing.member_id} member.",
            )
        # ConsumerGroupMember.Builder(existing, memberId): the same member under its new id,
        # keeping its assignment; replaceMember moves its target assignment over.
        newcomer = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0)
        members = tuple(newcomer if m is existing else m for m in group.members)
        target = tuple(
            (member_id if mid == existing.member_id else mid, parts) for mid, parts in group.target
        )
        return replace(group, members=members, target=target), newcomer
    if existing is None:
        raise _Refused(
            UNKNOWN_MEMBER_ID,
            f"Instance id {request.instance_id} is unknown in group {group.group_id}.",
        )
    if existing.member_id != member_id:
        raise _Refused(
            FENCED_INSTANCE_ID,
            f"Static member {member_id} with instance id {request.instance_id} is fenced by "
            f"existing member {existing.member_id}.",
        )
    _epoch_check(existing, request.member_epoch, request.owned)
    return group, existing


def _heartbeat(
    group: Group,
    request: Heartbeat,
    *,
    now_ms: int,
    topics: Mapping[str, TopicMeta],
    config: Config,
) -> Outcome:
    member_id = request.member_id or request.new_member_id
    if not member_id:
        raise _Refused(INVALID_REQUEST, "MemberId can't be empty.")
    # GMM.throwIfConsumerGroupIsFull.
    if len(group.members) >= config.max_size and (
        not request.member_id or group.member(request.member_id) is None
    ):
        raise _Refused(
            GROUP_MAX_SIZE_REACHED,
            f"The consumer group has reached its maximum capacity of {config.max_size} members.",
        )
    group, member = _member_for(group, request, member_id)
    is_new = group.member(member.member_id) is None

    # 1. Create or update the member; bump the group epoch if its subscription changed or the
    # subscribed topics' metadata did.
    updated = replace(
        member,
        instance_id=request.instance_id if request.instance_id is not None else member.instance_id,
        rack_id=request.rack_id if request.rack_id is not None else member.rack_id,
        rebalance_timeout_ms=(
            request.rebalance_timeout_ms
            if request.rebalance_timeout_ms != -1
            else member.rebalance_timeout_ms
        ),
        server_assignor=(
            request.server_assignor
            if request.server_assignor is not None
            else member.server_assignor
        ),
        subscribed=(
            tuple(sorted(set(request.subscribed)))
            if request.subscribed is not None
            else member.subscribed
        ),
        client_id=request.client_id or member.client_id,
        client_host=request.client_host or member.client_host,
        server_side=request.server_side or member.server_side,
    )
    narration: list[str] = []
    bump = updated.subscribed != member.subscribed or is_new
    members = (
        (*group.members, updated)
        if is_new
        else tuple(updated if m.member_id == member.member_id else m for m in group.members)
    )
    metadata = _subscription_metadata(members, topics)
    if metadata != group.subscription_metadata:
        bump = True
    group_epoch = group.group_epoch
    if bump:
        group_epoch += 1
        if is_new:
            narration.append(f"{member_id} joins: group epoch {group_epoch}")
        elif updated.subscribed != member.subscribed:
            narration.append(f"{member_id} changed its subscription: group epoch {group_epoch}")
        else:
            narration.append(f"the subscribed topics changed: group epoch {group_epoch}")
    group = replace(group, group_epoch=group_epoch, members=members, subscription_metadata=metadata)

    # 2. A new target assignment when the group epoch is ahead of it.
    if group.group_epoch > group.assignment_epoch:
        group, used = _new_target(group, topics, config)
        narration.append(
            f"new target assignment (epoch {group.assignment_epoch}, {used}): "
            + _target_text(group)
        )

    # 3. Reconcile the member towards its target.
    before = updated
    reconciled = reconcile(
        updated,
        target_epoch=group.assignment_epoch,
        target=group.target_of(updated.member_id),
        partition_epochs=group.partition_epochs(),
        owned=request.owned,
    )
    if reconciled != before:
        if reconciled.state is MemberState.UNREVOKED_PARTITIONS:
            reconciled = replace(
                reconciled, rebalance_deadline_ms=now_ms + max(0, reconciled.rebalance_timeout_ms)
            )
        else:
            reconciled = replace(reconciled, rebalance_deadline_ms=None)
        narration.extend(_reconcile_text(before, reconciled, group.target_of(updated.member_id)))
    reconciled = replace(
        reconciled,
        session_deadline_ms=now_ms + config.session_timeout_ms,
        last_heartbeat_ms=now_ms,
    )
    group = replace(
        group,
        members=tuple(
            reconciled if m.member_id == reconciled.member_id else m for m in group.members
        ),
    )
    group.partition_epochs()  # the invariant: one owner per partition

    full = request.member_epoch == JOIN_EPOCH or (
        request.rebalance_timeout_ms != -1
        and request.subscribed is not None
        and request.owned is not None
    )
    changed = reconciled.assigned != member.assigned
    answer = Answer(
        member_id=reconciled.member_id,
        member_epoch=reconciled.member_epoch,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        assignment=reconciled.assigned if full or changed else None,
    )
    if reconciled.server_side:
        group = _server_ack(group, reconciled.member_id, changed)
    return Outcome(group, answer, "; ".join(narration))


def _server_ack(group: Group, member_id: str, changed: bool) -> Group:
    return replace(
        group,
        members=tuple(
            replace(m, ack_due=changed) if m.member_id == member_id else m for m in group.members
        ),
    )


def _subscription_metadata(
    members: Iterable[Member], topics: Mapping[str, TopicMeta]
) -> tuple[tuple[str, str, int], ...]:
    names = sorted({name for m in members for name in m.subscribed if name in topics})
    return tuple((n, str(topics[n].topic_id), topics[n].partitions) for n in names)


def _new_target(group: Group, topics: Mapping[str, TopicMeta], config: Config) -> tuple[Group, str]:
    """TargetAssignmentBuilder.build with the group's preferred assignor (the one most members
    name, else the first of group.consumer.assignors)."""
    name = group.preferred_assignor() or config.assignors[0]
    counts: dict[str, int] = {}
    for m in group.members:
        for topic in m.subscribed:
            counts[topic] = counts.get(topic, 0) + 1
    homogeneous = all(c == len(group.members) for c in counts.values())
    by_id = {m.member_id: m for m in group.members}
    specs = []
    for member_id in member_order(group):
        m = by_id[member_id]
        current = as_map(group.target_of(member_id))
        specs.append(
            MemberSpec(
                member_id=member_id,
                subscribed=tuple(t for t in m.subscribed if t in topics),
                assignment={t: sorted(ps) for t, ps in _topic_id_order(current, topics)},
                instance_id=m.instance_id,
            )
        )
    known = {t: topics[t] for t in counts if t in topics}
    try:
        result = server_assignors.assign(name, specs, known, homogeneous=homogeneous)
    except AssignorError as error:
        raise _Refused(
            UNKNOWN_SERVER_ERROR,
            f"Failed to compute a new target assignment for epoch {group.group_epoch}: {error}",
        ) from None
    target = tuple((m.member_id, partitions_of(result.get(m.member_id, {}))) for m in group.members)
    return replace(group, target=target, assignment_epoch=group.group_epoch), name


def _topic_id_order(
    assignment: Mapping[str, set[int]], topics: Mapping[str, TopicMeta]
) -> list[tuple[str, set[int]]]:
    """A member's target assignment as Kafka iterates it: a hash map of topic ids."""
    names = [t for t in assignment if t in topics]
    return [(t, assignment[t]) for t in server_assignors.java_hash_set_order(names, topics)]


# --- the reconciliation (CurrentAssignmentBuilder) ---------------------------------------------


def reconcile(
    member: Member,
    *,
    target_epoch: int,
    target: Partitions,
    partition_epochs: Mapping[tuple[str, int], int],
    owned: Partitions | None,
) -> Member:
    """CurrentAssignmentBuilder.build: one step of the member towards its target."""
    if member.state is MemberState.STABLE:
        if member.member_epoch != target_epoch:
            return _next_assignment(
                member, member.member_epoch, target_epoch, target, partition_epochs, owned
            )
        return member
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(owned, member.pending_revocation):
            return member
        return _next_assignment(
            member, member.member_epoch + 1, target_epoch, target, partition_epochs, owned
        )
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        return _next_assignment(
            member, member.member_epoch, target_epoch, target, partition_epochs, owned
        )
    if owned is None or owned:
        raise _Refused(
            FENCED_MEMBER_EPOCH,
            "The consumer group member is in a unknown state. The member must abandon all its "
            "partitions and rejoin.",
        )
    return _next_assignment(member, target_epoch, target_epoch, target, partition_epochs, owned)


def _owns_any(owned: Partitions | None, revoking: Partitions) -> bool:
    """CurrentAssignmentBuilder.ownsRevokedPartitions: a null owned list counts as owning."""
    if owned is None:
        return True
    return bool(set(flat(owned)) & set(flat(revoking)))


def _next_assignment(
    member: Member,
    epoch: int,
    target_epoch: int,
    target: Partitions,
    partition_epochs: Mapping[tuple[str, int], int],
    owned: Partitions | None,
) -> Member:
    """CurrentAssignmentBuilder.computeNextAssignment: revoke first, then assign what is free."""
    current = as_map(member.assigned)
    wanted = as_map(target)
    assigned: dict[str, set[int]] = {}
    revoking: dict[str, set[int]] = {}
    pending: dict[str, set[int]] = {}
    unreleased = False
    for topic in set(current) | set(wanted):
        mine = current.get(topic, set())
        goal = wanted.get(topic, set())
        keep = mine & goal
        assigned[topic] = keep
        revoking[topic] = mine - keep
        free = set()
        for p in goal - keep:
            if partition_epochs.get((topic, p), -1) != -1:
                unreleased = True
            else:
                free.add(p)
        pending[topic] = free
    new_assigned = partitions_of(assigned)
    new_revoking = partitions_of(revoking)
    new_pending = partitions_of(pending)

    def moved(**changes: Any) -> Member:
        # ConsumerGroupMember.Builder.updateMemberEpoch: the old epoch becomes the previous one.
        return replace(member, previous_member_epoch=member.member_epoch, **changes)

    if new_revoking and _owns_any(owned, new_revoking):
        return moved(
            state=MemberState.UNREVOKED_PARTITIONS,
            member_epoch=epoch,
            assigned=new_assigned,
            pending_revocation=new_revoking,
        )
    if new_pending:
        return moved(
            state=MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE,
            member_epoch=target_epoch,
            assigned=_union(new_assigned, new_pending),
            pending_revocation=EMPTY,
        )
    return moved(
        state=MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE,
        member_epoch=target_epoch,
        assigned=new_assigned,
        pending_revocation=EMPTY,
    )


# --- leaving and fencing ---------------------------------------------------------------------


def _leave(
    group: Group, request: Heartbeat, *, now_ms: int, topics: Mapping[str, TopicMeta]
) -> Outcome:
    """GMM.consumerGroupLeave: -1 removes the member (the group epoch goes up and the others'
    targets follow); -2, a static member's "I'll be back", keeps its place and partitions."""
    answer = Answer(member_id=request.member_id, member_epoch=request.member_epoch)
    if request.instance_id is None:
        member = group.member(request.member_id)
        if member is None:
            raise _Refused(
                UNKNOWN_MEMBER_ID,
                f"Member {request.member_id} is not a member of group {group.group_id}.",
            )
        fenced = fence(group, member.member_id, topics=topics, reason="left the group")
        return Outcome(fenced.group, answer, fenced.narration)
    member = group.static_member(request.instance_id)
    if member is None:
        raise _Refused(
            UNKNOWN_MEMBER_ID,
            f"Instance id {request.instance_id} is unknown in group {group.group_id}.",
        )
    if member.member_id != request.member_id:
        raise _Refused(
            FENCED_INSTANCE_ID,
            f"Static member {request.member_id} with instance id {request.instance_id} is "
            f"fenced by existing member {member.member_id}.",
        )
    if request.member_epoch == STATIC_LEAVE_EPOCH:
        # Its revocation timer checks the epoch when it fires: at -2 it never fences.
        staying = replace(
            member,
            member_epoch=STATIC_LEAVE_EPOCH,
            pending_revocation=EMPTY,
            rebalance_deadline_ms=None,
        )
        group = replace(group, members=tuple(staying if m is member else m for m in group.members))
        return Outcome(
            group,
            Answer(member_id=member.member_id, member_epoch=STATIC_LEAVE_EPOCH),
            f"static member {request.instance_id} left for a while (epoch -2): it keeps its "
            "partitions until its session times out",
        )
    fenced = fence(group, member.member_id, topics=topics, reason="left the group")
    return Outcome(fenced.group, answer, fenced.narration)


def fence(group: Group, member_id: str, *, topics: Mapping[str, TopicMeta], reason: str) -> Outcome:
    """GMM.consumerGroupFenceMember: the member, its assignment and its target go; the group
    epoch goes up, so the next heartbeat computes a target for the others."""
    if group.member(member_id) is None:
        return Outcome(group)
    members = tuple(m for m in group.members if m.member_id != member_id)
    group = replace(
        group,
        members=members,
        target=tuple((mid, parts) for mid, parts in group.target if mid != member_id),
        subscription_metadata=_subscription_metadata(members, topics),
        group_epoch=group.group_epoch + 1,
    )
    return Outcome(group, narration=f"{member_id} {reason}: group epoch {group.group_epoch}")


def next_deadline(group: Group) -> int | None:
    """When the coordinator's next timer fires (a session or a revocation running out)."""
    deadlines = [m.session_deadline_ms for m in group.members]
    deadlines += [m.rebalance_deadline_ms for m in group.members if m.rebalance_deadline_ms]
    return min(deadlines, default=None)


def tick(group: Group, *, now_ms: int, topics: Mapping[str, TopicMeta]) -> Outcome:
    """The coordinator's timers up to ``now_ms``, each at its deadline in time order: a session
    that ran out fences its member; so does a revocation not done within the member's
    rebalance timeout (max.poll.interval.ms)."""
    narration: list[str] = []
    while True:
        due: list[tuple[int, int, str, str]] = []
        for order, m in enumerate(group.members):
            if m.session_deadline_ms <= now_ms:
                due.append((m.session_deadline_ms, order, m.member_id, "session"))
            if m.rebalance_deadline_ms is not None and m.rebalance_deadline_ms <= now_ms:
                due.append((m.rebalance_deadline_ms, order, m.member_id, "rebalance"))
        if not due:
            break
        _, _, member_id, kind = min(due)
        member = group.member(member_id)
        assert member is not None
        if kind == "session":
            reason = "was fenced: its session timed out (no heartbeat within the session timeout)"
        else:
            reason = (
                f"was fenced: it did not revoke its partitions within its rebalance timeout "
                f"({member.rebalance_timeout_ms} ms)"
            )
        outcome = fence(group, member_id, topics=topics, reason=reason)
        group = outcome.group
        narration.append(outcome.narration)
    return Outcome(group, narration="; ".join(narration))


# --- members living in the server --------------------------------------------------------------


def stable_group(
    group_id: str,
    assignment: Mapping[str, Partitions],
    *,
    topics: Mapping[str, TopicMeta],
    config: Config = Config(),
    now_ms: int = 0,
) -> Group:
    """A group at rest, as a starting point: each member (living in the server) at epoch 1,
    subscribed to every topic given and owning its part, which is also its target."""
    subscribed = tuple(sorted(topics))
    members = tuple(
        Member(
            member_id=member_id,
            client_id=member_id,
            client_host="/127.0.0.1",
            rebalance_timeout_ms=300_000,
            subscribed=subscribed,
            member_epoch=1,
            previous_member_epoch=0,
            assigned=parts,
            session_deadline_ms=now_ms + config.session_timeout_ms,
            last_heartbeat_ms=now_ms,
            server_side=True,
        )
        for member_id, parts in assignment.items()
    )
    group = Group(
        group_id,
        group_epoch=1,
        assignment_epoch=1,
        members=members,
        target=tuple(assignment.items()),
        subscription_metadata=_subscription_metadata(members, topics),
    )
    group.partition_epochs()
    return group


def server_heartbeats_due(group: Group, now_ms: int, config: Config) -> list[str]:
    """Server-side members whose client heartbeats now: every heartbeat interval, and at once
    after an answer changed its assignment (to acknowledge it)."""
    return [
        m.member_id
        for m in group.members
        if m.server_side
        and m.member_epoch >= 0
        and (m.ack_due or m.last_heartbeat_ms + config.heartbeat_interval_ms <= now_ms)
    ]


def server_heartbeat(group: Group, member_id: str) -> Heartbeat:
    """The request a server-side member's client sends: its epoch and what it owns, which is
    what it was last assigned (it revokes at once what an answer leaves out)."""
    member = group.member(member_id)
    assert member is not None
    return Heartbeat(
        member_id=member.member_id,
        member_epoch=member.member_epoch,
        owned=member.assigned,
        server_side=True,
    )


def server_join(
    member_id: str,
    *,
    client_id: str,
    subscribed: Sequence[str],
    rebalance_timeout_ms: int = 300_000,
    server_assignor: str | None = None,
    instance_id: str | None = None,
) -> Heartbeat:
    """A server-side member's first heartbeat (epoch 0): rebalance timeout = the Java client's
    max.poll.interval.ms."""
    return Heartbeat(
        member_id=member_id,
        member_epoch=JOIN_EPOCH,
        instance_id=instance_id,
        rebalance_timeout_ms=rebalance_timeout_ms,
        subscribed=tuple(subscribed),
        server_assignor=server_assignor,
        owned=EMPTY,
        client_id=client_id,
        client_host="/127.0.0.1",
        server_side=True,
    )


# --- offsets ---------------------------------------------------------------------------------


def offset_commit_check(
    group: Group,
    *,
    member_id: str,
    member_epoch: int,
    api_version: int,
) -> str | None:
    """ConsumerGroup.validateOffsetCommit: a commit without a member is only for an empty
    group; a member commits at its current epoch (STALE_MEMBER_EPOCH otherwise), with
    OffsetCommit v9 or later."""
    if member_epoch < 0 and not group.members:
        return None
    member = group.member(member_id)
    if member is None:
        return UNKNOWN_MEMBER_ID
    if api_version < 9:
        return UNSUPPORTED_VERSION
    if member_epoch != member.member_epoch:
        return STALE_MEMBER_EPOCH
    return None


def offset_fetch_check(group: Group, *, member_id: str | None, member_epoch: int) -> str | None:
    """ConsumerGroup.validateOffsetFetch."""
    if member_id is None and member_epoch < 0:
        return None
    member = group.member(member_id or "")
    if member is None:
        return UNKNOWN_MEMBER_ID
    if member_epoch != member.member_epoch:
        return STALE_MEMBER_EPOCH
    return None


# --- what the board tells ------------------------------------------------------------------------


def _tp_text(parts: Partitions) -> str:
    return ", ".join(f"{t}-{p}" for t, p in flat(parts)) or "nothing"


def _target_text(group: Group) -> str:
    # Not "; ": the board reads that as the end of a sentence.
    return " · ".join(f"{mid} → {_tp_text(parts)}" for mid, parts in group.target) or "nobody"


def _them(parts: Partitions) -> str:
    return "it is" if len(flat(parts)) == 1 else "they are"


def _reconcile_text(before: Member, after: Member, target: Partitions) -> list[str]:
    lines = []
    who = after.member_id
    if after.pending_revocation and after.pending_revocation != before.pending_revocation:
        lines.append(
            f"{who} must revoke {_tp_text(after.pending_revocation)} first (it stays at epoch "
            f"{after.member_epoch} until its heartbeat no longer lists them)"
        )
    added = _minus(after.assigned, before.assigned)
    if added:
        lines.append(f"{who} gets {_tp_text(added)} at epoch {after.member_epoch}")
    if (
        before.pending_revocation
        and not after.pending_revocation
        and after.state is not MemberState.UNREVOKED_PARTITIONS
    ):
        lines.append(
            f"{who} revoked {_tp_text(before.pending_revocation)}: "
            f"{_them(before.pending_revocation)} free"
        )
    awaited = _minus(target, after.assigned)
    if after.state is MemberState.UNRELEASED_PARTITIONS and awaited:
        lines.append(
            f"{who} waits for {_tp_text(awaited)}: another member still owns "
            f"{'it' if len(flat(awaited)) == 1 else 'them'}"
        )
    if not lines and after.member_epoch != before.member_epoch:
        lines.append(f"{who} moves to epoch {after.member_epoch}")
    return lines


def moves(before: Group, after: Group) -> list[dict[str, Any]]:
    """What changed between two states of a group, member by member, for the board to draw:
    partitions assigned, being revoked, revoked (free again), awaited; epochs; who came and
    went."""
    out: list[dict[str, Any]] = []
    if after.group_epoch != before.group_epoch:
        out.append({"kind": "group_epoch", "epoch": after.group_epoch})
    if after.assignment_epoch != before.assignment_epoch:
        out.append(
            {
                "kind": "target",
                "epoch": after.assignment_epoch,
                "target": {
                    mid: [f"{t}-{p}" for t, p in flat(parts)] for mid, parts in after.target
                },
            }
        )
    old = {m.member_id: m for m in before.members}
    new = {m.member_id: m for m in after.members}
    for mid in old.keys() - new.keys():
        out.append(
            {"kind": "left", "member": mid, "tps": [f"{t}-{p}" for t, p in flat(old[mid].owned())]}
        )
    for m in after.members:
        prior = old.get(m.member_id)
        if prior is None:
            out.append({"kind": "joined", "member": m.member_id, "epoch": m.member_epoch})
            prior = Member(m.member_id)
        for kind, parts in (
            ("assigned", _minus(m.assigned, prior.assigned)),
            ("revoking", _minus(m.pending_revocation, prior.pending_revocation)),
            ("revoked", _minus(prior.owned(), m.owned())),
        ):
            if parts:
                out.append(
                    {
                        "kind": kind,
                        "member": m.member_id,
                        "tps": [f"{t}-{p}" for t, p in flat(parts)],
                    }
                )
        if m.member_epoch != prior.member_epoch or m.state != prior.state:
            out.append(
                {
                    "kind": "member_epoch",
                    "member": m.member_id,
                    "epoch": m.member_epoch,
                    "state": m.state.value,
                }
            )
    return out
