"""Records from learners' own Kafka clients: Produce and InitProducerId, as a broker does them.

A real client has already chosen each record's partition (its partitioner hashed the key), so
the broker appends where it is told: same offsets, same log, same events as the board's own
producers. Idempotent producers' batches are checked against the partition's producer state
(engine/idempotence.py): a retried batch is answered with its first offset and stored once.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from messaging import events
from messaging.engine import idempotence
from messaging.engine import retention as cleaner
from messaging.models import Partition, ProducerState, Record, Room, Topic
from messaging.services.events import event_record, room_lock
from messaging.services.records import EVENT_RECORDS_LIMIT, ProducedRecord, produced_payload
from messaging.services.retention import segment_append


@dataclass(frozen=True)
class ClientRecord:
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class ClientBatch:
    producer_id: int
    producer_epoch: int
    base_sequence: int
    # ClientRecords, or anything with their fields (the listener passes its decoded records).
    records: Sequence[ClientRecord]


@dataclass(frozen=True)
class PartitionAppend:
    """A Produce response's partition: Kafka's error name (None: appended) and offsets."""

    error: str | None
    base_offset: int = -1
    log_start_offset: int = -1
    message: str | None = None


class _Refused(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _text(raw: bytes | None) -> tuple[str | None, bytes | None]:
    """What pages show, and the exact bytes when the text cannot give them back."""
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), bytes(raw)


def _headers(headers: tuple[tuple[str, bytes | None], ...]) -> list | None:
    if not headers:
        return None
    return [
        [name, base64.b64encode(value).decode("ascii") if value is not None else None]
        for name, value in headers
    ]


# The columns a client's record fills, in the order of the rows _Appender builds: a client's
# batches are inserted with one executemany of plain tuples (Django's bulk_create spent ~50 µs
# per record preparing model instances, most of a Produce's time; docs/benchmarks.md).
_COLUMNS = (
    "partition_id",
    "offset",
    "key",
    "value",
    "key_bytes",
    "value_bytes",
    "headers",
    "create_time_ms",
    "timestamp_ms",
    "size_bytes",
    "segment_base",
    "producer",
    "created_at",
    "delete_horizon_ms",
)


def _records_insert(rows: list[tuple]) -> None:
    table = connection.ops.quote_name(Record._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    marks = ", ".join(["%s"] * len(_COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


@dataclass
class _Appender:
    room: Room
    producer: str
    rows: list[tuple]
    # Per topic: (partition index, position in `rows`) of each record appended.
    produced: dict[int, list[tuple[int, int]]]

    def __post_init__(self) -> None:
        fields = {f.name: f for f in Record._meta.get_fields() if hasattr(f, "get_db_prep_save")}
        self._created_at = fields["created_at"].get_db_prep_save(timezone.now(), connection)
        self._headers_field = fields["headers"]

    def batch(self, topic: Topic, partition: Partition, batch: ClientBatch) -> int:
        config = topic.log_config()
        now = self.room.sim_time_ms
        first = partition.log_end_offset
        where = str(partition)
        for record in batch.records:
            key, key_bytes = _text(record.key)
            value, value_bytes = _text(record.value)
            if key is not None and len(key) > settings.LOGLAB_MAX_KEY_CHARS:
                raise _Refused(
                    "INVALID_RECORD",
                    f"LogLab keeps keys of up to {settings.LOGLAB_MAX_KEY_CHARS} characters "
                    f"(one here has {len(key)}).",
                )
            size = len(record.value or b"")
            if size > settings.LOGLAB_KAFKA_MAX_VALUE_BYTES:
                raise _Refused(
                    "MESSAGE_TOO_LARGE",
                    f"A record's value is at most {settings.LOGLAB_KAFKA_MAX_VALUE_BYTES} bytes "
                    f"in LogLab (one here has {size}).",
                )
            try:
                cleaner.check_key(config, key, where)
            except cleaner.InvalidRecordError as error:
                raise _Refused("INVALID_RECORD", str(error)) from None
            offset = partition.log_end_offset
            segment_append(partition, config=config, timestamp_ms=now)
            partition.log_end_offset = offset + 1
            headers = _headers(record.headers)
            self.rows.append(
                (
                    partition.pk,
                    offset,
                    key,
                    value,
                    key_bytes,
                    value_bytes,
                    None
                    if headers is None
                    else self._headers_field.get_db_prep_save(headers, connection),
                    record.timestamp_ms,
                    now,
                    len(record.key or b"") + size + 8,
                    partition.active_segment_base,
                    self.producer,
                    self._created_at,
                    None,
                )
            )
            # Where the row is, for the event: only the first few become ProducedRecords.
            self.produced.setdefault(topic.pk, []).append((partition.index, len(self.rows) - 1))
        return first

    def payload(self, topic: Topic) -> dict:
        appended = self.produced.get(topic.pk, [])
        listed = [
            ProducedRecord(
                topic=topic.name,
                partition=index,
                offset=self.rows[at][1],
                key=self.rows[at][2],
                value=self.rows[at][3],
                timestamp_ms=self.rows[at][8],
                reason="client",
            )
            for index, at in appended[:EVENT_RECORDS_LIMIT]
        ]
        payload = produced_payload(topic, self.producer, listed)
        payload["more"] = len(appended) - len(listed)
        return payload


def _producer_states(partition: Partition, producer_ids: set[int]) -> dict[int, ProducerState]:
    return {
        row.producer_id: row
        for row in ProducerState.objects.filter(partition=partition, producer_id__in=producer_ids)
    }


@transaction.atomic
def client_produce(
    *, room: Room, writes: list[tuple[str, int, list[ClientBatch]]], producer: str
) -> dict[tuple[str, int], PartitionAppend]:
    """One Produce request: batches for (topic, partition)s, all appended under the room's lock
    in one transaction, each partition answered on its own as Kafka does (one partition's
    refusal does not stop the others)."""
    room = room_lock(room=room)
    topics = {t.name: t for t in Topic.objects.filter(room=room, name__in={w[0] for w in writes})}
    partitions = {
        (p.topic_id, p.index): p
        for p in Partition.objects.filter(topic__in=topics.values()).select_related("topic")
    }
    # The log's extent, not a count of rows: one row per partition to read, however long the
    # logs (compaction leaves holes, so this errs on the side of refusing a little early).
    stored = (
        Partition.objects.filter(topic__room=room).aggregate(
            n=Sum(F("log_end_offset") - F("log_start_offset"))
        )["n"]
        or 0
    )
    appender = _Appender(room=room, producer=producer[:64], rows=[], produced={})
    answers: dict[tuple[str, int], PartitionAppend] = {}
    touched: dict[int, Partition] = {}
    for topic_name, index, batches in writes:
        topic = topics.get(topic_name)
        partition = partitions.get((topic.pk, index)) if topic is not None else None
        if partition is None:
            answers[(topic_name, index)] = PartitionAppend(
                "UNKNOWN_TOPIC_OR_PARTITION",
                message=f"This room has no partition {topic_name}-{index}.",
            )
            continue
        count = sum(len(b.records) for b in batches)
        if stored + len(appender.rows) + count > settings.LOGLAB_KAFKA_MAX_ROOM_RECORDS:
            answers[(topic_name, index)] = PartitionAppend(
                "POLICY_VIOLATION",
                message=(
                    f"A LogLab room keeps at most {settings.LOGLAB_KAFKA_MAX_ROOM_RECORDS} "
                    "records: delete a topic or make a new room."
                ),
            )
            continue
        answers[(topic_name, index)] = _partition_produce(
            appender, topic, partition, batches, touched
        )
    if appender.rows:
        _records_insert(appender.rows)
    for p in touched.values():
        Partition.objects.filter(pk=p.pk).update(
            log_end_offset=p.log_end_offset,
            active_segment_base=p.active_segment_base,
            active_segment_records=p.active_segment_records,
            active_segment_first_ms=p.active_segment_first_ms,
            cleaner_dirty=p.cleaner_dirty,
        )
    by_pk = {t.pk: t for t in topics.values()}
    for topic_pk, produced in appender.produced.items():
        if produced:
            event_record(
                room=room, type=events.RECORDS_PRODUCED, payload=appender.payload(by_pk[topic_pk])
            )
    return answers


def _partition_produce(
    appender: _Appender,
    topic: Topic,
    partition: Partition,
    batches: list[ClientBatch],
    touched: dict[int, Partition],
) -> PartitionAppend:
    # Work on a copy: a refused batch leaves the partition as it was.
    before = (
        partition.log_end_offset,
        partition.active_segment_base,
        partition.active_segment_records,
        partition.active_segment_first_ms,
        partition.cleaner_dirty,
    )
    rows_before = len(appender.rows)
    produced_before = len(appender.produced.get(topic.pk, []))
    states = _producer_states(partition, {b.producer_id for b in batches if b.producer_id >= 0})
    entries = {pid: idempotence.ProducerEntry.from_dict(row.state) for pid, row in states.items()}
    first_offset: int | None = None
    try:
        for batch in batches:
            identity = None
            if batch.producer_id >= 0 and batch.base_sequence >= 0:
                identity = idempotence.BatchIdentity(
                    producer_id=batch.producer_id,
                    producer_epoch=batch.producer_epoch,
                    base_sequence=batch.base_sequence,
                    last_sequence=idempotence.increment_sequence(
                        batch.base_sequence, len(batch.records) - 1
                    ),
                )
                verdict = idempotence.check(entries.get(batch.producer_id), identity)
                if verdict.action == "duplicate":
                    # Kafka answers a retried batch with the offset it got the first time.
                    if first_offset is None:
                        first_offset = verdict.first_offset
                    continue
                if verdict.action == "error":
                    raise _Refused(
                        verdict.error or "OUT_OF_ORDER_SEQUENCE_NUMBER",
                        f"Producer {batch.producer_id}: sequence {batch.base_sequence} "
                        f"refused ({verdict.error}).",
                    )
            offset = appender.batch(topic, partition, batch)
            if first_offset is None:
                first_offset = offset
            if identity is not None:
                entries[batch.producer_id] = idempotence.record(
                    entries.get(batch.producer_id),
                    identity,
                    first_offset=offset,
                    timestamp_ms=appender.room.sim_time_ms,
                )
    except _Refused as refused:
        (
            partition.log_end_offset,
            partition.active_segment_base,
            partition.active_segment_records,
            partition.active_segment_first_ms,
            partition.cleaner_dirty,
        ) = before
        del appender.rows[rows_before:]
        if topic.pk in appender.produced:
            del appender.produced[topic.pk][produced_before:]
        return PartitionAppend(refused.error, message=refused.message)
    touched[partition.pk] = partition
    for pid, entry in entries.items():
        if pid in states:
            row = states[pid]
            if row.state != entry.to_dict():
                row.state = entry.to_dict()
                row.save(update_fields=["state"])
        else:
            ProducerState.objects.create(
                partition=partition, producer_id=pid, state=entry.to_dict()
            )
    return PartitionAppend(
        None,
        base_offset=first_offset if first_offset is not None else partition.log_end_offset,
        log_start_offset=partition.log_start_offset,
    )


@transaction.atomic
def client_producer_id_init(*, room: Room) -> tuple[int, int]:
    """InitProducerId for a producer with no transactional.id: a fresh id, epoch 0."""
    room = room_lock(room=room)
    producer_id = room.producer_id_next
    Room.objects.filter(pk=room.pk).update(producer_id_next=producer_id + 1)
    return producer_id, 0
