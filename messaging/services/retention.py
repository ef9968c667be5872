"""Retention and compaction of stored partitions, as the engine's log cleaner decides.

The database keeps records; the engine reasons in segments. Each record remembers the segment
it was appended into (the engine's roll rule decides when a new one starts), so a partition's
segments can be rebuilt exactly for the cleaner, and its decisions written back.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import F, OuterRef, Subquery

from messaging import events
from messaging.engine import retention as cleaner
from messaging.models import Partition, Record, Room, Topic
from messaging.services.events import event_record, room_lock

# How many deleted offsets an event lists before it only gives the count.
EVENT_OFFSETS_LIMIT = 200


def segment_append(partition: Partition, *, config: cleaner.LogConfig, timestamp_ms: int) -> None:
    """Account for one record appended at the log end, rolling the segment where Kafka would.

    Changes the partition in memory; the caller saves it with the record.
    """
    if cleaner.should_roll(
        partition.active_segment_records,
        partition.active_segment_first_ms,
        timestamp_ms,
        config,
    ):
        partition.active_segment_base = partition.log_end_offset
        partition.active_segment_records = 0
        partition.active_segment_first_ms = None
        partition.cleaner_dirty = True
    if partition.active_segment_records == 0:
        partition.active_segment_first_ms = timestamp_ms
    partition.active_segment_records += 1


def segments_append(
    partition: Partition, *, config: cleaner.LogConfig, timestamp_ms: int, count: int
) -> list[int]:
    """`segment_append` for `count` records at once: each record's segment base, in order.

    Changes the partition in memory except its log end offset; the caller saves it with the
    records.
    """
    bases, active = cleaner.segment_bases(
        active_base=partition.active_segment_base,
        records_in_active=partition.active_segment_records,
        first_timestamp_ms=partition.active_segment_first_ms,
        log_end_offset=partition.log_end_offset,
        count=count,
        timestamp_ms=timestamp_ms,
        config=config,
    )
    partition.active_segment_base = active.base_offset
    partition.active_segment_records = active.records
    partition.active_segment_first_ms = active.first_timestamp_ms
    partition.cleaner_dirty = partition.cleaner_dirty or active.rolled
    return bases


def partition_log(partition: Partition, config: cleaner.LogConfig) -> cleaner.PartitionLog:
    """The stored partition as the engine's PartitionLog, segment by segment."""
    by_segment: dict[int, list[cleaner.Record]] = defaultdict(list)
    rows = Record.objects.filter(partition=partition).order_by("offset")
    for row in rows.only(
        "offset", "timestamp_ms", "key", "value", "size_bytes", "segment_base", "delete_horizon_ms"
    ):
        by_segment[row.segment_base].append(
            cleaner.Record(
                offset=row.offset,
                timestamp_ms=row.timestamp_ms,
                key=row.key,
                value=row.value,
                size_bytes=row.size_bytes,
                delete_horizon_ms=row.delete_horizon_ms,
            )
        )
    by_segment.setdefault(partition.active_segment_base, [])
    segments = tuple(
        cleaner.Segment(
            base_offset=base,
            records=tuple(records),
            largest_timestamp_ms=max((r.timestamp_ms for r in records), default=None),
        )
        for base, records in sorted(by_segment.items())
    )
    return cleaner.PartitionLog(
        partition=str(partition),
        config=config,
        segments=segments,
        log_start_offset=partition.log_start_offset,
        log_end_offset=partition.log_end_offset,
    )


def _oldest_stamp() -> Subquery:
    """A partition's oldest record's timestamp. Records are stamped with the room's clock as
    they are appended, so the first one by offset is the oldest: one index lookup, however
    long the log (a scan of the timestamps held the room's lock longer than a tick once the
    log was long)."""
    return Subquery(
        Record.objects.filter(partition=OuterRef("pk"))
        .order_by("offset")
        .values("timestamp_ms")[:1]
    )


