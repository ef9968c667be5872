"""A lesson's goals, checked against the stored state of its room.

Checks run after every room event on the lesson page, so each reads what it needs with a query
or two (aggregates, not loops over rows), and a name that does not exist yet (a group the
learner has still to create) is simply "not met".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Exists, Max, OuterRef, Sum

from messaging import events
from messaging.engine import classic, sqs
from messaging.engine import replication as replication_rules
from messaging.engine.offsets import lag_or_backlog
from messaging.lessons.spec import Goal, LessonSpec
from messaging.models import (
    ClassicBroker,
    CommittedOffset,
    ConsumerGroup,
    LostRecord,
    Member,
    Partition,
    PartitionReplicas,
    ProcessedRecord,
    Record,
    Room,
    RoomEvent,
    ShareGroup,
    SqsQueue,
    Topic,
)


@dataclass(frozen=True)
class GoalStatus:
    id: str
    text: str
    met: bool
    detail: str  # the current value in plain words: "2 idle now, need at least 1"


class _Missing(Exception):
    """The goal names something the room does not have (yet)."""


def _need(args: dict) -> str:
    low, high = args.get("min"), args.get("max")
    if low is not None and high is not None:
        return f"exactly {low}" if low == high else f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _within(value: int, args: dict) -> bool:
    return (args.get("min") is None or value >= args["min"]) and (
        args.get("max") is None or value <= args["max"]
    )


def _counted(value: int, what: str, args: dict) -> tuple[bool, str]:
    return _within(value, args), f"{value} {what} now, need {_need(args)}"


class _Room:
    """What the checks of one call share: the room and the rows they looked up by name."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self._groups: dict[str, ConsumerGroup] = {}
        self._topics: dict[str, Topic] = {}
        self._queues: dict[str, sqs.Queue] = {}
        self._broker: classic.Broker | None = None

    def group(self, group_id: str) -> ConsumerGroup:
        if group_id not in self._groups:
            found = ConsumerGroup.objects.filter(room=self.room, group_id=group_id).first()
            if found is None:
                raise _Missing(f"group {group_id} does not exist yet")
            self._groups[group_id] = found
        return self._groups[group_id]

    def topic(self, name: str) -> Topic:
        if name not in self._topics:
            found = Topic.objects.filter(room=self.room, name=name).first()
            if found is None:
                raise _Missing(f"topic {name} does not exist yet")
            self._topics[name] = found
        return self._topics[name]

    def queue(self, name: str) -> sqs.Queue:
        if name not in self._queues:
            row = SqsQueue.objects.filter(room=self.room, name=name).first()
            if row is None:
                raise _Missing(f"queue {name} does not exist yet")
            self._queues[name] = sqs.queue_from_dict(row.state)
        return self._queues[name]

    def broker(self) -> classic.Broker:
        if self._broker is None:
            row = ClassicBroker.objects.filter(room=self.room).first()
            if row is None or not row.state:
                raise _Missing("the broker has no queues yet")
            self._broker = classic.broker_from_dict(row.state)
        return self._broker

    def classic_queue(self, name: str) -> classic.BrokerQueue:
        try:
            return classic.get_queue(self.broker(), name)
        except classic.BrokerError:
            raise _Missing(f"queue {name} does not exist yet") from None


# --- the checks: each returns (met, detail) ----------------------------------------------------


def _live(group: ConsumerGroup):
    return Member.objects.filter(group=group, crashed=False)


