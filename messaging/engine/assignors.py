"""Consumer-group partition assignors, reproducing Kafka's classic client-side assignors.

``range``, ``roundrobin``, ``sticky`` and ``cooperative-sticky`` follow the Java classes
``RangeAssignor``, ``RoundRobinAssignor``, ``AbstractStickyAssignor`` (its "constrained" path
for identical subscriptions and its "general" path otherwise) and ``CooperativeStickyAssignor``.

Some of Kafka's answers depend on the iteration order of Java's ``HashMap``/``HashSet`` (which
member keeps its partitions when not all can). Those spots reproduce Java's order from
``String.hashCode``/``TopicPartition.hashCode``, with the caller's dict order standing in for
insertion order, so results match Kafka's own tests. Rack-aware assignment (KIP-881) is not
modelled: no member has a rack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

TopicPartition = tuple[str, int]
Assignment = dict[str, list[TopicPartition]]
OwnedPartitions = Mapping[str, tuple[int, Sequence[TopicPartition]]]

STRATEGIES: tuple[str, ...] = ("range", "roundrobin", "sticky", "cooperative-sticky")
STICKY_STRATEGIES: frozenset[str] = frozenset({"sticky", "cooperative-sticky"})

# Kafka's AbstractStickyAssignor.DEFAULT_GENERATION: a member that reports no generation.
DEFAULT_GENERATION = -1
# A safety stop for cooperative follow-up rebalances; Kafka's own tests expect at most 4.
MAX_FOLLOW_UPS = 8


@dataclass(frozen=True)
class CooperativeRounds:
    """The two rebalances of one cooperative (KIP-429) reassignment.

    ``target``: the balanced, sticky assignment round 1 aims for. ``first``: what each member
    holds after round 1: the target minus every partition that changes owner.
    ``revoked``: what each member gives up in round 1 (it claimed the partition, round 1 does
    not leave it there). ``withheld``: partition -> the member the target gives it to (Kafka's
    ``partitionsTransferringOwnership``). ``second``: the follow-up rebalance, computed as
    Kafka does from the round-1 holdings; it hands the withheld partitions out, possibly to
    another member of equal load than the target named.

    With identical subscriptions two rounds always settle the group. With differing ones the
    general algorithm may move something else in round 2 and withhold it again, so Kafka
    rebalances once more: ``final`` is the assignment once a round revokes nothing, and
    ``follow_ups`` counts the follow-up rebalances it took (0 when round 1 revoked nothing,
    1 when ``second`` is final).
    """

    first: Assignment
    revoked: Assignment
    withheld: dict[TopicPartition, str]
    second: Assignment
    target: Assignment
    final: Assignment
    follow_ups: int


def assign(
    strategy: str,
    subscriptions: Mapping[str, Sequence[str]],
    partitions: Mapping[str, int],
    owned: OwnedPartitions | None = None,
    static: Mapping[str, str] | None = None,
) -> Assignment:
    """Assign partitions to group members the way the named Kafka assignor does.

    ``subscriptions``: member id -> subscribed topic names. ``partitions``: topic -> partition
    count (subscribed topics missing here are ignored, as Kafka ignores topics without
    metadata). ``owned`` (sticky strategies only): member id -> (generation, owned partitions).
    ``static``: member id -> ``group.instance.id`` (range and roundrobin only, as in Kafka).
    Returns member id -> sorted (topic, partition) list, for every member.
    """
    _validate(strategy, subscriptions, partitions)
    counts = _subscribed_counts(subscriptions, partitions)
    if strategy == "range":
        result = _range(subscriptions, counts, static or {})
    elif strategy == "roundrobin":
        result = _roundrobin(subscriptions, counts, static or {})
    elif strategy == "sticky":
        result = _sticky(subscriptions, counts, owned or {}).assignment
    else:
        result = _cooperative_first_round(subscriptions, counts, owned or {})
    return _sorted(result)


def sticky_target(
    subscriptions: Mapping[str, Sequence[str]],
    partitions: Mapping[str, int],
    owned: OwnedPartitions | None = None,
) -> Assignment:
    """The balanced, sticky assignment both sticky assignors aim for (no withholding)."""
    _validate("sticky", subscriptions, partitions)
    counts = _subscribed_counts(subscriptions, partitions)
    return _sorted(_sticky(subscriptions, counts, owned or {}).assignment)


def cooperative_rounds(
    subscriptions: Mapping[str, Sequence[str]],
    partitions: Mapping[str, int],
    owned: OwnedPartitions | None = None,
) -> CooperativeRounds:
    """Plan a cooperative rebalance: round 1 revokes what must move, round 2 hands it over.

    Each follow-up runs the cooperative-sticky assignor again with the previous round's
    holdings as owned partitions, one generation later, as the group's follow-up rebalance
    does after members revoked partitions.
    """
    _validate("cooperative-sticky", subscriptions, partitions)
    owned = owned or {}
    counts = _subscribed_counts(subscriptions, partitions)
    result = _sticky(subscriptions, counts, owned)
    moving = _transferring(result, subscriptions, owned)
    first = _sorted(_withhold(result.assignment, moving))
    revoked = {
        member: sorted(set(_raw_claims(owned, member)) - set(first[member]))
        for member in subscriptions
    }
    generation = max((gen for gen, _ in owned.values()), default=DEFAULT_GENERATION) + 1
    second = _next_round(subscriptions, counts, first, generation)
    # A member that revoked partitions rejoins, which triggers the follow-up rebalance; the
    # group is settled after a round in which nobody had to revoke anything.
    final, follow_ups = first, 0
    rebalance_again = any(revoked.values())
    while rebalance_again and follow_ups < MAX_FOLLOW_UPS:
        if follow_ups == 0:
            after = second
        else:
            after = _next_round(subscriptions, counts, final, generation + follow_ups)
        rebalance_again = any(set(final[member]) - set(after[member]) for member in final)
        final, follow_ups = after, follow_ups + 1
    return CooperativeRounds(
        first=first,
        revoked=revoked,
        withheld=dict(sorted(moving.items())),
        second=second,
        target=_sorted(result.assignment),
        final=final,
        follow_ups=follow_ups,
    )


def _next_round(
    subscriptions: Mapping[str, Sequence[str]],
    counts: Mapping[str, int],
    holdings: Assignment,
    generation: int,
) -> Assignment:
    held = {member: (generation, tps) for member, tps in holdings.items()}
    result = _sticky(subscriptions, counts, held)
    return _sorted(_withhold(result.assignment, _transferring(result, subscriptions, held)))


# --- validation and shared helpers -------------------------------------------------------


def _validate(
    strategy: str, subscriptions: Mapping[str, Sequence[str]], partitions: Mapping[str, int]
) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown partition.assignment.strategy {strategy!r}; "
            f"expected one of {', '.join(STRATEGIES)}"
        )
    for topic, count in partitions.items():
        if count < 0:
            raise ValueError(f"topic {topic!r} has a negative partition count ({count})")
    for member, topics in subscriptions.items():
        if isinstance(topics, str):
            # A bare string would silently subscribe to one topic per character.
            raise ValueError(f"member {member!r}: subscriptions must be a list of topic names")


def _subscribed_counts(
    subscriptions: Mapping[str, Sequence[str]], partitions: Mapping[str, int]
) -> dict[str, int]:
    # Kafka's coordinator only passes the assignor topics somebody subscribed to and that
    # have metadata; the sticky quotas are computed over exactly these.
    subscribed = {topic for topics in subscriptions.values() for topic in topics}
    return {topic: count for topic, count in sorted(partitions.items()) if topic in subscribed}


def _topic_partitions(topic: str, count: int) -> list[TopicPartition]:
    return [(topic, p) for p in range(count)]


def _sorted(assignment: Mapping[str, Iterable[TopicPartition]]) -> Assignment:
    return {member: sorted(tps) for member, tps in sorted(assignment.items())}


def _member_order(members: Iterable[str], static: Mapping[str, str]) -> list[str]:
    # AbstractPartitionAssignor.MemberInfo.compareTo: static members first, by
    # group.instance.id; dynamic members after them, by member id.
    def key(member: str) -> tuple[int, str, str]:
        instance = static.get(member)
        return (0, instance, member) if instance is not None else (1, "", member)

    return sorted(members, key=key)


def _raw_claims(owned: OwnedPartitions, member: str) -> list[TopicPartition]:
    if member not in owned:
        return []
    return [(topic, partition) for topic, partition in owned[member][1]]


# --- Java iteration order -----------------------------------------------------------------


def _java_string_hash(text: str) -> int:
    """``String.hashCode()`` as an unsigned 32-bit value (over UTF-16 code units)."""
    data = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h


def _java_partition_hash(tp: TopicPartition) -> int:
    """``TopicPartition.hashCode()``: 31 * (31 + partition) + topic.hashCode()."""
    return (31 * (31 + tp[1]) + _java_string_hash(tp[0])) & 0xFFFFFFFF


def _java_capacity(size: int) -> int:
    # A default HashMap/HashSet starts with 16 buckets and doubles past a 0.75 load factor.
    capacity = 16
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def _java_bucket(hash_code: int, capacity: int) -> int:
    return (hash_code ^ (hash_code >> 16)) & (capacity - 1)


def _java_hash_order(members: Iterable[str]) -> list[str]:
    """Iteration order of a fresh ``HashMap<String, ?>`` filled with ``members`` in order."""
    keys = list(members)
    capacity = _java_capacity(len(keys))
    return sorted(keys, key=lambda key: _java_bucket(_java_string_hash(key), capacity))


class _JavaPartitionSet:
    """An insertion-ordered set that can tell which element a Java ``HashSet`` yields first."""

    def __init__(self) -> None:
        self._items: dict[TopicPartition, int] = {}
        self._added = 0
        self._capacity = 16

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, tp: TopicPartition) -> None:
        if tp in self._items:
            return
        self._items[tp] = self._added
        self._added += 1
        self._capacity = max(self._capacity, _java_capacity(len(self._items)))

    def discard(self, tp: TopicPartition) -> None:
        self._items.pop(tp, None)

    def first(self) -> TopicPartition:
        def position(tp: TopicPartition) -> tuple[int, int]:
            return _java_bucket(_java_partition_hash(tp), self._capacity), self._items[tp]

        return min(self._items, key=position)


# --- range and roundrobin ----------------------------------------------------------------


def _range(
    subscriptions: Mapping[str, Sequence[str]], counts: Mapping[str, int], static: Mapping[str, str]
) -> Assignment:
    assignment: Assignment = {member: [] for member in subscriptions}
    for topic, count in counts.items():
        members = _member_order((m for m, t in subscriptions.items() if topic in t), static)
        per_member, extra = divmod(count, len(members))
        for i, member in enumerate(members):
            start = per_member * i + min(i, extra)
            length = per_member + (1 if i < extra else 0)
            assignment[member].extend((topic, p) for p in range(start, start + length))
    return assignment


def _roundrobin(
    subscriptions: Mapping[str, Sequence[str]], counts: Mapping[str, int], static: Mapping[str, str]
) -> Assignment:
    assignment: Assignment = {member: [] for member in subscriptions}
    members = _member_order(subscriptions, static)
    # One circular iterator shared by all topics: it does not restart at each topic.
    position = 0
    for topic, count in counts.items():
        for tp in _topic_partitions(topic, count):
            while topic not in subscriptions[members[position % len(members)]]:
                position += 1
            assignment[members[position % len(members)]].append(tp)
            position += 1
    return assignment


# --- sticky: claims --------------------------------------------------------------------


@dataclass(frozen=True)
class _Claims:
    """Previously owned partitions after Kafka's validity rules.

    ``valid``: member -> partitions it may keep on the strength of owning them. ``contested``:
    partitions claimed by several members of the same (highest) generation; none keeps them.
    """

    valid: dict[str, list[TopicPartition]]
    contested: frozenset[TopicPartition]
    max_generation: int


def _resolve_claims(
    subscriptions: Mapping[str, Sequence[str]], counts: Mapping[str, int], owned: OwnedPartitions
) -> _Claims:
    claimants: dict[TopicPartition, list[tuple[int, str]]] = {}
    max_generation = DEFAULT_GENERATION
    for member in sorted(subscriptions):
        generation = owned[member][0] if member in owned else DEFAULT_GENERATION
        max_generation = max(max_generation, generation)
        for tp in dict.fromkeys(_raw_claims(owned, member)):
            if tp[0] in counts and 0 <= tp[1] < counts[tp[0]]:
                claimants.setdefault(tp, []).append((generation, member))
    winner: dict[TopicPartition, str] = {}
    contested: set[TopicPartition] = set()
    for tp, claims in claimants.items():
        newest = max(generation for generation, _ in claims)
        at_newest = [member for generation, member in claims if generation == newest]
        if len(at_newest) == 1:
            winner[tp] = at_newest[0]
        else:
            contested.add(tp)
    valid: dict[str, list[TopicPartition]] = {member: [] for member in sorted(subscriptions)}
    for member in valid:
        for tp in dict.fromkeys(_raw_claims(owned, member)):
            if winner.get(tp) == member:
                valid[member].append(tp)
    return _Claims(valid=valid, contested=frozenset(contested), max_generation=max_generation)


@dataclass(frozen=True)
class _StickyResult:
    assignment: Assignment
    # Partition -> new owner, known by the constrained path; None means "compute it".
    transferring: dict[TopicPartition, str] | None


def _sticky(
    subscriptions: Mapping[str, Sequence[str]], counts: Mapping[str, int], owned: OwnedPartitions
) -> _StickyResult:
    if not subscriptions:
        return _StickyResult(assignment={}, transferring={})
    claims = _resolve_claims(subscriptions, counts, owned)
    if _all_subscriptions_equal(subscriptions):
        # Java walks its HashMap of members here: when more members own maxQuota partitions
        # than may keep them, the ones visited first keep theirs.
        return _constrained_assign(_java_hash_order(subscriptions), counts, claims)
    builder = _GeneralAssignment(subscriptions, counts, claims, owned)
    return _StickyResult(assignment=builder.build(), transferring=None)


def _all_subscriptions_equal(subscriptions: Mapping[str, Sequence[str]]) -> bool:
    return len({frozenset(topics) for topics in subscriptions.values()}) == 1


# --- sticky: the constrained path (identical subscriptions) ----------------------------


def _constrained_assign(
    members_in_order: Sequence[str], counts: Mapping[str, int], claims: _Claims
) -> _StickyResult:
    members = list(members_in_order)
    total = sum(counts.values())
    min_quota, over = divmod(total, len(members))
    max_quota = min_quota + (1 if over else 0)
    members_over = 0  # members given max_quota while min_quota < max_quota
    assignment: Assignment = {member: [] for member in members}
    revoked: set[TopicPartition] = set()
    under_min: list[str] = []
    at_min: list[str] = []  # at min_quota, may still receive one more

    # Step 1: keep owned partitions, up to the quota this member may still get.
    for member in members:
        mine = sorted(claims.valid[member], key=lambda tp: (tp[1], tp[0]))
        if len(mine) < min_quota:
            keep = len(mine)
            under_min.append(member)
        elif len(mine) >= max_quota and members_over < over:
            members_over += 1
            if members_over == over:
                at_min.clear()
            keep = max_quota
        else:
            keep = min_quota
            if members_over < over:
                at_min.append(member)
        assignment[member].extend(mine[:keep])
        revoked.update(mine[keep:])

    # Step 2: deal the rest round-robin over members below min_quota, then those at it.
    taken = {tp for tps in assignment.values() for tp in tps}
    unassigned = [
        tp
        for topic, count in counts.items()
        for tp in _topic_partitions(topic, count)
        if tp not in taken
    ]
    under_min.sort()
    at_min.sort()
    transferring: dict[TopicPartition, str] = {}
    cursor = 0  # Java's iterator over under_min, which also removes from it
    for tp in unassigned:
        if cursor < len(under_min):
            member = under_min[cursor]
            cursor += 1
        elif under_min:
            member, cursor = under_min[0], 1
        elif at_min:
            member = at_min.pop(0)
        else:
            raise AssertionError("sticky assignor: no member left below its quota")
        assignment[member].append(tp)
        if tp in revoked or tp in claims.contested:
            transferring[tp] = member
        if len(assignment[member]) == min_quota:
            cursor -= 1
            del under_min[cursor]
            at_min.append(member)
    return _StickyResult(assignment=assignment, transferring=transferring)


# --- sticky: the general path (subscriptions differ) -----------------------------------


def _balance_score(assignment: Assignment) -> int:
    sizes = [len(tps) for tps in assignment.values()]
    return sum(abs(a - b) for a, b in combinations(sizes, 2))


class _PartitionMovements:
    """Kafka's PartitionMovements: remembers moves so a partition is not bounced back."""

    def __init__(self) -> None:
        self.by_topic: dict[str, dict[tuple[str, str], _JavaPartitionSet]] = {}
        self.moves: dict[TopicPartition, tuple[str, str]] = {}

    def _remove(self, tp: TopicPartition) -> tuple[str, str]:
        pair = self.moves.pop(tp)
        topic_moves = self.by_topic[tp[0]]
        topic_moves[pair].discard(tp)
        if not topic_moves[pair]:
            del topic_moves[pair]
        if not topic_moves:
            del self.by_topic[tp[0]]
        return pair

    def _add(self, tp: TopicPartition, pair: tuple[str, str]) -> None:
        self.moves[tp] = pair
        self.by_topic.setdefault(tp[0], {}).setdefault(pair, _JavaPartitionSet()).add(tp)

    def move(self, tp: TopicPartition, old: str, new: str) -> None:
        if tp not in self.moves:
            self._add(tp, (old, new))
            return
        source, _ = self._remove(tp)
        if source != new:
            self._add(tp, (source, new))

    def partition_to_move(self, tp: TopicPartition, old: str, new: str) -> TopicPartition:
        # Rather than move tp from old to new, undo an earlier move of a sibling partition
        # of the same topic from new to old: that keeps more partitions where they were.
        topic_moves = self.by_topic.get(tp[0])
        if topic_moves is None:
            return tp
        if tp in self.moves:
            old = self.moves[tp][0]
        reverse = topic_moves.get((new, old))
        if not reverse:
            return tp
        return reverse.first()


