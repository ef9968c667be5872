"""Kafka's consumer group protocol (the classic protocol) as the group coordinator runs it.

The group is an explicit state machine with Kafka's own state names and transition table
(``ClassicGroupState`` in Kafka's group coordinator). Every operation is a pure function: it
takes a :class:`ConsumerGroup` and returns a :class:`GroupResult` holding the new group and,
when the membership or the metadata changed, the :class:`RebalancePlan` that got it there.
A plan is plain data the board animates step by step; the services store the resulting
group and broadcast the plan.

Faithful details worth knowing when reading the plans:

* the generation goes up when the join phase completes (``initNextGeneration``), so the
  ``CompletingRebalance`` step already carries the new generation, as the JoinGroup
  responses do in Kafka; ``Stable`` keeps it;
* eager members revoke everything before rejoining; cooperative members (KIP-429) keep
  consuming, give up only what must move at the end of round 1 and a follow-up rebalance
  hands it over, so a cooperative move costs two generations;
* a member whose session timed out is removed by the coordinator's timer, which fires at
  ``last heartbeat + session.timeout.ms``; every operation that carries the current time
  lets that timer fire first, so the state never holds an expired member;
* a static member (``group.instance.id``, KIP-345) that restarts gets a new member id but
  keeps its slot and its partitions without a rebalance; ``consumer.close()`` on a static
  member sends no LeaveGroup, so only the session timeout removes it.

Simplified on purpose: the rebalance waits for every member at once (no
``max.poll.interval.ms`` / rebalance timeout), and protocol selection uses one assignor per
group instead of a vote among the members' lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple

from messaging.engine.assignors import STICKY_STRATEGIES, STRATEGIES, assign, cooperative_rounds
from messaging.engine.clock import format_duration

# --- configuration -------------------------------------------------------------------------

DEFAULT_SESSION_TIMEOUT_MS = 45_000
DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000
DEFAULT_INITIAL_REBALANCE_DELAY_MS = 3_000
# The consumer's default partition.assignment.strategy list.
DEFAULT_STRATEGIES: tuple[str, ...] = ("range", "cooperative-sticky")
# Broker limits a JoinGroup's session timeout must fall in (INVALID_SESSION_TIMEOUT otherwise).
GROUP_MIN_SESSION_TIMEOUT_MS = 6_000
GROUP_MAX_SESSION_TIMEOUT_MS = 1_800_000
COOPERATIVE_ASSIGNORS: frozenset[str] = frozenset({"cooperative-sticky"})
# A cooperative reassignment settles in two rounds; more means an assignor that never settles.
MAX_COOPERATIVE_ROUNDS = 5

# Kafka error codes the coordinator answers with.
UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
NON_EMPTY_GROUP = "NON_EMPTY_GROUP"


class RebalanceProtocol(StrEnum):
    EAGER = "eager"
    COOPERATIVE = "cooperative"


@dataclass(frozen=True)
class GroupConfig:
    """What the members of one group agree on; field names map to Kafka's configs.

    ``assignor`` is the chosen ``partition.assignment.strategy``; the timing fields are
    ``session.timeout.ms``, ``heartbeat.interval.ms`` and the broker's
    ``group.initial.rebalance.delay.ms``.
    """

    group_id: str
    assignor: str = "range"
    rebalance_protocol: RebalanceProtocol = RebalanceProtocol.EAGER
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    initial_rebalance_delay_ms: int = DEFAULT_INITIAL_REBALANCE_DELAY_MS

    def __post_init__(self) -> None:
        if not self.group_id:
            raise ValueError("group.id must not be empty")
        if self.assignor not in STRATEGIES:
            raise ValueError(
                f"unknown partition.assignment.strategy {self.assignor!r}; "
                f"expected one of {', '.join(STRATEGIES)}"
            )
        try:
            protocol = RebalanceProtocol(self.rebalance_protocol)
        except ValueError:
            raise ValueError(
                f"unknown rebalance protocol {self.rebalance_protocol!r}; "
                "expected 'eager' or 'cooperative'"
            ) from None
        # Accept the plain string from JSON or a form and keep the enum.
        object.__setattr__(self, "rebalance_protocol", protocol)
        _check_protocol_matches_assignor(protocol, self.assignor)
        _check_timeouts(
            self.session_timeout_ms, self.heartbeat_interval_ms, self.initial_rebalance_delay_ms
        )

    @property
    def cooperative(self) -> bool:
        return self.rebalance_protocol is RebalanceProtocol.COOPERATIVE

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupConfig:
        return cls(**data)


def _check_protocol_matches_assignor(protocol: RebalanceProtocol, assignor: str) -> None:
    if protocol is RebalanceProtocol.COOPERATIVE and assignor not in COOPERATIVE_ASSIGNORS:
        raise ValueError(
            f"the cooperative protocol needs an assignor that supports it "
            f"(cooperative-sticky); {assignor!r} only supports eager"
        )
    if protocol is RebalanceProtocol.EAGER and assignor in COOPERATIVE_ASSIGNORS:
        raise ValueError(
            "cooperative-sticky implies the cooperative protocol; use rebalance_protocol="
            "'cooperative', or 'sticky' for the eager sticky assignor"
        )


def _check_timeouts(session_ms: int, heartbeat_ms: int, delay_ms: int) -> None:
    if not GROUP_MIN_SESSION_TIMEOUT_MS <= session_ms <= GROUP_MAX_SESSION_TIMEOUT_MS:
        raise ValueError(
            f"session.timeout.ms={session_ms} is outside the broker's allowed range "
            f"[group.min.session.timeout.ms={GROUP_MIN_SESSION_TIMEOUT_MS}, "
            f"group.max.session.timeout.ms={GROUP_MAX_SESSION_TIMEOUT_MS}]"
        )
    if not 0 < heartbeat_ms < session_ms:
        raise ValueError(
            f"heartbeat.interval.ms={heartbeat_ms} must be positive and lower than "
            f"session.timeout.ms={session_ms}"
        )
    if delay_ms < 0:
        raise ValueError(f"group.initial.rebalance.delay.ms={delay_ms} must not be negative")


def config_from_strategies(
    group_id: str, strategies: Sequence[str] = DEFAULT_STRATEGIES, **timing: int
) -> GroupConfig:
    """Build a config the way a consumer with this ``partition.assignment.strategy`` list ends up.

    The client runs the cooperative protocol only if every listed assignor supports it, and
    the group picks the first assignor of the list. So Kafka's default ``[range,
    cooperative-sticky]`` gives eager with range; upgrading to cooperative takes a second
    rolling bounce that removes ``range``.
    """
    if not strategies:
        raise ValueError("partition.assignment.strategy needs at least one assignor")
    all_cooperative = all(name in COOPERATIVE_ASSIGNORS for name in strategies)
    protocol = RebalanceProtocol.COOPERATIVE if all_cooperative else RebalanceProtocol.EAGER
    return GroupConfig(
        group_id=group_id, assignor=strategies[0], rebalance_protocol=protocol, **timing
    )


# --- the state machine ---------------------------------------------------------------------


class GroupState(StrEnum):
    """Kafka's names, as ``kafka-consumer-groups --describe --state`` prints them."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_S = GroupState
