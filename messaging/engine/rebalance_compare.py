"""The same join (or leave) under the three rebalance protocols, side by side.

One start for all three: a group of ``members`` consumers sharing one topic of ``partitions``,
each owning a contiguous range, every member part-way through its heartbeat interval. At time
0 a new consumer joins (or the last one leaves). The runs use LogLab's coordinators, not a
drawing of them: engine/joining.py (Kafka's classic coordinator, JoinGroup/SyncGroup/Heartbeat)
with clients that behave as the Java consumer does, and engine/consumer_group.py (KIP-848):

* eager (``range``): a member hears of the rebalance at its next heartbeat
  (``heartbeat.interval.ms`` 3 s), revokes everything, rejoins; the join phase ends when the
  last member has rejoined, then the leader's assignment goes out and everyone starts again;
* cooperative (``cooperative-sticky``, KIP-429): members rejoin keeping their partitions; the
  first round takes away only what moves, and whoever gave something up rejoins at once for
  the second round, which hands it over, once the others heard of it at their next heartbeat;
* consumer (KIP-848, the ``uniform`` assignor): no join phase; each member moves towards its
  target at its own heartbeats (``group.consumer.heartbeat.interval.ms`` 5 s), revoking first,
  and a freed partition goes to its new owner at that member's next heartbeat.

A client's "commit, then tell the coordinator" (the revocation callback and its offset commit
before it rejoins or acknowledges) is given :data:`CLIENT_DELAY_MS`. The result is what each
member consumed when, as segments, and what the class should read off them: how long
partitions sat with nobody consuming them, and which members stopped altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from messaging.engine import consumer_group as kip848
from messaging.engine import joining
from messaging.engine.consumer_protocol import (
    ProtocolBytesError,
    Subscription,
    assignment_of,
    decode_assignment,
    decode_subscription,
    encode_subscription,
)
from messaging.engine.group import GroupState
from messaging.engine.server_assignors import TopicMeta

TOPIC = "orders"
CLASSIC_HEARTBEAT_MS = 3_000  # heartbeat.interval.ms (the client's)
CLIENT_DELAY_MS = 100
MAX_MEMBERS = 8
MAX_PARTITIONS = 24
HORIZON_MS = 40_000
PROTOCOLS = ("eager", "cooperative", "consumer")

Protocol = Literal["eager", "cooperative", "consumer"]


@dataclass(frozen=True)
class Scenario:
    members: int = 3
    partitions: int = 6
    event: Literal["join", "leave"] = "join"

    def check(self) -> None:
        if not 1 <= self.members <= MAX_MEMBERS:
            raise ValueError(f"Between 1 and {MAX_MEMBERS} consumers to start with.")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ValueError(f"Between 1 and {MAX_PARTITIONS} partitions.")
        if self.event not in ("join", "leave"):
            raise ValueError("A consumer joins or leaves.")
        if self.event == "leave" and self.members < 2:
            raise ValueError("A leave needs two consumers at least.")


@dataclass(frozen=True)
class Segment:
    """``member`` consumed ``partition`` from ``start_ms`` to ``end_ms``."""

    member: str
    partition: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Run:
    protocol: Protocol
    heartbeat_ms: int
    members: tuple[str, ...]
    segments: tuple[Segment, ...]
    events: tuple[tuple[int, str], ...]
    settled_ms: int
    end_ms: int
    # Partition-milliseconds with nobody consuming, between the event and the settling.
    paused_ms: int
    # Members that had partitions and, for a while, consumed none at all.
    stopped: tuple[str, ...]


# --- who consumes what, over time --------------------------------------------------------------


@dataclass
class _Log:
    consuming: dict[str, set[int]] = field(default_factory=dict)
    since: dict[tuple[str, int], int] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)
    last_change_ms: int = 0
    stopped: set[str] = field(default_factory=set)

    def set(self, member: str, partitions: set[int], now: int) -> None:
        before = self.consuming.get(member, set())
        if before == partitions:
            return
        for p in before - partitions:
            self.segments.append(Segment(member, p, self.since.pop((member, p)), now))
        for p in partitions - before:
            self.since[(member, p)] = now
        if before and not partitions:
            self.stopped.add(member)
        self.consuming[member] = set(partitions)
        self.last_change_ms = max(self.last_change_ms, now)

    def say(self, now: int, text: str) -> None:
        self.events.append((now, text))

    def close(self, end: int) -> list[Segment]:
        for (member, p), start in self.since.items():
            self.segments.append(Segment(member, p, start, end))
        return sorted(self.segments, key=lambda s: (s.partition, s.start_ms))


def _ranges(names: list[str], partitions: int) -> dict[str, set[int]]:
    """The start: contiguous ranges, the first ``partitions % members`` one longer."""
    out: dict[str, set[int]] = {}
    start = 0
    for i, name in enumerate(names):
        size = partitions // len(names) + (1 if i < partitions % len(names) else 0)
        out[name] = set(range(start, start + size))
        start += size
    return out


def _paused(segments: list[Segment], partitions: int, settled: int) -> int:
    paused = 0
    for p in range(partitions):
        covered = sorted((s.start_ms, s.end_ms) for s in segments if s.partition == p)
        at = 0
        for start, end in covered:
            if start > at:
                paused += min(start, settled) - at if at < settled else 0
            at = max(at, end)
            if at >= settled:
                break
        if at < settled:
            paused += settled - at
    return paused


def _run(protocol: Protocol, heartbeat: int, names: list[str], log: _Log, end: int) -> Run:
    settled = max(log.last_change_ms, 0)
    segments = log.close(end)
    partitions = 1 + max((s.partition for s in segments), default=-1)
    return Run(
        protocol=protocol,
        heartbeat_ms=heartbeat,
        members=tuple(names),
        segments=tuple(segments),
        events=tuple(log.events),
        settled_ms=settled,
        end_ms=end,
        paused_ms=_paused(segments, partitions, settled),
        stopped=tuple(m for m in names if m in log.stopped),
    )


def compare(scenario: Scenario) -> tuple[Run, Run, Run]:
    scenario.check()
    return (
        _classic(scenario, cooperative=False),
        _classic(scenario, cooperative=True),
        _consumer(scenario),
    )


def _names(scenario: Scenario) -> tuple[list[str], list[str]]:
    """The members at the start, and everyone who ever takes part."""
    start = [f"c{i + 1}" for i in range(scenario.members)]
    everyone = start + ([f"c{scenario.members + 1}"] if scenario.event == "join" else [])
    return start, everyone


def _phase(i: int, count: int, interval: int) -> int:
    """When member ``i`` of ``count`` heartbeats next, after time 0: staggered over one
    interval, as members started at different moments."""
    return (i + 1) * interval // (count + 1)


# --- the classic protocol, eager or cooperative -------------------------------------------------


@dataclass
class _Client:
    name: str
    owned: set[int]
    generation: int
    next_heartbeat: int | None
    state: str = "stable"  # stable, joining, syncing, rejoin-at
    rejoin_at: int | None = None


def _subscription(owned: set[int], generation: int, cooperative: bool) -> bytes:
    if not cooperative:
        return encode_subscription(Subscription(topics=(TOPIC,)), version=0)
    return encode_subscription(
        Subscription(
            topics=(TOPIC,),
            owned_partitions=((TOPIC, tuple(sorted(owned))),) if owned else (),
            generation_id=generation,
        ),
        version=2,
    )


def _classic(scenario: Scenario, *, cooperative: bool) -> Run:
    protocol: Protocol = "cooperative" if cooperative else "eager"
    assignor = "cooperative-sticky" if cooperative else "range"
    start, everyone = _names(scenario)
    owned = _ranges(start, scenario.partitions)
    assign = joining.assign_with_loglab({TOPIC: scenario.partitions})
    timing = joining.Timing()
    log = _Log()
    members = tuple(
        joining.LiveMember(
            member_id=name,
            client_id=name,
            group_instance_id=None,
            protocol_type="consumer",
            protocols=((assignor, _subscription(owned[name], 1, cooperative)),),
            session_timeout_ms=45_000,
            rebalance_timeout_ms=300_000,
            last_heartbeat_ms=0,
            joined_generation=1,
            synced=True,
            assignment=assignment_of([(TOPIC, p) for p in sorted(owned[name])]),
            expires_at_ms=45_000,
        )
        for name in start
    )
    group = joining.LiveGroup(
        group_id="g",
        state=GroupState.STABLE,
        generation=1,
        protocol_type="consumer",
        protocol_name=assignor,
        leader_id=start[0],
        members=members,
    )
    clients = {
        name: _Client(name, set(owned[name]), 1, _phase(i, len(start), CLASSIC_HEARTBEAT_MS))
        for i, name in enumerate(start)
    }
    for name in start:
        log.set(name, owned[name], 0)

    def rejoin(client: _Client, now: int) -> None:
        nonlocal group
        outcome = joining.join(
            group,
            joining.JoinRequest(
                member_id=client.name
                if client.name in {m.member_id for m in group.members}
                else "",
                new_member_id=client.name,
                group_instance_id=None,
                client_id=client.name,
                protocol_type="consumer",
                protocols=(
                    (assignor, _subscription(client.owned, client.generation, cooperative)),
                ),
                session_timeout_ms=45_000,
                rebalance_timeout_ms=300_000,
                requires_known_member_id=False,
            ),
            now,
            timing=timing,
            assign=assign,
        )
        group = outcome.group
        client.state = "joining"
        client.next_heartbeat = None
        if outcome.answer is not None:
            group = replace(
                group,
                members=tuple(
                    replace(m, answer=outcome.answer) if m.member_id == client.name else m
                    for m in group.members
                ),
            )

    def drive(now: int) -> None:
        """Answers the coordinator has for parked clients: joins, then syncs."""
        nonlocal group
        moved = True
        while moved:
            moved = False
            for client in clients.values():
                if client.state == "joining":
                    group, answer = joining.join_answer_take(group, client.name)
                    if answer is None:
                        continue
                    moved = True
                    client.generation = answer.generation
                    assignments: dict[str, bytes] = {}
                    if answer.members:
                        assignments = _leader_assign(answer, assign, cooperative)
                        log.say(
                            now,
                            f"join phase over: generation {answer.generation}; "
                            f"the leader {client.name} computes the assignment",
                        )
                    outcome = joining.sync(
                        group,
                        member_id=client.name,
                        generation=answer.generation,
                        group_instance_id=None,
                        protocol_type=None,
                        protocol_name=None,
                        assignments=assignments,
                        now_ms=now,
                    )
                    group = outcome.group
                    client.state = "syncing"
                    if outcome.assignment is not None and not outcome.parked:
                        synced(client, outcome.assignment, now)
                elif client.state == "syncing":
                    outcome = joining.sync_poll(
                        group, member_id=client.name, generation=client.generation
                    )
                    group = outcome.group
                    if outcome.parked or outcome.assignment is None:
                        continue
                    moved = True
                    synced(client, outcome.assignment, now)

    def synced(client: _Client, assignment: bytes, now: int) -> None:
        got = {p for _, p in decode_assignment(assignment).partitions()}
        client.next_heartbeat = now + CLASSIC_HEARTBEAT_MS
        client.state = "stable"
        revoked = client.owned - got
        client.owned = got
        if cooperative:
            log.set(client.name, got, now)
            if revoked:
                client.state = "rejoin-at"
                client.rejoin_at = now + CLIENT_DELAY_MS
                log.say(
                    now,
                    f"{client.name} gives up {_list(revoked)} and rejoins at once "
                    "for the second round",
                )
        else:
            log.set(client.name, got, now)

    # Time 0: the event.
    joiner = everyone[-1]
    if scenario.event == "join":
        clients[joiner] = _Client(joiner, set(), -1, None)
        log.say(0, f"{joiner} sends JoinGroup: the group prepares a rebalance")
        rejoin(clients[joiner], 0)
    else:
        leaver = start[-1]
        log.set(leaver, set(), 0)
        outcome, _ = joining.leave(
            group, members=[(leaver, None)], now_ms=0, assign=assign, timing=timing
        )
        group = outcome.group
        del clients[leaver]
        log.say(0, f"{leaver} sends LeaveGroup: the group prepares a rebalance")

    now = 0
    while now <= HORIZON_MS:
        times = [c.next_heartbeat for c in clients.values() if c.next_heartbeat is not None]
        times += [c.rejoin_at for c in clients.values() if c.rejoin_at is not None]
        deadline = joining.next_deadline(group)
        if deadline is not None:
            times.append(deadline)
        upcoming = [t for t in times if t >= now]
        if not upcoming:
            break
        now = min(upcoming)
        if deadline is not None and deadline <= now:
            group = joining.tick(group, now_ms=now, timing=timing, assign=assign).group
        for client in sorted(clients.values(), key=lambda c: c.name):
            if client.rejoin_at is not None and client.rejoin_at <= now:
                client.rejoin_at = None
                rejoin(client, now)
            elif client.next_heartbeat is not None and client.next_heartbeat <= now:
                outcome = joining.heartbeat(
                    group,
                    member_id=client.name,
                    generation=client.generation,
                    group_instance_id=None,
                    now_ms=now,
                )
                group = outcome.group
                client.next_heartbeat = now + CLASSIC_HEARTBEAT_MS
                if outcome.error == joining.REBALANCE_IN_PROGRESS:
                    if cooperative:
                        log.say(
                            now,
                            f"{client.name} hears of the rebalance and rejoins, "
                            "keeping its partitions",
                        )
                        rejoin(client, now)
                    else:
                        log.set(client.name, set(), now)
                        client.owned = set()
                        client.state = "rejoin-at"
                        client.next_heartbeat = None
                        client.rejoin_at = now + CLIENT_DELAY_MS
                        log.say(
                            now,
                            f"{client.name} hears of the rebalance: it revokes "
                            "everything and rejoins",
                        )
        drive(now)
        if (
            group.state is GroupState.STABLE
            and all(c.state == "stable" and c.rejoin_at is None for c in clients.values())
            and now >= log.last_change_ms
            and now > 0
            and _settled(log, clients)
        ):
            break
    end = max(log.last_change_ms + 3_000, 10_000)
    if group.state is GroupState.STABLE:
        log.say(log.last_change_ms, f"Stable at generation {group.generation}")
    return _run(protocol, CLASSIC_HEARTBEAT_MS, everyone, log, end)


def _settled(log: _Log, clients: dict[str, _Client]) -> bool:
    return all(log.consuming.get(c.name, set()) == c.owned for c in clients.values())


def _leader_assign(
    answer: joining.JoinAnswer, assign: joining.ServerAssign, cooperative: bool
) -> dict[str, bytes]:
    subscriptions: dict[str, tuple[str, ...]] = {}
    owned: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = {}
    for member_id, _, metadata in answer.members:
        try:
            sub = decode_subscription(metadata)
        except ProtocolBytesError:
            continue
        subscriptions[member_id] = sub.topics
        if cooperative:
            owned[member_id] = (sub.generation_id, sub.owned())
    result = assign(answer.protocol_name or "range", subscriptions, owned)
    return {mid: assignment_of(list(tps)) for mid, tps in result.items()}


def _list(partitions: set[int]) -> str:
    return ", ".join(f"{TOPIC}-{p}" for p in sorted(partitions))


# --- the consumer protocol (KIP-848) --------------------------------------------------------------


def _consumer(scenario: Scenario) -> Run:
    config = kip848.Config()
    interval = config.heartbeat_interval_ms
    start, everyone = _names(scenario)
    topics = {TOPIC: TopicMeta(kip848.topic_id(TOPIC), scenario.partitions)}
    owned = _ranges(start, scenario.partitions)
    group = kip848.stable_group(
        "g",
        {name: kip848.partitions_of({TOPIC: owned[name]}) for name in start},
        topics=topics,
        config=config,
    )
    log = _Log()
    for name in start:
        log.set(name, owned[name], 0)
    next_beat = {name: _phase(i, len(start), interval) for i, name in enumerate(start)}

    def apply(name: str, outcome: kip848.Outcome, now: int) -> None:
        nonlocal group
        group = outcome.group
        if outcome.narration:
            log.say(now, outcome.narration)
        member = group.member(name)
        if member is None:
            return
        log.set(name, {p for _, p in kip848.flat(member.assigned)}, now)
        # Acknowledge a changed assignment at once; otherwise, the next interval.
        next_beat[name] = now + (CLIENT_DELAY_MS if member.ack_due else interval)

    if scenario.event == "join":
        joiner = everyone[-1]
        apply(
            joiner,
            kip848.heartbeat(
                group,
                kip848.server_join(joiner, client_id=joiner, subscribed=(TOPIC,)),
                now_ms=0,
                topics=topics,
                config=config,
            ),
            0,
        )
    else:
        leaver = start[-1]
        log.set(leaver, set(), 0)
        outcome = kip848.heartbeat(
            group,
            kip848.Heartbeat(leaver, kip848.LEAVE_EPOCH),
            now_ms=0,
            topics=topics,
            config=config,
        )
        group = outcome.group
        log.say(0, outcome.narration)
        del next_beat[leaver]

    now = 0
    while now <= HORIZON_MS:
        now = min(next_beat.values())
        if now > HORIZON_MS:
            break
        for name in sorted(next_beat, key=lambda n: (next_beat[n], n)):
            if next_beat[name] != now:
                continue
            apply(
                name,
                kip848.heartbeat(
                    group,
                    kip848.server_heartbeat(group, name),
                    now_ms=now,
                    topics=topics,
                    config=config,
                ),
                now,
            )
        if group.state() is kip848.GroupState.STABLE and now > 0:
            break
    end = max(log.last_change_ms + 3_000, 10_000)
    log.say(log.last_change_ms, f"Stable at group epoch {group.group_epoch}")
    return _run("consumer", interval, everyone, log, end)
