"""Records from learners' own Kafka clients: Produce and InitProducerId, as a broker does them.

A real client has already chosen each record's partition (its partitioner hashed the key), so
the broker appends where it is told: same offsets, same log, same events as the board's own
producers. Idempotent producers' batches are checked against the partition's producer state
(engine/idempotence.py): a retried batch is answered with its first offset and stored once.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from messaging import events
from messaging.engine import idempotence
from messaging.engine import retention as cleaner
from messaging.models import Partition, ProducerState, Record, Room, Topic
from messaging.services.events import event_record, room_lock
from messaging.services.records import EVENT_RECORDS_LIMIT, ProducedRecord, produced_payload
from messaging.services.replication import ProduceGuard
from messaging.services.retention import segments_append


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
    # acks=all to a replicated partition (#16): (partition pk, offset the high watermark must
    # reach, leader epoch) that the answer waits for (api/kafka_wire/brokers.py).
    wait: tuple[int, int, int] | None = None


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


def _room_extent(room: Room) -> int:
    """The room's stored records, as its logs' extent: one row per partition to read, however
    long the logs (compaction leaves holes, so this errs on the side of refusing a little
    early). Plain SQL: it runs on every Produce, and the ORM's compiling showed."""
    partition = connection.ops.quote_name(Partition._meta.db_table)
    topic = connection.ops.quote_name(Topic._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(SUM(p.log_end_offset - p.log_start_offset), 0) FROM {partition} p "
            f"JOIN {topic} t ON p.topic_id = t.id WHERE t.room_id = %s",
            [room.pk],
        )
        return int(cursor.fetchone()[0])


_PARTITION_SAVED = (
    "log_end_offset",
    "active_segment_base",
    "active_segment_records",
    "active_segment_first_ms",
    "cleaner_dirty",
)


def _partitions_save(partitions: list[Partition]) -> None:
    table = connection.ops.quote_name(Partition._meta.db_table)
    sets = ", ".join(f"{connection.ops.quote_name(c)} = %s" for c in _PARTITION_SAVED)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {sets} WHERE id = %s",
            [tuple(getattr(p, c) for c in _PARTITION_SAVED) + (p.pk,) for p in partitions],
        )


@dataclass
class _Appender:
    room: Room
    producer: str
    rows: list[tuple]
    # Per topic: (partition index, position in `rows` of its first record, count) per batch.
    produced: dict[int, list[tuple[int, int, int]]]

    def __post_init__(self) -> None:
        fields = {f.name: f for f in Record._meta.get_fields() if hasattr(f, "get_db_prep_save")}
        self._created_at = fields["created_at"].get_db_prep_save(timezone.now(), connection)
        self._headers_field = fields["headers"]
        self._max_key = settings.LOGLAB_MAX_KEY_CHARS
        self._max_value = settings.LOGLAB_KAFKA_MAX_VALUE_BYTES

    def batch(self, topic: Topic, partition: Partition, batch: ClientBatch) -> int:
        """Rows for a batch's records at the partition's log end. The loop is the Produce
        path's hot spot (one pass per record, nothing looked up inside it that a batch
        shares): docs/benchmarks.md."""
        config = topic.log_config()
        now = self.room.sim_time_ms
        first = partition.log_end_offset
        records = batch.records
        max_key, max_value = self._max_key, self._max_value
        keyless_refused = config.compacts
        rows = self.rows
        at = len(rows)
        partition_pk, producer, created_at = partition.pk, self.producer, self._created_at
        bases = segments_append(partition, config=config, timestamp_ms=now, count=len(records))
        offset = first
        for record, segment_base in zip(records, bases, strict=True):
            raw_key, raw_value = record.key, record.value
            key, key_bytes = _text(raw_key)
            value, value_bytes = _text(raw_value)
            if key is None:
                if keyless_refused:
                    try:
                        cleaner.check_key(config, None, str(partition))
                    except cleaner.InvalidRecordError as error:
                        raise _Refused("INVALID_RECORD", str(error)) from None
            elif len(key) > max_key:
                raise _Refused(
                    "INVALID_RECORD",
                    f"LogLab keeps keys of up to {max_key} characters (one here has {len(key)}).",
                )
            size = len(raw_value) if raw_value is not None else 0
            if size > max_value:
                raise _Refused(
                    "MESSAGE_TOO_LARGE",
                    f"A record's value is at most {max_value} bytes in LogLab "
                    f"(one here has {size}).",
                )
            headers = _headers(record.headers) if record.headers else None
            rows.append(
                (
                    partition_pk,
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
                    (len(raw_key) if raw_key is not None else 0) + size + 8,
                    segment_base,
                    producer,
                    created_at,
                    None,
                )
            )
            offset += 1
        partition.log_end_offset = offset
        self.produced.setdefault(topic.pk, []).append((partition.index, at, len(records)))
        return first

    def payload(self, topic: Topic) -> dict:
        listed: list[ProducedRecord] = []
        total = 0
        for index, at, count in self.produced.get(topic.pk, []):
            total += count
            for row in self.rows[at : at + min(count, EVENT_RECORDS_LIMIT - len(listed))]:
                listed.append(
                    ProducedRecord(
                        topic=topic.name,
                        partition=index,
                        offset=row[1],
                        key=row[2],
                        value=row[3],
                        timestamp_ms=row[8],
                        reason="client",
                    )
                )
        payload = produced_payload(topic, self.producer, listed)
        payload["more"] = total - len(listed)
        return payload