# ClassicGroupState.validPreviousStates, read from the target's side: Stable is only reached
# through CompletingRebalance, and a group empties only at the end of a join phase.
ALLOWED_TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE, _S.DEAD}),
    _S.PREPARING_REBALANCE: frozenset({_S.COMPLETING_REBALANCE, _S.EMPTY, _S.DEAD}),
    _S.COMPLETING_REBALANCE: frozenset({_S.STABLE, _S.PREPARING_REBALANCE, _S.DEAD}),
    _S.STABLE: frozenset({_S.PREPARING_REBALANCE, _S.DEAD}),
    _S.DEAD: frozenset({_S.DEAD}),
}


class IllegalTransition(ValueError):
    """A state change Kafka's group coordinator would refuse (it throws IllegalStateException)."""


def can_transition(current: GroupState, target: GroupState) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def transition(current: GroupState, target: GroupState) -> GroupState:
    """Return ``target`` if Kafka allows ``current -> target``; refuse with a clear error."""
    if not can_transition(current, target):
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current]))
        raise IllegalTransition(
            f"a consumer group cannot go from {current.value} to {target.value} "
            f"(from {current.value} it may go to: {allowed})"
        )
    return target


# --- group state -----------------------------------------------------------------------------


class TopicPartition(NamedTuple):
    """A tuple, so it compares equal to the assignors' plain ``(topic, partition)`` pairs."""

    topic: str
    partition: int

    def __str__(self) -> str:
        # Kafka's TopicPartition.toString, the form learners see in logs.
        return f"{self.topic}-{self.partition}"


Partitions = tuple[TopicPartition, ...]


def _tps(items: Iterable[Sequence[Any]]) -> Partitions:
    return tuple(sorted(TopicPartition(str(t), int(p)) for t, p in items))


def session_deadline(last_heartbeat_ms: int, session_timeout_ms: int) -> int:
    """When the coordinator removes a member that stays silent: session.timeout.ms after its
    last heartbeat (removed at that very millisecond, not one later)."""
    return last_heartbeat_ms + session_timeout_ms


@dataclass(frozen=True)
class Member:
    """One consumer in the group, as the coordinator knows it.

    ``generation`` is the generation in which ``assignment`` was received: sticky assignors
    use (generation, owned partitions) to decide whose claim on a partition is current.
    """

    member_id: str
    client_id: str
    subscription: tuple[str, ...]
    last_heartbeat_ms: int
    group_instance_id: str | None = None
    assignment: Partitions = ()
    generation: int = -1

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def session_expires_at(self, session_timeout_ms: int) -> int:
        return session_deadline(self.last_heartbeat_ms, session_timeout_ms)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            member_id=data["member_id"],
            client_id=data["client_id"],
            subscription=tuple(data["subscription"]),
            last_heartbeat_ms=int(data["last_heartbeat_ms"]),
            group_instance_id=data.get("group_instance_id"),
            assignment=_tps(data.get("assignment", ())),
            generation=int(data.get("generation", -1)),
        )


@dataclass(frozen=True)
class ConsumerGroup:
    """The coordinator's view of one group between two requests.

    ``members`` keeps join order, which decides the next leader when the leader goes.
    ``topics`` holds the partition counts (topic, count) the current assignment was computed
    from; a change of those counts is what makes the leader ask for a rebalance.
    """

    config: GroupConfig
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    members: tuple[Member, ...] = ()
    leader_id: str | None = None
    topics: tuple[tuple[str, int], ...] = ()
    next_member_number: int = 1

    @property
    def group_id(self) -> str:
        return self.config.group_id

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.member_id == member_id), None)

    def static_member(self, group_instance_id: str) -> Member | None:
        return next((m for m in self.members if m.group_instance_id == group_instance_id), None)

    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.member_id for m in self.members)

    def assignment(self) -> dict[str, Partitions]:
        return {m.member_id: m.assignment for m in self.members}

    def partition_counts(self) -> dict[str, int]:
        return dict(self.topics)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConsumerGroup:
        return cls(
            config=GroupConfig.from_dict(data["config"]),
            state=GroupState(data["state"]),
            generation=int(data["generation"]),
            members=tuple(Member.from_dict(m) for m in data["members"]),
            leader_id=data.get("leader_id"),
            topics=tuple((str(t), int(c)) for t, c in data.get("topics", ())),
            next_member_number=int(data.get("next_member_number", 1)),
        )


