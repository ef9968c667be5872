"""Brokers and replication: a partition's leader, followers, ISR, high watermark and epochs.

The rules are Kafka's (../shared/kafka-reference.md, section 4), with the names Kafka uses:

- Each partition has replicas on distinct brokers, listed in assignment order; the first is
  the preferred leader. One replica leads; the followers fetch from it.
- A follower is caught up while its log end offset (LEO) equals the leader's, or it was at the
  leader's LEO within `replica.lag.time.max.ms` (`Replica.isCaughtUp`). The leader drops
  followers that are not caught up from the in-sync replicas (ISR, `maybeShrinkIsr`), and takes
  a follower back once its LEO reaches the high watermark and the current leader epoch's start
  offset (`isFollowerInSync`).
- The high watermark (HW) is the smallest LEO in the ISR; it only moves forward, and not at all
  while the ISR is smaller than `min(min.insync.replicas, replication factor)` (KAFKA-15583,
  Kafka 3.7+). Consumers read up to it.
- A produce with acks=all (-1) is refused with NOT_ENOUGH_REPLICAS, nothing written, while the
  ISR is smaller than that minimum; once appended it is answered when the HW passes its last
  record (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below the minimum by then; the
  leader lost meanwhile: NOT_LEADER_OR_FOLLOWER). acks=1 is answered at the leader's append,
  acks=0 never.
- The controller fences a stopped broker: it leaves every ISR, except that an ISR is never
  emptied (its last member stays, and the partition goes offline). A leader that stops is
  replaced by the first live ISR member in assignment order; the leader epoch goes up by one at
  every leader change. With `unclean.leader.election.enable`, a live replica outside the ISR
  may lead when no ISR member is alive, and records the ISR had committed may go.
- Every replica keeps a leader epoch cache (epoch -> start offset). A new leader adds its epoch
  at its LEO (`makeLeader`). A follower whose log diverges from the leader's (it had records a
  former leader appended and the new one never got) truncates to the end offset the leader
  gives for the follower's last epoch (Fetch v12's DivergingEpoch; OffsetsForLeaderEpoch
  before), then fetches again.
- The preferred leader returns when it is alive and in the ISR: by the controller's periodic
  check (`auto.leader.rebalance.enable`, every `leader.imbalance.check.interval.seconds`, when
  a broker's share of partitions led by another exceeds
  `leader.imbalance.per.broker.percentage`), or asked for (`kafka-leader-election.sh`).

LogLab's simplifications, said on /about/: a partition's stored records are its leader's log
(`log_end`, `log_epochs`), a follower's log is that log up to its LEO (or diverged past it, by
its epochs); a follower fetches everything up to the leader's LEO in one fetch; a "slow"
broker's followers fetch every 2 x `replica.lag.time.max.ms`; a new leader starts at the old
high watermark where Kafka's catches up to it within a fetch round; an unclean leader whose
log diverged from the stored one keeps only the part they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from messaging.engine import idempotence

UP, STOPPED, SLOW = "up", "stopped", "slow"
# A topic of replication.factor 1 keeps its one replica on this broker (no replica state).
SINGLE_REPLICA_BROKER = 1


def running(brokers: Mapping[int, str]) -> list[int]:
    """The brokers not stopped, by id."""
    return [b for b, s in sorted(brokers.items()) if s != STOPPED]


def controller(brokers: Mapping[int, str]) -> int | None:
    """The controller (and every group's coordinator here): the first running broker."""
    alive = running(brokers)
    return alive[0] if alive else None


def single_replica_leader(brokers: Mapping[int, str]) -> int | None:
    """The leader of a partition of one replica: its broker, or none while that one is stopped
    (the partition is offline: no produce, no fetch)."""
    return SINGLE_REPLICA_BROKER if brokers.get(SINGLE_REPLICA_BROKER) != STOPPED else None


BROKER_STATES = (UP, STOPPED, SLOW)
MAX_BROKERS = 5
DEFAULT_REPLICA_LAG_TIME_MAX_MS = 30_000  # replica.lag.time.max.ms (Kafka 2.5+)
DEFAULT_MIN_INSYNC_REPLICAS = 1  # min.insync.replicas
LEADER_IMBALANCE_CHECK_INTERVAL_MS = 300_000  # leader.imbalance.check.interval.seconds = 300
LEADER_IMBALANCE_PER_BROKER_PERCENTAGE = 10
ACKS_ALL, ACKS_LEADER, ACKS_NONE = -1, 1, 0

NOT_LEADER_OR_FOLLOWER = "NOT_LEADER_OR_FOLLOWER"
NOT_ENOUGH_REPLICAS = "NOT_ENOUGH_REPLICAS"
NOT_ENOUGH_REPLICAS_AFTER_APPEND = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
INVALID_REQUIRED_ACKS = "INVALID_REQUIRED_ACKS"
INVALID_REPLICATION_FACTOR = "INVALID_REPLICATION_FACTOR"

Epochs = tuple[tuple[int, int], ...]  # (leader epoch, start offset), oldest first


class ReplicationError(ValueError):
    """A request Kafka refuses: `error` is its error name."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class Replica:
    broker: int
    leo: int
    # What this replica knows of the high watermark (a follower learns it from its fetches).
    hw: int
    epochs: Epochs
    caught_up_ms: int  # lastCaughtUpTimeMs
    fetched_ms: int


@dataclass(frozen=True)
class Pending:
    """Records past the high watermark, by the acks they were produced with: what a leader
    change would lose, and whether their producers were told they were written."""

    start: int
    end: int
    acks: int


@dataclass(frozen=True)
class Lost:
    """Records [start, end) a leader change took away."""

    start: int
    end: int
    acks: int
    acknowledged: bool
    leader_epoch: int  # the epoch they were appended in
    election: str  # "clean" or "unclean"


@dataclass(frozen=True)
class PartitionState:
    replicas: tuple[Replica, ...]  # in assignment order: the first is the preferred leader
    leader: int | None  # None: offline (no live replica may lead)
    leader_epoch: int
    isr: tuple[int, ...]
    hw: int
    log_start: int
    # The stored log: its end and its epochs (the leader's, or the last leader's when offline).
    log_end: int
    log_epochs: Epochs
    pending: tuple[Pending, ...] = ()

    # --- reading -----------------------------------------------------------------------------

    @property
    def brokers(self) -> tuple[int, ...]:
        return tuple(r.broker for r in self.replicas)

    @property
    def preferred(self) -> int:
        return self.replicas[0].broker

    def replica(self, broker: int) -> Replica:
        for r in self.replicas:
            if r.broker == broker:
                return r
        raise KeyError(broker)

    def epoch_start(self) -> int:
        """The current leader epoch's start offset (the leader's LEO when it was elected)."""
        for epoch, start in reversed(self.log_epochs):
            if epoch == self.leader_epoch:
                return start
        return self.log_end

    # --- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicas": [
                [r.broker, r.leo, r.hw, [list(e) for e in r.epochs], r.caught_up_ms, r.fetched_ms]
                for r in self.replicas
            ],
            "leader": self.leader,
            "leader_epoch": self.leader_epoch,
            "isr": list(self.isr),
            "hw": self.hw,
            "log_start": self.log_start,
            "log_end": self.log_end,
            "log_epochs": [list(e) for e in self.log_epochs],
            "pending": [[p.start, p.end, p.acks] for p in self.pending],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionState:
        return cls(
            replicas=tuple(
                Replica(b, leo, hw, tuple((e, s) for e, s in epochs), caught, fetched)
                for b, leo, hw, epochs, caught, fetched in data["replicas"]
            ),
            leader=data["leader"],
            leader_epoch=data["leader_epoch"],
            isr=tuple(data["isr"]),
            hw=data["hw"],
            log_start=data["log_start"],
            log_end=data["log_end"],
            log_epochs=tuple((e, s) for e, s in data["log_epochs"]),
            pending=tuple(Pending(*p) for p in data.get("pending", ())),
        )


@dataclass(frozen=True)
class Change:
    """What one operation did: the new state, and when a leader change cut the stored log,
    where it now ends (`truncated_to`) and the records it lost."""

    state: PartitionState
    truncated_to: int | None = None
    lost: tuple[Lost, ...] = ()
    elected: str | None = None  # "clean", "unclean", "preferred" or "offline"

    @property
    def leader_changed(self) -> bool:
        return self.elected is not None


# --- placement ----------------------------------------------------------------------------------


def assign_replicas(
    brokers: list[int], partitions: int, replication_factor: int
) -> list[list[int]]:
    """Replicas for each partition, as Kafka's rack-unaware placement spreads them
    (`AdminUtils.assignReplicasToBrokersRackUnaware`), started at the first broker with no
    shift so that partition 0 leads on broker 1, partition 1 on broker 2, and so on."""
    n = len(brokers)
    if not 1 <= replication_factor <= n:
        raise ReplicationError(
            INVALID_REPLICATION_FACTOR,
            f"Replication factor: {replication_factor} larger than available brokers: {n}.",
        )
    shift = 0
    result = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = p % n
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            replicas.append(brokers[(first + 1 + (shift + j) % (n - 1)) % n])
        result.append(replicas)
    return result


def new_partition(
    replicas: list[int], *, now_ms: int, log_start: int = 0, log_end: int = 0
) -> PartitionState:
    """A new partition (or one that gains replicas with its records already there): the first
    replica leads in epoch 0, every replica is in sync. Replicas after the first that do not
    hold the log yet fetch it from the leader."""
    epochs: Epochs = ((0, log_start),)
    leader = Replica(replicas[0], log_end, log_end, epochs, now_ms, now_ms)
    followers = [Replica(b, log_start, log_start, (), now_ms, now_ms) for b in replicas[1:]]
    in_sync = tuple(replicas) if log_end == log_start else (replicas[0],)
    return PartitionState(
        replicas=(leader, *followers),
        leader=replicas[0],
        leader_epoch=0,
        isr=in_sync,
        hw=log_end,
        log_start=log_start,
        log_end=log_end,
        log_epochs=epochs,
    )


# --- epochs and divergence ----------------------------------------------------------------------


def end_offset_for(epochs: Epochs, leo: int, epoch: int) -> tuple[int, int]:
    """OffsetsForLeaderEpoch: the largest epoch <= `epoch` this log has, and where it ends
    (the start of the next epoch, or the LEO); (-1, -1) when it has none."""
    found = -1
    for i, (e, _start) in enumerate(epochs):
        if e <= epoch:
            found = i
    if found < 0:
        return -1, -1
    end = epochs[found + 1][1] if found + 1 < len(epochs) else leo
    return epochs[found][0], min(end, leo)


def truncation_offset(follower: Epochs, follower_leo: int, leader: Epochs, leader_leo: int) -> int:
    """Where a follower's log stops agreeing with the leader's (KIP-101/KIP-279): it keeps
    everything before this offset."""
    if not follower:
        return follower_leo
    last = follower[-1][0]
    epoch, end = end_offset_for(leader, leader_leo, last)
    if epoch < 0:
        return 0
    if epoch == last:
        return min(follower_leo, end)
    _, own_end = end_offset_for(follower, follower_leo, epoch)
    return min(end, own_end if own_end >= 0 else follower_leo)


def epochs_truncated(epochs: Epochs, end: int) -> Epochs:
    """The cache after truncating the log to `end` (`truncateFromEnd`): entries that start at or
    past it go."""
    return tuple((e, s) for e, s in epochs if s < end)


def epoch_at(epochs: Epochs, offset: int) -> int:
    """The leader epoch the record at `offset` was appended in."""
    found = -1
    for e, s in epochs:
        if s <= offset:
            found = e
    return found


# --- helpers ------------------------------------------------------------------------------------


def effective_min_isr(min_insync_replicas: int, replication_factor: int) -> int:
    return max(1, min(min_insync_replicas, replication_factor))


def _with_replica(state: PartitionState, replica: Replica) -> PartitionState:
    return replace(
        state,
        replicas=tuple(replica if r.broker == replica.broker else r for r in state.replicas),
    )


def _ordered(state: PartitionState, brokers: Iterable[int]) -> tuple[int, ...]:
    wanted = set(brokers)
    return tuple(b for b in state.brokers if b in wanted)


def _pending_above(pending: tuple[Pending, ...], hw: int) -> tuple[Pending, ...]:
    kept = []
    for p in pending:
        if p.end <= hw:
            continue
        kept.append(Pending(max(p.start, hw), p.end, p.acks) if p.start < hw else p)
    return tuple(kept)


def _pending_below(pending: tuple[Pending, ...], end: int) -> tuple[Pending, ...]:
    kept = []
    for p in pending:
        if p.start >= end:
            continue
        kept.append(Pending(p.start, min(p.end, end), p.acks) if p.end > end else p)
    return tuple(kept)


def hw_update(state: PartitionState, *, min_isr: int) -> PartitionState:
    """`maybeIncrementLeaderHW`: the smallest LEO in the ISR, forward only, and not while the
    ISR is under the minimum."""
    if state.leader is None:
        return state
    if len(state.isr) < effective_min_isr(min_isr, len(state.replicas)):
        return state
    lowest = min(state.replica(b).leo for b in state.isr)
    if lowest <= state.hw:
        return state
    leader = state.replica(state.leader)
    state = replace(state, hw=lowest, pending=_pending_above(state.pending, lowest))
    return _with_replica(state, replace(leader, hw=lowest))


# --- producing ----------------------------------------------------------------------------------


def produce_check(
    state: PartitionState, *, broker: int | None, acks: int, min_isr: int
) -> str | None:
    """Why the broker refuses a produce before appending anything (Kafka's error name), or
    None. `broker` None: the board's producer, which always finds the leader."""
    if acks not in (ACKS_ALL, ACKS_LEADER, ACKS_NONE):
        return INVALID_REQUIRED_ACKS
    if state.leader is None or (broker is not None and broker != state.leader):
        return NOT_LEADER_OR_FOLLOWER
    if acks == ACKS_ALL and len(state.isr) < effective_min_isr(min_isr, len(state.replicas)):
        return NOT_ENOUGH_REPLICAS
    return None


def append(
    state: PartitionState, *, count: int, acks: int, min_isr: int, broker: int | None = None
) -> PartitionState:
    """The leader appends `count` records at its LEO (`produce_check` first: this raises
    ReplicationError if the append is refused)."""
    refused = produce_check(state, broker=broker, acks=acks, min_isr=min_isr)
    if refused is not None:
        raise ReplicationError(refused, f"the append is refused: {refused}")
    assert state.leader is not None
    if count <= 0:
        return state
    leader = state.replica(state.leader)
    start, end = state.log_end, state.log_end + count
    epochs = state.log_epochs
    if not epochs or epochs[-1][0] != state.leader_epoch:
        epochs = (*epochs, (state.leader_epoch, start))
    pending = state.pending
    if pending and pending[-1].acks == acks and pending[-1].end == start:
        pending = (*pending[:-1], Pending(pending[-1].start, end, acks))
    else:
        pending = (*pending, Pending(start, end, acks))
    state = replace(state, log_end=end, log_epochs=epochs, pending=pending)
    state = _with_replica(state, replace(leader, leo=end, epochs=epochs))
    return hw_update(state, min_isr=min_isr)


def produce_outcome(
    state: PartitionState, *, required_offset: int, leader_epoch: int, min_isr: int
) -> str | None:
    """Where an acks=all produce waiting for `required_offset` (its last record + 1), appended
    in `leader_epoch`, stands (`checkEnoughReplicasReachOffset`): "waiting", "ok", or the
    error its producer gets."""
    if state.leader is None or state.leader_epoch != leader_epoch:
        return NOT_LEADER_OR_FOLLOWER
    if state.hw < required_offset:
        return "waiting"
    if len(state.isr) < effective_min_isr(min_isr, len(state.replicas)):
        return NOT_ENOUGH_REPLICAS_AFTER_APPEND
    return "ok"


# --- followers ----------------------------------------------------------------------------------


def follower_fetch(
    state: PartitionState, broker: int, *, now_ms: int, min_isr: int
) -> PartitionState:
    """One fetch of a live follower from the leader: truncate what diverged, copy up to the
    leader's LEO, learn the high watermark, rejoin the ISR when caught up."""
    if state.leader is None or broker == state.leader or broker not in state.brokers:
        return state
    follower = state.replica(broker)
    leader = state.replica(state.leader)
    keep = truncation_offset(follower.epochs, follower.leo, state.log_epochs, state.log_end)
    keep = max(state.log_start, min(keep, follower.leo))
    # The leader's response: everything from `keep` to its LEO, and its high watermark (the
    # follower learns the HW as the leader had it before this fetch moved it).
    fetched = replace(
        follower,
        leo=leader.leo,
        epochs=epochs_truncated(state.log_epochs, leader.leo),
        hw=min(state.hw, leader.leo),
    )
    if fetched == follower and keep == follower.leo and broker in state.isr:
        # Nothing new: an in-sync follower that stays at the leader's end counts as caught up
        # whatever its timestamps say, so they are not rewritten at every tick.
        return state
    follower = replace(fetched, caught_up_ms=now_ms, fetched_ms=now_ms)
    state = _with_replica(state, follower)
    if broker not in state.isr and follower.leo >= state.hw and follower.leo >= state.epoch_start():
        state = replace(state, isr=_ordered(state, (*state.isr, broker)))
    return hw_update(state, min_isr=min_isr)


def isr_shrink(
    state: PartitionState, *, now_ms: int, lag_max_ms: int, min_isr: int
) -> PartitionState:
    """`maybeShrinkIsr`: followers not caught up for `replica.lag.time.max.ms` leave the ISR."""
    if state.leader is None:
        return state
    leader_leo = state.replica(state.leader).leo
    out = [
        b
        for b in state.isr
        if b != state.leader
        and state.replica(b).leo != leader_leo
        and now_ms - state.replica(b).caught_up_ms > lag_max_ms
    ]
    if not out:
        return state
    state = replace(state, isr=tuple(b for b in state.isr if b not in out))
    return hw_update(state, min_isr=min_isr)


# --- leaders ------------------------------------------------------------------------------------


def _pending_acks(state: PartitionState, offset: int) -> int | None:
    for p in state.pending:
        if p.start <= offset < p.end:
            return p.acks
    return None


def _losses(state: PartitionState, keep: int, election: str) -> tuple[Lost, ...]:
    """The stored records from `keep` on, in runs of the same acks, acknowledgement and epoch.
    Records under the high watermark were acknowledged to every producer that asked (acks=1
    and acks=all); past it, only to acks=1."""
    runs: list[Lost] = []
    for offset in range(keep, state.log_end):
        committed = offset < state.hw
        acks = _pending_acks(state, offset)
        if acks is None:
            acks = ACKS_ALL if committed else ACKS_LEADER
        acknowledged = committed and acks != ACKS_NONE or acks == ACKS_LEADER
        epoch = epoch_at(state.log_epochs, offset)
        last = runs[-1] if runs else None
        if (
            last is not None
            and last.end == offset
            and (last.acks, last.acknowledged, last.leader_epoch) == (acks, acknowledged, epoch)
        ):
            runs[-1] = replace(last, end=offset + 1)
        else:
            runs.append(Lost(offset, offset + 1, acks, acknowledged, epoch, election))
    return tuple(runs)


def _make_leader(
    state: PartitionState,
    broker: int,
    *,
    isr: tuple[int, ...],
    election: str,
    alive: frozenset[int],
    now_ms: int,
) -> Change:
    """`broker` leads from now on in a new epoch: the stored log becomes its log (records past
    what it holds are gone), and live followers truncate what diverged from it."""
    new = state.replica(broker)
    keep = truncation_offset(new.epochs, new.leo, state.log_epochs, state.log_end)
    keep = max(state.log_start, min(keep, new.leo))
    lost = _losses(state, keep, "unclean" if election == "unclean" else "clean")
    epoch = state.leader_epoch + 1
    log_epochs = (*epochs_truncated(state.log_epochs, keep), (epoch, keep))
    hw = min(state.hw, keep)
    replicas = []
    for r in state.replicas:
        if r.broker == broker:
            r = replace(r, leo=keep, hw=hw, epochs=log_epochs, caught_up_ms=now_ms)
        elif r.broker in alive:
            # Its first fetch from the new leader truncates what diverged (done at once here).
            cut = truncation_offset(r.epochs, r.leo, log_epochs, keep)
            cut = max(state.log_start, min(cut, r.leo))
            r = replace(r, leo=cut, hw=min(r.hw, cut), epochs=epochs_truncated(r.epochs, cut))
            if r.broker in isr:
                # makeLeader resets the followers' fetch state: ISR members count as caught up.
                r = replace(r, caught_up_ms=now_ms)
        replicas.append(r)
    changed = replace(
        state,
        replicas=tuple(replicas),
        leader=broker,
        leader_epoch=epoch,
        isr=_ordered(state, isr),
        hw=hw,
        log_end=keep,
        log_epochs=log_epochs,
        pending=_pending_below(_pending_above(state.pending, hw), keep),
    )
    truncated = keep if keep < state.log_end else None
    return Change(changed, truncated_to=truncated, lost=lost, elected=election)


def elect(state: PartitionState, *, alive: frozenset[int], unclean: bool, now_ms: int) -> Change:
    """The controller's election for a partition without a live leader: the first live ISR
    member in assignment order; with unclean.leader.election.enable, the first live replica
    when no ISR member is alive; else none (offline, the ISR kept as it was)."""
    if state.leader is not None and state.leader in alive:
        return Change(state)
    in_sync = [b for b in state.brokers if b in state.isr and b in alive]
    if in_sync:
        isr = tuple(b for b in state.isr if b in alive) or (in_sync[0],)
        return _make_leader(
            state, in_sync[0], isr=isr, election="clean", alive=alive, now_ms=now_ms
        )
    candidates = [b for b in state.brokers if b in alive]
    if unclean and candidates:
        return _make_leader(
            state,
            candidates[0],
            isr=(candidates[0],),
            election="unclean",
            alive=alive,
            now_ms=now_ms,
        )
    if state.leader is None:
        return Change(state)
    # No leader: the epoch moves on, the ISR keeps its last member.
    offline = replace(state, leader=None, leader_epoch=state.leader_epoch + 1)
    return Change(offline, elected="offline")


def broker_stopped(
    state: PartitionState,
    broker: int,
    *,
    alive: frozenset[int],
    unclean: bool,
    min_isr: int,
    now_ms: int,
) -> Change:
    """The controller fences a stopped broker: it leaves the ISR (never emptied), and if it led,
    another leads. `alive`: the brokers still running (without `broker`)."""
    if broker not in state.brokers:
        return Change(state)
    isr = tuple(b for b in state.isr if b != broker) or state.isr
    state = replace(state, isr=isr)
    if state.leader == broker:
        change = elect(replace(state, leader=None), alive=alive, unclean=unclean, now_ms=now_ms)
        if change.elected is None:
            # elect() saw no leader to replace: the partition just went offline.
            offline = replace(change.state, leader_epoch=state.leader_epoch + 1)
            return Change(offline, elected="offline")
        return change
    return Change(hw_update(state, min_isr=min_isr))


def broker_started(
    state: PartitionState, broker: int, *, alive: frozenset[int], unclean: bool, now_ms: int
) -> Change:
    """A broker runs again: an offline partition it may lead gets it as leader; otherwise its
    replica is a follower outside the ISR that truncates what diverged and catches up."""
    if broker not in state.brokers:
        return Change(state)
    if state.leader is None:
        return elect(state, alive=alive, unclean=unclean, now_ms=now_ms)
    replica = state.replica(broker)
    cut = truncation_offset(replica.epochs, replica.leo, state.log_epochs, state.log_end)
    cut = max(state.log_start, min(cut, replica.leo))
    replica = replace(
        replica, leo=cut, hw=min(replica.hw, cut), epochs=epochs_truncated(replica.epochs, cut)
    )
    return Change(_with_replica(state, replica))


def preferred_election(state: PartitionState, *, alive: frozenset[int], now_ms: int) -> Change:
    """The preferred replica leads again if it is alive and in the ISR."""
    preferred = state.preferred
    if state.leader == preferred or preferred not in alive or preferred not in state.isr:
        return Change(state)
    change = _make_leader(
        state, preferred, isr=state.isr, election="preferred", alive=alive, now_ms=now_ms
    )
    return change


def imbalanced_brokers(states: Iterable[PartitionState]) -> set[int]:
    """Brokers whose share of partitions they prefer but another leads is over
    leader.imbalance.per.broker.percentage: the controller moves those leaders back."""
    preferred: dict[int, int] = {}
    displaced: dict[int, int] = {}
    for state in states:
        preferred[state.preferred] = preferred.get(state.preferred, 0) + 1
        if state.leader != state.preferred:
            displaced[state.preferred] = displaced.get(state.preferred, 0) + 1
    return {
        b
        for b, total in preferred.items()
        if displaced.get(b, 0) * 100 > LEADER_IMBALANCE_PER_BROKER_PERCENTAGE * total
    }


# --- one tick of the cluster ---------------------------------------------------------------------


def slow_fetch_interval_ms(lag_max_ms: int) -> int:
    """How often a slow broker's followers get a fetch through: twice replica.lag.time.max.ms,
    so that a busy partition drops them from its ISR, and each fetch brings them back."""
    return 2 * lag_max_ms


def step(
    state: PartitionState,
    *,
    brokers: Mapping[int, str],
    now_ms: int,
    lag_max_ms: int,
    min_isr: int,
    unclean: bool,
) -> Change:
    """One tick: an offline partition gets a leader if one may lead now, live followers fetch
    (a slow broker's only when its fetch is due), and the leader shrinks the ISR."""
    alive = frozenset(b for b, s in brokers.items() if s != STOPPED)
    change = Change(state)
    if state.leader is None or state.leader not in alive:
        change = elect(state, alive=alive, unclean=unclean, now_ms=now_ms)
        state = change.state
    if state.leader is None:
        return change
    slow_every = slow_fetch_interval_ms(lag_max_ms)
    for replica in state.replicas:
        if replica.broker == state.leader:
            continue
        condition = brokers.get(replica.broker, STOPPED)
        if condition == UP:
            state = follower_fetch(state, replica.broker, now_ms=now_ms, min_isr=min_isr)
        elif condition == SLOW and now_ms - replica.fetched_ms >= slow_every:
            state = follower_fetch(state, replica.broker, now_ms=now_ms, min_isr=min_isr)
            state = _with_replica(
                state,
                replace(state.replica(replica.broker), caught_up_ms=now_ms, fetched_ms=now_ms),
            )
    state = isr_shrink(state, now_ms=now_ms, lag_max_ms=lag_max_ms, min_isr=min_isr)
    return replace(change, state=state)


def log_start_moved(state: PartitionState, log_start: int) -> PartitionState:
    """Retention moved the log start: a replica behind it starts again from there."""
    if log_start <= state.log_start:
        return state
    replicas = tuple(
        replace(
            r,
            leo=log_start,
            hw=max(r.hw, log_start),
            epochs=((epoch_at(state.log_epochs, log_start), log_start),),
        )
        if r.leo < log_start
        else r
        for r in state.replicas
    )
    return replace(state, replicas=replicas, log_start=log_start, hw=max(state.hw, log_start))


# --- an idempotent producer's state after truncation --------------------------------------------


def producer_entry_truncated(
    entry: idempotence.ProducerEntry, end: int
) -> idempotence.ProducerEntry | None:
    """The producer's state rebuilt from a log truncated to `end` (Kafka reloads it from the
    log): batches at or past `end` are forgotten, so their retries append again; with none
    left, the producer has no state and any sequence is accepted."""
    kept = tuple(b for b in entry.batches if b.first_offset < end)
    if not kept:
        return None
    return replace(entry, batches=kept)
