"""Reads shaped for the pages, the websocket and the APIs. No writes here."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber

from messaging.engine import classic, fetching, rebalance_compare, sqs
from messaging.engine import consumer_group as kip848
from messaging.engine import group as coordinator
from messaging.engine import offsets as offset_rules
from messaging.engine import replication as replication_rules
from messaging.engine import share_group as share_rules
from messaging.engine.offsets import OffsetOutOfRangeError, check_fetch_offset
from messaging.engine.server_assignors import TopicMeta
from messaging.errors import Invalid, NotFound
from messaging.models import (
    BOARD_MAX_POLL_RECORDS,
    BOARD_RECORD_BYTES,
    Assignment,
    ClassicBroker,
    Cluster,
    CommittedOffset,
    ConsumerGroup,
    Lesson,
    LessonPrediction,
    LostRecord,
    Member,
    Partition,
    PartitionReplicas,
    ProcessedRecord,
    Producer,
    Record,
    RestConsumerInstance,
    Room,
    RoomEvent,
    ShareGroup,
    ShareMember,
    SharePartitionState,
    SqsQueue,
    Student,
    StudentPage,
    Topic,
    join_code_normalise,
)

# --- rooms ----------------------------------------------------------------------------------------


def room_get(*, code: str) -> Room:
    try:
        return Room.objects.get(code=join_code_normalise(code))
    except Room.DoesNotExist:
        raise NotFound(f"There is no room with the code '{code}'.") from None


def room_find(*, code: str) -> Room | None:
    """The room whose join code this is (any case, any dashes), or None."""
    normalised = join_code_normalise(code)
    if not normalised:
        return None
    return Room.objects.filter(code=normalised).first()


def room_by_pk(*, pk: int) -> Room:
    return Room.objects.get(pk=pk)


def room_time_ms(*, room: Room) -> int:
    """The room's clock as stored now (a service may have moved it since `room` was read)."""
    return Room.objects.filter(pk=room.pk).values_list("sim_time_ms", flat=True).get()


def room_row_get(*, model: type, room: Room, pk: int, what: str):
    """A producer, group, topic or member of this room by its primary key."""
    try:
        if model is Member:
            return Member.objects.select_related("group").get(pk=pk, group__room=room)
        return model.objects.get(pk=pk, room=room)
    except model.DoesNotExist:
        raise NotFound(f"That {what} is not in this room (any more).") from None


def rooms_recent(*, limit: int = 5) -> list[Room]:
    """The sandboxes most recently used, for the home page."""
    return list(Room.objects.filter(kind=Room.Kind.SANDBOX).order_by("-last_active_at")[:limit])


def events_since(*, room: Room, seq: int, limit: int) -> list[RoomEvent] | None:
    """The events after `seq`, or None when more than `limit` were missed (resync instead)."""
    missed = room.last_seq - seq
    if missed <= 0:
        return []
    if missed > limit:
        return None
    return list(RoomEvent.objects.filter(room=room, seq__gt=seq).order_by("seq"))


def room_groups(*, room: Room) -> list[ConsumerGroup]:
    return list(ConsumerGroup.objects.filter(room=room).order_by("group_id"))


def room_topics(*, room: Room) -> list[Topic]:
    return list(Topic.objects.filter(room=room).order_by("name"))


# --- topics and records ---------------------------------------------------------------------------


def topic_get(*, room: Room, name: str) -> Topic:
    try:
        return Topic.objects.get(room=room, name=name)
    except Topic.DoesNotExist:
        raise NotFound(f"Topic '{name}' does not exist in this room.") from None


def partition_get(*, topic: Topic, index: object) -> Partition:
    try:
        number = int(index)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid("A partition is a whole number.", field="partition") from None
    if not 0 <= number < topic.partition_count:
        raise Invalid(
            f"Partition {number} does not exist: '{topic.name}' has partitions "
            f"0 to {topic.partition_count - 1}.",
            field="partition",
        )
    return Partition.objects.get(topic=topic, index=number)


def records_fetch(*, partition: Partition, offset: int, max_records: int) -> list[Record]:
    """Records from `offset` on, as a Kafka fetch returns them (the engine says which offsets
    a fetch may ask for)."""
    max_records = max(1, min(int(max_records), settings.LOGLAB_MAX_FETCH))
    try:
        check_fetch_offset(
            offset, partition.log_start_offset, partition.log_end_offset, str(partition)
        )
    except OffsetOutOfRangeError as error:
        raise Invalid(str(error), field="offset") from None
    # Consumers read up to the high watermark: records past it are not on enough replicas.
    return list(
        Record.objects.filter(
            partition=partition, offset__gte=offset, offset__lt=partition.consumable_end
        ).order_by("offset")[:max_records]
    )


# --- consumer groups: rows as the engine's group --------------------------------------------------


def group_get(*, room: Room, group_id: str) -> ConsumerGroup:
    try:
        return ConsumerGroup.objects.get(room=room, group_id=group_id)
    except ConsumerGroup.DoesNotExist:
        raise NotFound(f"Consumer group '{group_id}' does not exist in this room.") from None


def group_state_load(group: ConsumerGroup) -> coordinator.ConsumerGroup:
    """The stored rows as the engine's ConsumerGroup."""
    members = list(group.members.order_by("join_order"))
    owned: dict[int, list[coordinator.TopicPartition]] = {m.pk: [] for m in members}
    for assignment in Assignment.objects.filter(group=group).select_related("partition__topic"):
        owned[assignment.member_id].append(
            coordinator.TopicPartition(assignment.partition.topic.name, assignment.partition.index)
        )
    return coordinator.ConsumerGroup(
        config=group.coordinator_config(),
        state=coordinator.GroupState(group.state),
        generation=group.generation,
        members=tuple(
            coordinator.Member(
                member_id=m.member_id,
                client_id=m.client_id,
                subscription=tuple(m.subscription),
                last_heartbeat_ms=m.last_heartbeat_ms,
                group_instance_id=m.group_instance_id,
                assignment=tuple(sorted(owned[m.pk])),
                generation=m.generation,
            )
            for m in members
        ),
        leader_id=group.leader_member_id or None,
        topics=tuple((str(t), int(c)) for t, c in group.known_partitions),
        next_member_number=group.member_counter,
    )