class _GeneralAssignment:
    """AbstractStickyAssignor.GeneralAssignmentBuilder, without racks."""

    def __init__(
        self,
        subscriptions: Mapping[str, Sequence[str]],
        counts: Mapping[str, int],
        claims: _Claims,
        owned: OwnedPartitions,
    ) -> None:
        self.counts = dict(counts)
        self.subscriptions = {m: list(dict.fromkeys(t)) for m, t in sorted(subscriptions.items())}
        self.member_order = _java_hash_order(subscriptions)
        self.topic_members: dict[str, list[str]] = {topic: [] for topic in counts}
        self.member_topics: dict[str, list[str]] = {}
        for member, topics in self.subscriptions.items():
            self.member_topics[member] = [topic for topic in topics if topic in counts]
            for topic in self.member_topics[member]:
                self.topic_members[topic].append(member)
        self.current: Assignment = {m: list(tps) for m, tps in claims.valid.items()}
        self.owner: dict[TopicPartition, str] = {
            tp: member for member, tps in self.current.items() for tp in tps
        }
        self.previous = self._previous_owners(owned, claims.max_generation)
        self.movements = _PartitionMovements()
        self.direct_moves = False  # set once Java's move-undoing heuristic starts cycling
        self.states_seen: set[tuple[tuple[TopicPartition, str], ...]] = set()
        self.revocation_required = False
        topics_by_contention = sorted(counts, key=lambda t: (len(self.topic_members[t]), t))
        self.all_partitions = [
            tp for topic in topics_by_contention for tp in _topic_partitions(topic, counts[topic])
        ]

    def _previous_owners(
        self, owned: OwnedPartitions, max_generation: int
    ) -> dict[TopicPartition, tuple[str, int]]:
        # Claims from older generations are not kept, but they hint where a partition was:
        # moving it back there is preferred when balancing.
        previous: dict[TopicPartition, tuple[str, int]] = {}
        for member in self.member_order:
            generation = owned[member][0] if member in owned else DEFAULT_GENERATION
            if generation >= max_generation:
                continue
            for tp in _raw_claims(owned, member):
                if tp not in previous or generation > previous[tp][1]:
                    previous[tp] = (member, generation)
        return previous

    def build(self) -> Assignment:
        kept = self._drop_unsubscribed()
        unassigned = [tp for tp in self.all_partitions if tp not in kept]
        self._balance(unassigned)
        return self.current

    def _drop_unsubscribed(self) -> set[TopicPartition]:
        kept: set[TopicPartition] = set()
        for member, tps in self.current.items():
            for tp in list(tps):
                if tp[0] not in self.member_topics[member]:
                    tps.remove(tp)
                    del self.owner[tp]
                    self.revocation_required = True
                else:
                    kept.add(tp)
        return kept

    # Sizes and ordering: Java's TreeSet ordered by (assignment size, member id).
    def _by_load(self) -> list[str]:
        return sorted(self.current, key=lambda m: (len(self.current[m]), m))

    def _least_loaded_for(self, topic: str) -> str:
        return min(
            (m for m in self.current if topic in self.member_topics[m]),
            key=lambda m: (len(self.current[m]), m),
        )

    def _max_size(self, member: str) -> int:
        return sum(self.counts[topic] for topic in self.member_topics[member])

    def _is_balanced(self) -> bool:
        ordered = self._by_load()
        if len(self.current[ordered[0]]) >= len(self.current[ordered[-1]]) - 1:
            return True
        for member in ordered:
            size = len(self.current[member])
            if size == self._max_size(member):
                continue
            mine = set(self.current[member])
            for topic in self.member_topics[member]:
                for tp in _topic_partitions(topic, self.counts[topic]):
                    other = self.owner.get(tp)
                    if tp in mine or other is None or other not in self.current:
                        continue
                    if size + 1 < len(self.current[other]):
                        return False
        return True

    def _can_topic_move(self, topic: str) -> bool:
        return len(self.topic_members[topic]) >= 2

    def _can_member_change(self, member: str) -> bool:
        if len(self.current[member]) < self._max_size(member):
            return True
        return any(self._can_topic_move(tp[0]) for tp in self.current[member])

    def _balance(self, unassigned: list[TopicPartition]) -> None:
        initializing = all(not tps for tps in self.current.values())
        for tp in unassigned:
            if self.topic_members[tp[0]]:
                member = self._least_loaded_for(tp[0])
                self.current[member].append(tp)
                self.owner[tp] = member

        movable = [tp for tp in self.all_partitions if self._can_topic_move(tp[0])]
        movable_unassigned = [tp for tp in unassigned if self._can_topic_move(tp[0])]
        frozen = [m for m in self.current if not self._can_member_change(m)]
        fixed = {m: self.current.pop(m) for m in frozen}

        before = {m: list(tps) for m, tps in self.current.items()}
        owner_before = dict(self.owner)
        if not self.revocation_required:
            self._reassign(movable_unassigned)
        moved = self._reassign(movable)
        # Keep the reshuffle only if it made the group more balanced (Java's balance score:
        # the sum of size differences over all pairs of members).
        if not initializing and moved and _balance_score(self.current) >= _balance_score(before):
            self.current = before
            self.owner = owner_before
        self.current.update(fixed)

    def _reassign(self, candidates: list[TopicPartition]) -> bool:
        performed = False
        modified = True
        while modified:
            modified = False
            for tp in candidates:
                if self._is_balanced():
                    break
                member = self.owner[tp]
                previous = self.previous.get(tp)
                if (
                    previous is not None
                    and previous[0] in self.current
                    and tp[0] in self.member_topics[previous[0]]
                    and len(self.current[member]) > len(self.current[previous[0]]) + 1
                ):
                    self._move(tp, previous[0])
                    performed = modified = True
                    continue
                if any(
                    len(self.current[member]) > len(self.current[other]) + 1
                    for other in self.topic_members[tp[0]]
                    if other in self.current
                ):
                    self._move(tp, self._least_loaded_for(tp[0]))
                    performed = modified = True
        return performed

    def _move(self, tp: TopicPartition, new: str) -> None:
        actual = tp
        if not self.direct_moves:
            actual = self.movements.partition_to_move(tp, self.owner[tp], new)
        old = self.owner[actual]
        self.movements.move(actual, old, new)
        self.current[old].remove(actual)
        self.current[new].append(actual)
        self.owner[actual] = new
        # Java can loop forever here: undoing an earlier move (partition_to_move) may bounce
        # one partition between two members while the busiest member stays busy. Once an
        # ownership state comes back, move the requested partitions themselves: each such move
        # lowers the imbalance, so balancing ends.
        state = tuple(sorted(self.owner.items()))
        if state in self.states_seen:
            self.direct_moves = True
        self.states_seen.add(state)


