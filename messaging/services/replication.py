"""Brokers and replication (#16): a room's brokers, replicated partitions, acks and failover.

engine/replication.py decides; this stores. A partition's records are its leader's log: when a
leader change cuts it (records the new leader never had), those records are deleted, the
durability ledger (`LostRecord`) names them, and idempotent producers' states forget their
batches so that a retry appends again. `Partition.high_watermark` is what consumers read up to
(None for a partition of one replica, whose high watermark is its log end offset).

A topic of replication.factor 1 has no replica rows: its partitions are on broker 1, so they are
offline while broker 1 is stopped. A room without a Cluster row has one broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count

from messaging import events
from messaging.engine import idempotence
from messaging.engine import replication as rep
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    Cluster,
    LostRecord,
    Partition,
    PartitionReplicas,
    ProducerState,
    Record,
    Room,
    Topic,
)
from messaging.selectors import room_brokers_read
from messaging.services.events import event_record, room_lock

SANDBOX_BROKERS = 3
# The durability ledger keeps this many lines per room, and one leader change names at most
# LOST_NAMED records (the rest are counted).
LOST_KEEP = 200
LOST_NAMED = 100
STATE_WORDS = {rep.UP: "running", rep.STOPPED: "stopped", rep.SLOW: "slow"}


# --- reading the cluster ---------------------------------------------------------------------


def brokers_of(room: Room | int) -> dict[int, str]:
    """Broker id -> state ("up", "stopped", "slow"); one running broker without a Cluster."""
    return room_brokers_read(room=room)


def partitions_offline(*, room: Room, partitions: list[Partition]) -> set[int]:
    """The pks of the partitions that have no leader now: nobody can fetch from them (a
    Kafka consumer's fetches fail until a leader is elected), so the room's simulated
    consumers wait on them. One query for replicated partitions, the cluster for the rest."""
    replicated = [p.pk for p in partitions if p.topic.replication_factor > 1]
    offline = (
        {
            row.partition_id
            for row in PartitionReplicas.objects.filter(partition_id__in=replicated)
            if rep.PartitionState.from_dict(row.state).leader is None
        }
        if replicated
        else set()
    )
    single = [p.pk for p in partitions if p.topic.replication_factor <= 1]
    if single and rep.single_replica_leader(brokers_of(room)) is None:
        offline.update(single)  # a partition of one replica lives on broker 1
    return offline


def _alive(brokers: dict[int, str]) -> frozenset[int]:
    return frozenset(b for b, s in brokers.items() if s != rep.STOPPED)


def _cluster_row(room: Room) -> Cluster:
    cluster = Cluster.objects.filter(room=room).first()
    if cluster is None:
        cluster = Cluster.objects.create(room=room, brokers=[{"id": 1, "state": rep.UP}])
    return cluster


def cluster_create(*, room: Room, brokers: int = SANDBOX_BROKERS) -> Cluster:
    """A new room's brokers (called by the sandbox seed, inside its transaction)."""
    return Cluster.objects.create(
        room=room, brokers=[{"id": i, "state": rep.UP} for i in range(1, brokers + 1)]
    )


# --- topics ----------------------------------------------------------------------------------


def replication_validate(
    *, room: Room, replication_factor: object, min_insync_replicas: object
) -> tuple[int, int]:
    """replication.factor (1 to the room's broker count) and min.insync.replicas (1 to 5)."""
    try:
        factor = int(replication_factor)  # type: ignore[call-overload]
        minimum = int(min_insync_replicas)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid(
            "replication.factor and min.insync.replicas are whole numbers.",
            field="replication_factor",
        ) from None
    brokers = brokers_of(room)
    alive = rep.running(brokers)
    if not 1 <= factor <= len(alive):
        raise Invalid(
            f"Replication factor: {factor} larger than available brokers: {len(alive)} "
            f"(this room runs {len(alive)} of its {len(brokers)} brokers; 1 to {len(alive)}).",
            field="replication_factor",
        )
    if not 1 <= minimum <= rep.MAX_BROKERS:
        raise Invalid(
            f"min.insync.replicas is 1 to {rep.MAX_BROKERS} (not {minimum}).",
            field="min_insync_replicas",
        )
    return factor, minimum


def partitions_replicate(*, room: Room, topic: Topic, partitions: list[Partition]) -> None:
    """Replicas for new partitions of a topic of replication.factor > 1, placed over the
    running brokers as Kafka's placement does (the topics service calls this)."""
    if topic.replication_factor <= 1 or not partitions:
        return
    brokers = brokers_of(room)
    alive = sorted(_alive(brokers))
    try:
        placed = rep.assign_replicas(
            alive, max(p.index for p in partitions) + 1, topic.replication_factor
        )
    except rep.ReplicationError as error:
        # New partitions of a topic whose replication factor more brokers are stopped than
        # leaves running: Kafka's placement refuses them too.
        raise Invalid(str(error), field="replication_factor") from None
    rows = []
    for partition in partitions:
        state = rep.new_partition(
            placed[partition.index],
            now_ms=room.sim_time_ms,
            log_start=partition.log_start_offset,
            log_end=partition.log_end_offset,
        )
        rows.append(PartitionReplicas(partition=partition, state=state.to_dict()))
        partition.high_watermark = state.hw
    PartitionReplicas.objects.bulk_create(rows)
    for partition in partitions:
        Partition.objects.filter(pk=partition.pk).update(high_watermark=partition.high_watermark)


# --- applying the engine's changes -----------------------------------------------------------


def _segments_after_truncation(partition: Partition, end: int) -> None:
    """The active segment once the log ends at `end`: the segment of the last record kept."""
    last = (
        Record.objects.filter(partition=partition)
        .values("segment_base")
        .annotate(n=Count("id"))
        .order_by("-segment_base")
        .first()
    )
    if last is None:
        partition.active_segment_base = end
        partition.active_segment_records = 0
        partition.active_segment_first_ms = None
    else:
        partition.active_segment_base = last["segment_base"]
        partition.active_segment_records = last["n"]


def _lost_store(
    room: Room, partition: Partition, lost: tuple[rep.Lost, ...], truncated_to: int
) -> int:
    """Name the records a leader change takes, in the ledger, before they are deleted."""
    offsets = [o for run in lost for o in range(run.start, run.end)]
    named = offsets[:LOST_NAMED]
    records = {
        r.offset: r
        for r in Record.objects.filter(partition=partition, offset__in=named).only(
            "offset", "key", "value"
        )
    }
    rows = []
    for run in lost:
        for offset in range(run.start, run.end):
            if offset not in records:
                continue
            record = records[offset]
            rows.append(
                LostRecord(
                    room=room,
                    topic=partition.topic.name,
                    partition=partition.index,
                    offset=offset,
                    key=record.key[:256] if record.key is not None else None,
                    value=record.value[:200] if record.value is not None else None,
                    acks=run.acks,
                    acknowledged=run.acknowledged,
                    leader_epoch=run.leader_epoch,
                    election=run.election,
                    at_ms=room.sim_time_ms,
                )
            )
    LostRecord.objects.bulk_create(rows)
    keep = list(
        LostRecord.objects.filter(room=room)
        .order_by("-id")
        .values_list("id", flat=True)[LOST_KEEP : LOST_KEEP + 1]
    )
    if keep:
        LostRecord.objects.filter(room=room, id__lte=keep[0]).delete()
    return sum(1 for o in offsets if o >= truncated_to)


def _producers_truncate(partition: Partition, end: int) -> None:
    for row in ProducerState.objects.filter(partition=partition):
        entry = rep.producer_entry_truncated(idempotence.ProducerEntry.from_dict(row.state), end)
        if entry is None:
            row.delete()
        elif entry.to_dict() != row.state:
            row.state = entry.to_dict()
            row.save(update_fields=["state"])


def _apply(room: Room, row: PartitionReplicas, change: rep.Change) -> dict | None:
    """Store a change of one partition; what the board needs to redraw it, if it changed."""
    before = row.state
    state = change.state
    partition = row.partition
    lost = 0
    if change.truncated_to is not None:
        end = change.truncated_to
        lost = _lost_store(room, partition, change.lost, end)
        Record.objects.filter(partition=partition, offset__gte=end).delete()
        partition.log_end_offset = end
        _segments_after_truncation(partition, end)
        Partition.objects.filter(pk=partition.pk).update(
            log_end_offset=end,
            active_segment_base=partition.active_segment_base,
            active_segment_records=partition.active_segment_records,
            active_segment_first_ms=partition.active_segment_first_ms,
        )
        _producers_truncate(partition, end)
    data = state.to_dict()
    if data == before:
        return None
    row.state = data
    row.save(update_fields=["state"])
    if partition.high_watermark != state.hw:
        partition.high_watermark = state.hw
        Partition.objects.filter(pk=partition.pk).update(high_watermark=state.hw)
    view = partition_view(partition, state)
    if change.elected:
        view["elected"] = change.elected
    if lost:
        view["lost"] = lost
    return view


def partition_view(partition: Partition, state: rep.PartitionState) -> dict:
    """A replicated partition as the board's step event carries it."""
    return {
        "tp": f"{partition.topic.name}-{partition.index}",
        "leader": state.leader,
        "epoch": state.leader_epoch,
        "isr": list(state.isr),
        "hw": state.hw,
        "leo": {str(r.broker): r.leo for r in state.replicas},
        "rhw": {str(r.broker): r.hw for r in state.replicas},
    }


def _rows(room: Room) -> list[PartitionReplicas]:
    return list(
        PartitionReplicas.objects.filter(partition__topic__room=room)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    )


# --- brokers ---------------------------------------------------------------------------------


def _broker_check(brokers: dict[int, str], broker_id: int) -> None:
    if broker_id not in brokers:
        raise NotFound(
            f"This room has no broker {broker_id}: its brokers are "
            f"{', '.join(str(b) for b in sorted(brokers))}."
        )


@transaction.atomic
def broker_set(*, room: Room, broker_id: int, state: str) -> dict:
    """Stop, start or slow down a broker, and let the controller do what Kafka's does: fence a
    stopped broker out of every ISR, elect new leaders from the ISR (with leader epochs), or
    bring offline partitions back when a broker that may lead returns."""
    if state not in rep.BROKER_STATES:
        raise Invalid("A broker is up, stopped or slow.", field="state")
    room = room_lock(room=room)
    cluster = _cluster_row(room)
    brokers = {b["id"]: b["state"] for b in cluster.brokers}
    _broker_check(brokers, broker_id)
    was = brokers[broker_id]
    if was == state:
        raise Conflict(f"Broker {broker_id} is already {STATE_WORDS[state]}.")
    brokers[broker_id] = state
    cluster.brokers = [{"id": b, "state": s} for b, s in sorted(brokers.items())]
    cluster.save(update_fields=["brokers"])
    alive = _alive(brokers)
    changed = []
    lost = 0
    for row in _rows(room):
        topic = row.partition.topic
        current = rep.PartitionState.from_dict(row.state)
        if state == rep.STOPPED:
            change = rep.broker_stopped(
                current,
                broker_id,
                alive=alive,
                unclean=topic.unclean_leader_election_enable,
                min_isr=topic.min_insync_replicas,
                now_ms=room.sim_time_ms,
            )
        elif was == rep.STOPPED:
            change = rep.broker_started(
                current,
                broker_id,
                alive=alive,
                unclean=topic.unclean_leader_election_enable,
                now_ms=room.sim_time_ms,
            )
        else:
            continue  # up <-> slow: its fetches change pace, from the next step
        view = _apply(room, row, change)
        if view is not None:
            changed.append(view)
            lost += view.get("lost", 0)
    payload = {
        "broker": broker_id,
        "state": state,
        "was": was,
        "partitions": changed,
        "lost": lost,
    }
    event_record(room=room, type=events.BROKER_CHANGED, payload=payload)
    return payload


@transaction.atomic
def brokers_resize(*, room: Room, count: object) -> dict:
    """The room's number of brokers, 1 to 5. Brokers go from the highest id down, and only
    those that hold no replica (Kafka moves replicas off a broker before it is removed:
    kafka-reassign-partitions)."""
    try:
        wanted = int(count)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid("A number of brokers is a whole number.", field="brokers") from None
    if not 1 <= wanted <= rep.MAX_BROKERS:
        raise Invalid(f"A room has 1 to {rep.MAX_BROKERS} brokers.", field="brokers")
    room = room_lock(room=room)
    cluster = _cluster_row(room)
    brokers = {b["id"]: b["state"] for b in cluster.brokers}
    if wanted < len(brokers):
        used = set()
        for row in _rows(room):
            used.update(r[0] for r in row.state["replicas"])
        if Topic.objects.filter(room=room, replication_factor=1).exists():
            used.add(1)
        going = [b for b in brokers if b > wanted]
        holding = sorted(b for b in going if b in used)
        if holding:
            raise Conflict(
                f"Broker {holding[0]} holds replicas: delete the topics replicated on it first "
                "(Kafka moves them away with kafka-reassign-partitions).",
                field="brokers",
            )
        brokers = {b: s for b, s in brokers.items() if b <= wanted}
    else:
        for b in range(len(brokers) + 1, wanted + 1):
            brokers[b] = rep.UP
    cluster.brokers = [{"id": b, "state": s} for b, s in sorted(brokers.items())]
    cluster.save(update_fields=["brokers"])
    payload = {"brokers": len(brokers), "partitions": [], "lost": 0}
    event_record(room=room, type=events.BROKER_CHANGED, payload=payload)
    return payload


@transaction.atomic
def leaders_preferred(*, room: Room) -> dict:
    """kafka-leader-election.sh --election-type preferred: every partition whose preferred
    replica is alive and in sync gets it back as leader."""
    room = room_lock(room=room)
    alive = _alive(brokers_of(room))
    changed = []
    for row in _rows(room):
        change = rep.preferred_election(
            rep.PartitionState.from_dict(row.state), alive=alive, now_ms=room.sim_time_ms
        )
        view = _apply(room, row, change) if change.leader_changed else None
        if view is not None:
            changed.append(view)
    payload = {
        "broker": None,
        "state": "preferred",
        "partitions": changed,
        "lost": sum(v.get("lost", 0) for v in changed),
    }
    event_record(room=room, type=events.BROKER_CHANGED, payload=payload)
    return payload


# --- the room's step -----------------------------------------------------------------------------


def replication_step(*, room: Room) -> list[dict]:
    """One step of every replicated partition of the room (inside the room's step, under its
    lock): followers fetch, ISRs shrink and grow, high watermarks move, offline partitions get
    a leader when one may lead, and the controller's periodic check moves leaders back to
    their preferred replicas. Returns the partitions that changed, for the step event."""
    rows = _rows(room)
    if not rows:
        return []
    cluster = Cluster.objects.filter(room=room).first()
    brokers = {b["id"]: b["state"] for b in cluster.brokers} if cluster else {1: rep.UP}
    lag = cluster.replica_lag_time_max_ms if cluster else rep.DEFAULT_REPLICA_LAG_TIME_MAX_MS
    now = room.sim_time_ms
    changed = []
    states = []
    for row in rows:
        topic = row.partition.topic
        state = rep.PartitionState.from_dict(row.state)
        if row.partition.log_start_offset > state.log_start:
            state = rep.log_start_moved(state, row.partition.log_start_offset)
        change = rep.step(
            state,
            brokers=brokers,
            now_ms=now,
            lag_max_ms=lag,
            min_isr=topic.min_insync_replicas,
            unclean=topic.unclean_leader_election_enable,
        )
        view = _apply(room, row, change)
        if view is not None:
            changed.append(view)
        states.append((row, change.state))
    if (
        cluster is not None
        and cluster.auto_leader_rebalance_enable
        and now - cluster.leader_checked_ms >= rep.LEADER_IMBALANCE_CHECK_INTERVAL_MS
    ):
        Cluster.objects.filter(pk=cluster.pk).update(leader_checked_ms=now)
        imbalanced = rep.imbalanced_brokers(s for _, s in states)
        alive = _alive(brokers)
        for row, state in states:
            if state.preferred in imbalanced:
                change = rep.preferred_election(state, alive=alive, now_ms=now)
                if change.leader_changed:
                    view = _apply(room, row, change)
                    if view is not None:
                        changed = [v for v in changed if v["tp"] != view["tp"]] + [view]
    return changed


# --- producing -------------------------------------------------------------------------------


@dataclass
class ProduceGuard:
    """The broker's checks around one produce call's appends, for every partition it writes:
    leadership, acks and the ISR before, the replica state after. Loaded once per call, saved
    once (`save`)."""

    room: Room
    broker: int | None
    brokers: dict[int, str]
    rows: dict[int, PartitionReplicas]  # partition pk -> its replica row
    states: dict[int, rep.PartitionState] = field(default_factory=dict)

    @classmethod
    def load(cls, *, room: Room, partitions: list[Partition], broker: int | None) -> ProduceGuard:
        replicated = [p.pk for p in partitions if p.topic.replication_factor > 1]
        rows = (
            {
                r.partition_id: r
                for r in PartitionReplicas.objects.filter(partition_id__in=replicated)
            }
            if replicated
            else {}
        )
        # A connection to broker 1 only gets here while broker 1 runs (the listener closes a
        # stopped broker's connections): nothing more to read for topics of one replica.
        plain = broker == 1 and len(rows) == len(replicated)
        brokers = {1: rep.UP} if plain and not rows else brokers_of(room)
        return cls(room=room, broker=broker, brokers=brokers, rows=rows)

    def admit(self, partition: Partition, acks: int) -> tuple[str, str] | None:
        """(Kafka's error name, a sentence) when the broker refuses to append, else None."""
        topic = partition.topic
        row = self.rows.get(partition.pk)
        if row is None:
            if rep.single_replica_leader(self.brokers) is None:
                return (
                    rep.NOT_LEADER_OR_FOLLOWER,
                    f"{partition} has one replica, on broker 1, which is stopped.",
                )
            if self.broker is not None and self.broker != 1:
                return (
                    rep.NOT_LEADER_OR_FOLLOWER,
                    f"Broker {self.broker} does not lead {partition}: broker 1 does.",
                )
            return None
        state = self.states.get(partition.pk) or rep.PartitionState.from_dict(row.state)
        self.states[partition.pk] = state
        refused = rep.produce_check(
            state, broker=self.broker, acks=acks, min_isr=topic.min_insync_replicas
        )
        if refused is None:
            return None
        if refused == rep.NOT_ENOUGH_REPLICAS:
            return (
                refused,
                f"{partition}: the ISR has {len(state.isr)} replica(s), fewer than "
                f"min.insync.replicas={topic.min_insync_replicas}; acks=all refused, "
                "nothing written.",
            )
        leader = "no leader (offline)" if state.leader is None else f"broker {state.leader}"
        return refused, f"{partition} is led by {leader}, not by broker {self.broker}."

    def appended(
        self, partition: Partition, *, count: int, acks: int, required_offset: int
    ) -> tuple[int, int, int] | None:
        """The leader appended `count` records: what an acks=all request then waits for
        (partition pk, offset the high watermark must reach, leader epoch), else None."""
        if partition.pk not in self.rows:
            return None
        topic = partition.topic
        state = self.states.get(partition.pk) or rep.PartitionState.from_dict(
            self.rows[partition.pk].state
        )
        if count:
            state = rep.append(state, count=count, acks=acks, min_isr=topic.min_insync_replicas)
        self.states[partition.pk] = state
        partition.high_watermark = state.hw
        if acks != rep.ACKS_ALL:
            return None
        return partition.pk, required_offset, state.leader_epoch

    def save(self) -> None:
        for pk, state in self.states.items():
            row = self.rows[pk]
            data = state.to_dict()
            if data != row.state:
                row.state = data
                PartitionReplicas.objects.filter(pk=row.pk).update(state=data)
                Partition.objects.filter(pk=pk).update(high_watermark=state.hw)


def acks_outcomes(waits: list[tuple[int, int, int]]) -> list[str]:
    """Where acks=all requests stand ("waiting", "ok" or Kafka's error), read fresh."""
    rows = {
        r.partition_id: r
        for r in PartitionReplicas.objects.filter(
            partition_id__in={w[0] for w in waits}
        ).select_related("partition__topic")
    }
    answers = []
    for pk, required, epoch in waits:
        row = rows.get(pk)
        if row is None:
            answers.append(rep.NOT_LEADER_OR_FOLLOWER)
            continue
        answers.append(
            rep.produce_outcome(
                rep.PartitionState.from_dict(row.state),
                required_offset=required,
                leader_epoch=epoch,
                min_isr=row.partition.topic.min_insync_replicas,
            )
        )
    return answers