def group_committed(*, group, partition_ids=None) -> dict[int, int]:
    """The group's committed offsets, by partition id (only `partition_ids` if given)."""
    offsets = CommittedOffset.objects.filter(group=group)
    if partition_ids is not None:
        offsets = offsets.filter(partition__in=partition_ids)
    return dict(offsets.values_list("partition_id", "offset"))


def member_assignments(*, member) -> list:
    """The partitions a member owns, with their topics, in topic and partition order."""
    return list(
        Assignment.objects.filter(member=member)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    )


def group_topic_ids(*, group: ConsumerGroup) -> set[int]:
    return set(group.topics.values_list("pk", flat=True))


def ledger_recent(*, group: ConsumerGroup, member: Member, limit: int) -> list[ProcessedRecord]:
    """A member's newest ledger lines: what it processed, duplicates and skips included."""
    return list(
        ProcessedRecord.objects.filter(group=group, member_id=member.member_id)
        .select_related("partition__topic")
        .order_by("-id")[:limit]
    )


def rest_instance_assignments(*, instance: RestConsumerInstance) -> list[tuple[str, int]]:
    """The (topic, partition) pairs the group's coordinator gave the instance's member."""
    return [
        (a.partition.topic.name, a.partition.index)
        for a in Assignment.objects.filter(member=instance.member)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    ]


# --- the board ------------------------------------------------------------------------------------

# How many of a partition's newest records the board draws; older ones are summarised.
BOARD_CELLS_PER_PARTITION = 40


@dataclass(frozen=True)
class Marker:
    """Where one group stands on one partition: its committed offset and its lag."""

    group: str
    committed: int | None
    position: int | None
    lag: int | None


@dataclass(frozen=True)
class PartitionView:
    partition: Partition
    records: list[Record]
    hidden_before: int  # records in the log but not drawn
    markers: list[Marker]


@dataclass(frozen=True)
class TopicView:
    topic: Topic
    partitions: list[PartitionView]


def board_topics(*, room: Room) -> list[TopicView]:
    """Every topic of the room with the newest records of each partition: one query for the
    partitions and one for all the records drawn, however many partitions there are."""
    topics = list(Topic.objects.filter(room=room).order_by("created_at", "name"))
    partitions = list(Partition.objects.filter(topic__room=room).order_by("topic_id", "index"))
    window = Q(pk__in=[])
    for p in partitions:
        first = max(p.log_start_offset, p.log_end_offset - BOARD_CELLS_PER_PARTITION)
        window |= Q(partition=p, offset__gte=first)
    records: dict[int, list[Record]] = {p.pk: [] for p in partitions}
    if partitions:
        for record in Record.objects.filter(window).order_by("partition_id", "offset"):
            records[record.partition_id].append(record)
    markers = _markers(room, partitions)
    views: list[TopicView] = []
    for topic in topics:
        views.append(
            TopicView(
                topic=topic,
                partitions=[
                    PartitionView(
                        partition=p,
                        records=records[p.pk],
                        hidden_before=max(
                            0, p.log_end_offset - p.log_start_offset - BOARD_CELLS_PER_PARTITION
                        ),
                        markers=markers.get(p.pk, []),
                    )
                    for p in partitions
                    if p.topic_id == topic.pk
                ],
            )
        )
    return views


def _markers(room: Room, partitions: list[Partition]) -> dict[int, list[Marker]]:

    by_pk = {p.pk: p for p in partitions}
    committed = {
        (c.group_id, c.partition_id): c.offset
        for c in CommittedOffset.objects.filter(group__room=room)
    }
    positions = {
        (a.group_id, a.partition_id): a.position
        for a in Assignment.objects.filter(group__room=room)
    }
    result: dict[int, list[Marker]] = {}
    for group in ConsumerGroup.objects.filter(room=room).prefetch_related("topics"):
        topic_ids = {t.pk for t in group.topics.all()}
        for p in partitions:
            if p.topic_id not in topic_ids:
                continue
            offset = committed.get((group.pk, p.pk))
            result.setdefault(p.pk, []).append(
                Marker(
                    group=group.group_id,
                    committed=offset,
                    position=positions.get((group.pk, p.pk)),
                    lag=offset_rules.lag(by_pk[p.pk].log_end_offset, offset),
                )
            )
    return result


@dataclass(frozen=True)
class MemberView:
    member: Member
    assigned: list[str]  # "topic-partition", sorted
    idle_reason: str
    session_deadline_ms: int
    # Records it fetched (polled or buffered) and did not process yet, over its partitions.
    fetched: int = 0
    # A group.protocol=consumer member's epoch and reconciliation (KIP-848).
    kip848: Kip848Member | None = None

    @property
    def assigned_attr(self) -> str:
        return " ".join(self.assigned)


