"""Kafka's classic group coordinator in real time: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
and the coordinator's timers, for real clients on the wire and members living in the server.

Every rule follows apache/kafka's ``group-coordinator/.../GroupMetadataManager.java`` (``GMM``
below) and ``classic/ClassicGroup.java`` (``CG``); the method a rule lives in is named beside
it. Kafka parks a JoinGroup or SyncGroup in a future; here a parked request is a flag on the
member and its answer is stored on the member (``answer`` / ``sync_answer``) until the
adapter takes it. Kafka's timers (heartbeat per member, pending member, join, pending sync)
are deadlines in the state; :func:`tick` fires the due ones in time order, each at its own
deadline (a real broker's timer fires on time; a late tick must not stretch the protocol).

Where LogLab departs from Kafka on purpose:

* members are kept in join order and Kafka's ``HashMap`` iteration (new leader, leader's
  member list) is read as that order;
* JoinGroup v9's ``SkipAssignment`` is not modelled (no supported client sends v9): a static
  member replaced in Stable gets the pre-v9 answer;
* bounds Kafka does not have: at most :data:`MAX_PROTOCOLS` protocols per member
  (``INVALID_REQUEST``), pending members at most ``max_size`` and members plus pending members
  at most twice ``max_size`` (``GROUP_MAX_SIZE_REACHED``), answers for removed members kept
  for the last :data:`MAX_DEPARTED` of them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from messaging.engine import assignors
from messaging.engine.consumer_protocol import (
    ProtocolBytesError,
    assignment_of,
    decode_assignment,
    decode_subscription,
)
from messaging.engine.group import GroupState, transition

S = GroupState

MAX_PROTOCOLS = 16
MAX_DEPARTED = 1024
# Kafka's JoinGroupRequest.UNKNOWN_MEMBER_ID / ClassicGroup.NO_LEADER.
UNKNOWN_MEMBER = ""
NO_GENERATION = -1

# Error names (Kafka's Errors enum).
NONE: str | None = None
MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
GROUP_MAX_SIZE_REACHED = "GROUP_MAX_SIZE_REACHED"
FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
INVALID_REQUEST = "INVALID_REQUEST"
UNKNOWN_SERVER_ERROR = "UNKNOWN_SERVER_ERROR"

ServerAssign = Callable[
    [str, Mapping[str, tuple[str, ...]], Mapping[str, tuple[int, tuple[tuple[str, int], ...]]]],
    Mapping[str, Sequence[tuple[str, int]]],
]


# --- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Broker configs (GroupCoordinatorConfig defaults) and LogLab's bound on group size."""

    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    new_member_join_timeout_ms: int = 300_000
    max_size: int = 1000


