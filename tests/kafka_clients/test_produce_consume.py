"""Each real client produces keyed records and consumes them in a group with commits.

Kafka's rule for a keyed record is the Java producer's: `toPositive(murmur2(key)) % partitions`
(`messaging.engine.partitioner.partition_for_key`). kafka-python and aiokafka use it by
default; librdkafka's default is `consistent_random` (CRC32), so confluent-kafka and kcat are
configured with `partitioner=murmur2_random`, librdkafka's name for Java's partitioner.

What each test checks, for its client:
- the producer's own report of each record's partition and offset (where the client gives one):
  the key's partition, offsets 0, 1, 2... in each partition;
- a consumer in a group reads every record from where it landed, commits, and its committed
  offsets are the log end offsets, read back two ways: through the client's OffsetFetch
  (`committed()`), and through the REST Proxy's lags (what the board shows);
- while it is a member, the room's REST Proxy shows the group Stable with that client's
  `client.id` on the partitions it committed.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections import Counter

from messaging.engine.partitioner import partition_for_key
from tests.support.kafka_server import SESSION_TIMEOUT_MS, KafkaRoom

PARTITIONS = 3
KEYS = [f"customer-{i}".encode() for i in range(24)]
# Enough to finish a group's first rebalance and read two dozen records, with room to spare on
# a busy machine.
CONSUME_SECONDS = 30


def value_of(key: bytes) -> bytes:
    return b"order for " + key


def expected_partitions() -> dict[bytes, int]:
    return {key: partition_for_key(key, PARTITIONS) for key in KEYS}


def names(client: str) -> tuple[str, str]:
    suffix = secrets.token_hex(3)
    return f"{client}-orders-{suffix}", f"{client}-billing-{suffix}"


def per_partition_counts() -> dict[int, int]:
    counts = Counter(expected_partitions().values())
    return {p: counts.get(p, 0) for p in range(PARTITIONS)}


def assert_produced(reports: list[tuple[bytes, int, int]]) -> None:
    """(key, partition, offset) as the producer reported them, in send order."""
    expected = expected_partitions()
    assert len(reports) == len(KEYS)
    wrong = [(k, p, expected[k]) for k, p, _ in reports if p != expected[k]]
    assert not wrong, f"(key, partition the broker took, Java's partition): {wrong}"
    for partition in range(PARTITIONS):
        offsets = [o for _, p, o in reports if p == partition]
        assert sorted(offsets) == list(range(len(offsets))), (partition, offsets)


def assert_consumed(records: list[tuple[bytes, bytes, int, int]]) -> None:
    """(key, value, partition, offset) as a consumer read them."""
    expected = expected_partitions()
    assert sorted(k for k, *_ in records) == sorted(KEYS), "every record read exactly once"
    for key, value, partition, _ in records:
        assert partition == expected[key], (key, partition, expected[key])
        assert value == value_of(key)
    for partition in range(PARTITIONS):
        offsets = [o for _, _, p, o in records if p == partition]
        assert offsets == list(range(len(offsets))), (partition, offsets)


def assert_committed_everything(committed: dict[int, int | None]) -> None:
    """Committed offsets read through the client: each partition's log end offset."""
    counts = per_partition_counts()
    assert committed == {p: counts[p] for p in range(PARTITIONS)}


def assert_rest_lags(room: KafkaRoom, topic: str, group: str, client_id: str | None) -> None:
    """The room's REST Proxy: the group committed each partition's log end offset, lag 0."""
    counts = per_partition_counts()
    lags = room.lags(group)
    for partition in range(PARTITIONS):
        row = lags.get((topic, partition))
        assert row is not None, f"no committed offset of {group} on {topic}-{partition}: {lags}"
        assert row["current_offset"] == counts[partition], row
        assert row["log_end_offset"] == counts[partition], row
        assert row["lag"] == 0, row
        if client_id is not None:
            assert row["client_id"] == client_id, row


def assert_rest_group_stable(room: KafkaRoom, group: str) -> None:
    found = room.group(group)
    assert found is not None, f"the REST Proxy does not know group {group}"
    assert found["state"] == "STABLE", found


# --- kafka-python -----------------------------------------------------------------------------


def test_it_takes_kafka_python_records_and_commits(room: KafkaRoom):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    topic, group = names("kafka-python")
    admin = KafkaAdminClient(**room.kafka_python())
    try:
        admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    finally:
        admin.close()
    assert room.rest_partitions(topic) == PARTITIONS

    producer = KafkaProducer(**room.kafka_python(acks="all", linger_ms=5))
    futures = [(key, producer.send(topic, key=key, value=value_of(key))) for key in KEYS]
    producer.flush(timeout=20)
    reports = [(key, f.get(timeout=10).partition, f.get(timeout=10).offset) for key, f in futures]
    producer.close()
    assert_produced(reports)

    consumer = KafkaConsumer(
        topic,
        **room.kafka_python(
            group_id=group,
            client_id="kafka-python-test",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=100,
        ),
    )
    try:
        records = []
        deadline = time.monotonic() + CONSUME_SECONDS
        while len(records) < len(KEYS) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records += [(r.key, r.value, r.partition, r.offset) for r in batch]
        assert_consumed(records)
        consumer.commit()
        committed = {
            p: consumer.committed(TopicPartition(topic, p), timeout_ms=10_000)
            for p in range(PARTITIONS)
        }
        assert_committed_everything(committed)
        assert_rest_group_stable(room, group)
        assert_rest_lags(room, topic, group, "kafka-python-test")
    finally:
        consumer.close(autocommit=False)
    assert_rest_lags(room, topic, group, None)


