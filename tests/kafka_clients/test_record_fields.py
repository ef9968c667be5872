"""A record's other fields survive the trip as Kafka keeps them: headers, and the producer's
CreateTime timestamp (a topic's default `message.timestamp.type`), which consumers read back
exactly (`kcat -f %T`, `record.timestamp`)."""

from __future__ import annotations

import secrets
import time

from tests.support.kafka_server import KafkaRoom

HEADERS = [("trace-id", b"abc-123"), ("empty", b""), ("trace-id", b"twice"), ("null", None)]
# 2021-01-01T00:00:00Z: far from now and from any room's simulated clock.
CREATED = 1_609_459_200_000


def read_all(room: KafkaRoom, topic: str, count: int) -> list:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**room.kafka_python(fetch_max_wait_ms=100))
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        read: list = []
        deadline = time.monotonic() + 20
        while len(read) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                read += batch
        return read
    finally:
        consumer.close()


def test_it_keeps_a_records_headers(room: KafkaRoom):
    from confluent_kafka import Producer

    topic = f"traced-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    producer = Producer(room.confluent())
    producer.produce(topic, key=b"k", value=b"v", headers=HEADERS, partition=0)
    producer.produce(topic, key=b"bare", value=b"v", partition=0)
    assert producer.flush(20) == 0
    first, second = read_all(room, topic, 2)
    assert [(k, v) for k, v in first.headers] == HEADERS
    assert list(second.headers) == []


def test_it_keeps_the_producers_create_time(room: KafkaRoom):
    from kafka import KafkaProducer

    topic = f"stamped-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    producer = KafkaProducer(**room.kafka_python())
    for i in range(3):
        producer.send(topic, key=b"k", value=b"v", partition=0, timestamp_ms=CREATED + i * 1000)
    producer.flush(timeout=20)
    producer.close()
    read = read_all(room, topic, 3)
    assert [(r.timestamp, r.timestamp_type) for r in read] == [
        (CREATED + i * 1000, 0) for i in range(3)
    ]
