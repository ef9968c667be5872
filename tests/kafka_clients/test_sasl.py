"""SASL/PLAIN picks the room: the room's code and secret let a client in, a wrong password is
refused with Kafka's SASL_AUTHENTICATION_FAILED (each client reports an authentication error),
and a connection without SASL goes to the default room (the demo room, KAFKA7)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
import time

import pytest

from tests.support.kafka_server import (
    DEFAULT_ROOM,
    KafkaRoom,
    KafkaServer,
    KafkaWire,
    http_json,
    room_create,
)

SASL_AUTHENTICATION_FAILED = 58


def wrong(room: KafkaRoom) -> str:
    return room.password + "-wrong"


def auth_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines of the Python clients that name SASL authentication failing."""
    lines = []
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        if "SaslAuthenticationFailed" in text or "SASL_AUTHENTICATION_FAILED" in text:
            lines.append(text)
    return lines


def test_it_answers_a_wrong_password_with_sasl_authentication_failed(room: KafkaRoom):
    host, port = room.bootstrap.rsplit(":", 1)
    with KafkaWire(host, int(port)) as wire:
        wire.api_versions()
        answer = wire.sasl_plain(room.username, wrong(room))
        assert answer.error_code == SASL_AUTHENTICATION_FAILED, answer
        assert answer.error_message, "Kafka says why in ErrorMessage"
    # The right password of another room is as wrong for this one.
    other = room_create(room.server)
    with KafkaWire(host, int(port)) as wire:
        wire.api_versions()
        answer = wire.sasl_plain(room.username, other.password)
        assert answer.error_code == SASL_AUTHENTICATION_FAILED, answer
    with KafkaWire(host, int(port)) as wire:
        wire.api_versions()
        assert wire.sasl_plain(room.username, room.password).error_code == 0


def test_it_refuses_confluent_kafka_with_a_wrong_password(room: KafkaRoom):
    from confluent_kafka import KafkaError, Producer

    reported: list[KafkaError] = []
    producer = Producer(
        room.confluent(**{"sasl.password": wrong(room), "error_cb": reported.append})
    )
    deadline = time.monotonic() + 15
    while not reported and time.monotonic() < deadline:
        producer.poll(0.2)
    assert reported, "librdkafka reported no error within 15 s"
    assert reported[0].code() == KafkaError._AUTHENTICATION, reported[0]
    assert "authentication" in reported[0].str().lower(), reported[0].str()


def test_it_refuses_kcat_with_a_wrong_password(room: KafkaRoom, kcat: str):
    arguments = room.kcat()
    arguments[arguments.index(f"sasl.password={room.password}")] = f"sasl.password={wrong(room)}"
    listed = subprocess.run(
        [kcat, *arguments, "-L", "-m", "5"], capture_output=True, timeout=30, text=True
    )
    assert listed.returncode != 0, listed.stdout
    # librdkafka logs "SASL authentication error: <the broker's ErrorMessage>".
    assert "SASL authentication error" in listed.stderr, listed.stderr


def test_it_refuses_kafka_python_with_a_wrong_password(
    room: KafkaRoom, caplog: pytest.LogCaptureFixture
):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    caplog.set_level(logging.WARNING)
    with pytest.raises(KafkaError):
        admin = KafkaAdminClient(
            **room.kafka_python(sasl_plain_password=wrong(room), bootstrap_timeout_ms=5000)
        )
        admin.close()
    assert auth_errors(caplog), [r.getMessage() for r in caplog.records]


def test_it_refuses_aiokafka_with_a_wrong_password(
    room: KafkaRoom, caplog: pytest.LogCaptureFixture
):
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    async def start() -> None:
        producer = AIOKafkaProducer(**room.aiokafka(sasl_plain_password=wrong(room)))
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.set_level(logging.WARNING)
    with pytest.raises(KafkaError):
        asyncio.run(start())
    assert auth_errors(caplog), [r.getMessage() for r in caplog.records]


def test_it_puts_a_connection_without_sasl_in_the_default_room(
    kafka_server: KafkaServer, room: KafkaRoom
):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"anonymous-{secrets.token_hex(3)}"
    plain = {"bootstrap_servers": kafka_server.bootstrap}
    admin = KafkaAdminClient(**plain)
    try:
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
        listed = set(admin.list_topics())
    finally:
        admin.close()
    producer = KafkaProducer(**plain)
    producer.send(topic, key=b"who", value=b"nobody", partition=1).get(timeout=10)
    producer.close()

    base = f"{kafka_server.base}/api/kafka/{DEFAULT_ROOM}/v3/clusters/{DEFAULT_ROOM}"
    status, body, _ = http_json("GET", f"{base}/topics/{topic}")
    assert status == 200, f"the topic is not in {DEFAULT_ROOM}: {body}"
    assert body["partitions_count"] == 2
    status, body, _ = http_json("GET", f"{base}/topics")
    assert listed == {t["topic_name"] for t in body["data"]}, "Metadata lists the room's topics"
    # ...and not in the room of the SASL clients.
    assert room.rest(f"/topics/{topic}")[0] == 404

    consumer = KafkaConsumer(**plain)
    try:
        partition = TopicPartition(topic, 1)
        consumer.assign([partition])
        consumer.seek_to_beginning()
        read = []
        deadline = time.monotonic() + 10
        while not read and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                read += [(r.key, r.value) for r in batch]
    finally:
        consumer.close()
    assert read == [(b"who", b"nobody")]