# --- cooperative-sticky ------------------------------------------------------------------


def _transferring(
    result: _StickyResult, subscriptions: Mapping[str, Sequence[str]], owned: OwnedPartitions
) -> dict[TopicPartition, str]:
    if result.transferring is not None:
        return dict(result.transferring)
    # CooperativeStickyAssignor.computePartitionsTransferringOwnership: a partition moves when
    # one member gains it and a member that claimed it loses it.
    added: dict[TopicPartition, str] = {}
    lost: set[TopicPartition] = set()
    for member in subscriptions:
        claimed = set(_raw_claims(owned, member))
        given = set(result.assignment.get(member, []))
        added.update((tp, member) for tp in given - claimed)
        lost.update(claimed - given)
    return {tp: member for tp, member in added.items() if tp in lost}


def _withhold(assignment: Assignment, moving: Mapping[TopicPartition, str]) -> Assignment:
    return {
        member: [tp for tp in tps if moving.get(tp) != member] for member, tps in assignment.items()
    }


def _cooperative_first_round(
    subscriptions: Mapping[str, Sequence[str]], counts: Mapping[str, int], owned: OwnedPartitions
) -> Assignment:
    result = _sticky(subscriptions, counts, owned)
    return _withhold(result.assignment, _transferring(result, subscriptions, owned))
