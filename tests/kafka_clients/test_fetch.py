"""Fetch is a long poll, as Kafka's: with nothing to read the broker holds the request up to
its MaxWaitMs (a consumer is not answered in a busy loop), and a record produced meanwhile
answers it at once (fetch.min.bytes 1), so a consumer sees a record within moments."""

from __future__ import annotations

import secrets
import threading
import time

from tests.support.kafka_server import KafkaRoom, KafkaWire, wire_connect

WAIT_MS = 3000


def fetch(wire: KafkaWire, topic: str, offset: int, wait_ms: int) -> tuple[float, object]:
    """One Fetch of partition 0 from `offset`: (seconds it took, the partition's answer)."""
    from kafka.protocol.consumer import FetchRequest, FetchResponse

    topic_class = FetchRequest.FetchTopic
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[
            topic_class(
                topic=topic,
                partitions=[
                    topic_class.FetchPartition(
                        partition=0,
                        current_leader_epoch=-1,
                        fetch_offset=offset,
                        log_start_offset=-1,
                        partition_max_bytes=1 << 20,
                    )
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    # Fetch 4-12 names topics (13+ uses topic ids): what kafka-python and librdkafka send here.
    version = wire.version(FetchRequest, highest=12, lowest=4)
    started = time.monotonic()
    response = wire.call(request, FetchResponse, version)
    took = time.monotonic() - started
    [topic_answer] = response.responses
    [answer] = topic_answer.partitions
    return took, answer


def test_it_holds_an_empty_fetch_for_its_max_wait(room: KafkaRoom):
    topic = f"quiet-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    with wire_connect(room) as wire:
        took, answer = fetch(wire, topic, 0, WAIT_MS)
    assert answer.error_code == 0, answer
    assert answer.high_watermark == 0
    assert not answer.records
    assert WAIT_MS / 1000 - 0.1 <= took <= WAIT_MS / 1000 + 2, f"answered after {took:.2f} s"


def test_it_answers_a_waiting_fetch_when_a_record_arrives(room: KafkaRoom):
    from kafka import KafkaProducer

    topic = f"awaited-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    producer = KafkaProducer(**room.kafka_python())
    producer.partitions_for(topic)  # connected and metadata known before the clock starts

    def produce_later() -> None:
        time.sleep(0.5)
        producer.send(topic, key=b"late", value=b"arrival", partition=0)
        producer.flush(timeout=10)

    sender = threading.Thread(target=produce_later)
    try:
        with wire_connect(room) as wire:
            sender.start()
            took, answer = fetch(wire, topic, 0, 10_000)
    finally:
        sender.join(timeout=15)
        producer.close()
    assert answer.error_code == 0, answer
    assert answer.high_watermark == 1
    assert answer.records, "the answer holds the new record"
    assert took < 3, f"a 10 s long poll answered {took:.2f} s after it was sent"