def _cleaning_due(
    partition: Partition, config: cleaner.LogConfig, now_ms: int, oldest: int | None = None
) -> bool:
    """A cheap look before loading a whole partition: could the cleaner find work?"""
    if partition.log_end_offset == partition.log_start_offset:
        return False
    records = Record.objects.filter(partition=partition)
    if config.deletes:
        if oldest is None:
            oldest = records.order_by("offset").values_list("timestamp_ms", flat=True).first()
        if (
            config.retention_ms >= 0
            and oldest is not None
            and oldest < now_ms - config.retention_ms
        ):
            return True
        if config.retention_bytes >= 0:
            return True
    if config.compacts:
        if partition.cleaner_dirty:
            return True
        return records.filter(delete_horizon_ms__lte=now_ms).exists()
    return False


def topics_to_clean(*, room: Room) -> list[Topic]:
    """The room's topics the cleaner may find work in now, from one query over their
    partitions: the room's step runs ten times a second, and most of the time there is none."""
    now = room.sim_time_ms
    due: dict[int, Topic] = {}
    partitions = (
        Partition.objects.filter(topic__room=room)
        .exclude(log_end_offset=F("log_start_offset"))
        .annotate(oldest=_oldest_stamp())
        .select_related("topic")
    )
    for partition in partitions:
        topic = partition.topic
        if topic.pk not in due and _cleaning_due(
            partition, topic.log_config(), now, oldest=partition.oldest
        ):
            due[topic.pk] = topic
    return sorted(due.values(), key=lambda t: t.pk)


@transaction.atomic
def topic_clean(*, topic: Topic, force: bool = False) -> list[cleaner.CleanupResult]:
    """Run retention and compaction on every partition of a topic at the room's time."""
    room: Room = room_lock(room=topic.room_id)
    topic = Topic.objects.get(pk=topic.pk)
    config = topic.log_config()
    now = room.sim_time_ms
    results = []
    for partition in Partition.objects.filter(topic=topic).order_by("index"):
        if not force and not _cleaning_due(partition, config, now):
            continue
        result = cleaner.clean(partition_log(partition, config), now)
        _store_cleanup(partition, result)
        if result.deleted:
            _cleanup_event(room, topic, partition, result)
        results.append(result)
    return results


def _store_cleanup(partition: Partition, result: cleaner.CleanupResult) -> None:
    deleted = [d.offset for d in result.deleted]
    if deleted:
        Record.objects.filter(partition=partition, offset__in=deleted).delete()
    for record in cleaner.records(result.log):
        if record.delete_horizon_ms is not None:
            Record.objects.filter(
                partition=partition, offset=record.offset, delete_horizon_ms__isnull=True
            ).update(delete_horizon_ms=record.delete_horizon_ms)
    active = result.log.segments[-1]
    partition.log_start_offset = result.log_start_offset
    partition.active_segment_base = active.base_offset
    partition.active_segment_records = len(active.records)
    partition.active_segment_first_ms = active.records[0].timestamp_ms if active.records else None
    partition.cleaner_dirty = False
    partition.save(
        update_fields=[
            "log_start_offset",
            "active_segment_base",
            "active_segment_records",
            "active_segment_first_ms",
            "cleaner_dirty",
        ]
    )


def _cleanup_event(
    room: Room, topic: Topic, partition: Partition, result: cleaner.CleanupResult
) -> None:
    reasons: dict[str, int] = defaultdict(int)
    for deletion in result.deleted:
        reasons[deletion.reason] += 1
    offsets = [d.offset for d in result.deleted]
    event_record(
        room=room,
        type=events.RECORDS_DELETED,
        payload={
            "topic": topic.name,
            "partition": partition.index,
            "log_start_offset": result.log_start_offset,
            "offsets": offsets[:EVENT_OFFSETS_LIMIT],
            "count": len(offsets),
            "reasons": dict(reasons),
            "segments_deleted": list(result.deleted_segments),
        },
    )
