"""What docs/clients-kafka.md promises of the admin APIs and the group coordinator's limits,
through confluent-kafka's AdminClient and consumer: topics grow and go, the room's groups are
listed, a topic's configs are described, and a session timeout under the broker's
group.min.session.timeout.ms is refused."""

from __future__ import annotations

import secrets
import time

from tests.support.kafka_server import KafkaRoom


def admin_of(room: KafkaRoom):
    from confluent_kafka.admin import AdminClient

    return AdminClient(room.confluent())


def test_it_grows_and_deletes_topics_through_the_admin_api(room: KafkaRoom):
    from confluent_kafka.admin import NewPartitions, NewTopic

    topic = f"growing-{secrets.token_hex(3)}"
    admin = admin_of(room)
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=20)
    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(timeout=20)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 5
    assert room.rest_partitions(topic) == 5

    admin.delete_topics([topic])[topic].result(timeout=20)
    assert topic not in admin.list_topics(timeout=10).topics
    assert room.rest(f"/topics/{topic}")[0] == 404


def test_it_lists_the_rooms_groups_and_describes_a_topics_configs(room: KafkaRoom):
    from confluent_kafka.admin import ConfigResource

    admin = admin_of(room)
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert not listed.errors, listed.errors
    assert {"billing", "analytics"} <= {g.group_id for g in listed.valid}

    [future] = admin.describe_configs([ConfigResource("topic", "orders")]).values()
    configs = future.result(timeout=15)
    assert configs["cleanup.policy"].value in ("delete", "compact", "compact,delete"), configs
    assert int(configs["retention.ms"].value) != 0, configs["retention.ms"]


def test_it_refuses_a_session_timeout_under_the_brokers_minimum(room: KafkaRoom):
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        room.confluent(
            **{
                "group.id": f"hasty-{secrets.token_hex(3)}",
                "session.timeout.ms": 5000,
                "heartbeat.interval.ms": 1000,
            }
        )
    )
    try:
        consumer.subscribe(["orders"])
        error = None
        deadline = time.monotonic() + 15
        while error is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                error = message.error()
        assert error is not None, "librdkafka reported no error within 15 s"
        assert error.code() == KafkaError.INVALID_SESSION_TIMEOUT, error
        assert consumer.assignment() == []
    finally:
        consumer.close()


def test_it_creates_a_topic_a_producer_names_with_one_partition(room: KafkaRoom):
    """auto.create.topics.enable is true on a Kafka broker by default: a producer's Metadata
    request for an unknown topic creates it with num.partitions (1)."""
    from kafka import KafkaProducer

    topic = f"unplanned-{secrets.token_hex(3)}"
    producer = KafkaProducer(**room.kafka_python())
    try:
        written = producer.send(topic, key=b"k", value=b"v").get(timeout=15)
    finally:
        producer.close()
    assert (written.partition, written.offset) == (0, 0)
    assert room.rest_partitions(topic) == 1