def new_group(config: GroupConfig, topics: Mapping[str, int] | None = None) -> ConsumerGroup:
    """A group the coordinator just created: Empty, generation 0, nobody in it."""
    return ConsumerGroup(config=config, topics=_merge_topics((), topics))


# --- plans and results ----------------------------------------------------------------------

MemberPartitions = dict[str, Partitions]


@dataclass(frozen=True)
class PlanStep:
    """One frame of a rebalance for the board.

    ``revoked`` and ``assigned`` are what changes hands in this step; ``owned`` is who holds
    what once the step is done (a partition appears at most once in it).
    """

    index: int
    round: int
    state: GroupState
    generation: int
    revoked: MemberPartitions
    assigned: MemberPartitions
    owned: MemberPartitions
    narration: str

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanStep:
        return cls(
            index=int(data["index"]),
            round=int(data["round"]),
            state=GroupState(data["state"]),
            generation=int(data["generation"]),
            revoked=_member_partitions(data["revoked"]),
            assigned=_member_partitions(data["assigned"]),
            owned=_member_partitions(data["owned"]),
            narration=data["narration"],
        )


@dataclass(frozen=True)
class RebalancePlan:
    """A whole rebalance, from the trigger to the group's next resting state.

    ``delay_ms`` is ``group.initial.rebalance.delay.ms`` when the rebalance starts from an
    Empty group (the coordinator waits that long for more members), else 0. ``moving``
    lists, for a cooperative rebalance, the partitions handed over in a later round and
    their new owner. ``idle`` maps each member left without partitions to the reason.
    """

    group_id: str
    protocol: RebalanceProtocol
    assignor: str
    reason: str
    generation_before: int
    generation_after: int
    final_state: GroupState
    leader_id: str | None
    delay_ms: int
    topics: dict[str, int]
    steps: tuple[PlanStep, ...]
    final_assignment: MemberPartitions
    moving: dict[str, str]
    idle: dict[str, str]

    @property
    def rounds(self) -> int:
        return max((s.round for s in self.steps), default=0)

    def to_dict(self) -> dict[str, Any]:
        data = _plain(self)
        data["rounds"] = self.rounds
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RebalancePlan:
        return cls(
            group_id=data["group_id"],
            protocol=RebalanceProtocol(data["protocol"]),
            assignor=data["assignor"],
            reason=data["reason"],
            generation_before=int(data["generation_before"]),
            generation_after=int(data["generation_after"]),
            final_state=GroupState(data["final_state"]),
            leader_id=data.get("leader_id"),
            delay_ms=int(data["delay_ms"]),
            topics={str(t): int(c) for t, c in data["topics"].items()},
            steps=tuple(PlanStep.from_dict(s) for s in data["steps"]),
            final_assignment=_member_partitions(data["final_assignment"]),
            moving=dict(data["moving"]),
            idle=dict(data["idle"]),
        )


@dataclass(frozen=True)
class GroupError:
    """A Kafka error code the coordinator would answer with, and what it means here."""

    code: str
    message: str


@dataclass(frozen=True)
class GroupResult:
    """What an operation did: the new group, the rebalance it ran (if any) and why.

    ``member_id`` is the id the coordinator gave a joining member; ``removed`` lists members
    that left or timed out. On ``error`` the group is returned unchanged, except that
    sessions that timed out before the request are still expired (the timer does not wait).
    """

    group: ConsumerGroup
    plan: RebalancePlan | None = None
    member_id: str | None = None
    removed: tuple[str, ...] = ()
    error: GroupError | None = None
    narration: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rebalanced(self) -> bool:
        return self.plan is not None

    def to_dict(self) -> dict[str, Any]:
        data = _plain(self)
        data["plan"] = self.plan.to_dict() if self.plan is not None else None
        data["ok"] = self.ok
        return data


@dataclass(frozen=True)
class JoinRequest:
    """One consumer's JoinGroup: the client id, its topics and its optional static id."""

    client_id: str
    subscription: tuple[str, ...]
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.subscription, str):
            raise ValueError("subscription must be a list of topic names, not one string")
        object.__setattr__(self, "subscription", tuple(dict.fromkeys(self.subscription)))
        if not self.subscription:
            raise ValueError(f"consumer {self.client_id!r} must subscribe to at least one topic")


# --- operations ------------------------------------------------------------------------------


def join(
    group: ConsumerGroup,
    client_id: str,
    subscription: Sequence[str],
    now_ms: int,
    *,
    group_instance_id: str | None = None,
    member_id: str | None = None,
    topics: Mapping[str, int] | None = None,
) -> GroupResult:
    """JoinGroup from one consumer.

    A new consumer gets the member id ``f"{client_id}-{n}"`` and triggers a rebalance. A
    known ``member_id`` rejoining with the same subscription changes nothing; with a new
    subscription it triggers a rebalance. A known ``group_instance_id`` whose session is
    still alive takes its old slot over: a new member id, the same partitions, no rebalance.
    ``topics`` (topic -> partition count) updates what the group knows of the topics.
    """
    request = JoinRequest(client_id, tuple(subscription), group_instance_id)
    if member_id is not None:
        return _rejoin(group, member_id, request, now_ms, topics)
    return join_many(group, [request], now_ms, topics=topics)


