"""A real share consumer (confluent-kafka's ShareConsumer, librdkafka 2.16) in a share group:
ShareGroupHeartbeat, ShareFetch and ShareAcknowledge against LogLab's listener. Two consumers
on one partition; a record one releases is redelivered to the other with its delivery count."""

from __future__ import annotations

import time
import urllib.request

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

from tests.support.kafka_server import KafkaRoom


def polled(consumer: ShareConsumer, want: int, seconds: float = 15) -> list:
    got: list = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < want:
        got.extend(consumer.poll(0.5) or [])
    return got


def share_page(room: KafkaRoom) -> str:
    return urllib.request.urlopen(f"{room.server.base}/r/{room.code}/share/").read().decode()


def test_a_released_record_goes_to_the_other_share_consumer_with_delivery_count_2(
    room: KafkaRoom,
):
    room.rest_topic_create("jobs", 1)
    settings = room.confluent(**{"group.id": "workers", "share.acknowledgement.mode": "explicit"})
    first = ShareConsumer({**settings, "client.id": "worker-a"})
    second = ShareConsumer({**settings, "client.id": "worker-b"})
    try:
        first.subscribe(["jobs"])
        # Joining: share.auto.offset.reset is latest, so the records are produced once the
        # share partition has started (its first fetch), however long the join took.
        deadline = time.monotonic() + 15
        while 'data-partition="0"' not in share_page(room):
            assert len(first.poll(0.5)) == 0
            assert time.monotonic() < deadline, "the share partition never started"
        producer = Producer(room.confluent())
        for number in range(4):
            producer.produce("jobs", value=f"job {number}")
        assert producer.flush(10) == 0

        taken = polled(first, 4)
        assert [(m.offset(), m.delivery_count()) for m in taken] == [(o, 1) for o in range(4)]
        for message in taken:
            kind = AcknowledgeType.RELEASE if message.offset() == 0 else AcknowledgeType.ACCEPT
            first.acknowledge(message, kind)
        assert all(error is None for error in first.commit_sync().values())

        # A second consumer of the group reads the same partition (a share group has no
        # exclusive assignment): the released record goes to it, delivered a second time.
        second.subscribe(["jobs"])
        again = polled(second, 1)
        assert [(m.offset(), m.delivery_count(), m.value()) for m in again] == [(0, 2, b"job 0")]
        second.acknowledge(again[0])
        assert all(error is None for error in second.commit_sync().values())

        page = share_page(room)
        assert 'data-share-group="workers"' in page
        assert page.count('data-state="acknowledged"') == 4
        assert "over the Kafka protocol" in page
    finally:
        first.close()
        second.close()
