"""Records from learners' own Kafka clients: Produce and InitProducerId, as a broker does them.

A real client has already chosen each record's partition (its partitioner hashed the key), so
the broker appends where it is told: same offsets, same log, same events as the board's own
producers. Idempotent producers' batches are checked against the partition's producer state
(engine/idempotence.py): a retried batch is answered with its first offset and stored once.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator, Sequence
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
    """What pages show, and the exact bytes when the text cannot give them back: bytes that
    are not UTF-8, or a NUL character (PostgreSQL's text refuses it), shown as \\x00."""
    if raw is None:
        return None, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), bytes(raw)
    if "\x00" in text:
        return text.replace("\x00", "\\x00"), bytes(raw)
    return text, None


def _headers(headers: tuple[tuple[str, bytes | None], ...]) -> list | None:
    if not headers:
        return None
    # A header's name is text (JSON); PostgreSQL's jsonb refuses a NUL in it, so a NUL is kept
    # as backslash, x, 0, 0: what the board shows.
    return [
        [
            name.replace("\x00", "\\x00"),
            base64.b64encode(value).decode("ascii") if value is not None else None,
        ]
        for name, value in headers
    ]


# The columns a client's record fills. A client's batches skip Django's bulk_create (~50 µs per
# record preparing model instances, most of a Produce's time; docs/benchmarks.md): each batch is
# a _Chunk of plain tuples, inserted with one statement.
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
# A chunk's row: (offset, key, value, create_time_ms, size_bytes, segment_base), then, only for
# a record with headers or bytes the text cannot hold, (key_bytes, value_bytes, headers).
_PLAIN = 6


@dataclass
class _Chunk:
    """One batch's rows, and what every row of it shares."""

    partition_pk: int
    timestamp_ms: int
    rows: list[tuple]
    plain: bool = True  # every row is _PLAIN long


def _wide_rows(chunk: _Chunk, *, producer: str, created_at) -> Iterator[tuple]:
    """A chunk's rows with every column, in _COLUMNS' order."""
    for row in chunk.rows:
        odd = row[_PLAIN:] if len(row) > _PLAIN else (None, None, None)
        yield (
            chunk.partition_pk,
            row[0],
            row[1],
            row[2],
            *odd,
            row[3],
            chunk.timestamp_ms,
            row[4],
            row[5],
            producer,
            created_at,
            None,
        )


def _records_insert(chunks: list[_Chunk], *, producer: str, created_at) -> None:
    json_path = connection.vendor == "sqlite"
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for chunk in chunks:
            if json_path and chunk.plain:
                cursor.execute(
                    _sqlite_json_insert_sql(),
                    [
                        chunk.partition_pk,
                        chunk.timestamp_ms,
                        producer,
                        created_at,
                        json.dumps(chunk.rows, ensure_ascii=False, separators=(",", ":")),
                    ],
                )
            else:
                rows.extend(_wide_rows(chunk, producer=producer, created_at=created_at))
        if rows:
            table = connection.ops.quote_name(Record._meta.db_table)
            columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
            marks = ", ".join(["%s"] * len(_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


@functools.cache
def _sqlite_json_insert_sql() -> str:
    """On SQLite, a batch of plain rows goes in as one JSON array that SQLite unpacks itself
    (json_each): binding 14 parameters per row held the GIL longer than SQLite took to store
    the row. Rows with bytes the text cannot hold, or headers, take executemany, as on
    PostgreSQL."""
    q = connection.ops.quote_name
    columns = (
        "partition_id",
        "timestamp_ms",
        "producer",
        "created_at",
        "offset",
        "key",
        "value",
        "create_time_ms",
        "size_bytes",
        "segment_base",
    )
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(_PLAIN))
    return (
        f"INSERT INTO {q(Record._meta.db_table)} ({', '.join(q(c) for c in columns)}) "
        f"SELECT %s, %s, %s, %s, {picks} FROM json_each(%s)"
    )


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
    chunks: list[_Chunk]
    # Per topic: (partition index, the batch's chunk) per batch.
    produced: dict[int, list[tuple[int, _Chunk]]]
    count: int = 0  # rows in the chunks

    def __post_init__(self) -> None:
        fields = {f.name: f for f in Record._meta.get_fields() if hasattr(f, "get_db_prep_save")}
        self.created_at = fields["created_at"].get_db_prep_save(timezone.now(), connection)
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
        chunk = _Chunk(partition_pk=partition.pk, timestamp_ms=now, rows=[])
        rows = chunk.rows
        append = rows.append
        plain = True
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
            row = (
                offset,
                key,
                value,
                record.timestamp_ms,
                (len(raw_key) if raw_key is not None else 0) + size + 8,
                segment_base,
            )
            if record.headers or key_bytes is not None or value_bytes is not None:
                plain = False
                headers = _headers(record.headers) if record.headers else None
                row += (
                    key_bytes,
                    value_bytes,
                    None
                    if headers is None
                    else self._headers_field.get_db_prep_save(headers, connection),
                )
            append(row)
            offset += 1
        chunk.plain = plain
        partition.log_end_offset = offset
        self.chunks.append(chunk)
        self.count += len(rows)
        self.produced.setdefault(topic.pk, []).append((partition.index, chunk))
        return first

    def payload(self, topic: Topic) -> dict:
        listed: list[ProducedRecord] = []
        total = 0
        for index, chunk in self.produced.get(topic.pk, []):
            total += len(chunk.rows)
            for row in chunk.rows[: max(0, EVENT_RECORDS_LIMIT - len(listed))]:
                listed.append(
                    ProducedRecord(
                        topic=topic.name,
                        partition=index,
                        offset=row[0],
                        key=row[1],
                        value=row[2],
                        timestamp_ms=chunk.timestamp_ms,
                        reason="client",
                    )
                )
        payload = produced_payload(topic, self.producer, listed)
        payload["more"] = total - len(listed)
        return payload

    def rollback(self, chunks: int, produced: dict[int, int]) -> None:
        """Forget the batches after the first `chunks` (a refused partition's)."""
        for chunk in self.chunks[chunks:]:
            self.count -= len(chunk.rows)
        del self.chunks[chunks:]
        for topic_pk, listed in self.produced.items():
            del listed[produced.get(topic_pk, 0) :]


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
    appender = _Appender(room=room, producer=producer[:64], chunks=[], produced={})
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
        if stored + appender.count + count > settings.LOGLAB_KAFKA_MAX_ROOM_RECORDS:
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
    if appender.chunks:
        _records_insert(appender.chunks, producer=appender.producer, created_at=appender.created_at)
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
    chunks_before = len(appender.chunks)
    produced_before = {pk: len(listed) for pk, listed in appender.produced.items()}
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
        appender.rollback(chunks_before, produced_before)
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
