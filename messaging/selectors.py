"""Reads shaped for the pages, the websocket and the APIs. No writes here."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from messaging.errors import Invalid, NotFound
from messaging.models import (
    Assignment,
    CommittedOffset,
    ConsumerGroup,
    Member,
    Partition,
    ProcessedRecord,
    Producer,
    Record,
    Room,
    RoomEvent,
    Topic,
)
from messaging.services.rooms import join_code_normalise

# How many of a partition's newest records the board draws; older ones are summarised.
BOARD_CELLS_PER_PARTITION = 40


def room_get(*, code: str) -> Room:
    try:
        return Room.objects.get(code=join_code_normalise(code))
    except Room.DoesNotExist:
        raise NotFound(f"There is no room with the code '{code}'.") from None


def topic_get(*, room: Room, name: str) -> Topic:
    try:
        return Topic.objects.get(room=room, name=name)
    except Topic.DoesNotExist:
        raise NotFound(f"Topic '{name}' does not exist in this room.") from None


def group_get(*, room: Room, group_id: str) -> ConsumerGroup:
    try:
        return ConsumerGroup.objects.get(room=room, group_id=group_id)
    except ConsumerGroup.DoesNotExist:
        raise NotFound(f"Consumer group '{group_id}' does not exist in this room.") from None


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
    from messaging.engine.offsets import OffsetOutOfRangeError, check_fetch_offset

    max_records = max(1, min(int(max_records), settings.LOGLAB_MAX_FETCH))
    try:
        check_fetch_offset(
            offset, partition.log_start_offset, partition.log_end_offset, str(partition)
        )
    except OffsetOutOfRangeError as error:
        raise Invalid(str(error), field="offset") from None
    return list(
        Record.objects.filter(partition=partition, offset__gte=offset).order_by("offset")[
            :max_records
        ]
    )


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
    partitions = list(
        Partition.objects.filter(topic__room=room).order_by("topic_id", "index")
    )
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
    from messaging.engine import offsets as offset_rules

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


def events_since(*, room: Room, seq: int, limit: int) -> list[RoomEvent] | None:
    """The events after `seq`, or None when more than `limit` were missed (resync instead)."""
    missed = room.last_seq - seq
    if missed <= 0:
        return []
    if missed > limit:
        return None
    return list(RoomEvent.objects.filter(room=room, seq__gt=seq).order_by("seq"))


# --- consumer groups on the board -----------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    member: Member
    assigned: list[str]  # "topic-partition", sorted
    idle_reason: str
    session_deadline_ms: int

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
    total_lag: int


LEDGER_SHOWN = 40


def board_groups(*, room: Room) -> list[GroupView]:
    """Every group with its members, their partitions, offsets and lag, in a fixed number of
    queries per group."""
    from messaging.engine import group as coordinator
    from messaging.engine import offsets as offset_rules
    from messaging.services.groups import group_state_load

    views = []
    groups = ConsumerGroup.objects.filter(room=room).prefetch_related("topics").order_by(
        "created_at"
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
        idle = coordinator.idle_members(group_state_load(group)) if members else {}
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
                    )
                    for m in members
                ],
                rows=rows,
                # Newest first: the ledger panel shows the latest lines when it is full.
                ledger=list(
                    ProcessedRecord.objects.filter(group=group)
                    .select_related("partition__topic")
                    .order_by("-id")[:LEDGER_SHOWN]
                ),
                total_lag=sum(
                    offset_rules.lag_or_backlog(p.log_start_offset, p.log_end_offset,
                                                committed.get(p.pk))
                    for p in partitions
                ),
            )
        )
    return views


def board_producers(*, room: Room) -> list[Producer]:
    return list(Producer.objects.filter(room=room).select_related("topic"))


def member_assignments(*, member) -> list:
    """The partitions a member owns, with their topics, in topic and partition order."""
    return list(
        Assignment.objects.filter(member=member)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    )


def group_committed(*, group, partition_ids=None) -> dict[int, int]:
    """The group's committed offsets, by partition id (only `partition_ids` if given)."""
    offsets = CommittedOffset.objects.filter(group=group)
    if partition_ids is not None:
        offsets = offsets.filter(partition__in=partition_ids)
    return dict(offsets.values_list("partition_id", "offset"))