@dataclass(frozen=True)
class JoinAnswer:
    """A JoinGroup response, kept until the parked request takes it."""

    generation: int
    protocol_type: str | None
    protocol_name: str | None
    leader_id: str
    member_id: str
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class SyncAnswer:
    """A SyncGroup response for a parked SyncGroup."""

    error: str | None
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class LiveMember:
    member_id: str
    client_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    last_heartbeat_ms: int
    server_side: bool = False
    awaiting_join: bool = False
    joined_generation: int = NO_GENERATION
    synced: bool = False
    assignment: bytes = b""
    answer: JoinAnswer | None = None
    # Kafka's ClassicGroupMember.isNew: joined but no join answer yet, so the new-member join
    # timeout, not the session, bounds it (GMM.addMemberThenRebalanceOrCompleteJoin).
    is_new: bool = False
    # The member's heartbeat timer; None while none is scheduled (a parked existing member
    # satisfies its heartbeat: ClassicGroupMember.hasSatisfiedHeartbeat).
    expires_at_ms: int | None = None
    awaiting_sync: bool = False
    sync_answer: SyncAnswer | None = None

    def metadata(self, protocol_name: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol_name:
                return data
        return b""


@dataclass(frozen=True)
class LiveGroup:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: tuple[LiveMember, ...] = ()
    pending: tuple[tuple[str, int], ...] = ()
    join_deadline_ms: int | None = None
    initial_remaining_ms: int | None = None
    new_member_added: bool = False
    sync_deadline_ms: int | None = None
    # The delay of the armed initial-rebalance timer: the next remaining budget is computed
    # from it (GMM.tryCompleteInitialRebalanceElseSchedule's delayMs).
    initial_delay_ms: int | None = None
    # CG.previousState: a join phase entered from Empty is the initial rebalance.
    previous_state: GroupState | None = None
    # Answers of parked requests whose member was removed: (member id, error).
    departed: tuple[tuple[str, str], ...] = ()

    def member(self, member_id: str) -> LiveMember | None:
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None

    def static_member_id(self, group_instance_id: str) -> str | None:
        for m in self.members:
            if m.group_instance_id == group_instance_id:
                return m.member_id
        return None

    def is_pending(self, member_id: str) -> bool:
        return any(mid == member_id for mid, _ in self.pending)

    def rebalance_timeout_ms(self) -> int:
        """CG.rebalanceTimeoutMs: the max of the members' rebalance timeouts."""
        return max((m.rebalance_timeout_ms for m in self.members), default=0)

    def has_all_members_joined(self) -> bool:
        """CG.hasAllMembersJoined."""
        return all(m.awaiting_join for m in self.members) and not self.pending

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LiveGroup:
        return LiveGroup(
            group_id=data["group_id"],
            state=GroupState(data.get("state", S.EMPTY.value)),
            generation=data.get("generation", 0),
            protocol_type=data.get("protocol_type"),
            protocol_name=data.get("protocol_name"),
            leader_id=data.get("leader_id"),
            members=tuple(_member_from(m) for m in data.get("members", ())),
            pending=tuple((str(a), int(b)) for a, b in data.get("pending", ())),
            join_deadline_ms=data.get("join_deadline_ms"),
            initial_remaining_ms=data.get("initial_remaining_ms"),
            new_member_added=data.get("new_member_added", False),
            sync_deadline_ms=data.get("sync_deadline_ms"),
            initial_delay_ms=data.get("initial_delay_ms"),
            previous_state=(
                GroupState(data["previous_state"]) if data.get("previous_state") else None
            ),
            departed=tuple((str(a), str(b)) for a, b in data.get("departed", ())),
        )


@dataclass(frozen=True)
class JoinRequest:
    member_id: str
    new_member_id: str
    group_instance_id: str | None
    client_id: str
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    requires_known_member_id: bool
    server_side: bool = False


@dataclass(frozen=True)
class Outcome:
    group: LiveGroup
    member_id: str = ""
    error: str | None = None
    answer: JoinAnswer | None = None
    assignment: bytes | None = None
    parked: bool = False
    narration: str = ""
    completed: bool = False


# --- JoinGroup -----------------------------------------------------------------------------


def join(
    group: LiveGroup, request: JoinRequest, now_ms: int, *, timing: Timing, assign: ServerAssign
) -> Outcome:
    """GMM.classicGroupJoinToClassicGroup (with GroupCoordinatorService.joinGroup's checks)."""
    ctx = _Ctx(group, now_ms, timing, assign)
    member_id = request.member_id
    # GroupCoordinatorService.joinGroup: checked before the coordinator sees the request.
    if (
        not timing.min_session_timeout_ms
        <= request.session_timeout_ms
        <= (timing.max_session_timeout_ms)
    ):
        return ctx.refuse_join(
            member_id,
            INVALID_SESSION_TIMEOUT,
            f"session.timeout.ms={request.session_timeout_ms} is outside the broker's "
            f"[{timing.min_session_timeout_ms}, {timing.max_session_timeout_ms}]",
        )
    protocols = _dedupe(request.protocols)
    if len(protocols) > MAX_PROTOCOLS:
        return ctx.refuse_join(
            member_id, INVALID_REQUEST, f"more than {MAX_PROTOCOLS} assignors offered"
        )
    request = replace(
        request,
        protocols=protocols,
        rebalance_timeout_ms=max(0, request.rebalance_timeout_ms),
    )
    is_unknown = member_id == UNKNOWN_MEMBER
    if not _accept_joining_member(ctx.group, member_id, timing, is_unknown):
        # GMM.classicGroupJoinToClassicGroup removes the refused id (a pending member, or the
        # last rejoining members past group.max.size).
        ctx.remove(member_id, None)
        return ctx.refuse_join(
            UNKNOWN_MEMBER,
            GROUP_MAX_SIZE_REACHED,
            f"the group has reached group.max.size={timing.max_size}",
        )
    if is_unknown:
        return _join_new_member(ctx, request)
    return _join_existing_member(ctx, request)


def _accept_joining_member(
    group: LiveGroup, member_id: str, timing: Timing, is_unknown: bool
) -> bool:
    """GMM.acceptJoiningMember, plus LogLab's storage bounds for new ids."""
    if is_unknown:
        if len(group.pending) >= timing.max_size:
            return False
        if len(group.members) + len(group.pending) >= 2 * timing.max_size:
            return False
    if group.state in (S.EMPTY, S.DEAD):
        return True
    current = group.member(member_id)
    if group.state is S.PREPARING_REBALANCE:
        awaiting = sum(1 for m in group.members if m.awaiting_join)
        return (current is not None and current.awaiting_join) or awaiting < timing.max_size
    return current is not None or len(group.members) < timing.max_size


def _join_new_member(ctx: _Ctx, request: JoinRequest) -> Outcome:
    """GMM.classicGroupJoinNewMember."""
    group = ctx.group
    if group.state is S.DEAD:
        return ctx.refuse_join(UNKNOWN_MEMBER, COORDINATOR_NOT_AVAILABLE, "the group is dead")
    if not _supports_protocols(group, request.protocol_type, request.protocols):
        return ctx.refuse_join(
            UNKNOWN_MEMBER, INCONSISTENT_GROUP_PROTOCOL, _inconsistent_reason(group, request)
        )
    new_id = request.new_member_id
    if not new_id or group.member(new_id) is not None or group.is_pending(new_id):
        return ctx.refuse_join(UNKNOWN_MEMBER, INVALID_REQUEST, "no fresh member id was given")
    if request.group_instance_id is not None:
        # GMM.classicGroupJoinNewStaticMember
        existing = group.static_member_id(request.group_instance_id)
        if existing is not None:
            return _update_static_member(ctx, request, existing, new_id)
        return _add_member(ctx, request, new_id)
    if request.requires_known_member_id:
        # GMM.classicGroupJoinNewDynamicMember (KIP-394): a pending member, expired after the
        # request's session timeout unless it rejoins with the id.
        expires = ctx.now + request.session_timeout_ms
        ctx.group = replace(group, pending=(*group.pending, (new_id, expires)))
        answer = _error_answer(new_id, MEMBER_ID_REQUIRED)
        return ctx.outcome(
            member_id=new_id,
            error=MEMBER_ID_REQUIRED,
            answer=answer,
            narration=f"{request.client_id} asked to join: the coordinator gave it the id "
            f"{new_id} and asks it to join again with it (KIP-394)",
        )
    return _add_member(ctx, request, new_id)


def _join_existing_member(ctx: _Ctx, request: JoinRequest) -> Outcome:
    """GMM.classicGroupJoinExistingMember."""
    group = ctx.group
    member_id = request.member_id
    if group.state is S.DEAD:
        return ctx.refuse_join(member_id, COORDINATOR_NOT_AVAILABLE, "the group is dead")
    if not _supports_protocols(group, request.protocol_type, request.protocols):
        return ctx.refuse_join(
            member_id, INCONSISTENT_GROUP_PROTOCOL, _inconsistent_reason(group, request)
        )
    if group.is_pending(member_id):
        if request.group_instance_id is not None:
            # Kafka throws IllegalStateException: a pending member is never static.
            return ctx.refuse_join(
                member_id, UNKNOWN_SERVER_ERROR, "a pending member cannot be static"
            )
        return _add_member(ctx, request, member_id)
    error = _validate_member(group, member_id, request.group_instance_id)
    if error is not None:
        return ctx.refuse_join(member_id, error, _member_error_reason(error, member_id))
    member = group.member(member_id)
    assert member is not None
    matches = member.protocols == request.protocols
    if group.state is S.PREPARING_REBALANCE:
        return _update_member(ctx, request, member, f"{member_id} joined")
    if group.state is S.COMPLETING_REBALANCE:
        if matches:
            # It lost its join answer: the current generation again.
            answer = _current_answer(group, member_id, with_members=group.leader_id == member_id)
            return _answered(ctx, member_id, answer, f"{member_id} joined again, unchanged")
        return _update_member(ctx, request, member, f"{member_id} changed its subscription")
    if group.state is S.STABLE:
        if group.leader_id == member_id:
            # "Force a rebalance if the leader sends JoinGroup": the leader may have seen a
            # change that does not show in its metadata (new partitions).
            return _update_member(ctx, request, member, f"leader {member_id} joined again")
        if not matches:
            return _update_member(ctx, request, member, f"{member_id} changed its subscription")
        answer = _current_answer(group, member_id, with_members=False)
        return _answered(ctx, member_id, answer, f"{member_id} joined again, unchanged")
    # Empty: "Group reached unexpected (Empty) state"
    return ctx.refuse_join(member_id, UNKNOWN_MEMBER_ID, f"{member_id} is not in the group")


def _answered(ctx: _Ctx, member_id: str, answer: JoinAnswer, narration: str) -> Outcome:
    ctx.set_member(member_id, answer=answer, joined_generation=answer.generation)
    return ctx.outcome(member_id=member_id, answer=answer, narration=narration)


def _add_member(ctx: _Ctx, request: JoinRequest, member_id: str) -> Outcome:
    """GMM.addMemberThenRebalanceOrCompleteJoin and CG.add."""
    group = ctx.group
    if group.state is S.PREPARING_REBALANCE and group.previous_state is S.EMPTY:
        group = replace(group, new_member_added=True)
    member = LiveMember(
        member_id=member_id,
        client_id=request.client_id,
        group_instance_id=request.group_instance_id,
        protocol_type=request.protocol_type,
        protocols=request.protocols,
        session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        last_heartbeat_ms=ctx.now,
        server_side=request.server_side,
        awaiting_join=True,
        is_new=True,
        # Sockets are muted while the JoinGroup is parked, so a new member is bounded by the
        # new-member join timeout rather than its session.
        expires_at_ms=ctx.now + ctx.timing.new_member_join_timeout_ms,
    )
    protocol_type = request.protocol_type if not group.members else group.protocol_type
    group = replace(
        group,
        members=(*group.members, member),
        pending=tuple(p for p in group.pending if p[0] != member_id),
        leader_id=group.leader_id if group.leader_id is not None else member_id,
        protocol_type=protocol_type,
    )
    ctx.group = group
    ctx.say(f"{request.client_id} joined as {member_id}")
    _maybe_prepare_rebalance_or_complete_join(ctx, f"{member_id} joined")
    return ctx.join_outcome(member_id)


def _update_member(ctx: _Ctx, request: JoinRequest, member: LiveMember, reason: str) -> Outcome:
    """GMM.updateMemberThenRebalanceOrCompleteJoin and CG.updateMember."""
    ctx.set_member(
        member.member_id,
        protocols=request.protocols,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        session_timeout_ms=request.session_timeout_ms,
        awaiting_join=True,
        answer=None,
    )
    ctx.say(reason)
    _maybe_prepare_rebalance_or_complete_join(ctx, reason)
    return ctx.join_outcome(member.member_id)


def _update_static_member(ctx: _Ctx, request: JoinRequest, old_id: str, new_id: str) -> Outcome:
    """GMM.updateStaticMemberThenRebalanceOrCompleteJoin and CG.replaceStaticMember."""
    group = ctx.group
    current_leader = group.leader_id
    old = group.member(old_id)
    assert old is not None
    if old.awaiting_join or old.awaiting_sync:
        # "Fence potential duplicate member immediately if someone awaits join/sync future."
        ctx.depart(old_id, FENCED_INSTANCE_ID)
    new = replace(
        old,
        member_id=new_id,
        awaiting_join=False,
        awaiting_sync=False,
        answer=None,
        sync_answer=None,
        is_new=False,
        expires_at_ms=ctx.now + old.session_timeout_ms,
        last_heartbeat_ms=ctx.now,
    )
    new = replace(
        new,
        protocols=request.protocols,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        session_timeout_ms=request.session_timeout_ms,
        awaiting_join=True,
        server_side=request.server_side,
    )
    group = ctx.group
    ctx.group = replace(
        group,
        members=tuple(new if m.member_id == old_id else m for m in group.members),
        leader_id=new_id if group.leader_id == old_id else group.leader_id,
    )
    ctx.say(f"static member {request.group_instance_id} came back as {new_id} ({old_id} fenced)")
    group = ctx.group
    if group.state is S.STABLE:
        if (group.protocol_name or "") == (_select_protocol(group) or ""):
            # No rebalance: the static member takes its old place (KIP-345). Pre-v9 answer:
            # the previous leader id, so a returning leader does not assign again.
            answer = JoinAnswer(
                generation=group.generation,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                leader_id=current_leader or "",
                member_id=new_id,
            )
            ctx.set_member(
                new_id, awaiting_join=False, answer=answer, joined_generation=group.generation
            )
            ctx.say("no rebalance: it keeps its partitions")
            return ctx.outcome(member_id=new_id, answer=answer)
        _maybe_prepare_rebalance_or_complete_join(ctx, "its assignors changed the group's choice")
    elif group.state is S.COMPLETING_REBALANCE:
        # The leader may already be assigning to the old id: start over.
        _prepare_rebalance(ctx, f"static member {request.group_instance_id} rejoined")
    else:
        _maybe_complete_join_phase(ctx)
    return ctx.join_outcome(new_id)


# --- the join phase ------------------------------------------------------------------------


def _maybe_prepare_rebalance_or_complete_join(ctx: _Ctx, reason: str) -> None:
    """GMM.maybePrepareRebalanceOrCompleteJoin (CG.canRebalance: from Stable, Completing,
    Empty)."""
    if ctx.group.state in (S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY):
        _prepare_rebalance(ctx, reason)
    else:
        _maybe_complete_join_phase(ctx)


def _prepare_rebalance(ctx: _Ctx, reason: str) -> None:
    """GMM.prepareRebalance."""
    group = ctx.group
    if group.state is S.COMPLETING_REBALANCE:
        _reset_and_propagate(ctx, REBALANCE_IN_PROGRESS)
        group = ctx.group
    # removeSyncExpiration
    group = replace(group, sync_deadline_ms=None)
    initial = group.state is S.EMPTY
    if initial:
        delay = ctx.timing.initial_rebalance_delay_ms
        group = replace(
            group,
            join_deadline_ms=ctx.now + delay,
            initial_delay_ms=delay,
            initial_remaining_ms=max(group.rebalance_timeout_ms() - delay, 0),
            new_member_added=False,
        )
    group = _transition(group, S.PREPARING_REBALANCE)
    # Members living in the server notice the rebalance on their next poll and rejoin.
    group = replace(
        group,
        members=tuple(
            replace(m, awaiting_join=True, answer=None) if m.server_side else m
            for m in group.members
        ),
    )
    ctx.group = group
    ctx.say(f"rebalance (generation {group.generation} ends): {reason}")
    if not initial:
        _maybe_complete_join_else_schedule(ctx)


def _maybe_complete_join_else_schedule(ctx: _Ctx) -> None:
    """GMM.maybeCompleteJoinElseSchedule."""
    if ctx.group.has_all_members_joined():
        _complete_join(ctx)
    else:
        ctx.group = replace(ctx.group, join_deadline_ms=ctx.now + ctx.group.rebalance_timeout_ms())
        waiting = sum(1 for m in ctx.group.members if not m.awaiting_join)
        ctx.say(f"the group waits for {waiting} member(s) to rejoin")


def _maybe_complete_join_phase(ctx: _Ctx) -> None:
    """GMM.maybeCompleteJoinPhase: never early during the initial rebalance."""
    group = ctx.group
    if group.state is not S.PREPARING_REBALANCE:
        return
    if group.previous_state is S.EMPTY:
        return
    if not group.has_all_members_joined():
        return
    _complete_join(ctx)


def _complete_join(ctx: _Ctx) -> None:
    """GMM.completeClassicGroupJoin."""
    group = replace(
        ctx.group,
        join_deadline_ms=None,
        initial_remaining_ms=None,
        initial_delay_ms=None,
        new_member_added=False,
    )
    ctx.group = group
    gone = [m for m in group.members if not m.awaiting_join and m.group_instance_id is None]
    for m in gone:
        ctx.remove(m.member_id, None)
    if gone:
        ctx.say(f"{_names([m.member_id for m in gone])} did not rejoin in time: removed")
    group = ctx.group
    if group.state is S.DEAD:
        return
    elected = _maybe_elect_new_joined_leader(group)
    if elected is None and group.members:
        # Nobody rejoined: wait another rebalance timeout for the session timers to clear
        # the silent members.
        ctx.group = replace(group, join_deadline_ms=ctx.now + max(group.rebalance_timeout_ms(), 1))
        ctx.say("nobody rejoined: the coordinator waits another rebalance timeout")
        return
    group = replace(group, leader_id=elected)
    ctx.group = group
    _init_next_generation(ctx)
    group = ctx.group
    ctx.completed = True
    if group.state is S.EMPTY:
        ctx.say(f"the group is empty (generation {group.generation})")
        return
    members = []
    for m in group.members:
        changes: dict[str, Any] = {
            "expires_at_ms": ctx.now + m.session_timeout_ms,
            "is_new": False,
            "synced": False,
        }
        if m.awaiting_join:
            answer = _current_answer(
                group, m.member_id, with_members=m.member_id == group.leader_id
            )
            changes.update(awaiting_join=False, joined_generation=group.generation)
            if not m.server_side:
                changes["answer"] = answer
        if m.server_side:
            # It syncs at once; its SyncGroup waits for the leader's like any follower's.
            changes.update(synced=True, awaiting_sync=True, sync_answer=None)
        members.append(replace(m, **changes))
    ctx.group = replace(
        group,
        members=tuple(members),
        sync_deadline_ms=ctx.now + group.rebalance_timeout_ms(),
    )
    leader = ctx.group.member(group.leader_id or "")
    ctx.say(
        f"generation {group.generation}: {len(members)} member(s), leader {group.leader_id}, "
        f"assignor {group.protocol_name}"
    )
    if leader is not None and leader.server_side:
        _server_side_assign(ctx)
    else:
        ctx.say(f"waiting for the leader {group.leader_id} to send the assignment")
        _maybe_cancel_sync_timer(ctx)


def _maybe_elect_new_joined_leader(group: LiveGroup) -> str | None:
    """CG.maybeElectNewJoinedLeader: the leader if it rejoined, else the first that did."""
    leader = group.member(group.leader_id or "")
    if leader is None:
        return None
    if leader.awaiting_join:
        return leader.member_id
    for m in group.members:
        if m.awaiting_join:
            return m.member_id
    return None


def _init_next_generation(ctx: _Ctx) -> None:
    """CG.initNextGeneration."""
    group = ctx.group
    generation = group.generation + 1
    if group.members:
        group = replace(group, generation=generation, protocol_name=_select_protocol(group))
        group = _transition(group, S.COMPLETING_REBALANCE)
    else:
        group = replace(group, generation=generation, protocol_name=None, leader_id=None)
        group = _transition(group, S.EMPTY)
    ctx.group = replace(group, sync_deadline_ms=None)


def _select_protocol(group: LiveGroup) -> str | None:
    """CG.selectProtocol: each member votes for its first assignor that every member
    supports; most votes wins, a tie going to the first in Java HashMap order."""
    if not group.members:
        return None
    candidates = set(_names_of(group.members[0].protocols))
    for m in group.members[1:]:
        candidates &= set(_names_of(m.protocols))
    votes: dict[str, int] = {}
    for m in group.members:
        for name, _ in m.protocols:
            if name in candidates:
                votes[name] = votes.get(name, 0) + 1
                break
    if not votes:
        return None
    order = _java_hash_order(votes)
    best = order[0]
    for name in order[1:]:
        if votes[name] > votes[best]:
            best = name
    return best


def _supports_protocols(
    group: LiveGroup, protocol_type: str, protocols: Sequence[tuple[str, bytes]]
) -> bool:
    """CG.supportsProtocols: an Empty group takes any non-empty type and list; otherwise the
    type must match and one of the assignors must be supported by every member."""
    names = set(_names_of(protocols))
    if group.state is S.EMPTY:
        return bool(protocol_type) and bool(names)
    if group.protocol_type != protocol_type:
        return False
    count = len(group.members)
    return any(
        sum(1 for m in group.members if name in _names_of(m.protocols)) == count for name in names
    )


def _server_side_assign(ctx: _Ctx) -> None:
    """The leader lives in the server: it assigns at once with the selected assignor and
    "syncs", as GMM.classicGroupSyncToClassicGroup does for a leader's SyncGroup."""
    group = ctx.group
    subscriptions: dict[str, tuple[str, ...]] = {}
    owned: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = {}
    for m in group.members:
        try:
            sub = decode_subscription(m.metadata(group.protocol_name))
        except ProtocolBytesError:
            subscriptions[m.member_id] = ()
            continue
        subscriptions[m.member_id] = sub.topics
        if sub.owned_partitions:
            owned[m.member_id] = (sub.generation_id, sub.owned())
    try:
        result = ctx.assign(group.protocol_name or "", subscriptions, owned)
        assignments = {
            mid: assignment_of([(str(t), int(p)) for t, p in result.get(mid, ())])
            for mid in subscriptions
        }
    except (ValueError, KeyError, TypeError) as exc:
        ctx.say(f"the assignor failed ({exc}): every member gets nothing")
        assignments = {mid: assignment_of([]) for mid in subscriptions}
    leader_id = group.leader_id or ""
    ctx.set_member(leader_id, synced=True)
    _set_and_propagate(ctx, assignments)


def _set_and_propagate(ctx: _Ctx, assignments: Mapping[str, bytes]) -> None:
    """GMM.setAndPropagateAssignment, then Stable."""
    group = ctx.group
    members = tuple(replace(m, assignment=assignments.get(m.member_id, b"")) for m in group.members)
    ctx.group = replace(group, members=members)
    _propagate(ctx, None)
    ctx.group = _transition(ctx.group, S.STABLE)
    ctx.completed = True
    ctx.say(f"generation {ctx.group.generation} is Stable: every member has its assignment")
    _maybe_cancel_sync_timer(ctx)


def _reset_and_propagate(ctx: _Ctx, error: str) -> None:
    """GMM.resetAndPropagateAssignmentWithError."""
    group = ctx.group
    ctx.group = replace(group, members=tuple(replace(m, assignment=b"") for m in group.members))
    _propagate(ctx, error)


def _propagate(ctx: _Ctx, error: str | None) -> None:
    """GMM.propagateAssignment: answer every parked SyncGroup; their session timers restart."""
    group = ctx.group
    members = []
    for m in group.members:
        if m.awaiting_sync:
            answer = SyncAnswer(
                error=error,
                assignment=m.assignment if error is None else b"",
                protocol_type=group.protocol_type if error is None else None,
                protocol_name=group.protocol_name if error is None else None,
            )
            m = replace(
                m,
                awaiting_sync=False,
                sync_answer=None if m.server_side else answer,
                expires_at_ms=ctx.now + m.session_timeout_ms,
            )
        members.append(m)
    ctx.group = replace(group, members=tuple(members))


def _maybe_cancel_sync_timer(ctx: _Ctx) -> None:
    """GMM.removePendingSyncMember: the timer goes once everybody synced."""
    group = ctx.group
    if group.state in (S.COMPLETING_REBALANCE, S.STABLE) and all(m.synced for m in group.members):
        ctx.group = replace(group, sync_deadline_ms=None)


# --- SyncGroup -----------------------------------------------------------------------------


def sync(
    group: LiveGroup,
    *,
    member_id: str,
    generation: int,
    group_instance_id: str | None,
    protocol_type: str | None,
    protocol_name: str | None,
    assignments: Mapping[str, bytes],
    now_ms: int,
) -> Outcome:
    """GMM.classicGroupSync / classicGroupSyncToClassicGroup."""
    ctx = _Ctx(group, now_ms, Timing(), _no_assign)
    if group.state is S.EMPTY:
        return ctx.outcome(member_id=member_id, error=UNKNOWN_MEMBER_ID)
    error = _validate_sync(
        group, member_id, generation, group_instance_id, protocol_type, protocol_name
    )
    if error is not None:
        return ctx.outcome(
            member_id=member_id, error=error, narration=_member_error_reason(error, member_id)
        )
    if group.state is S.PREPARING_REBALANCE:
        return ctx.outcome(member_id=member_id, error=REBALANCE_IN_PROGRESS)
    if group.state is S.COMPLETING_REBALANCE:
        ctx.set_member(member_id, awaiting_sync=True, synced=True, sync_answer=None)
        _maybe_cancel_sync_timer(ctx)
        if ctx.group.leader_id == member_id:
            stored = {
                m.member_id: bytes(assignments.get(m.member_id, b"") or b"")
                for m in ctx.group.members
            }
            ctx.say(f"the leader {member_id} sent the assignment")
            _set_and_propagate(ctx, stored)
            member = ctx.group.member(member_id)
            assert member is not None
            answer = member.sync_answer
            ctx.set_member(member_id, sync_answer=None)
            return ctx.outcome(
                member_id=member_id,
                assignment=answer.assignment if answer else member.assignment,
            )
        return ctx.outcome(
            member_id=member_id,
            parked=True,
            narration=f"{member_id} waits for the leader's assignment",
        )
    # Stable: the stored assignment.
    ctx.set_member(member_id, synced=True)
    _maybe_cancel_sync_timer(ctx)
    member = ctx.group.member(member_id)
    assert member is not None
    return ctx.outcome(member_id=member_id, assignment=member.assignment)


def sync_poll(group: LiveGroup, *, member_id: str, generation: int) -> Outcome:
    """A parked SyncGroup: its answer once there is one, else still parked."""
    ctx = _Ctx(group, 0, Timing(), _no_assign)
    member = group.member(member_id)
    if member is None:
        return ctx.outcome(member_id=member_id, error=ctx.take_departed(member_id))
    if member.sync_answer is not None:
        answer = member.sync_answer
        ctx.set_member(member_id, sync_answer=None)
        return ctx.outcome(
            member_id=member_id,
            error=answer.error,
            assignment=answer.assignment if answer.error is None else None,
        )
    if member.awaiting_sync:
        return ctx.outcome(member_id=member_id, parked=True)
    if generation != group.generation:
        return ctx.outcome(member_id=member_id, error=ILLEGAL_GENERATION)
    if group.state is S.STABLE:
        return ctx.outcome(member_id=member_id, assignment=member.assignment)
    return ctx.outcome(member_id=member_id, error=REBALANCE_IN_PROGRESS)


def _validate_sync(
    group: LiveGroup,
    member_id: str,
    generation: int,
    group_instance_id: str | None,
    protocol_type: str | None,
    protocol_name: str | None,
) -> str | None:
    """GMM.validateSyncGroup."""
    if group.state is S.DEAD:
        return COORDINATOR_NOT_AVAILABLE
    error = _validate_member(group, member_id, group_instance_id)
    if error is not None:
        return error
    if generation != group.generation:
        return ILLEGAL_GENERATION
    if _inconsistent(protocol_type, group.protocol_type) or _inconsistent(
        protocol_name, group.protocol_name
    ):
        return INCONSISTENT_GROUP_PROTOCOL
    return None


def _inconsistent(value: str | None, group_value: str | None) -> bool:
    """GMM.isProtocolInconsistent: only when both are given."""
    return value is not None and group_value is not None and value != group_value


# --- Heartbeat, LeaveGroup -----------------------------------------------------------------


def heartbeat(
    group: LiveGroup,
    *,
    member_id: str,
    generation: int,
    group_instance_id: str | None,
    now_ms: int,
) -> Outcome:
    """GMM.classicGroupHeartbeatToClassicGroup."""
    ctx = _Ctx(group, now_ms, Timing(), _no_assign)
    if group.state is S.DEAD:
        return ctx.outcome(member_id=member_id, error=COORDINATOR_NOT_AVAILABLE)
    error = _validate_member(group, member_id, group_instance_id)
    if error is None and generation != group.generation:
        error = ILLEGAL_GENERATION
    if error is not None:
        return ctx.outcome(member_id=member_id, error=error)
    if group.state is S.EMPTY:
        return ctx.outcome(member_id=member_id, error=UNKNOWN_MEMBER_ID)
    member = group.member(member_id)
    assert member is not None
    ctx.set_member(
        member_id, last_heartbeat_ms=now_ms, expires_at_ms=now_ms + member.session_timeout_ms
    )
    if group.state is S.PREPARING_REBALANCE:
        return ctx.outcome(member_id=member_id, error=REBALANCE_IN_PROGRESS)
    # "Consumers may start sending heartbeats after join-group response, while the group is
    # in CompletingRebalance state ... treat them as normal heartbeat requests".
    return ctx.outcome(member_id=member_id)


def offset_commit_check(
    group: LiveGroup, *, generation: int, member_id: str, group_instance_id: str | None
) -> str | None:
    """CG.validateOffsetCommit: the error an OffsetCommit gets, or None.

    With no generation and no member it comes from a consumer outside group management
    (assign() mode) or an admin tool, and may commit only while the group has no members; any
    other must come from a member of the current generation, and not while the group is
    waiting for the leader's assignment."""
    if group.state is S.DEAD:
        return COORDINATOR_NOT_AVAILABLE
    if generation < 0 and not member_id and group_instance_id is None:
        return UNKNOWN_MEMBER_ID if group.members else None
    error = _validate_member(group, member_id, group_instance_id)
    if error is None and generation != group.generation:
        error = ILLEGAL_GENERATION
    if error is None and group.state is S.COMPLETING_REBALANCE:
        error = REBALANCE_IN_PROGRESS
    return error


def heartbeats_kept(group: LiveGroup, member_ids: Iterable[str], now_ms: int) -> LiveGroup:
    """Members living in the server: their heartbeat threads beat, their timers restart."""
    wanted = set(member_ids)
    return replace(
        group,
        members=tuple(
            replace(m, last_heartbeat_ms=now_ms, expires_at_ms=now_ms + m.session_timeout_ms)
            if m.member_id in wanted
            else m
            for m in group.members
        ),
    )


def leave(
    group: LiveGroup,
    *,
    members: Sequence[tuple[str, str | None]],
    now_ms: int,
    assign: ServerAssign,
    timing: Timing,
) -> tuple[Outcome, dict[tuple[str, str | None], str | None]]:
    """GMM.classicGroupLeaveToClassicGroup (v3+ batches: member id and group.instance.id)."""
    ctx = _Ctx(group, now_ms, timing, assign)
    results: dict[tuple[str, str | None], str | None] = {}
    if group.state is S.DEAD:
        for key in members:
            results[(key[0], key[1])] = COORDINATOR_NOT_AVAILABLE
        return ctx.outcome(error=COORDINATOR_NOT_AVAILABLE), results
    left: list[str] = []
    for member_id, instance_id in members:
        key = (member_id, instance_id)
        if member_id == UNKNOWN_MEMBER:
            # Administrative removal by group.instance.id.
            static_id = ctx.group.static_member_id(instance_id) if instance_id is not None else None
            if static_id is None:
                results[key] = UNKNOWN_MEMBER_ID
                continue
            ctx.remove(static_id, UNKNOWN_MEMBER_ID)
            left.append(static_id)
            results[key] = None
        elif ctx.group.is_pending(member_id):
            ctx.remove(member_id, None)
            results[key] = None
            left.append(member_id)
        else:
            error = _validate_member(ctx.group, member_id, instance_id)
            if error is not None:
                results[key] = error
                continue
            ctx.remove(member_id, UNKNOWN_MEMBER_ID)
            left.append(member_id)
            results[key] = None
    if left:
        ctx.say(f"{_names(left)} left the group")
        if ctx.group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            _maybe_prepare_rebalance_or_complete_join(ctx, f"{_names(left)} left")
        elif ctx.group.state is S.PREPARING_REBALANCE:
            _maybe_complete_join_phase(ctx)
    return ctx.outcome(), results


def rebalance(
    group: LiveGroup, *, now_ms: int, reason: str, assign: ServerAssign, timing: Timing
) -> Outcome:
    """A rebalance asked from outside (partition count changed, a member in the server added
    or removed, the board's button). An Empty group has nobody to rebalance; a join phase
    under way takes it in (the members in the server rejoin)."""
    ctx = _Ctx(group, now_ms, timing, assign)
    if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
        _prepare_rebalance(ctx, reason)
    elif group.state is S.PREPARING_REBALANCE:
        ctx.group = replace(
            group,
            members=tuple(
                replace(m, awaiting_join=True) if m.server_side else m for m in group.members
            ),
        )
        _maybe_complete_join_phase(ctx)
    else:
        ctx.say(f"nothing to rebalance: the group is {group.state.value}")
    return ctx.outcome()


# --- timers --------------------------------------------------------------------------------

_HEARTBEAT, _PENDING, _JOIN, _SYNC = range(4)


def _timers(group: LiveGroup) -> list[tuple[int, int, int, str]]:
    timers: list[tuple[int, int, int, str]] = []
    for i, m in enumerate(group.members):
        if m.expires_at_ms is not None:
            timers.append((m.expires_at_ms, _HEARTBEAT, i, m.member_id))
    for i, (mid, at) in enumerate(group.pending):
        timers.append((at, _PENDING, i, mid))
    if group.join_deadline_ms is not None:
        timers.append((group.join_deadline_ms, _JOIN, 0, ""))
    if group.sync_deadline_ms is not None:
        timers.append((group.sync_deadline_ms, _SYNC, 0, ""))
    return timers


def next_deadline(group: LiveGroup) -> int | None:
    """The earliest timer, so the caller knows when to tick."""
    return min((t[0] for t in _timers(group)), default=None)


def tick(group: LiveGroup, *, now_ms: int, timing: Timing, assign: ServerAssign) -> Outcome:
    """Fire every timer due at ``now_ms``, in time order, each at its own deadline."""
    ctx = _Ctx(group, now_ms, timing, assign)
    # Every firing removes or moves a timer past its deadline; the bound only guards against
    # a state built by hand that would loop.
    for _ in range(8 * (len(group.members) + len(group.pending)) + 64):
        due = [t for t in _timers(ctx.group) if t[0] <= now_ms]
        if not due:
            break
        at, kind, _, member_id = min(due)
        ctx.now = at
        if kind == _HEARTBEAT:
            _expire_heartbeat(ctx, member_id)
        elif kind == _PENDING:
            _expire_pending(ctx, member_id)
        elif kind == _JOIN:
            _fire_join(ctx)
        else:
            _expire_pending_sync(ctx)
    ctx.now = now_ms
    return ctx.outcome()


def _expire_heartbeat(ctx: _Ctx, member_id: str) -> None:
    """GMM.expireClassicGroupMemberHeartbeat and removeMemberAndUpdateClassicGroup."""
    member = ctx.group.member(member_id)
    assert member is not None
    satisfied = not member.is_new and (member.awaiting_join or member.awaiting_sync)
    if satisfied:
        ctx.set_member(member_id, expires_at_ms=None)
        return
    why = "its JoinGroup waited too long" if member.is_new else "its session timed out"
    ctx.say(f"{member_id} removed: {why}")
    ctx.remove(member_id, UNKNOWN_MEMBER_ID)
    group = ctx.group
    if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
        _maybe_prepare_rebalance_or_complete_join(ctx, f"{member_id} failed")
    elif group.state is S.PREPARING_REBALANCE and group.has_all_members_joined():
        _complete_join(ctx)


def _expire_pending(ctx: _Ctx, member_id: str) -> None:
    """GMM.removePendingMemberAndUpdateClassicGroup."""
    ctx.remove(member_id, None)
    ctx.say(f"{member_id} never joined with its id: forgotten")
    group = ctx.group
    if group.state is S.PREPARING_REBALANCE and group.has_all_members_joined():
        _complete_join(ctx)


def _fire_join(ctx: _Ctx) -> None:
    group = ctx.group
    if group.initial_delay_ms is not None and group.initial_remaining_ms is not None:
        # GMM.tryCompleteInitialRebalanceElseSchedule
        remaining = group.initial_remaining_ms
        if group.new_member_added and remaining != 0:
            delay = min(ctx.timing.initial_rebalance_delay_ms, remaining)
            ctx.group = replace(
                group,
                new_member_added=False,
                join_deadline_ms=ctx.now + delay,
                initial_remaining_ms=max(remaining - group.initial_delay_ms, 0),
                initial_delay_ms=delay,
            )
            ctx.say(f"new members arrived: group.initial.rebalance.delay.ms waits {delay} ms more")
            return
    _complete_join(ctx)


def _expire_pending_sync(ctx: _Ctx) -> None:
    """GMM.expirePendingSync."""
    group = replace(ctx.group, sync_deadline_ms=None)
    ctx.group = group
    if group.state not in (S.COMPLETING_REBALANCE, S.STABLE):
        return
    silent = [m.member_id for m in group.members if not m.synced]
    if not silent:
        return
    for mid in silent:
        ctx.remove(mid, UNKNOWN_MEMBER_ID)
    _prepare_rebalance(ctx, f"{_names(silent)} never sent SyncGroup: removed")


# --- answers -------------------------------------------------------------------------------


def join_answer_take(group: LiveGroup, member_id: str) -> tuple[LiveGroup, JoinAnswer | None]:
    """The parked JoinGroup's answer, once; None while it is still parked."""
    member = group.member(member_id)
    if member is None:
        ctx = _Ctx(group, 0, Timing(), _no_assign)
        error = ctx.take_departed(member_id)
        # Kafka answers a removed member with the unknown id, a fenced one with its own.
        answer_id = member_id if error == FENCED_INSTANCE_ID else UNKNOWN_MEMBER
        return ctx.group, _error_answer(answer_id, error)
    if member.answer is None:
        return group, None
    answer = member.answer
    ctx = _Ctx(group, 0, Timing(), _no_assign)
    ctx.set_member(member_id, answer=None)
    return ctx.group, answer


def member_partitions(member: LiveMember) -> tuple[tuple[str, int], ...]:
    """Its assignment decoded (consumer protocol), () if not decodable."""
    if not member.assignment:
        return ()
    try:
        return decode_assignment(member.assignment).partitions()
    except ProtocolBytesError:
        return ()


def assign_with_loglab(topics: Mapping[str, int]) -> ServerAssign:
    """A ServerAssign over LogLab's assignors, for topics with these partition counts."""

    def run(
        protocol_name: str,
        subscriptions: Mapping[str, tuple[str, ...]],
        owned: Mapping[str, tuple[int, tuple[tuple[str, int], ...]]],
    ) -> Mapping[str, Sequence[tuple[str, int]]]:
        return assignors.assign(
            protocol_name,
            {mid: list(t) for mid, t in subscriptions.items()},
            dict(topics),
            owned={mid: (gen, list(tps)) for mid, (gen, tps) in owned.items()},
        )

    return run


# --- helpers -------------------------------------------------------------------------------


@dataclass
class _Ctx:
    """One call's working state: the group as it changes, the time, what to say."""

    group: LiveGroup
    now: int
    timing: Timing
    assign: ServerAssign
    sentences: list[str] = field(default_factory=list)
    completed: bool = False

    def say(self, sentence: str) -> None:
        self.sentences.append(sentence)

    def outcome(self, **kwargs: Any) -> Outcome:
        narration = kwargs.pop("narration", "")
        text = "; ".join([*self.sentences, narration] if narration else self.sentences)
        return Outcome(group=self.group, narration=text, completed=self.completed, **kwargs)

    def refuse_join(self, member_id: str, error: str, reason: str) -> Outcome:
        return self.outcome(
            member_id=member_id,
            error=error,
            answer=_error_answer(member_id, error),
            narration=f"JoinGroup refused ({error}): {reason}",
        )

    def join_outcome(self, member_id: str) -> Outcome:
        member = self.group.member(member_id)
        if member is None:
            error = self.take_departed(member_id)
            answer = _error_answer(UNKNOWN_MEMBER, error)
            return self.outcome(member_id=member_id, error=error, answer=answer)
        if member.awaiting_join:
            return self.outcome(member_id=member_id, parked=True)
        answer = member.answer
        return self.outcome(
            member_id=member_id, answer=answer, error=answer.error if answer else None
        )

    def set_member(self, member_id: str, **changes: Any) -> None:
        self.group = replace(
            self.group,
            members=tuple(
                replace(m, **changes) if m.member_id == member_id else m for m in self.group.members
            ),
        )

    def depart(self, member_id: str, error: str) -> None:
        kept = tuple(d for d in self.group.departed if d[0] != member_id)
        self.group = replace(self.group, departed=(*kept, (member_id, error))[-MAX_DEPARTED:])

    def take_departed(self, member_id: str) -> str:
        for mid, error in self.group.departed:
            if mid == member_id:
                self.group = replace(
                    self.group, departed=tuple(d for d in self.group.departed if d[0] != mid)
                )
                return error
        return UNKNOWN_MEMBER_ID

    def remove(self, member_id: str, parked_error: str | None) -> None:
        """CG.remove (a pending id or a member); a parked request of the member is answered
        ``parked_error`` (GMM.removeMemberAndUpdateClassicGroup)."""
        group = self.group
        member = group.member(member_id)
        if member is not None and parked_error and (member.awaiting_join or member.awaiting_sync):
            self.depart(member_id, parked_error)
            group = self.group
        members = tuple(m for m in group.members if m.member_id != member_id)
        leader = group.leader_id
        if leader == member_id:
            leader = members[0].member_id if members else None
        self.group = replace(
            group,
            members=members,
            leader_id=leader,
            pending=tuple(p for p in group.pending if p[0] != member_id),
        )


def _no_assign(
    protocol_name: str,
    subscriptions: Mapping[str, tuple[str, ...]],
    owned: Mapping[str, tuple[int, tuple[tuple[str, int], ...]]],
) -> Mapping[str, Sequence[tuple[str, int]]]:
    return {}


def _validate_member(group: LiveGroup, member_id: str, group_instance_id: str | None) -> str | None:
    """CG.validateMember."""
    if group_instance_id is not None:
        existing = group.static_member_id(group_instance_id)
        if existing is None:
            return UNKNOWN_MEMBER_ID
        if existing != member_id:
            return FENCED_INSTANCE_ID
    if group.member(member_id) is None:
        return UNKNOWN_MEMBER_ID
    return None


def _transition(group: LiveGroup, target: GroupState) -> LiveGroup:
    """CG.transitionTo (ClassicGroupState.validPreviousStates)."""
    return replace(group, state=transition(group.state, target), previous_state=group.state)


def _current_answer(group: LiveGroup, member_id: str, *, with_members: bool) -> JoinAnswer:
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    if with_members:
        # CG.currentClassicGroupMembers: each member's metadata for the selected assignor.
        members = tuple(
            (m.member_id, m.group_instance_id, m.metadata(group.protocol_name))
            for m in group.members
        )
    return JoinAnswer(
        generation=group.generation,
        protocol_type=group.protocol_type,
        protocol_name=group.protocol_name,
        leader_id=group.leader_id or "",
        member_id=member_id,
        members=members,
    )


def _error_answer(member_id: str, error: str | None) -> JoinAnswer:
    return JoinAnswer(
        generation=NO_GENERATION,
        protocol_type=None,
        protocol_name=None,
        leader_id=UNKNOWN_MEMBER,
        member_id=member_id,
        error=error,
    )


def _dedupe(protocols: Sequence[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    seen: set[str] = set()
    out = []
    for name, data in protocols:
        if name not in seen:
            seen.add(name)
            out.append((str(name), bytes(data)))
    return tuple(out)


def _names_of(protocols: Sequence[tuple[str, bytes]]) -> list[str]:
    return [name for name, _ in protocols]


def _names(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def _inconsistent_reason(group: LiveGroup, request: JoinRequest) -> str:
    if group.state is S.EMPTY:
        return "a JoinGroup needs a protocol type and at least one assignor"
    if group.protocol_type != request.protocol_type:
        return f"protocol type {request.protocol_type!r} is not the group's {group.protocol_type!r}"
    return "none of its assignors is supported by every member"


def _member_error_reason(error: str, member_id: str) -> str:
    if error == FENCED_INSTANCE_ID:
        return f"{member_id} was replaced by a newer member with its group.instance.id"
    if error == UNKNOWN_MEMBER_ID:
        return f"{member_id} is not a member of the group"
    return error


def _java_string_hash(text: str) -> int:
    data = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h


def _java_hash_order(keys: Iterable[str]) -> list[str]:
    """Iteration order of a small ``HashMap<String, ?>`` filled with ``keys`` in order."""
    items = list(keys)
    capacity = 16
    while len(items) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = _java_string_hash(key)
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(items, key=bucket)


# --- JSON ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, GroupState):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def _b64(text: Any) -> bytes:
    return base64.b64decode(text) if text else b""


def _join_answer_from(data: Mapping[str, Any] | None) -> JoinAnswer | None:
    if data is None:
        return None
    return JoinAnswer(
        generation=data["generation"],
        protocol_type=data.get("protocol_type"),
        protocol_name=data.get("protocol_name"),
        leader_id=data.get("leader_id", ""),
        member_id=data.get("member_id", ""),
        members=tuple((a, b, _b64(c)) for a, b, c in data.get("members", ())),
        error=data.get("error"),
    )


def _sync_answer_from(data: Mapping[str, Any] | None) -> SyncAnswer | None:
    if data is None:
        return None
    return SyncAnswer(
        error=data.get("error"),
        assignment=_b64(data.get("assignment")),
        protocol_type=data.get("protocol_type"),
        protocol_name=data.get("protocol_name"),
    )


def _member_from(data: Mapping[str, Any]) -> LiveMember:
    return LiveMember(
        member_id=data["member_id"],
        client_id=data.get("client_id", ""),
        group_instance_id=data.get("group_instance_id"),
        protocol_type=data.get("protocol_type", ""),
        protocols=tuple((name, _b64(meta)) for name, meta in data.get("protocols", ())),
        session_timeout_ms=data["session_timeout_ms"],
        rebalance_timeout_ms=data["rebalance_timeout_ms"],
        last_heartbeat_ms=data["last_heartbeat_ms"],
        server_side=data.get("server_side", False),
        awaiting_join=data.get("awaiting_join", False),
        joined_generation=data.get("joined_generation", NO_GENERATION),
        synced=data.get("synced", False),
        assignment=_b64(data.get("assignment")),
        answer=_join_answer_from(data.get("answer")),
        is_new=data.get("is_new", False),
        expires_at_ms=data.get("expires_at_ms"),
        awaiting_sync=data.get("awaiting_sync", False),
        sync_answer=_sync_answer_from(data.get("sync_answer")),
    )