def _producer_states(partition: Partition, producer_ids: set[int]) -> dict[int, ProducerState]:
    return {
        row.producer_id: row
        for row in ProducerState.objects.filter(partition=partition, producer_id__in=producer_ids)
    }


@transaction.atomic
def client_produce(
    *,
    room: Room,
    writes: list[tuple[str, int, list[ClientBatch]]],
    producer: str,
    broker: int | None = None,
    acks: int = -1,
) -> list[PartitionAppend]:
    """Produce requests' batches for (topic, partition)s, in order, all appended under the
    room's lock in one transaction; each write answered on its own, in the same order, as Kafka
    does (one partition's refusal does not stop the others). Several requests of one
    connection may come at once, so a partition may appear more than once.

    `broker` is the broker the client sent them to, `acks` the requests' acks: the replication
    guard refuses a partition that broker does not lead, or acks=all under min.insync.replicas
    (services/replication.py)."""
    room = room_lock(room=room)
    partitions = {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(
            topic__room=room, topic__name__in={w[0] for w in writes}
        ).select_related("topic")
    }
    stored = _room_extent(room)
    guard = ProduceGuard.load(room=room, partitions=list(partitions.values()), broker=broker)
    appender = _Appender(room=room, producer=producer[:64], rows=[], produced={})
    answers: list[PartitionAppend] = []
    touched: dict[int, Partition] = {}
    for topic_name, index, batches in writes:
        partition = partitions.get((topic_name, index))
        if partition is None:
            answers.append(
                PartitionAppend(
                    "UNKNOWN_TOPIC_OR_PARTITION",
                    message=f"This room has no partition {topic_name}-{index}.",
                )
            )
            continue
        count = sum(len(b.records) for b in batches)
        if stored + len(appender.rows) + count > settings.LOGLAB_KAFKA_MAX_ROOM_RECORDS:
            answers.append(
                PartitionAppend(
                    "POLICY_VIOLATION",
                    message=(
                        f"A LogLab room keeps at most {settings.LOGLAB_KAFKA_MAX_ROOM_RECORDS} "
                        "records: delete a topic or make a new room."
                    ),
                )
            )
            continue
        refused = guard.admit(partition, acks)
        if refused is not None:
            answers.append(PartitionAppend(refused[0], message=refused[1]))
            continue
        end = partition.log_end_offset
        answer = _partition_produce(appender, partition.topic, partition, batches, touched)
        if answer.error is None:
            answer = replace(
                answer,
                wait=guard.appended(
                    partition,
                    count=partition.log_end_offset - end,
                    acks=acks,
                    required_offset=answer.base_offset + count,
                ),
            )
        answers.append(answer)
    if appender.rows:
        _records_insert(appender.rows)
        _partitions_save(list(touched.values()))
    guard.save()
    by_pk = {p.topic_id: p.topic for p in partitions.values()}
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