def join_many(
    group: ConsumerGroup,
    requests: Sequence[JoinRequest],
    now_ms: int,
    *,
    topics: Mapping[str, int] | None = None,
) -> GroupResult:
    """Several consumers joining in the same join window: one rebalance for all of them.

    That is what ``group.initial.rebalance.delay.ms`` is for: consumers started together
    land in one generation instead of one rebalance each. ``member_id`` of the result is
    the id of the last request's member.
    """
    expired, pending = _expire_sessions(group, now_ms)
    if pending.state is GroupState.DEAD:
        return _refuse(pending, UNKNOWN_MEMBER_ID, f"group {group.group_id!r} is Dead")
    member_id: str | None = None
    changes: dict[str, list[str]] = {_JOINED: [], _RESUBSCRIBED: [], _RETURNED: []}
    for request in requests:
        pending, member_id, change = _admit(pending, request, now_ms)
        changes[change].append(member_id)
    merged = _merge_topics(pending.topics, topics)
    reasons = [_expiry_reason(expired, group.config)] if expired else []
    if changes[_JOINED]:
        reasons.append(f"{_names(changes[_JOINED])} joined")
    if changes[_RESUBSCRIBED]:
        reasons.append(f"{_names(changes[_RESUBSCRIBED])} changed subscription")
    if not reasons:
        pending = replace(pending, topics=merged)
        narration = _static_return_narration(changes[_RETURNED])
        return GroupResult(group=pending, member_id=member_id, narration=narration)
    return _rebalance_result(pending, expired, merged, "; ".join(reasons), member_id=member_id)


def heartbeat(
    group: ConsumerGroup,
    member_id: str,
    now_ms: int,
    *,
    group_instance_id: str | None = None,
) -> GroupResult:
    """A member saying it is alive; it restarts its session timer.

    Sessions that ran out before ``now_ms`` expire first, so a member that comes back too
    late is told UNKNOWN_MEMBER_ID (and must rejoin) while the others rebalance without it.
    """
    expired, pending = _expire_sessions(group, now_ms)
    plan_result = GroupResult(group=pending)
    if expired:
        reason = _expiry_reason(expired, group.config)
        plan_result = _rebalance_result(pending, expired, pending.topics, reason)
    pending = plan_result.group
    error = _check_member(pending, member_id, group_instance_id)
    if error is not None:
        return replace(plan_result, error=error, narration=error.message)
    member = pending.member(member_id)
    assert member is not None  # _check_member vouched for it
    alive = replace(member, last_heartbeat_ms=max(member.last_heartbeat_ms, now_ms))
    return replace(
        plan_result,
        group=_replace_member(pending, member_id, alive),
        narration=plan_result.narration or f"{member_id} heartbeats; its session runs on.",
    )


def heartbeats_kept(group: ConsumerGroup, member_ids: Iterable[str], now_ms: int) -> ConsumerGroup:
    """Members whose heartbeat thread ran all through a jump of the clock to ``now_ms``.

    The thread beats every ``heartbeat.interval.ms`` whatever the jump's size, so each member's
    last beat is the latest of those beats up to ``now_ms``, and no session timer of theirs
    ran out on the way. Handling one heartbeat at ``now_ms`` instead would first fire the
    timers that fell due inside the jump, removing live members (a slow server tick at 20x is
    a jump of several seconds). Members not named keep their last beat: silent ones still
    expire.
    """
    interval = group.config.heartbeat_interval_ms
    for member_id in member_ids:
        member = group.member(member_id)
        if member is None or now_ms - member.last_heartbeat_ms < interval:
            continue
        beats = (now_ms - member.last_heartbeat_ms) // interval
        beaten = replace(member, last_heartbeat_ms=member.last_heartbeat_ms + beats * interval)
        group = _replace_member(group, member_id, beaten)
    return group


def leave(
    group: ConsumerGroup, member_id: str, *, topics: Mapping[str, int] | None = None
) -> GroupResult:
    """An explicit LeaveGroup: the member goes now and the group rebalances at once.

    Dynamic consumers send it from ``close()``; a static member only leaves this way when an
    admin removes it (``kafka-consumer-groups --delete`` of the instance, KIP-345).
    """
    error = _check_member(group, member_id, None)
    if error is not None:
        return _refuse(group, error.code, error.message)
    departing = group.member(member_id)
    assert departing is not None
    pending = _without(group, [member_id])
    merged = _merge_topics(group.topics, topics)
    reason = f"{member_id} sent LeaveGroup"
    return _rebalance_result(pending, (departing,), merged, reason)


def close(
    group: ConsumerGroup, member_id: str, *, topics: Mapping[str, int] | None = None
) -> GroupResult:
    """``consumer.close()``: a dynamic member leaves; a static member just goes quiet.

    A static member does not send LeaveGroup, precisely so that a restart does not cause a
    rebalance; if it is not back within ``session.timeout.ms``, :func:`expire` removes it.
    """
    error = _check_member(group, member_id, None)
    if error is not None:
        return _refuse(group, error.code, error.message)
    member = group.member(member_id)
    assert member is not None
    if not member.is_static:
        return leave(group, member_id, topics=topics)
    deadline = member.session_expires_at(group.config.session_timeout_ms)
    return GroupResult(
        group=group,
        narration=(
            f"{member_id} (group.instance.id={member.group_instance_id}) closed without "
            f"LeaveGroup: its partitions wait for it. It is removed at {deadline} ms "
            f"(session.timeout.ms={format_duration(group.config.session_timeout_ms)}) "
            "unless it comes back first."
        ),
    )


def expire(
    group: ConsumerGroup, now_ms: int, *, topics: Mapping[str, int] | None = None
) -> GroupResult:
    """Fire the session timers: remove every member silent for ``session.timeout.ms`` or more."""
    expired, pending = _expire_sessions(group, now_ms)
    if not expired:
        return GroupResult(group=group, narration="Every member's session is alive.")
    merged = _merge_topics(group.topics, topics)
    reason = _expiry_reason(expired, group.config)
    return _rebalance_result(pending, expired, merged, reason)


