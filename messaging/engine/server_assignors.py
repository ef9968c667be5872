"""The group coordinator's own assignors for the "consumer" protocol (KIP-848): uniform, range.

Under KIP-848 the broker computes the target assignment; clients only pick an assignor by name
(``group.remote.assignor``). These follow apache/kafka's ``group-coordinator`` module,
``.../coordinator/group/assignor/``: ``UniformAssignor`` (``UniformHomogeneousAssignmentBuilder``
when every member subscribes to the same topics, ``UniformHeterogeneousAssignmentBuilder``
otherwise) and ``RangeAssignor``. They are not the client-side assignors of ``assignors.py``:
uniform puts balance first and stickiness second, and range is per topic, co-partitioned, with
static members (``group.instance.id``) sorted first.

The shapes are Kafka's ``GroupSpec`` and ``GroupAssignment`` with topic names for topic ids:
members in the order the caller gives (Kafka's ``GroupSpec.memberIds()``), each with its
subscribed topics and its current *target* assignment; ``topics`` maps each topic that exists
to its id and partition count (``SubscribedTopicDescriber``). The result maps member id ->
topic -> partitions, and like Kafka's may leave out members that get nothing.

Where Kafka's answer depends on the iteration order of a Java ``HashSet`` of topic ids (which
partitions the homogeneous uniform builder deals first), the order is Java's, computed from
``Uuid.hashCode``; the heterogeneous builder's last tie-break is ``Uuid.compareTo``, both on
the ids given. Racks are not modelled (the snapshot's uniform builders ignore them too).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key

UNIFORM = "uniform"
RANGE = "range"
# group.consumer.assignors (GroupCoordinatorConfig): [UniformAssignor, RangeAssignor]; the first
# is the default when no member names one.
ASSIGNORS: tuple[str, ...] = (UNIFORM, RANGE)
# UniformHeterogeneousAssignmentBuilder.MAX_ITERATION_COUNT.
MAX_ITERATION_COUNT = 16

GroupAssignment = dict[str, dict[str, set[int]]]


class AssignorError(ValueError):
    """Kafka's PartitionAssignorException: the coordinator answers UNKNOWN_SERVER_ERROR."""


@dataclass(frozen=True)
class TopicMeta:
    topic_id: uuid.UUID
    partitions: int


@dataclass(frozen=True)
class MemberSpec:
    """One member as the assignor sees it (``MemberSubscriptionAndAssignmentImpl``)."""

    member_id: str
    subscribed: tuple[str, ...]
    # The member's current target assignment: topic -> partitions, iterated in the given order.
    assignment: Mapping[str, Sequence[int]] = field(default_factory=dict)
    instance_id: str | None = None


def assign(
    name: str,
    members: Sequence[MemberSpec],
    topics: Mapping[str, TopicMeta],
    *,
    homogeneous: bool | None = None,
) -> GroupAssignment:
    """The target assignment the named server-side assignor computes.

    ``homogeneous``: Kafka's ``SubscriptionType`` (computed by the group from its members'
    subscribed topic names); by default, whether every member subscribes to the same topics.
    """
    if not members:
        return {}
    if homogeneous is None:
        homogeneous = len({frozenset(m.subscribed) for m in members}) == 1
    if name == UNIFORM:
        if homogeneous:
            return _uniform_homogeneous(members, topics)
        return _UniformHeterogeneous(members, topics).build()
    if name == RANGE:
        return _range(members, topics, homogeneous)
    raise AssignorError(f"ServerAssignor {name} is not supported.")


# --- Java's orders -------------------------------------------------------------------------


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def java_uuid_hash(topic_id: uuid.UUID) -> int:
    """``Uuid.hashCode()`` as an unsigned 32-bit value."""
    bits = topic_id.int
    xor = (bits >> 64) ^ (bits & 0xFFFFFFFFFFFFFFFF)
    return ((xor >> 32) ^ xor) & 0xFFFFFFFF


def java_uuid_key(topic_id: uuid.UUID) -> tuple[int, int]:
    """The order of ``Uuid.compareTo``: most, then least significant bits, as signed longs."""
    bits = topic_id.int
    return _signed64(bits >> 64), _signed64(bits & 0xFFFFFFFFFFFFFFFF)


