from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction

from messaging import events
from messaging.engine import partitioner
from messaging.engine import retention as cleaner
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import Partition, Record, Room, Topic
from messaging.services.events import event_record, room_lock
from messaging.services.mirror import queues_mirror_records
from messaging.services.replication import ProduceGuard
from messaging.services.retention import segment_append
from messaging.services.text import key_validate, preview

# What an event carries of a value: the board shows a preview, the full value is one fetch away.
MAX_RECORDS_PER_CALL = 1000


@dataclass(frozen=True)
class RecordIn:
    key: str | None
    value: str | None
    partition: int | None = None


@dataclass(frozen=True)
class ProducedRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None
    timestamp_ms: int
    # Why this partition: "explicit", "key" or "sticky", for the narration.
    reason: str

    def as_event(self) -> dict:
        value = preview(self.value) if self.value is not None else None
        return {
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "value": value,
            "ts": self.timestamp_ms,
            "reason": self.reason,
        }


def record_validate(record: RecordIn, *, partition_count: int) -> None:
    key_validate(record.key)
    if record.key is not None and len(record.key) > settings.LOGLAB_MAX_KEY_CHARS:
        raise Invalid(
            f"A key has at most {settings.LOGLAB_MAX_KEY_CHARS} characters "
            f"(this one has {len(record.key)}).",
            field="key",
        )
    if record.value is not None:
        size = len(record.value.encode("utf-8"))
        if size > settings.LOGLAB_MAX_VALUE_BYTES:
            raise Invalid(
                f"A value is at most {settings.LOGLAB_MAX_VALUE_BYTES // 1024} KB "
                f"(this one is {size} bytes).",
                field="value",
            )
    if record.partition is not None and not 0 <= record.partition < partition_count:
        raise Invalid(
            f"Partition {record.partition} does not exist: this topic has partitions "
            f"0 to {partition_count - 1}.",
            field="partition",
        )


def record_size(record: RecordIn) -> int:
    """Bytes the record takes in a batch, roughly: what the sticky partitioner counts."""
    key = len(record.key.encode("utf-8")) if record.key is not None else 0
    value = len(record.value.encode("utf-8")) if record.value is not None else 0
    return key + value + 8  # offset delta, timestamp delta and lengths, approximately