def update_topics(group: ConsumerGroup, topics: Mapping[str, int]) -> GroupResult:
    """New topic metadata: a partition count change of a subscribed topic means a rebalance.

    In Kafka the leader notices the new metadata and rejoins, which rebalances the group.
    Counts can only grow, as with ``kafka-topics --alter --partitions``.
    """
    known = group.partition_counts()
    for topic, count in topics.items():
        if count < known.get(topic, 0):
            raise ValueError(
                f"topic {topic!r} has {known[topic]} partitions; Kafka can only add "
                f"partitions, not remove them (asked for {count})"
            )
    merged = _merge_topics(group.topics, topics)
    subscribed = _subscribed_topics(group.members)
    changed = [
        f"{topic} {known.get(topic, 0)} -> {count} partitions"
        for topic, count in sorted(topics.items())
        if topic in subscribed and count != known.get(topic, 0)
    ]
    pending = replace(group, topics=merged)
    if not changed or group.state is GroupState.DEAD:
        return GroupResult(group=pending, narration="No subscribed topic changed its partitions.")
    reason = "metadata changed: " + ", ".join(changed)
    return _rebalance_result(pending, (), merged, reason)


def rebalance(
    group: ConsumerGroup, *, topics: Mapping[str, int] | None = None, reason: str = ""
) -> GroupResult:
    """Rebalance the current members now (what ``enforceRebalance()`` asks for)."""
    plan = plan_rebalance(group, topics, reason=reason)
    return GroupResult(group=apply_plan(group, plan), plan=plan, narration=plan.reason)


def delete_group(group: ConsumerGroup, *, force: bool = False) -> GroupResult:
    """DeleteGroups: only an Empty group may go (NON_EMPTY_GROUP otherwise).

    ``force`` models the lab's reset button (and Kafka moving the group to another
    coordinator): every member is dropped and the group is Dead whatever its state.
    """
    if group.members and not force:
        return _refuse(
            group,
            NON_EMPTY_GROUP,
            f"group {group.group_id!r} still has {len(group.members)} member(s); "
            "stop them first or force the removal",
        )
    dead = replace(
        group,
        state=transition(group.state, GroupState.DEAD),
        members=(),
        leader_id=None,
    )
    return GroupResult(
        group=dead,
        removed=group.member_ids(),
        narration=f"Group {group.group_id!r} deleted: it is Dead and accepts no member.",
    )


# --- planning -----------------------------------------------------------------------------


def plan_rebalance(
    group: ConsumerGroup, topics: Mapping[str, int] | None = None, *, reason: str = ""
) -> RebalancePlan:
    """The rebalance the coordinator would run for the group's current members, not applied."""
    merged = dict(_merge_topics(group.topics, topics))
    return _plan(group, (), merged, reason or "rebalance requested")


def apply_plan(group: ConsumerGroup, plan: RebalancePlan) -> ConsumerGroup:
    """The group once every step of ``plan`` ran: its final state, generation and assignment."""
    if plan.group_id != group.group_id:
        raise ValueError(f"plan is for group {plan.group_id!r}, not {group.group_id!r}")
    if plan.generation_before != group.generation:
        raise ValueError(
            f"stale plan: made at generation {plan.generation_before}, "
            f"the group is at generation {group.generation}"
        )
    if set(plan.final_assignment) != set(group.member_ids()):
        raise ValueError("stale plan: the group's members changed since it was made")
    members = tuple(
        replace(m, assignment=plan.final_assignment[m.member_id], generation=plan.generation_after)
        for m in group.members
    )
    return replace(
        group,
        state=plan.final_state,
        generation=plan.generation_after,
        members=members,
        leader_id=plan.leader_id,
        topics=tuple(sorted(plan.topics.items())),
    )


@dataclass
class _Progress:
    """The plan being written: the group's state, generation and who holds what so far.

    A private builder that lives for one :func:`_plan` call; only the frozen plan it produces
    leaves the module.
    """

    state: GroupState
    generation: int
    owned: dict[str, Partitions]
    steps: list[PlanStep] = field(default_factory=list)

    def record(
        self,
        round_number: int,
        target: GroupState,
        narration: str,
        revoked: Mapping[str, Partitions] | None = None,
        assigned: Mapping[str, Partitions] | None = None,
    ) -> None:
        self.state = transition(self.state, target)
        self.steps.append(
            PlanStep(
                index=len(self.steps) + 1,
                round=round_number,
                state=self.state,
                generation=self.generation,
                revoked=_non_empty(revoked or {}),
                assigned=_non_empty(assigned or {}),
                owned=dict(self.owned),
                narration=narration,
            )
        )


def _plan(
    group: ConsumerGroup,
    departed: Sequence[Member],
    topics: dict[str, int],
    reason: str,
) -> RebalancePlan:
    config = group.config
    members = group.members
    owned = {m.member_id: m.assignment for m in members}
    progress = _Progress(group.state, group.generation, owned)
    _prepare(progress, config, departed, reason)
    leader = _next_leader(group)
    moving: dict[str, str] = {}
    if not members:
        progress.generation += 1
        progress.record(1, GroupState.EMPTY, _empty_narration(progress.generation))
        final: MemberPartitions = {}
    elif config.cooperative:
        final = _cooperative_rounds(progress, group, topics, leader, moving)
    else:
        final = _eager_round(progress, group, topics, leader)
    idle = _idle(members, final, topics, config.assignor)
    if idle and progress.state is GroupState.STABLE:
        last = progress.steps[-1]
        progress.steps[-1] = replace(last, narration=f"{last.narration} {_idle_sentence(idle)}")
    return RebalancePlan(
        group_id=config.group_id,
        protocol=config.rebalance_protocol,
        assignor=config.assignor,
        reason=reason,
        generation_before=group.generation,
        generation_after=progress.generation,
        final_state=progress.state,
        leader_id=leader,
        delay_ms=config.initial_rebalance_delay_ms if group.state is GroupState.EMPTY else 0,
        topics=dict(sorted(topics.items())),
        steps=tuple(progress.steps),
        final_assignment=final,
        moving=moving,
        idle=idle,
    )