def _java_table_size(expected: int) -> int:
    """The table size of ``new HashSet<>(collection)``: max(size / .75 + 1, 16), to a power
    of two."""
    wanted = max(int(expected / 0.75) + 1, 16)
    size = 1
    while size < wanted:
        size <<= 1
    return size


def java_hash_set_order(names: Iterable[str], topics: Mapping[str, TopicMeta]) -> list[str]:
    """Topic names in the iteration order of a Java ``HashSet`` of their ids (bucket order;
    within a bucket, the order given)."""
    ordered = list(dict.fromkeys(names))
    table = _java_table_size(len(ordered))

    def bucket(name: str) -> int:
        h = java_uuid_hash(topics[name].topic_id)
        return (h ^ (h >> 16)) & (table - 1)

    return sorted(ordered, key=bucket)


def _check_exists(names: Iterable[str], topics: Mapping[str, TopicMeta]) -> None:
    for name in names:
        if name not in topics:
            raise AssignorError(
                f"Members are subscribed to topic {name} which doesn't exist in the topic metadata."
            )


# --- uniform, every member subscribed to the same topics -----------------------------------


def _uniform_homogeneous(
    members: Sequence[MemberSpec], topics: Mapping[str, TopicMeta]
) -> GroupAssignment:
    """UniformHomogeneousAssignmentBuilder: each member keeps what it holds up to its quota
    (the first ``total % members`` members may hold one more), and the rest is dealt, in order,
    to the members with room left."""
    first = members[0].subscribed
    _check_exists(first, topics)
    subscribed = java_hash_set_order(first, topics)
    if not subscribed:
        return {}
    assigned = {(t, p) for m in members for t, parts in m.assignment.items() for p in parts}
    unassigned: list[tuple[str, int]] = []
    total = 0
    for name in subscribed:
        count = topics[name].partitions
        unassigned.extend((name, p) for p in range(count) if (name, p) not in assigned)
        total += count
    minimum, extra = divmod(total, len(members))

    wanted = set(subscribed)
    target: GroupAssignment = {}
    unfilled: list[tuple[str, int]] = []
    for member in members:
        quota = minimum
        if extra > 0:
            quota += 1
            extra -= 1
        kept: dict[str, set[int]] = {}
        for name, parts in member.assignment.items():
            if name not in wanted:
                continue  # no longer subscribed: the whole topic goes
            if len(parts) <= quota:
                quota -= len(parts)
                kept[name] = set(parts)
                continue
            keep: set[int] = set()
            for p in parts:
                if quota > 0:
                    quota -= 1
                    keep.add(p)
                else:
                    unassigned.append((name, p))
            if keep:
                kept[name] = keep
        if quota > 0:
            unfilled.append((member.member_id, quota))
        target[member.member_id] = kept

    next_index = 0
    for member_id, quota in unfilled:
        for _ in range(quota):
            if next_index >= len(unassigned):
                break
            name, p = unassigned[next_index]
            next_index += 1
            target[member_id].setdefault(name, set()).add(p)
    if next_index < len(unassigned):
        raise AssignorError("Partitions were left unassigned")
    return target


# --- uniform, members subscribed to different topics ---------------------------------------