# --- confluent-kafka --------------------------------------------------------------------------


def test_it_takes_confluent_kafka_records_and_commits(room: KafkaRoom):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, group = names("confluent")
    admin = AdminClient(room.confluent())
    [future] = admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values()
    future.result(timeout=20)
    assert room.rest_partitions(topic) == PARTITIONS

    reports: list[tuple[bytes, int, int]] = []
    errors = []

    def delivered(error, message) -> None:
        if error is not None:
            errors.append(error)
        else:
            reports.append((message.key(), message.partition(), message.offset()))

    producer = Producer(room.confluent(**{"partitioner": "murmur2_random", "linger.ms": 5}))
    for key in KEYS:
        producer.produce(topic, key=key, value=value_of(key), on_delivery=delivered)
    assert producer.flush(20) == 0, "every record delivered within 20 s"
    assert not errors, errors
    assert_produced(reports)

    consumer = Consumer(
        room.confluent(
            **{
                "group.id": group,
                "client.id": "confluent-test",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 1000,
                "fetch.wait.max.ms": 100,
            }
        )
    )
    try:
        consumer.subscribe([topic])
        records = []
        deadline = time.monotonic() + CONSUME_SECONDS
        while len(records) < len(KEYS) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            records.append((message.key(), message.value(), message.partition(), message.offset()))
        assert_consumed(records)
        consumer.commit(asynchronous=False)
        answer = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10
        )
        assert all(tp.error is None for tp in answer), answer
        assert_committed_everything({tp.partition: tp.offset for tp in answer})
        assert_rest_group_stable(room, group)
        assert_rest_lags(room, topic, group, "confluent-test")
    finally:
        consumer.close()
    assert_rest_lags(room, topic, group, None)


# --- aiokafka ---------------------------------------------------------------------------------


def test_it_takes_aiokafka_records_and_commits(room: KafkaRoom):
    asyncio.run(_aiokafka_round_trip(room))


async def _aiokafka_round_trip(room: KafkaRoom) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic, group = names("aiokafka")
    admin = AIOKafkaAdminClient(**room.aiokafka())
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        assert [tuple(e)[:2] for e in response.topic_errors] == [(topic, 0)], response
    finally:
        await admin.close()
    assert room.rest_partitions(topic) == PARTITIONS

    producer = AIOKafkaProducer(**room.aiokafka(acks="all", linger_ms=5))
    await producer.start()
    try:
        sent = [await producer.send(topic, key=key, value=value_of(key)) for key in KEYS]
        metadata = [await future for future in sent]
    finally:
        await producer.stop()
    assert_produced([(k, m.partition, m.offset) for k, m in zip(KEYS, metadata, strict=True)])

    consumer = AIOKafkaConsumer(
        topic,
        **room.aiokafka(
            group_id=group,
            client_id="aiokafka-test",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=100,
        ),
    )
    await consumer.start()
    try:
        records = []
        deadline = time.monotonic() + CONSUME_SECONDS
        while len(records) < len(KEYS) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records += [(r.key, r.value, r.partition, r.offset) for r in batch]
        assert_consumed(records)
        await consumer.commit()
        committed = {
            p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)
        }
        assert_committed_everything(committed)
        await asyncio.to_thread(assert_rest_group_stable, room, group)
        await asyncio.to_thread(assert_rest_lags, room, topic, group, "aiokafka-test")
    finally:
        await consumer.stop()
    assert_rest_lags(room, topic, group, None)


# --- kcat -------------------------------------------------------------------------------------


def test_it_takes_kcat_records_and_commits(room: KafkaRoom, kcat: str):
    from confluent_kafka import Consumer, TopicPartition

    topic, group = names("kcat")
    # kcat has no admin commands: the topic comes from the room's REST Proxy.
    room.rest_topic_create(topic, PARTITIONS)

    lines = b"".join(key + b"\t" + value_of(key) + b"\n" for key in KEYS)
    produced = subprocess.run(
        [kcat, *room.kcat(), "-X", "partitioner=murmur2_random", "-P", "-t", topic, "-K", "\t"],
        input=lines,
        capture_output=True,
        timeout=30,
    )
    assert produced.returncode == 0, produced.stderr.decode(errors="replace")

    # A balanced consumer (-G): joins the group, reads every record, commits on close.
    consumed = subprocess.run(
        [
            kcat,
            *room.kcat(),
            "-X",
            "auto.offset.reset=earliest",
            "-X",
            f"session.timeout.ms={SESSION_TIMEOUT_MS}",
            "-X",
            "fetch.wait.max.ms=100",
            "-X",
            "client.id=kcat-test",
            "-G",
            group,
            "-c",
            str(len(KEYS)),
            "-f",
            "%k\t%s\t%p\t%o\n",
            topic,
        ],
        capture_output=True,
        timeout=CONSUME_SECONDS + 15,
    )
    assert consumed.returncode == 0, consumed.stderr.decode(errors="replace")
    records = []
    for line in consumed.stdout.splitlines():
        key, value, partition, offset = line.split(b"\t")
        records.append((key, value, int(partition), int(offset)))
    assert_consumed(records)

    # The group's commits through another client's OffsetFetch, without joining the group.
    reader = Consumer(room.confluent(**{"group.id": group}))
    try:
        answer = reader.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        reader.close()
    assert all(tp.error is None for tp in answer), answer
    assert_committed_everything({tp.partition: tp.offset for tp in answer})
    assert_rest_lags(room, topic, group, None)