def _prepare(
    progress: _Progress, config: GroupConfig, departed: Sequence[Member], reason: str
) -> None:
    """Step 1: PreparingRebalance. Who stops consuming depends on the protocol."""
    revoked = {m.member_id: m.assignment for m in departed if m.assignment}
    if config.cooperative:
        how = "Cooperative protocol: members rejoin and keep consuming what they own."
    else:
        revoked.update({m: tps for m, tps in progress.owned.items() if tps})
        progress.owned = {m: () for m in progress.owned}
        how = (
            "Eager protocol: every member revokes all its partitions and stops consuming "
            "until the new assignment arrives (stop the world)."
        )
    gone = ""
    if len(departed) == 1:
        gone = f" {departed[0].member_id} is out: its partitions are free."
    elif departed:
        gone = f" {_names([m.member_id for m in departed])} are out: their partitions are free."
    progress.record(
        1, GroupState.PREPARING_REBALANCE, f"Preparing rebalance ({reason}).{gone} {how}", revoked
    )


def _eager_round(
    progress: _Progress, group: ConsumerGroup, topics: dict[str, int], leader: str | None
) -> MemberPartitions:
    config = group.config
    progress.generation += 1
    progress.record(
        1,
        GroupState.COMPLETING_REBALANCE,
        f"Every member rejoined: generation {progress.generation}. Leader {leader} computes "
        f"the assignment with the {config.assignor} assignor and sends it with SyncGroup.",
    )
    target = _assign(config, group.members, _claims(group.members), topics)
    progress.owned = dict(target)
    progress.record(
        1,
        GroupState.STABLE,
        f"Stable, generation {progress.generation}: {_hand_out(target)}",
        assigned=target,
    )
    return target


def _cooperative_rounds(
    progress: _Progress,
    group: ConsumerGroup,
    topics: dict[str, int],
    leader: str | None,
    moving: dict[str, str],
) -> MemberPartitions:
    """KIP-429: each round hands out only free partitions; one that must move is first revoked
    by its owner at the end of a round, and the follow-up rebalance gives it to the new owner."""
    claims = _claims(group.members)
    for round_number in range(1, MAX_COOPERATIVE_ROUNDS + 1):
        if round_number > 1:
            progress.record(
                round_number,
                GroupState.PREPARING_REBALANCE,
                f"Round {round_number}: the members that revoked partitions rejoin, which "
                "starts a follow-up rebalance; everyone keeps consuming.",
            )
        progress.generation += 1
        rounds = cooperative_rounds(_subscriptions(group.members), topics, claims)
        round_moves = {str(TopicPartition(*tp)): owner for tp, owner in rounds.withheld.items()}
        moving.update(round_moves)
        progress.record(
            round_number,
            GroupState.COMPLETING_REBALANCE,
            _cooperative_compute_narration(progress.generation, leader, round_moves),
        )
        revoked, assigned = _cooperative_changes(progress.owned, rounds.first)
        progress.owned = {
            m: _tps(set(progress.owned[m]) - set(revoked.get(m, ())) | set(assigned.get(m, ())))
            for m in progress.owned
        }
        progress.record(
            round_number,
            GroupState.STABLE,
            _cooperative_stable_narration(progress.generation, revoked, assigned),
            revoked,
            assigned,
        )
        if not any(revoked.values()):
            return dict(progress.owned)
        claims = {m: (progress.generation, list(tps)) for m, tps in progress.owned.items()}
    raise RuntimeError(f"cooperative rebalance did not settle in {MAX_COOPERATIVE_ROUNDS} rounds")


def _cooperative_changes(
    owned: Mapping[str, Partitions], target: Mapping[str, Sequence[Sequence[Any]]]
) -> tuple[MemberPartitions, MemberPartitions]:
    """What each member gives up and gets in one cooperative round.

    A partition still held by another member is never handed out in the same round, even if
    an assignor asked for it: that is the whole promise of the cooperative protocol.
    """
    holder = {tp: m for m, tps in owned.items() for tp in tps}
    revoked: MemberPartitions = {}
    assigned: MemberPartitions = {}
    for member, held in owned.items():
        wanted = set(_tps(target.get(member, ())))
        revoked[member] = _tps(set(held) - wanted)
        assigned[member] = _tps(tp for tp in wanted - set(held) if holder.get(tp) in (None, member))
    return revoked, assigned


def _assign(
    config: GroupConfig,
    members: Sequence[Member],
    claims: Mapping[str, tuple[int, list[TopicPartition]]],
    topics: Mapping[str, int],
) -> MemberPartitions:
    sticky = config.assignor in STICKY_STRATEGIES
    static = {m.member_id: m.group_instance_id for m in members if m.group_instance_id}
    result = assign(
        config.assignor,
        _subscriptions(members),
        topics,
        owned=claims if sticky else None,
        static=None if sticky else static,
    )
    return {m.member_id: _tps(result.get(m.member_id, ())) for m in members}


def _subscriptions(members: Sequence[Member]) -> dict[str, list[str]]:
    return {m.member_id: list(m.subscription) for m in members}


def _claims(members: Sequence[Member]) -> dict[str, tuple[int, list[TopicPartition]]]:
    # What each member reports as owned in its JoinGroup subscription (ownedPartitions).
    return {m.member_id: (m.generation, list(m.assignment)) for m in members}


def _next_leader(group: ConsumerGroup) -> str | None:
    """The leader stays while it is a member; otherwise the coordinator picks another one."""
    if group.leader_id is not None and group.member(group.leader_id) is not None:
        return group.leader_id
    return group.members[0].member_id if group.members else None


# --- membership changes ---------------------------------------------------------------------


def _expire_sessions(group: ConsumerGroup, now_ms: int) -> tuple[tuple[Member, ...], ConsumerGroup]:
    """Members whose session ran out at ``now_ms``, and the group without them."""
    timeout = group.config.session_timeout_ms
    expired = tuple(m for m in group.members if now_ms >= m.session_expires_at(timeout))
    return expired, _without(group, [m.member_id for m in expired])