class _Balancer:
    """UniformHeterogeneousAssignmentBuilder.MemberAssignmentBalancer: a least loaded range
    of members growing rightwards and a most loaded range growing leftwards, over the members
    sorted by how many partitions they hold."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.sorted: list[int] = []
        self.least_end = 0
        self.least_count = -1
        self.next_least = 0
        self.most_start = 0
        self.most_end = 0
        self.most_count = 1
        self.next_most = -1

    def initialize(self, members: list[int]) -> int:
        if not members:
            raise ValueError("Cannot balance an empty subscriber list.")
        self.sorted = sorted(members, key=lambda i: (self.sizes[i], i))
        self.least_end = 0
        self.least_count = self.sizes[self.sorted[0]] - 1
        self.next_least = 0
        self.most_start = len(self.sorted)
        self.most_end = len(self.sorted)
        self.most_count = self.sizes[self.sorted[-1]] + 1
        self.next_most = len(self.sorted) - 1
        return self.sizes[self.sorted[-1]] - self.sizes[self.sorted[0]]

    def next_least_loaded(self) -> int:
        if self.next_least >= self.least_end:
            self.least_count += 1
            while (
                self.least_end < len(self.sorted)
                and self.sizes[self.sorted[self.least_end]] == self.least_count
            ):
                self.least_end += 1
            self.next_least = 0
        member = self.sorted[self.next_least]
        self.next_least += 1
        return member

    def next_most_loaded(self) -> int:
        if self.next_most < self.most_start:
            if self.most_end <= self.most_start and self.most_start > 0:
                self.most_count = self.sizes[self.sorted[self.most_start - 1]]
            else:
                self.most_count -= 1
            while (
                self.most_start > 0
                and self.sizes[self.sorted[self.most_start - 1]] == self.most_count
            ):
                self.most_start -= 1
            self.next_most = self.most_end - 1
        if self.next_most < 0:
            return -1
        member = self.sorted[self.next_most]
        self.next_most -= 1
        return member

    def exclude_most_loaded(self) -> None:
        at = self.next_most + 1
        member = self.sorted[at]
        self.sorted[at] = self.sorted[self.most_end - 1]
        self.sorted[self.most_end - 1] = member
        self.most_end -= 1

    def balanced(self) -> bool:
        return self.most_count - self.least_count <= 1


class _UniformHeterogeneous:
    """UniformHeterogeneousAssignmentBuilder: drop what members no longer subscribe to, deal
    the unassigned partitions topic by topic to each topic's least loaded subscribers, then
    move partitions from the most to the least loaded subscribers until balanced."""

    def __init__(self, members: Sequence[MemberSpec], topics: Mapping[str, TopicMeta]) -> None:
        self.members = list(members)
        self.topics = topics
        self.index = {m.member_id: i for i, m in enumerate(self.members)}
        self.subscribers: dict[str, list[int]] = {}
        self.sizes = [0] * len(self.members)
        self.target: GroupAssignment = {}
        for i, member in enumerate(self.members):
            _check_exists(member.subscribed, topics)
            for name in dict.fromkeys(member.subscribed):
                self.subscribers.setdefault(name, []).append(i)
        self.owners = {name: [-1] * topics[name].partitions for name in self.subscribers}

    def _topic_key(self, a: str, b: str) -> int:
        count_a, count_b = self.topics[a].partitions, self.topics[b].partitions
        subs_a, subs_b = len(self.subscribers[a]), len(self.subscribers[b])
        # Partitions per subscriber, descending (Double.compare of the two quotients).
        per_a, per_b = count_a / subs_a, count_b / subs_b
        if per_a != per_b:
            return -1 if per_a > per_b else 1
        if subs_a != subs_b:
            return -1 if subs_a < subs_b else 1
        key_a = java_uuid_key(self.topics[a].topic_id)
        key_b = java_uuid_key(self.topics[b].topic_id)
        return (key_a > key_b) - (key_a < key_b)

    def _sorted_topics(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=cmp_to_key(self._topic_key))

    def build(self) -> GroupAssignment:
        if not self.subscribers:
            return {}
        self._revoke_unsubscribed()
        unassigned = {
            name: [p for p, owner in enumerate(owners) if owner == -1]
            for name, owners in self.owners.items()
        }
        self._assign_remaining({n: ps for n, ps in unassigned.items() if ps})
        movable = [name for name in self.subscribers if len(self.subscribers[name]) >= 2]
        if movable:
            self._balance_topics(movable)
        return self.target

    def _revoke_unsubscribed(self) -> None:
        for i, member in enumerate(self.members):
            kept: dict[str, set[int]] = {}
            for name, parts in member.assignment.items():
                if name in member.subscribed:
                    self.sizes[i] += len(parts)
                    for p in parts:
                        self.owners[name][p] = i
                    kept[name] = set(parts)
            self.target[member.member_id] = kept

    def _assign_remaining(self, partitions: Mapping[str, list[int]]) -> None:
        balancer = _Balancer(self.sizes)
        for name in self._sorted_topics(partitions):
            balancer.initialize(self.subscribers[name])
            for p in partitions[name]:
                self._assign(name, p, balancer.next_least_loaded())

    def _balance_topics(self, names: list[str]) -> None:
        ordered = self._sorted_topics(names)
        last_rebalanced = -1
        balancer = _Balancer(self.sizes)
        for _ in range(MAX_ITERATION_COUNT):
            for at, name in enumerate(ordered):
                if at == last_rebalanced:
                    return
                moved = self._balance_topic(name, balancer)
                if moved > 0 or last_rebalanced == -1:
                    last_rebalanced = at

    def _balance_topic(self, name: str, balancer: _Balancer) -> int:
        moved = 0
        owners = self.owners[name]
        if balancer.initialize(self.subscribers[name]) <= 1:
            return moved
        partitions = sorted(range(len(owners)), key=lambda p: (owners[p], p))
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for i, p in enumerate(partitions):
            starts.setdefault(owners[p], i)
            ends[owners[p]] = i + 1
        while not balancer.balanced():
            most = -1
            while True:
                most = balancer.next_most_loaded()
                if most == -1:
                    break
                if most not in ends or ends[most] - starts[most] <= 0:
                    balancer.exclude_most_loaded()
                    continue
                break
            if most == -1:
                break
            p = partitions[ends[most] - 1]
            ends[most] -= 1
            least = balancer.next_least_loaded()
            if balancer.balanced():
                break
            self._assign(name, p, least)
            moved += 1
        return moved

    def _assign(self, name: str, p: int, member: int) -> None:
        old = self.owners[name][p]
        if old != -1:
            held = self.target[self.members[old].member_id].get(name)
            if held is not None:
                held.discard(p)
                if not held:
                    del self.target[self.members[old].member_id][name]
            self.owners[name][p] = -1
            self.sizes[old] -= 1
        self.target[self.members[member].member_id].setdefault(name, set()).add(p)
        self.owners[name][p] = member
        self.sizes[member] += 1


# --- range -----------------------------------------------------------------------------------


def _range(
    members: Sequence[MemberSpec], topics: Mapping[str, TopicMeta], homogeneous: bool
) -> GroupAssignment:
    """RangeAssignor: members sorted (static ones first, by group.instance.id; then by member
    id), each topic cut into contiguous ranges, the first ``partitions % subscribers``
    subscribers one partition more. Co-partitioned when every member reads the same topics of
    the same size. It ignores the current assignment."""
    ordered = sorted(members, key=cmp_to_key(_range_member_order))
    if homogeneous:
        subscribed = list(dict.fromkeys(ordered[0].subscribed))
        subscribers = {name: len(members) for name in subscribed}
    else:
        subscribers = {}
        for member in ordered:
            for name in dict.fromkeys(member.subscribed):
                subscribers[name] = subscribers.get(name, 0) + 1
    for name in subscribers:
        if name not in topics:
            raise AssignorError("Member is subscribed to a non-existent topic")
    next_start = dict.fromkeys(subscribers, 0)
    extras = {name: topics[name].partitions % count for name, count in subscribers.items()}
    result: GroupAssignment = {}
    for member in ordered:
        mine: dict[str, set[int]] = {}
        names = subscribed if homogeneous else list(dict.fromkeys(member.subscribed))
        for name in names:
            count = topics[name].partitions
            quota = count // subscribers[name]
            if extras[name] > 0:
                quota += 1
                extras[name] -= 1
            start = next_start[name]
            end = min(start + quota, count)
            next_start[name] = end
            if start < end:
                mine[name] = set(range(start, end))
        result[member.member_id] = mine
    return result


def _range_member_order(a: MemberSpec, b: MemberSpec) -> int:
    if a.instance_id is not None and b.instance_id is not None:
        return (a.instance_id > b.instance_id) - (a.instance_id < b.instance_id)
    if a.instance_id is not None:
        return -1
    if b.instance_id is not None:
        return 1
    return (a.member_id > b.member_id) - (a.member_id < b.member_id)