def _group_members(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(_live(r.group(a["group"])).count(), "live", a)


def _group_idle_members(r: _Room, a: dict) -> tuple[bool, str]:
    group = r.group(a["group"])
    if group.state != ConsumerGroup.State.STABLE:
        return False, f"{group.group_id} is {group.state}: wait until it is Stable"
    idle = _live(group).filter(assignments__isnull=True).count()
    return _counted(idle, "idle", a)


def _assignment_sizes(r: _Room, a: dict) -> tuple[bool, str]:
    group = r.group(a["group"])
    sizes = sorted(
        _live(group).annotate(owned=Count("assignments")).values_list("owned", flat=True),
        reverse=True,
    )
    wanted = sorted(a["sizes"], reverse=True)
    shown = ", ".join(map(str, sizes)) or "no members"
    detail = f"partitions per member now {shown}; need {', '.join(map(str, wanted))}"
    if group.state != ConsumerGroup.State.STABLE:
        return False, f"{group.group_id} is {group.state}: wait until it is Stable"
    return Counter(sizes) == Counter(wanted), detail


def _group_state(r: _Room, a: dict) -> tuple[bool, str]:
    group = r.group(a["group"])
    return group.state == a["state"], f"{group.state} now, need {a['state']}"


def _group_generation(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(r.group(a["group"]).generation, "(generation)", a)


def _member_static(r: _Room, a: dict) -> tuple[bool, str]:
    found = _live(r.group(a["group"])).filter(group_instance_id=a["instance_id"]).exists()
    if found:
        return True, f"a live member has group.instance.id {a['instance_id']}"
    return False, f"no live member has group.instance.id {a['instance_id']}"


def _partition_count(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(r.topic(a["topic"]).partition_count, "partitions", a)


def _key_partitions(r: _Room, a: dict) -> tuple[bool, str]:
    spread = (
        Record.objects.filter(partition__topic=r.topic(a["topic"]), key=a["key"])
        .values("partition_id")
        .distinct()
        .count()
    )
    return _counted(spread, f"partition(s) hold '{a['key']}'", a)


def _records(r: _Room, a: dict) -> tuple[bool, str]:
    rows = Record.objects.filter(partition__topic=r.topic(a["topic"]))
    what = "records"
    if "key" in a:
        rows = rows.filter(key=a["key"])
        what = f"records of '{a['key']}'"
    return _counted(rows.count(), what, a)


def _log_start(r: _Room, a: dict) -> tuple[bool, str]:
    highest = (
        Partition.objects.filter(topic=r.topic(a["topic"])).aggregate(top=Max("log_start_offset"))[
            "top"
        ]
        or 0
    )
    return highest >= a["min"], f"highest log start offset {highest} now, need at least {a['min']}"


def _distinct_keys(r: _Room, a: dict) -> tuple[bool, str]:
    repeated = (
        Record.objects.filter(partition__topic=r.topic(a["topic"]), key__isnull=False)
        .values("partition_id", "key")
        .annotate(copies=Count("id"))
        .filter(copies__gt=1)
        .count()
    )
    if repeated:
        return False, f"{repeated} key(s) still have older records in a partition"
    return True, "every key has one record per partition"


def _group_lag(r: _Room, a: dict) -> tuple[bool, str]:
    group = r.group(a["group"])
    committed = dict(
        CommittedOffset.objects.filter(group=group).values_list("partition_id", "offset")
    )
    partitions = Partition.objects.filter(topic__groups=group).values_list(
        "pk", "log_start_offset", "log_end_offset"
    )
    total = sum(lag_or_backlog(start, end, committed.get(pk)) for pk, start, end in partitions)
    return _counted(total, "records of lag", a)


def _committed(r: _Room, a: dict) -> tuple[bool, str]:
    total = (
        CommittedOffset.objects.filter(group=r.group(a["group"])).aggregate(total=Sum("offset"))[
            "total"
        ]
        or 0
    )
    return _counted(total, "(committed offsets summed)", a)


def _consumed(r: _Room, a: dict) -> tuple[bool, str]:
    group = r.group(a["group"])
    if "key" not in a:
        return _counted(group.processed_total, "records processed", a)
    same_key = Record.objects.filter(
        partition_id=OuterRef("partition_id"), offset=OuterRef("offset"), key=a["key"]
    )
    count = (
        ProcessedRecord.objects.filter(group=group)
        .exclude(status=ProcessedRecord.Status.SKIPPED)
        .filter(Exists(same_key))
        .count()
    )
    return _counted(count, f"times '{a['key']}' was processed", a)


def _duplicates(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(r.group(a["group"]).duplicates_total, "duplicates", a)


def _skipped(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(r.group(a["group"]).skipped_total, "skipped", a)


def _groups_reading(r: _Room, a: dict) -> tuple[bool, str]:
    """Groups subscribed to the topic with a live consumer: in Kafka the subscription is the
    members', so a group reads a topic from its first consumer's join, before (and whether or
    not) the clock has let it process a record."""
    topic = r.topic(a["topic"])
    live = Member.objects.filter(group=OuterRef("pk"), crashed=False)
    count = ConsumerGroup.objects.filter(room=r.room, topics=topic).filter(Exists(live)).count()
    groups = "group" if count == 1 else "groups"
    return count >= a["min"], (
        f"{count} {groups} with a live consumer subscribed to {topic.name} now, "
        f"need at least {a['min']}"
    )


def _sqs_in_flight(r: _Room, a: dict) -> tuple[bool, str]:
    queue = r.queue(a["queue"])
    flying = [
        m
        for m in queue.messages
        if m.in_flight and ("group_id" not in a or m.message_group_id == a["group_id"])
    ]
    return _counted(len(flying), "in flight", a)


def _sqs_groups_in_flight(r: _Room, a: dict) -> tuple[bool, str]:
    """Every named message group has a message in flight at the same moment: a goal counted
    per group would tick for each group in turn, and prove nothing about parallelism."""
    queue = r.queue(a["queue"])
    flying = {m.message_group_id for m in queue.messages if m.in_flight}
    wanted = list(dict.fromkeys(a["groups"]))
    state = ", ".join(f"{g} {'yes' if g in flying else 'no'}" for g in wanted)
    return all(g in flying for g in wanted), f"in flight now: {state}"


def _sqs_blocked_groups(r: _Room, a: dict) -> tuple[bool, str]:
    blocked = sum(1 for lane in sqs.lanes(r.queue(a["queue"])) if lane.blocked and lane.queued)
    return blocked >= a["min"], f"{blocked} blocked group(s) now, need at least {a['min']}"


def _sqs_deduplicated(r: _Room, a: dict) -> tuple[bool, str]:
    dropped = r.queue(a["queue"]).totals.duplicates
    return dropped >= a["min"], f"{dropped} duplicate(s) dropped, need at least {a['min']}"


def _sqs_deleted(r: _Room, a: dict) -> tuple[bool, str]:
    deleted = r.queue(a["queue"]).totals.deleted
    return deleted >= a["min"], f"{deleted} deleted, need at least {a['min']}"


def _classic_ready(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(len(r.classic_queue(a["queue"]).ready), "ready", a)


def _classic_delivered(r: _Room, a: dict) -> tuple[bool, str]:
    queue = r.classic_queue(a["queue"])
    broker = r.broker()
    # Positions are never reused: next_position - 1 copies ever entered the queue; those
    # neither ready nor unacked have left it for good (acked, or rejected without requeue).
    unacked = sum(len(c.unacked) for c in broker.consumers if c.queue == queue.name)
    gone = queue.next_position - 1 - len(queue.ready) - unacked
    return gone >= a["min"], f"{gone} consumed and acked, need at least {a['min']}"


def _share_group(r: _Room, group_id: str) -> ShareGroup:
    found = ShareGroup.objects.filter(room=r.room, group_id=group_id).first()
    if found is None:
        raise _Missing(f"share group {group_id} does not exist yet")
    return found


def _share_totals(r: _Room, a: dict) -> tuple[bool, str]:
    """What a share group counted: acknowledgements, lock time-outs, archiving at the delivery
    count limit, redeliveries (so far, whatever has happened to the consumers since)."""
    count = int(_share_group(r, a["group"]).totals.get(a["what"], 0))
    return _counted(count, a["what"], a)


def _share_partition_consumers(r: _Room, a: dict) -> tuple[bool, str]:
    """The most consumers of the share group that acquired records from one partition (so
    far, even if some left since): a consumer group never lets more than one read it."""
    most = int(_share_group(r, a["group"]).totals.get("partition-readers", 0))
    return most >= a["min"], (
        f"at most {most} consumer(s) read one partition so far, need at least {a['min']}"
    )


# --- brokers and replication (#16) -------------------------------------------------------------


def _lost_records(r: _Room, a: dict) -> tuple[bool, str]:
    rows = LostRecord.objects.filter(room=r.room)
    what = "lost records"
    if "acknowledged" in a:
        rows = rows.filter(acknowledged=a["acknowledged"])
        what = "lost acknowledged records" if a["acknowledged"] else "lost unacknowledged records"
    if "acks" in a:
        rows = rows.filter(acks={"0": 0, "1": 1, "all": -1}[a["acks"]])
        what += f" sent with acks={a['acks']}"
    return _counted(rows.count(), what, a)


def _replicas(r: _Room, a: dict) -> replication_rules.PartitionState:
    row = PartitionReplicas.objects.filter(
        partition__topic=r.topic(a["topic"]), partition__index=a.get("partition", 0)
    ).first()
    if row is None:
        raise _Missing(f"{a['topic']}-{a.get('partition', 0)} has one replica, no ISR to count")
    return replication_rules.PartitionState.from_dict(row.state)


def _isr_size(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(len(_replicas(r, a).isr), "in-sync replicas", a)


def _leader_epoch(r: _Room, a: dict) -> tuple[bool, str]:
    return _counted(_replicas(r, a).leader_epoch, "as leader epoch", a)


def lesson_started_seq(room: Room) -> int:
    """The seq of the room's last "lesson.started" event: goals count events after it."""
    return (
        RoomEvent.objects.filter(room=room, type=events.LESSON_STARTED).aggregate(seq=Max("seq"))[
            "seq"
        ]
        or 0
    )


def _event(r: _Room, a: dict) -> tuple[bool, str]:
    count = RoomEvent.objects.filter(
        room=r.room, type=a["type"], seq__gt=lesson_started_seq(r.room)
    ).count()
    return count >= a["min"], f"{count} {a['type']} event(s) so far, need at least {a['min']}"


CHECKS = {
    "group_members": _group_members,
    "group_idle_members": _group_idle_members,
    "assignment_sizes": _assignment_sizes,
    "group_state": _group_state,
    "group_generation": _group_generation,
    "member_static": _member_static,
    "partition_count": _partition_count,
    "key_partitions": _key_partitions,
    "records": _records,
    "log_start": _log_start,
    "distinct_keys": _distinct_keys,
    "group_lag": _group_lag,
    "committed": _committed,
    "consumed": _consumed,
    "duplicates": _duplicates,
    "skipped": _skipped,
    "groups_reading": _groups_reading,
    "sqs_in_flight": _sqs_in_flight,
    "sqs_groups_in_flight": _sqs_groups_in_flight,
    "sqs_blocked_groups": _sqs_blocked_groups,
    "sqs_deduplicated": _sqs_deduplicated,
    "sqs_deleted": _sqs_deleted,
    "classic_ready": _classic_ready,
    "classic_delivered": _classic_delivered,
    "event": _event,
    "share_totals": _share_totals,
    "share_partition_consumers": _share_partition_consumers,
    "lost_records": _lost_records,
    "isr_size": _isr_size,
    "leader_epoch": _leader_epoch,
}


def goal_check(room: Room, goal: Goal, *, shared: _Room | None = None) -> GoalStatus:
    shared = shared or _Room(room)
    try:
        met, detail = CHECKS[goal.kind](shared, goal.args)
    except _Missing as missing:
        met, detail = False, str(missing)
    return GoalStatus(id=goal.id, text=goal.text, met=met, detail=detail)


def goals_check(*, room: Room, spec: LessonSpec) -> list[GoalStatus]:
    """Every goal of the lesson, met or not, with the current value in plain words."""
    shared = _Room(room)
    return [goal_check(room, goal, shared=shared) for goal in spec.goals]


def lesson_complete(statuses: list[GoalStatus]) -> bool:
    """A lesson is complete when all its goals hold at once."""
    return bool(statuses) and all(status.met for status in statuses)