# How a JoinGroup changed the membership; only the first two need a rebalance.
_JOINED = "joined"
_RESUBSCRIBED = "resubscribed"
_RETURNED = "returned"


def _admit(
    group: ConsumerGroup, request: JoinRequest, now_ms: int
) -> tuple[ConsumerGroup, str, str]:
    """Add one joining consumer: (group, its member id, what changed).

    Expired sessions are gone before this runs, so a static member found here is alive.
    """
    member_id = f"{request.client_id}-{group.next_member_number}"
    counted = replace(group, next_member_number=group.next_member_number + 1)
    known = group.static_member(request.group_instance_id) if request.group_instance_id else None
    if known is None:
        member = Member(
            member_id=member_id,
            client_id=request.client_id,
            subscription=request.subscription,
            last_heartbeat_ms=now_ms,
            group_instance_id=request.group_instance_id,
        )
        joined = replace(counted, members=counted.members + (member,))
        return joined, member_id, _JOINED
    # KIP-345: the new member id replaces the old one (which is now fenced), same partitions.
    successor = replace(
        known,
        member_id=member_id,
        client_id=request.client_id,
        subscription=request.subscription,
        last_heartbeat_ms=now_ms,
    )
    replaced = _replace_member(counted, known.member_id, successor)
    if replaced.leader_id == known.member_id:
        replaced = replace(replaced, leader_id=member_id)
    if successor.subscription != known.subscription:
        return replaced, member_id, _RESUBSCRIBED
    return replaced, member_id, _RETURNED


def _rejoin(
    group: ConsumerGroup,
    member_id: str,
    request: JoinRequest,
    now_ms: int,
    topics: Mapping[str, int] | None,
) -> GroupResult:
    expired, pending = _expire_sessions(group, now_ms)
    error = _check_member(pending, member_id, request.group_instance_id)
    if error is not None:
        return _refuse(pending, error.code, error.message)
    member = pending.member(member_id)
    assert member is not None
    refreshed = replace(member, subscription=request.subscription, last_heartbeat_ms=now_ms)
    pending = _replace_member(pending, member_id, refreshed)
    merged = _merge_topics(pending.topics, topics)
    reasons = [_expiry_reason(expired, group.config)] if expired else []
    if refreshed.subscription != member.subscription:
        reasons.append(f"{member_id} changed its subscription")
    if not reasons:
        return GroupResult(
            group=replace(pending, topics=merged),
            member_id=member_id,
            narration=f"{member_id} rejoined with the same subscription: nothing to rebalance.",
        )
    return _rebalance_result(pending, expired, merged, "; ".join(reasons), member_id=member_id)


def _rebalance_result(
    pending: ConsumerGroup,
    departed: Sequence[Member],
    topics: Mapping[str, int] | Iterable[tuple[str, int]],
    reason: str,
    *,
    member_id: str | None = None,
) -> GroupResult:
    plan = _plan(pending, departed, dict(topics), reason)
    return GroupResult(
        group=apply_plan(pending, plan),
        plan=plan,
        member_id=member_id,
        removed=tuple(m.member_id for m in departed),
        narration=f"Rebalance: {reason}.",
    )


def _check_member(
    group: ConsumerGroup, member_id: str, group_instance_id: str | None
) -> GroupError | None:
    if group.state is GroupState.DEAD:
        return GroupError(UNKNOWN_MEMBER_ID, f"group {group.group_id!r} is Dead")
    if group_instance_id is not None:
        current = group.static_member(group_instance_id)
        if current is not None and current.member_id != member_id:
            return GroupError(
                FENCED_INSTANCE_ID,
                f"group.instance.id {group_instance_id!r} now belongs to {current.member_id}; "
                f"{member_id} is a fenced zombie",
            )
    if group.member(member_id) is None:
        return GroupError(
            UNKNOWN_MEMBER_ID,
            f"{member_id} is not a member of group {group.group_id!r} "
            "(never joined, left, or its session timed out): it must rejoin",
        )
    return None


def _refuse(group: ConsumerGroup, code: str, message: str) -> GroupResult:
    return GroupResult(group=group, error=GroupError(code, message), narration=message)


def _without(group: ConsumerGroup, member_ids: Iterable[str]) -> ConsumerGroup:
    gone = set(member_ids)
    if not gone:
        return group
    return replace(group, members=tuple(m for m in group.members if m.member_id not in gone))


def _replace_member(group: ConsumerGroup, member_id: str, member: Member) -> ConsumerGroup:
    members = tuple(member if m.member_id == member_id else m for m in group.members)
    return replace(group, members=members)


def _merge_topics(
    known: Iterable[tuple[str, int]], update: Mapping[str, int] | None
) -> tuple[tuple[str, int], ...]:
    merged = dict(known)
    for topic, count in (update or {}).items():
        if count < 0:
            raise ValueError(f"topic {topic!r} cannot have {count} partitions")
        merged[topic] = count
    return tuple(sorted(merged.items()))


def _subscribed_topics(members: Iterable[Member]) -> set[str]:
    return {topic for m in members for topic in m.subscription}


# --- reading the group (UI and narration) ---------------------------------------------------


def idle_members(group: ConsumerGroup) -> dict[str, str]:
    """Members holding no partition, each with the reason in plain words."""
    if group.state is not GroupState.STABLE:
        return {}
    return _idle(group.members, group.assignment(), group.partition_counts(), group.config.assignor)


