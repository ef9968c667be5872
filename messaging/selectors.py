"""Reads shaped for the pages, the websocket and the APIs. No writes here."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from messaging.errors import Invalid, NotFound
from messaging.models import ConsumerGroup, Partition, Record, Room, RoomEvent, Topic
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
    """Records from `offset` on, as a Kafka fetch returns them.

    An offset outside [log start, log end] is Kafka's OFFSET_OUT_OF_RANGE: the consumer's
    auto.offset.reset decides what happens next, not the broker.
    """
    max_records = max(1, min(int(max_records), settings.LOGLAB_MAX_FETCH))
    if not partition.log_start_offset <= offset <= partition.log_end_offset:
        raise Invalid(
            f"Offset {offset} is out of range for {partition}: the log holds offsets "
            f"{partition.log_start_offset} to {partition.log_end_offset - 1} "
            f"(log end offset {partition.log_end_offset}).",
            field="offset",
        )
    return list(
        Record.objects.filter(partition=partition, offset__gte=offset).order_by("offset")[
            :max_records
        ]
    )


@dataclass(frozen=True)
class PartitionView:
    partition: Partition
    records: list[Record]
    hidden_before: int  # records in the log but not drawn


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
                    )
                    for p in partitions
                    if p.topic_id == topic.pk
                ],
            )
        )
    return views


def events_since(*, room: Room, seq: int, limit: int) -> list[RoomEvent] | None:
    """The events after `seq`, or None when more than `limit` were missed (resync instead)."""
    missed = room.last_seq - seq
    if missed <= 0:
        return []
    if missed > limit:
        return None
    return list(RoomEvent.objects.filter(room=room, seq__gt=seq).order_by("seq"))