@transaction.atomic
def records_produce(
    *,
    room: Room,
    topic_name: str,
    records: list[RecordIn],
    producer: str = "",
    emit_event: bool = True,
    acks: int = -1,
    skip_unavailable: bool = False,
) -> list[ProducedRecord]:
    """Append records to a topic's partitions, as a Kafka producer and broker would.

    Every offset is the partition's log end offset at the moment of the append, taken under
    the room's lock, so concurrent producers never share or skip an offset. The room's
    simulation step passes `emit_event=False` and reports its records in its own coalesced
    event.

    A replicated partition's leader checks `acks` first (services/replication.py): a record
    for a partition without a leader, or with acks=all (-1, the producer's default) while its
    ISR is under min.insync.replicas, is refused (Conflict), or with `skip_unavailable` (the
    autoplay producers) not sent this time.
    """
    if not records:
        raise Invalid("Nothing to produce.")
    if len(records) > MAX_RECORDS_PER_CALL:
        raise Invalid(f"At most {MAX_RECORDS_PER_CALL} records per call.")
    if acks not in (-1, 0, 1):
        raise Invalid("acks is all (-1), 1 or 0.", field="acks")
    room = room_lock(room=room)
    try:
        topic = Topic.objects.get(room=room, name=topic_name)
    except Topic.DoesNotExist:
        raise NotFound(f"Topic '{topic_name}' does not exist in this room.") from None
    log_config = topic.log_config()
    for record in records:
        record_validate(record, partition_count=topic.partition_count)
        try:
            cleaner.check_key(log_config, record.key, topic.name)
        except cleaner.InvalidRecordError as error:
            raise Invalid(
                f"'{topic.name}' is compacted (cleanup.policy={topic.cleanup_policy}), and "
                f"compaction keeps the latest record per key: {error}",
                field="key",
            ) from None

    partitions = {p.index: p for p in Partition.objects.filter(topic=topic)}
    for p in partitions.values():
        p.topic = topic
    guard = ProduceGuard.load(room=room, partitions=list(partitions.values()), broker=None)
    refusals: dict[int, tuple[str, str] | None] = {}
    appended: dict[int, int] = {}
    sticky = partitioner.StickyState(**topic.sticky_state) if topic.sticky_state else None
    now = room.sim_time_ms
    rows: list[Record] = []
    touched: set[int] = set()
    produced: list[ProducedRecord] = []
    for record in records:
        choice = partitioner.choose_partition(
            key=record.key,
            num_partitions=topic.partition_count,
            explicit_partition=record.partition,
            sticky=sticky,
            record_size=record_size(record),
            seed=topic.pk,
        )
        sticky = choice.sticky
        partition = partitions[choice.partition]
        if partition.index not in refusals:
            refusals[partition.index] = guard.admit(partition, acks)
        refused = refusals[partition.index]
        if refused is not None:
            if skip_unavailable:
                continue
            raise Conflict(f"{refused[0]}: {refused[1]}", field="acks")
        appended[partition.index] = appended.get(partition.index, 0) + 1
        touched.add(partition.index)
        offset = partition.log_end_offset
        segment_append(partition, config=log_config, timestamp_ms=now)
        partition.log_end_offset = offset + 1
        rows.append(
            Record(
                partition=partition,
                offset=offset,
                key=record.key,
                value=record.value,
                timestamp_ms=now,
                size_bytes=record_size(record),
                segment_base=partition.active_segment_base,
                producer=producer[:64],
            )
        )
        produced.append(
            ProducedRecord(
                topic=topic.name,
                partition=partition.index,
                offset=offset,
                key=record.key,
                value=record.value,
                timestamp_ms=now,
                reason=choice.reason,
            )
        )
    Record.objects.bulk_create(rows)
    for index, count in appended.items():
        p = partitions[index]
        guard.appended(p, count=count, acks=acks, required_offset=p.log_end_offset)
    guard.save()
    for index in touched:
        # One plain UPDATE per partition: cheaper than bulk_update's CASE expressions.
        p = partitions[index]
        Partition.objects.filter(pk=p.pk).update(
            log_end_offset=p.log_end_offset,
            active_segment_base=p.active_segment_base,
            active_segment_records=p.active_segment_records,
            active_segment_first_ms=p.active_segment_first_ms,
            cleaner_dirty=p.cleaner_dirty,
        )
    if room.mirror_topic_id == topic.pk:
        # Side-by-side mode: the same stream goes to the room's SQS FIFO and classic queues.

        queues_mirror_records(
            room=room,
            topic_name=topic.name,
            records=[
                {"key": p.key, "value": p.value, "partition": p.partition, "offset": p.offset}
                for p in produced
            ],
        )
    if sticky is not None and asdict(sticky) != topic.sticky_state:
        topic.sticky_state = asdict(sticky)
        topic.save(update_fields=["sticky_state"])
    if emit_event:
        event_record(
            room=room,
            type=events.RECORDS_PRODUCED,
            payload=produced_payload(topic, producer, produced),
        )
    return produced


# How many records one event lists; beyond that the board shows a merged counter.
EVENT_RECORDS_LIMIT = 100


def produced_payload(topic: Topic, producer: str, produced: list[ProducedRecord]) -> dict:
    listed = produced[:EVENT_RECORDS_LIMIT]
    payload: dict = {
        "topic": topic.name,
        "producer": producer[:64],
        "partitions": topic.partition_count,
        "records": [p.as_event() for p in listed],
        "more": len(produced) - len(listed),
    }
    if len(produced) == 1 and produced[0].reason == "key" and produced[0].key is not None:
        # One record: say exactly why it went where it went, in the engine's words.
        payload["explain"] = partitioner.explain_key(produced[0].key, topic.partition_count)["text"]
    return payload
