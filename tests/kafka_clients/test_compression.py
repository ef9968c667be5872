"""Compressed batches: each client produces with gzip, snappy, lz4 and zstd, and its records
come back intact (keys, values, a null key, a tombstone), read by the same client.

Values are a few kilobytes of text (compressible, so the batch really is compressed) and every
byte value 0-255, so a codec or a re-encoding that mangles bytes shows.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from tests.support.kafka_server import KafkaRoom

CODECS = ["gzip", "snappy", "lz4", "zstd"]
BINARY = bytes(range(256))


def records() -> list[tuple[bytes | None, bytes | None]]:
    made: list[tuple[bytes | None, bytes | None]] = []
    for i in range(12):
        text = (f"line {i} of an order that repeats itself. " * (40 + i * 10)).encode()
        made.append((f"key-{i}".encode(), text + BINARY))
    made.append((None, b"no key: the sticky partition, one partition here"))
    made.append((b"deleted", None))  # a tombstone
    made.append((b"empty", b""))
    return made


def assert_intact(read: list[tuple[bytes | None, bytes | None, int]]) -> None:
    """(key, value, offset) read from partition 0, in order."""
    assert [(k, v) for k, v, _ in read] == records()
    assert [o for _, _, o in read] == list(range(len(records())))


def kafka_python(room: KafkaRoom, topic: str, codec: str) -> list:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(**room.kafka_python(compression_type=codec, linger_ms=50))
    for key, value in records():
        producer.send(topic, key=key, value=value, partition=0)
    producer.flush(timeout=20)
    producer.close()
    consumer = KafkaConsumer(**room.kafka_python(fetch_max_wait_ms=100))
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        read: list = []
        deadline = time.monotonic() + 20
        while len(read) < len(records()) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                read += [(r.key, r.value, r.offset) for r in batch]
        return read
    finally:
        consumer.close()


def confluent(room: KafkaRoom, topic: str, codec: str) -> list:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    errors = []
    producer = Producer(room.confluent(**{"compression.type": codec, "linger.ms": 50}))
    for key, value in records():
        producer.produce(
            topic,
            key=key,
            value=value,
            partition=0,
            on_delivery=lambda error, _m: errors.append(error) if error else None,
        )
    assert producer.flush(20) == 0
    assert not errors, errors
    consumer = Consumer(
        room.confluent(**{"group.id": f"reader-{secrets.token_hex(3)}", "fetch.wait.max.ms": 100})
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        read: list = []
        deadline = time.monotonic() + 20
        while len(read) < len(records()) and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                assert message.error() is None, message.error()
                read.append((message.key(), message.value(), message.offset()))
        return read
    finally:
        consumer.close()


def aiokafka(room: KafkaRoom, topic: str, codec: str) -> list:
    async def run() -> list:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        producer = AIOKafkaProducer(**room.aiokafka(compression_type=codec, linger_ms=50))
        await producer.start()
        try:
            sent = [
                await producer.send(topic, key=key, value=value, partition=0)
                for key, value in records()
            ]
            for future in sent:
                await future
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(**room.aiokafka(fetch_max_wait_ms=100))
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            read: list = []
            deadline = time.monotonic() + 20
            while len(read) < len(records()) and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    read += [(r.key, r.value, r.offset) for r in batch]
            return read
        finally:
            await consumer.stop()

    return asyncio.run(run())


CLIENTS = {"kafka-python": kafka_python, "confluent-kafka": confluent, "aiokafka": aiokafka}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", list(CLIENTS))
def test_it_gives_back_compressed_records_intact(room: KafkaRoom, client: str, codec: str):
    topic = f"{codec}-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    assert_intact(CLIENTS[client](room, topic, codec))