@dataclass(frozen=True)
class DescribeRow:
    """One line of `kafka-consumer-groups --describe`."""

    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int
    lag: int | None
    consumer_id: str
    position: int | None

    @property
    def tp(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class GroupView:
    group: ConsumerGroup
    topics: list[str]
    members: list[MemberView]
    rows: list[DescribeRow]
    ledger: list[ProcessedRecord]
    total_lag: int | None  # '-' until the group's first commit (offsets.lag_total)
    # The consumers' poll and fetch sizes on the board's scale (models.BOARD_RECORD_BYTES).
    max_poll_records: int = BOARD_MAX_POLL_RECORDS
    partition_fetch_records: int = fetching.partition_fetch_records(BOARD_RECORD_BYTES)
    fetch_max_records: int = fetching.records_within(
        fetching.FETCH_MAX_BYTES_DEFAULT, BOARD_RECORD_BYTES
    )
    # A group.protocol=consumer group's epochs and assignor (KIP-848).
    kip848: Kip848Group | None = None


LEDGER_SHOWN = 40


def board_groups(*, room: Room) -> list[GroupView]:
    """Every group with its members, their partitions, offsets and lag, in a fixed number of
    queries per group."""
    views = []
    groups = (
        ConsumerGroup.objects.filter(room=room).prefetch_related("topics").order_by("created_at")
    )
    for group in groups:
        topics = sorted(t.name for t in group.topics.all())
        members = list(group.members.order_by("join_order"))
        partitions = list(
            Partition.objects.filter(topic__in=group.topics.all())
            .select_related("topic")
            .order_by("topic__name", "index")
        )
        owners = {
            a.partition_id: a
            for a in Assignment.objects.filter(group=group).select_related("member")
        }
        committed = group_committed(group=group)
        assigned: dict[int, list[str]] = {m.pk: [] for m in members}
        fetched: dict[int, int] = {m.pk: 0 for m in members}
        for a in owners.values():
            end = fetching.fetched_end(a.position, a.polled_until, a.fetched_until)
            if end is not None and a.position is not None:
                fetched[a.member_id] += end - a.position
        rows = []
        for p in partitions:
            owner = owners.get(p.pk)
            tp = f"{p.topic.name}-{p.index}"
            if owner is not None:
                assigned[owner.member_id].append(tp)
            current = committed.get(p.pk)
            rows.append(
                DescribeRow(
                    topic=p.topic.name,
                    partition=p.index,
                    current_offset=current,
                    log_end_offset=p.log_end_offset,
                    lag=offset_rules.lag(p.log_end_offset, current),
                    consumer_id=owner.member.member_id if owner else "-",
                    position=owner.position if owner else None,
                )
            )
        kip = kip848_view(group)
        classic_members = members and kip is None
        idle = coordinator.idle_members(group_state_load(group)) if classic_members else {}
        views.append(
            GroupView(
                group=group,
                topics=topics,
                members=[
                    MemberView(
                        member=m,
                        assigned=assigned[m.pk],
                        idle_reason=idle.get(m.member_id, ""),
                        session_deadline_ms=m.session_expires_at(group.session_timeout_ms),
                        fetched=fetched[m.pk],
                        kip848=kip.members.get(m.member_id) if kip else None,
                    )
                    for m in members
                ],
                kip848=kip,
                rows=rows,
                # Newest first: the ledger panel shows the latest lines when it is full.
                ledger=list(
                    ProcessedRecord.objects.filter(group=group)
                    .select_related("partition__topic")
                    .order_by("-id")[:LEDGER_SHOWN]
                ),
                total_lag=offset_rules.lag_total(row.lag for row in rows),
            )
        )
    return views


def board_producers(*, room: Room) -> list[Producer]:
    return list(Producer.objects.filter(room=room).select_related("topic"))


# --- SQS queues and the classic broker: rows as the engine's state --------------------------------


def sqs_state_load(row: SqsQueue) -> sqs.Queue:
    """The engine's queue kept in a row."""
    return sqs.queue_from_dict(row.state)


def sqs_board_load(row: SqsQueue) -> dict[str, Any]:
    board = dict(row.state.get("board") or {})
    board.setdefault("holders", {})
    board.setdefault("duplicates", [])
    return board


def classic_state_load(row: ClassicBroker | None) -> classic.Broker:
    if row is None or not row.state:
        return classic.new_broker()
    return classic.broker_from_dict(row.state)


def classic_board_load(row: ClassicBroker | None) -> dict[str, Any]:
    board = dict((row.state.get("board") if row is not None else None) or {})
    board.setdefault("keys", {})
    return board


def sqs_queues(*, room: Room) -> list[SqsQueue]:
    return list(SqsQueue.objects.filter(room=room).order_by("created_at", "name"))


def sqs_queue_find(*, room: Room, name: str) -> SqsQueue | None:
    return SqsQueue.objects.filter(room=room, name=name).first()


def sqs_queue_fresh(*, queue: SqsQueue) -> SqsQueue | None:
    """The queue's row as stored now (with its room), or None once it was deleted."""
    return SqsQueue.objects.select_related("room").filter(pk=queue.pk).first()


def sqs_queue_names(*, room: Room, prefix: str, after: str | None, limit: int) -> list[str]:
    """Queue names in order: those starting with `prefix`, after `after` (a ListQueues page)."""
    rows = SqsQueue.objects.filter(room=room).order_by("name")
    if prefix:
        rows = rows.filter(name__startswith=prefix)
    if after is not None:
        rows = rows.filter(name__gt=after)
    return list(rows.values_list("name", flat=True)[:limit])


def classic_broker_find(*, room: Room) -> ClassicBroker | None:
    return ClassicBroker.objects.filter(room=room).first()


# --- classrooms: the roster and a student's page --------------------------------------------------


def classrooms_owned(*, owner) -> list[Room]:
    return list(
        Room.objects.filter(owner=owner, kind=Room.Kind.CLASSROOM)
        .annotate(student_count=Count("students"))
        .order_by("-created_at")
    )


def student_for_session(*, room: Room, session_key: str | None) -> Student | None:
    """The student this browser session is in `room`; None if it never joined or the
    instructor removed it."""
    if not session_key:
        return None
    return Student.objects.filter(
        room=room, session_key=session_key, removed_at__isnull=True
    ).first()


def student_removed(*, room: Room, session_key: str | None) -> bool:
    """Whether the instructor removed the student of this session from `room`."""
    if not session_key:
        return False
    return Student.objects.filter(
        room=room, session_key=session_key, removed_at__isnull=False
    ).exists()


def students_online(*, room: Room) -> set[int]:
    """The pks of the room's students who have a page open (a fresh StudentPage row, written
    by whichever server process holds its websocket)."""
    return set(
        StudentPage.objects.filter(student__room=room, seen_at__gte=Student.seen_since())
        .values_list("student_id", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class RosterLine:
    student: Student
    online: bool
    group: str  # "" when the student is not a consumer
    member_id: str
    partitions: list[str]  # "topic-partition", sorted
    # Summed over their partitions (offsets.lag_total): None ('-') until their group commits
    # on one of them, or when they own no partition.
    lag: int | None
    # Simulated seconds until the coordinator removes a consumer whose page went away.
    leaves_in_s: int | None


def classroom_roster(*, room: Room) -> list[RosterLine]:
    """Who is in, online or not, in which group, with their partitions and lag: three queries
    for the whole room, however many students (a room holds 200 and more)."""
    students = list(
        Student.objects.filter(room=room, removed_at__isnull=True)
        .select_related("member__group")
        .order_by("created_at", "pk")
    )
    member_ids = [s.member_id for s in students if s.member_id is not None]
    owned: dict[int, list[tuple[str, int, int, int, int]]] = {}
    committed: dict[tuple[int, int], int] = {}
    if member_ids:
        for a in Assignment.objects.filter(member_id__in=member_ids).values(
            "member_id",
            "group_id",
            "partition_id",
            "partition__topic__name",
            "partition__index",
            "partition__log_start_offset",
            "partition__log_end_offset",
        ):
            owned.setdefault(a["member_id"], []).append(
                (
                    a["partition__topic__name"],
                    a["partition__index"],
                    a["partition_id"],
                    a["partition__log_start_offset"],
                    a["partition__log_end_offset"],
                )
            )
            committed.setdefault((a["group_id"], a["partition_id"]), -1)
        for c in CommittedOffset.objects.filter(group__room=room).values(
            "group_id", "partition_id", "offset"
        ):
            if (c["group_id"], c["partition_id"]) in committed:
                committed[(c["group_id"], c["partition_id"])] = c["offset"]
    open_pages = students_online(room=room)
    lines = []
    for student in students:
        member = student.member
        recent = student.pk in open_pages
        if member is None:
            lines.append(RosterLine(student, recent, "", "", [], None, None))
            continue
        parts = sorted(owned.get(member.pk, []))
        lags = []
        for _, _, pid, _start, end in parts:
            offset = committed.get((member.group_id, pid), -1)
            lags.append(offset_rules.lag(end, offset if offset >= 0 else None))
        online = recent and member.online and not member.crashed
        leaves_in = None
        if not online:
            deadline = member.session_expires_at(member.group.session_timeout_ms)
            leaves_in = max(0, -(-(deadline - room.sim_time_ms) // 1000))  # rounded up
        lines.append(
            RosterLine(
                student=student,
                online=online,
                group=member.group.group_id,
                member_id=member.member_id,
                partitions=[f"{topic}-{index}" for topic, index, *_ in parts],
                lag=offset_rules.lag_total(lags),
                leaves_in_s=leaves_in,
            )
        )
    return lines


# Records of each partition the page lists ahead of the consumer's position.
WAITING_SHOWN = 5


# Teammates a student's page lists.
GROUP_SHOWN = 12


@dataclass(frozen=True)
class WaitingRecord:
    record: Record
    fetched: bool  # fetched (by the last poll or into the fetch buffer), not yet processed
    committed_ahead: bool  # committed already, not yet processed (at-most-once)


@dataclass(frozen=True)
class PartitionPanel:
    tp: str
    log_start_offset: int
    log_end_offset: int
    committed: int | None
    position: int | None  # the next offset the consumer processes (where it will start)
    start_reason: str  # why it starts there, when it has not read this partition yet
    error: str  # auto.offset.reset=none and nothing to start from
    lag: int | None
    waiting: list[WaitingRecord]
    waiting_total: int
    uncommitted: int  # processed, not committed: processed again after a crash
    committed_unprocessed: int  # committed, not processed: lost after a crash

    @property
    def more_waiting(self) -> int:
        return max(0, self.waiting_total - len(self.waiting))


def records_waiting(*, starts: dict[int, int]) -> dict[int, list[Record]]:
    """The next WAITING_SHOWN records of each partition from its start offset
    ({partition id: offset}), in one query however many partitions a consumer owns."""
    if not starts:
        return {}
    wanted = Q()
    for partition_id, offset in starts.items():
        wanted |= Q(partition_id=partition_id, offset__gte=offset)
    rows = (
        Record.objects.filter(wanted)
        .annotate(
            nth=Window(RowNumber(), partition_by=[F("partition_id")], order_by=F("offset").asc())
        )
        .filter(nth__lte=WAITING_SHOWN)
        .order_by("partition_id", "offset")
    )
    found: dict[int, list[Record]] = {}
    for record in rows:
        found.setdefault(record.partition_id, []).append(record)
    return found


def student_partitions(*, member: Member, group: ConsumerGroup) -> list[PartitionPanel]:
    assignments = member_assignments(member=member)
    committed = group_committed(group=group, partition_ids=[a.partition_id for a in assignments])
    starts: list[tuple[int | None, str, str]] = []
    for a in assignments:
        p = a.partition
        position, reason, error = a.position, "", ""
        if position is None or not p.log_start_offset <= position <= p.log_end_offset:
            # Not read yet: where its first poll will start (the engine's rule, not a guess).
            try:
                start = offset_rules.starting_position(
                    committed.get(p.pk) if position is None else position,
                    p.log_start_offset,
                    p.log_end_offset,
                    group.auto_offset_reset,  # type: ignore[arg-type]
                    partition=f"{p.topic.name}-{p.index}",
                )
                position, reason = start.offset, start.reason
            except offset_rules.OffsetError as failure:
                position, error = None, str(failure)
        starts.append((position, reason, error))
    waiting_by_partition = records_waiting(
        starts={
            a.partition_id: position
            for a, (position, _, _) in zip(assignments, starts, strict=True)
            if position is not None
        }
    )
    panels = []
    for a, (position, reason, error) in zip(assignments, starts, strict=True):
        p = a.partition
        tp = f"{p.topic.name}-{p.index}"
        done = committed.get(p.pk)
        waiting = waiting_by_partition.get(p.pk, [])
        # Fetched and not processed yet: its last poll's records, then its fetch buffer.
        fetched_until = fetching.fetched_end(a.position, a.polled_until, a.fetched_until)
        # Where a replacement would start after a crash: the engine's rule for a fresh
        # consumer (the committed offset if retention kept it, else auto.offset.reset).
        try:
            restart: int | None = offset_rules.starting_position(
                done,
                p.log_start_offset,
                p.log_end_offset,
                group.auto_offset_reset,  # type: ignore[arg-type]
            ).offset
        except offset_rules.OffsetError:
            restart = None
        panels.append(
            PartitionPanel(
                tp=tp,
                log_start_offset=p.log_start_offset,
                log_end_offset=p.log_end_offset,
                committed=done,
                position=position,
                start_reason=reason,
                error=error,
                lag=offset_rules.lag(p.log_end_offset, done),
                waiting=[
                    WaitingRecord(
                        record=r,
                        fetched=fetched_until is not None and r.offset < fetched_until,
                        committed_ahead=done is not None and r.offset < done,
                    )
                    for r in waiting
                ],
                waiting_total=offset_rules.lag(p.log_end_offset, position) or 0,
                uncommitted=max(0, a.position - restart)
                if restart is not None and a.position is not None
                else 0,
                committed_unprocessed=max(0, done - a.position)
                if done is not None and a.position is not None
                else 0,
            )
        )
    return panels


@dataclass(frozen=True)
class Teammate:
    member: Member
    assigned: list[str]


def group_teammates(*, group: ConsumerGroup) -> tuple[list[Teammate], int]:
    """The group's members and their partitions, the first GROUP_SHOWN of them: a phone shows
    how the partitions are dealt out without listing two hundred classmates."""
    members = list(group.members.order_by("join_order")[:GROUP_SHOWN])
    owned: dict[int, list[str]] = {m.pk: [] for m in members}
    for a in (
        Assignment.objects.filter(group=group, member__in=members)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    ):
        owned[a.member_id].append(f"{a.partition.topic.name}-{a.partition.index}")
    return [Teammate(m, owned[m.pk]) for m in members], group.members.count()


# --- lessons --------------------------------------------------------------------------------------


def _catalog_lessons():
    """The lesson files' rows: lessons built in the browser are reached through their owner's
    pages and share links only (services/lesson_authoring.py)."""
    return Lesson.objects.filter(authored__isnull=True)


def lessons_all() -> list[Lesson]:
    return list(_catalog_lessons().order_by("order", "slug"))


def lesson_get(*, slug: str) -> Lesson:
    try:
        return _catalog_lessons().get(slug=str(slug)[:64])
    except Lesson.DoesNotExist:
        raise NotFound(f"There is no lesson called '{str(slug)[:64]}'.") from None


def lesson_next(*, lesson: Lesson) -> Lesson | None:
    if hasattr(lesson, "authored"):
        return None  # a built lesson stands alone
    lessons = _catalog_lessons()
    return (
        lessons.filter(order__gt=lesson.order).order_by("order", "slug").first()
        or lessons.filter(order=lesson.order, slug__gt=lesson.slug).order_by("slug").first()
    )


def lesson_room_find(*, code: str, lesson: Lesson | None = None) -> Room | None:
    """A learner's lesson room by its code (of that lesson, when given), or None."""
    rooms = Room.objects.filter(code=code, kind=Room.Kind.LESSON)
    if lesson is not None:
        rooms = rooms.filter(lesson=lesson)
    return rooms.first()


def prediction_answers_count(*, room: Room, prediction) -> int:
    return LessonPrediction.objects.filter(
        room=room, lesson_slug=room.lesson.slug, question=prediction.id
    ).count()


def prediction_tally(*, room: Room, prediction) -> list[dict[str, Any]]:
    """How many students picked each choice, with the share of the largest for the bars."""
    counts = [0] * len(prediction.choices)
    rows = LessonPrediction.objects.filter(
        room=room, lesson_slug=room.lesson.slug, question=prediction.id
    ).values_list("choice", flat=True)
    for choice in rows:
        if 0 <= choice < len(counts):
            counts[choice] += 1
    total = sum(counts)
    return [
        {
            "index": i,
            "text": text,
            "count": counts[i],
            "percent": round(100 * counts[i] / total) if total else 0,
            "correct": i == prediction.answer,
        }
        for i, text in enumerate(prediction.choices)
    ]


def student_prediction(*, room: Room, student: Student | None, prediction) -> int | None:
    if student is None or prediction is None or room.lesson_id is None:
        return None
    return (
        LessonPrediction.objects.filter(
            room=room, lesson_slug=room.lesson.slug, question=prediction.id, student=student
        )
        .values_list("choice", flat=True)
        .first()
    )


# --- learners' own Kafka clients (messaging/api/kafka_wire/) ---------------------------------


@dataclass(frozen=True)
class KafkaPrincipal:
    """Who a client logged in as: a room (its code and client secret), or a student of a
    classroom (`<code>.<student id>` and the student's own secret)."""

    room: Room
    student: Student | None

    @property
    def name(self) -> str:
        return self.student.display_name if self.student is not None else ""


def kafka_principal(*, username: str, password: str) -> KafkaPrincipal | None:
    """The principal a SASL/PLAIN username and password name, or None (a wrong password and an
    unknown room look the same to the client, as they should)."""
    code, _, student_part = username.partition(".")
    room = room_find(code=code) if code.isalnum() and len(code) <= 16 else None
    if room is None:
        return None
    if not student_part:
        ok = secrets.compare_digest(room.client_secret.encode(), password.encode())
        return KafkaPrincipal(room=room, student=None) if ok else None
    if not student_part.isdigit() or len(student_part) > 12:
        return None
    student = Student.objects.filter(
        room=room, pk=int(student_part), removed_at__isnull=True
    ).first()
    if student is None or not secrets.compare_digest(
        student.client_secret.encode(), password.encode()
    ):
        return None
    return KafkaPrincipal(room=room, student=student)


def kafka_student_username(*, student: Student) -> str:
    return f"{student.room.code}.{student.pk}"


def kafka_topics(*, room: Room, names: list[str] | None = None) -> list[Topic]:
    """The room's topics (all, or these names) with their partitions, by name."""
    topics = Topic.objects.filter(room=room).prefetch_related("partitions").order_by("name")
    if names is not None:
        topics = topics.filter(name__in=names)
    return list(topics)


@dataclass(frozen=True)
class KafkaRead:
    """One partition of a Fetch: the log's bounds and the records from the fetch offset."""

    high_watermark: int
    log_start_offset: int
    # (offset, timestamp_ms, key, value, headers): bytes as the client produced them.
    records: list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]


def _kafka_records_sql() -> str:
    table = connection.ops.quote_name(Record._meta.db_table)
    q = connection.ops.quote_name
    columns = ", ".join(
        q(c)
        for c in (
            "offset",
            "create_time_ms",
            "timestamp_ms",
            "key",
            "value",
            "key_bytes",
            "value_bytes",
            "headers",
            "size_bytes",
        )
    )
    return (
        f"SELECT {columns} FROM {table} WHERE {q('partition_id')} = %s AND {q('offset')} >= %s "
        f"AND {q('offset')} < %s ORDER BY {q('offset')} LIMIT %s"
    )


def kafka_records_read(
    *, partition: Partition, offset: int, max_bytes: int, epoch_ms: int
) -> KafkaRead:
    """Records from `offset`, at most about `max_bytes` of them but always at least one (KIP-74,
    so a record bigger than the limit cannot stall a consumer). A record the board produced has
    no CreateTime of its own: it is given the room's clock as wall time (`epoch_ms` + its
    simulated time).

    Plain SQL: a consumer reads thousands of records a Fetch, and the ORM's per-row converters
    took most of the time (docs/benchmarks.md)."""
    count = max(1, min(settings.LOGLAB_KAFKA_FETCH_RECORDS, max_bytes // 64 + 1))
    # A consumer reads up to the high watermark (FetchIsolation.HIGH_WATERMARK).
    end = partition.consumable_end
    with connection.cursor() as cursor:
        cursor.execute(_kafka_records_sql(), [partition.pk, offset, end, count])
        rows = cursor.fetchall()
    records = []
    append = records.append
    b64decode = base64.b64decode
    size = 0
    for off, create, ts, key, value, key_raw, value_raw, headers, nbytes in rows:
        if records and size + nbytes > max_bytes:
            break
        size += nbytes
        if headers is not None and isinstance(headers, str):
            headers = json.loads(headers)  # stored as JSON text (the ORM's converter, inline)
        # The exact bytes when the text could not hold them, else the text's UTF-8.
        if key_raw is not None:
            key = bytes(key_raw)
        elif key is not None:
            key = key.encode()
        if value_raw is not None:
            value = bytes(value_raw)
        elif value is not None:
            value = value.encode()
        append(
            (
                off,
                create if create is not None else epoch_ms + ts,
                key,
                value,
                [(name, b64decode(raw) if raw is not None else None) for name, raw in headers]
                if headers
                else [],
            )
        )
    return KafkaRead(end, partition.log_start_offset, records)


def kafka_offset_for_time(
    *, partition: Partition, timestamp_ms: int, epoch_ms: int
) -> tuple[int, int] | None:
    """ListOffsets by time: the first record whose timestamp is at least `timestamp_ms`, as
    (offset, its timestamp)."""
    for off, create, ts in (
        Record.objects.filter(partition=partition)
        .order_by("offset")
        .values_list("offset", "create_time_ms", "timestamp_ms")
        .iterator()
    ):
        stamp = create if create is not None else epoch_ms + ts
        if stamp >= timestamp_ms:
            return off, stamp
    return None


def kafka_committed(*, room: Room, group_id: str) -> dict[tuple[str, int], tuple[int, str]]:
    """A group's committed offsets and their metadata by (topic, partition); empty for a
    group that does not exist (OffsetFetch answers -1 for every partition then, as Kafka
    does)."""
    return {
        (topic, index): (offset, metadata)
        for topic, index, offset, metadata in CommittedOffset.objects.filter(
            group__room=room, group__group_id=group_id
        ).values_list("partition__topic__name", "partition__index", "offset", "metadata")
    }


# --- share groups (KIP-932, #15) ------------------------------------------------------------------


def share_groups_of(*, room: Room) -> list[ShareGroup]:
    return list(ShareGroup.objects.filter(room=room).select_related("topic").order_by("group_id"))


def share_group_get(*, room: Room, group_id: str) -> ShareGroup:
    try:
        return ShareGroup.objects.select_related("topic").get(room=room, group_id=str(group_id))
    except ShareGroup.DoesNotExist:
        raise NotFound(f"Share group '{str(group_id)[:249]}' does not exist.") from None


def share_member_get(*, group: ShareGroup, member_id: str) -> ShareMember:
    try:
        return ShareMember.objects.get(group=group, member_id=str(member_id))
    except ShareMember.DoesNotExist:
        raise NotFound(
            f"Share group '{group.group_id}' has no member '{str(member_id)[:128]}'."
        ) from None


def share_partition_rows(*, group: ShareGroup) -> list[SharePartitionState]:
    return list(
        SharePartitionState.objects.filter(group=group)
        .select_related("partition")
        .order_by("partition__index")
    )


def share_state_load(row: SharePartitionState) -> share_rules.SharePartition:
    return share_rules.from_dict(row.state)


def share_log_window(*, partition: Partition, start: int, end: int, limit: int) -> list[int]:
    """The offsets the log holds in [start, end), at most `limit`: what a share fetch reads.
    The offsets between them (compacted away) are gaps, acknowledged with GAP."""
    return list(
        Record.objects.filter(partition=partition, offset__gte=start, offset__lt=end)
        .order_by("offset")
        .values_list("offset", flat=True)[: max(0, limit)]
    )


# --- the consumer group protocol (KIP-848, #15) ---------------------------------------------------


def kafka_topic_id(topic: Topic) -> uuid.UUID:
    """A topic's Kafka topic id (Metadata v10+, ConsumerGroupHeartbeat's TopicId)."""
    return kip848.topic_id(f"topic-{topic.pk}")


def kafka_topic_metas(*, room: Room) -> dict[str, TopicMeta]:
    """The room's topics as the consumer protocol's assignors see them: id and size."""
    return {
        name: TopicMeta(kip848.topic_id(f"topic-{pk}"), count)
        for pk, name, count in Topic.objects.filter(room=room).values_list(
            "pk", "name", "partition_count"
        )
    }


# --- brokers and replication (#16) ---------------------------------------------------------------

LOST_SHOWN = 12


@dataclass(frozen=True)
class ReplicaView:
    broker: int
    leo: int
    hw: int  # what this replica knows of the high watermark
    leader: bool
    in_sync: bool
    preferred: bool
    stopped: bool
    behind: int  # records the leader has and this replica has not


@dataclass(frozen=True)
class ReplicatedPartition:
    topic: str
    index: int
    leader: int | None
    epoch: int
    isr: tuple[int, ...]
    hw: int
    log_end: int
    replicas: tuple[ReplicaView, ...]
    min_isr: int
    unclean: bool

    @property
    def tp(self) -> str:
        return f"{self.topic}-{self.index}"

    @property
    def under_min_isr(self) -> bool:
        return len(self.isr) < replication_rules.effective_min_isr(self.min_isr, len(self.replicas))


@dataclass(frozen=True)
class BrokerView:
    id: int
    state: str
    leads: int
    replicas: tuple[tuple[ReplicatedPartition, ReplicaView], ...]
    single: int  # partitions of replication.factor 1 it holds (broker 1)

    @property
    def stopped(self) -> bool:
        return self.state == replication_rules.STOPPED


@dataclass(frozen=True)
class ClusterView:
    brokers: tuple[BrokerView, ...]
    partitions: tuple[ReplicatedPartition, ...]
    lost: tuple[LostRecord, ...]
    lost_total: int
    replica_lag_time_max_ms: int
    controller: int | None

    @property
    def replicated(self) -> bool:
        return bool(self.partitions)


def room_brokers_read(*, room: Room | int) -> dict[int, str]:
    """Broker id -> state; a room without a Cluster row has one running broker."""
    stored = Cluster.objects.filter(room=room).values_list("brokers", flat=True).first()
    return {b["id"]: b["state"] for b in stored} if stored else {1: replication_rules.UP}


def room_cluster(*, room: Room) -> ClusterView:
    """The room's brokers with the replicas each holds (the board's drawing, the API's read)."""
    cluster = Cluster.objects.filter(room=room).first()
    brokers = (
        {b["id"]: b["state"] for b in cluster.brokers} if cluster else {1: replication_rules.UP}
    )
    rows = (
        PartitionReplicas.objects.filter(partition__topic__room=room)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    )
    partitions = []
    for row in rows:
        state = replication_rules.PartitionState.from_dict(row.state)
        topic = row.partition.topic
        replicas = tuple(
            ReplicaView(
                broker=r.broker,
                leo=r.leo,
                hw=state.hw if r.broker == state.leader else r.hw,
                leader=r.broker == state.leader,
                in_sync=r.broker in state.isr,
                preferred=r.broker == state.preferred,
                stopped=brokers.get(r.broker) == replication_rules.STOPPED,
                behind=max(0, state.log_end - r.leo),
            )
            for r in state.replicas
        )
        partitions.append(
            ReplicatedPartition(
                topic=topic.name,
                index=row.partition.index,
                leader=state.leader,
                epoch=state.leader_epoch,
                isr=state.isr,
                hw=state.hw,
                log_end=state.log_end,
                replicas=replicas,
                min_isr=topic.min_insync_replicas,
                unclean=topic.unclean_leader_election_enable,
            )
        )
    single = Partition.objects.filter(topic__room=room, topic__replication_factor=1).count()
    views = []
    for broker, condition in sorted(brokers.items()):
        held = tuple((p, r) for p in partitions for r in p.replicas if r.broker == broker)
        views.append(
            BrokerView(
                id=broker,
                state=condition,
                leads=sum(1 for p, r in held if r.leader),
                replicas=held,
                single=single if broker == 1 else 0,
            )
        )
    lost = LostRecord.objects.filter(room=room)
    return ClusterView(
        brokers=tuple(views),
        partitions=tuple(partitions),
        lost=tuple(lost.order_by("-id")[:LOST_SHOWN]),
        lost_total=lost.count(),
        replica_lag_time_max_ms=(
            cluster.replica_lag_time_max_ms
            if cluster
            else replication_rules.DEFAULT_REPLICA_LAG_TIME_MAX_MS
        ),
        controller=replication_rules.controller(brokers),
    )


def room_cluster_json(*, room: Room) -> dict[str, Any]:
    """GET /api/rooms/<code>/brokers: the same read as the board's, for scripts."""
    view = room_cluster(room=room)
    return {
        "controller": view.controller,
        "replica.lag.time.max.ms": view.replica_lag_time_max_ms,
        "brokers": [
            {"id": b.id, "state": b.state, "leaders": b.leads, "replicas": len(b.replicas)}
            for b in view.brokers
        ],
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.index,
                "leader": p.leader,
                "leader_epoch": p.epoch,
                "isr": list(p.isr),
                "high_watermark": p.hw,
                "log_end_offset": p.log_end,
                "replicas": [
                    {"broker": r.broker, "log_end_offset": r.leo, "high_watermark": r.hw}
                    for r in p.replicas
                ],
            }
            for p in view.partitions
        ],
        "lost": [
            {
                "topic": lost.topic,
                "partition": lost.partition,
                "offset": lost.offset,
                "key": lost.key,
                "value": lost.value,
                "acks": lost.acks,
                "acknowledged": lost.acknowledged,
                "leader_epoch": lost.leader_epoch,
                "election": lost.election,
            }
            for lost in view.lost
        ],
    }


@dataclass(frozen=True)
class Kip848Member:
    """A member of a group.protocol=consumer group, as the board draws it: its epoch and
    reconciliation state, what it owns, what it is revoking, and what its target promises it
    that another member still holds."""

    epoch: int
    state: str  # stable, unrevoked_partitions, unreleased_partitions (MemberState)
    revoking: list[str]
    awaited: list[str]
    target: list[str]
    server_side: bool

    @property
    def reconciled(self) -> bool:
        return not self.revoking and not self.awaited

    @property
    def state_text(self) -> str:
        return {
            "stable": "stable",
            "unrevoked_partitions": "revoking",
            "unreleased_partitions": "waiting for partitions",
        }.get(self.state, self.state)


@dataclass(frozen=True)
class Kip848Group:
    group_epoch: int
    assignment_epoch: int
    assignor: str
    members: dict[str, Kip848Member]

    @property
    def assigning(self) -> bool:
        return self.group_epoch > self.assignment_epoch


def kip848_view(group: ConsumerGroup) -> Kip848Group | None:
    """A group.protocol=consumer group's epochs and each member's reconciliation."""
    if group.group_protocol != ConsumerGroup.GroupProtocol.CONSUMER:
        return None
    state = group.kip848_state()

    def names(parts: kip848.Partitions) -> list[str]:
        return [f"{t}-{p}" for t, p in kip848.flat(parts)]

    members = {}
    for m in state.members:
        target = state.target_of(m.member_id)
        awaited = [tp for tp in names(target) if tp not in set(names(m.assigned))]
        members[m.member_id] = Kip848Member(
            epoch=m.member_epoch,
            state=m.state.value,
            revoking=names(m.pending_revocation),
            awaited=awaited,
            target=names(target),
            server_side=m.server_side,
        )
    return Kip848Group(
        group_epoch=state.group_epoch,
        assignment_epoch=state.assignment_epoch,
        assignor=state.preferred_assignor() or group.remote_assignor or "uniform",
        members=members,
    )


@dataclass(frozen=True)
class CompareBar:
    member: str
    hue: int
    left: float  # percent of the timeline
    width: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class CompareRun:
    protocol: str
    title: str
    heartbeat_ms: int
    rows: list[tuple[int, list[CompareBar]]]  # partition, what consumed it when
    events: list[tuple[float, float, str]]  # seconds, percent, text
    settled_s: float
    paused_s: float
    stopped: list[str]
    end_ms: int


COMPARE_TITLES = {
    "eager": "Eager (classic, range): everyone revokes, everyone waits",
    "cooperative": "Cooperative (classic, cooperative-sticky, KIP-429): two rounds",
    "consumer": "KIP-848 (group.protocol=consumer, uniform): one heartbeat at a time",
}


def rebalance_comparison(
    *, members: int, partitions: int, event: str
) -> tuple[list[CompareRun], int]:
    """The same join (or leave) under eager, cooperative and KIP-848, on one time scale."""
    scenario = rebalance_compare.Scenario(
        members=members,
        partitions=partitions,
        event=event,  # type: ignore[arg-type]
    )
    try:
        runs = rebalance_compare.compare(scenario)
    except ValueError as error:
        raise Invalid(str(error)) from None
    span = max(run.end_ms for run in runs)
    names = sorted({m for run in runs for m in run.members}, key=lambda n: int(n[1:]))
    hues = {name: (i * 137 + 200) % 360 for i, name in enumerate(names)}
    views = []
    for run in runs:
        rows = []
        for p in range(partitions):
            bars = [
                CompareBar(
                    member=s.member,
                    hue=hues[s.member],
                    left=round(100 * s.start_ms / span, 3),
                    width=round(100 * (s.end_ms - s.start_ms) / span, 3),
                    start_s=s.start_ms / 1000,
                    end_s=s.end_ms / 1000,
                )
                for s in run.segments
                if s.partition == p and s.end_ms > s.start_ms
            ]
            rows.append((p, bars))
        views.append(
            CompareRun(
                protocol=run.protocol,
                title=COMPARE_TITLES[run.protocol],
                heartbeat_ms=run.heartbeat_ms,
                rows=rows,
                events=[(t / 1000, round(100 * t / span, 3), text) for t, text in run.events],
                settled_s=run.settled_ms / 1000,
                paused_s=run.paused_ms / 1000,
                stopped=list(run.stopped),
                end_ms=run.end_ms,
            )
        )
    return views, span
