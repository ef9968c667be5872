"""Offsets as Kafka keeps them for a group and a log: a committed offset with its metadata is
where the group's next consumer starts, whichever library it is; ListOffsets finds the first
record at or after a timestamp (`offsets_for_times`), and the earliest and latest offsets."""

from __future__ import annotations

import secrets
import time

from tests.support.kafka_server import SESSION_TIMEOUT_MS, KafkaRoom

CREATED = 1_609_459_200_000  # 2021-01-01T00:00:00Z, as producers' CreateTime


def produce(room: KafkaRoom, topic: str, count: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(**room.kafka_python())
    for i in range(count):
        producer.send(
            topic, key=b"k", value=f"v{i}".encode(), partition=0, timestamp_ms=CREATED + i * 1000
        )
    producer.flush(timeout=20)
    producer.close()


def test_it_starts_a_groups_next_consumer_at_its_committed_offset(room: KafkaRoom):
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as Partition
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    topic, group = f"resume-{secrets.token_hex(3)}", f"resume-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    produce(room, topic, 6)

    # A commit outside any generation (a tool's, like kafka-consumer-groups --reset-offsets).
    committer = KafkaConsumer(**room.kafka_python(group_id=group, enable_auto_commit=False))
    try:
        partition = TopicPartition(topic, 0)
        committer.commit({partition: OffsetAndMetadata(4, "reprocess from here", -1)})
        found = committer.committed(partition, metadata=True)
    finally:
        committer.close(autocommit=False)
    assert (found.offset, found.metadata) == (4, "reprocess from here")
    assert room.lags(group)[(topic, 0)]["current_offset"] == 4

    consumer = Consumer(
        room.confluent(
            **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "fetch.wait.max.ms": 100,
            }
        )
    )
    try:
        [committed] = consumer.committed([Partition(topic, 0)], timeout=10)
        assert (committed.offset, committed.metadata) == (4, "reprocess from here")
        consumer.subscribe([topic])
        first = None
        deadline = time.monotonic() + 20
        while first is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                first = message
        assert first is not None, "nothing read within 20 s"
        assert (first.offset(), first.value()) == (4, b"v4")
    finally:
        consumer.close()


def test_it_finds_offsets_by_timestamp_and_the_logs_ends(room: KafkaRoom):
    from kafka import KafkaConsumer, TopicPartition

    topic = f"timeline-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    produce(room, topic, 5)
    consumer = KafkaConsumer(**room.kafka_python())
    try:
        partition = TopicPartition(topic, 0)
        assert consumer.beginning_offsets([partition]) == {partition: 0}
        assert consumer.end_offsets([partition]) == {partition: 5}
        found = consumer.offsets_for_times({partition: CREATED + 2500})[partition]
        assert (found.offset, found.timestamp) == (3, CREATED + 3000)
        assert consumer.offsets_for_times({partition: CREATED + 9000})[partition] is None
    finally:
        consumer.close()