def describe(group: ConsumerGroup) -> dict[str, Any]:
    """What ``kafka-consumer-groups --describe --members --verbose`` would show, as data."""
    config = group.config
    counts = group.partition_counts()
    subscribed = sorted(_subscribed_topics(group.members))
    partitions = sum(counts.get(t, 0) for t in subscribed)
    members = [
        {
            "member_id": m.member_id,
            "client_id": m.client_id,
            "group_instance_id": m.group_instance_id,
            "is_leader": m.member_id == group.leader_id,
            "subscription": list(m.subscription),
            "assignment": [str(tp) for tp in m.assignment],
            "last_heartbeat_ms": m.last_heartbeat_ms,
            "session_expires_at_ms": m.session_expires_at(config.session_timeout_ms),
        }
        for m in group.members
    ]
    summary = (
        f"{group.group_id}: {group.state.value}, generation {group.generation}, "
        f"{len(group.members)} member(s) over {partitions} partition(s) "
        f"({config.assignor}, {config.rebalance_protocol.value})"
    )
    return {
        "group_id": group.group_id,
        "state": group.state.value,
        "generation": group.generation,
        "protocol": config.rebalance_protocol.value,
        "assignor": config.assignor,
        "leader_id": group.leader_id,
        "topics": {t: counts.get(t, 0) for t in subscribed},
        "members": members,
        "idle": idle_members(group),
        "summary": summary,
    }


def _idle(
    members: Sequence[Member],
    assignment: Mapping[str, Partitions],
    topics: Mapping[str, int],
    assignor: str,
) -> dict[str, str]:
    idle: dict[str, str] = {}
    for member in members:
        if assignment.get(member.member_id):
            continue
        partitions = sum(topics.get(t, 0) for t in member.subscription)
        rivals = sum(1 for m in members if set(m.subscription) & set(member.subscription))
        if partitions == 0:
            reason = f"its topics ({', '.join(member.subscription)}) have no partitions"
        elif rivals > partitions:
            reason = f"{rivals} members, {partitions} partitions"
        else:
            reason = f"the {assignor} assignor gave it no partition"
        idle[member.member_id] = reason
    return idle


# --- narration helpers ----------------------------------------------------------------------

_LIST_LIMIT = 4


def _tp_text(tps: Sequence[TopicPartition]) -> str:
    shown = ", ".join(str(tp) for tp in tps[:_LIST_LIMIT])
    more = len(tps) - _LIST_LIMIT
    return f"{shown} and {more} more" if more > 0 else shown


def _per_member(changes: Mapping[str, Partitions], verb: str) -> str:
    """``c-1 gets t-0; c-2 gets t-1``, or a count when listing everyone would drown the board."""
    active = {m: tps for m, tps in changes.items() if tps}
    if len(active) > _LIST_LIMIT:
        total = sum(len(tps) for tps in active.values())
        return f"{len(active)} members {verb.removesuffix('s')} {total} partitions"
    return "; ".join(f"{m} {verb} {_tp_text(tps)}" for m, tps in active.items())


def _hand_out(target: Mapping[str, Partitions]) -> str:
    text = _per_member(target, "gets")
    return f"{text}." if text else "there is no partition to hand out."


def _cooperative_compute_narration(
    generation: int, leader: str | None, moves: Mapping[str, str]
) -> str:
    text = (
        f"Generation {generation}: leader {leader} computes the assignment with cooperative-sticky."
    )
    if not moves:
        return text
    shown = ", ".join(f"{tp} -> {owner}" for tp, owner in list(moves.items())[:_LIST_LIMIT])
    extra = f" and {len(moves) - _LIST_LIMIT} more" if len(moves) > _LIST_LIMIT else ""
    return f"{text} Partitions changing owner are withheld for now: {shown}{extra}."


def _cooperative_stable_narration(
    generation: int, revoked: MemberPartitions, assigned: MemberPartitions
) -> str:
    parts = [f"Stable, generation {generation}."]
    if any(assigned.values()):
        parts.append(_per_member(assigned, "gets") + ".")
    if any(revoked.values()):
        parts.append(
            _per_member(revoked, "revokes")
            + ". The rest keep consuming; a follow-up rebalance hands the revoked partitions "
            "over."
        )
    elif not any(assigned.values()):
        parts.append("Nothing had to move: everyone kept consuming.")
    return " ".join(parts)


def _empty_narration(generation: int) -> str:
    return f"No member left: the group is Empty (generation {generation}); offsets are kept."


def _names(member_ids: Sequence[str]) -> str:
    shown = ", ".join(member_ids[:_LIST_LIMIT])
    more = len(member_ids) - _LIST_LIMIT
    return f"{shown} and {more} more" if more > 0 else shown


def _expiry_reason(expired: Sequence[Member], config: GroupConfig) -> str:
    names = _names([m.member_id for m in expired])
    timeout = format_duration(config.session_timeout_ms)
    return f"no heartbeat from {names} for session.timeout.ms ({timeout})"


def _static_return_narration(member_ids: Sequence[str]) -> str:
    if not member_ids:
        return "Nothing changed."
    return (
        f"Static member {_names(member_ids)} is back within its session under a new member id: "
        "it keeps its partitions, no rebalance."
    )


def _idle_sentence(idle: Mapping[str, str]) -> str:
    if len(idle) > _LIST_LIMIT:
        reasons = sorted(set(idle.values()))
        return f"{len(idle)} members are idle ({'; '.join(reasons)})."
    return " ".join(f"{m} is idle ({why})." for m, why in idle.items())


# --- plain data -----------------------------------------------------------------------------


def _non_empty(changes: Mapping[str, Partitions]) -> MemberPartitions:
    return {m: tuple(tps) for m, tps in changes.items() if tps}


def _member_partitions(data: Mapping[str, Iterable[Sequence[Any]]]) -> MemberPartitions:
    return {str(m): _tps(tps) for m, tps in data.items()}


def _plain(value: Any) -> Any:
    """JSON-ready copy: enums to their value, tuples to lists, dataclasses to dicts."""
    if isinstance(value, StrEnum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
