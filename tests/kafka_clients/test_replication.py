"""A real producer through a failover (#16).

A topic of replication factor 3 in a sandbox (three brokers, each on its own port): Metadata
lists the three brokers and every partition's three in-sync replicas. Halfway through an
idempotent acks=all producer's records, partition 0's leader is stopped through the room's API;
the controller elects another leader from the ISR (leader epoch 1), the stopped broker's
connections close, librdkafka refreshes its metadata and goes on at the new leader. Every
record is acknowledged once and read back once.
"""

from __future__ import annotations

import secrets
import time

from tests.support.kafka_server import KafkaRoom, http_json

COUNT = 200


def test_an_acks_all_idempotent_producer_keeps_every_record_through_a_leader_failover(
    room: KafkaRoom,
):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    fast = {"metadata.max.age.ms": 1000, "topic.metadata.refresh.interval.ms": 500}
    topic = f"payments-{secrets.token_hex(3)}"
    admin = AdminClient(room.confluent(**fast))
    created = admin.create_topics(
        [NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})], operation_timeout=10
    )
    created[topic].result(10)

    metadata = admin.list_topics(topic, timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    ports = {b.port for b in metadata.brokers.values()}
    assert len(ports) == 3, "each broker has its own port"
    partitions = metadata.topics[topic].partitions
    assert len(partitions) == 3
    for p in partitions.values():
        assert sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3]
    leader = partitions[0].leader

    errors: list = []
    delivered: list[tuple[int, bytes]] = []

    def on_delivery(error, message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append((message.offset(), message.value()))

    producer = Producer(
        room.confluent(
            **fast,
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "retry.backoff.ms": 50,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                "message.timeout.ms": 30000,
            },
        )
    )
    for i in range(COUNT):
        producer.produce(topic, value=f"payment-{i}".encode(), partition=0, on_delivery=on_delivery)
        producer.poll(0)
        if i == COUNT // 2:
            # Records are still in flight: some appended on the leader and not yet on the ISR
            url = f"{room.server.base}/api/rooms/{room.code}/brokers/{leader}/stop"
            status, answer, _ = http_json("POST", url)
            assert status == 200, answer
    assert producer.flush(30) == 0, "every record acknowledged within 30 s"
    assert not errors, errors
    assert len(delivered) == COUNT
    assert sorted(o for o, _ in delivered) == list(range(COUNT)), "each record stored once"

    [after] = [p for p in answer["partitions"] if p["topic"] == topic and p["partition"] == 0]
    assert after["leader"] != leader and after["leader"] in (1, 2, 3)
    assert after["leader_epoch"] == 1
    assert leader not in after["isr"] and len(after["isr"]) == 2
    assert [b["state"] for b in answer["brokers"] if b["id"] == leader] == ["stopped"]
    metadata = admin.list_topics(topic, timeout=10)
    assert leader not in metadata.brokers, "a stopped broker is not in Metadata"
    assert metadata.topics[topic].partitions[0].leader == after["leader"]

    # A new client needs a running broker among its bootstrap servers (broker 1 may be the one
    # stopped): every broker's address, as a real cluster's clients list several.
    everyone = ",".join(f"127.0.0.1:{port}" for port in sorted(ports))
    consumer = Consumer(
        room.confluent(
            **fast, **{"group.id": f"audit-{secrets.token_hex(3)}", "bootstrap.servers": everyone}
        )
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values = []
        deadline = time.monotonic() + 20
        while len(values) < COUNT and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
    assert sorted(values) == sorted(f"payment-{i}".encode() for i in range(COUNT))


def _produce(wire, topic: str, acks: int) -> int:
    """One record to partition 0 with `acks`: the partition's error code."""
    from kafka.protocol.producer import ProduceRequest, ProduceResponse

    from tests.kafka_clients.test_idempotence import batch

    data = ProduceRequest.TopicProduceData
    request = ProduceRequest(
        transactional_id=None,
        acks=acks,
        timeout_ms=2_000,
        topic_data=[
            data(
                name=topic,
                partition_data=[data.PartitionProduceData(index=0, records=batch(-1, -1, -1, 1))],
            )
        ],
    )
    response = wire.call(
        request, ProduceResponse, wire.version(ProduceRequest, highest=8, lowest=3)
    )
    return response.responses[0].partition_responses[0].error_code


def test_brokers_answer_as_kafkas_do_when_they_do_not_lead_or_the_isr_is_too_small(
    room: KafkaRoom,
):
    """A follower answers NOT_LEADER_OR_FOLLOWER (6); acks=all under min.insync.replicas gets
    NOT_ENOUGH_REPLICAS (19) and nothing is written, while acks=1 still is; a stopped broker's
    port closes the room's connections after SASL."""
    from kafka.protocol.metadata import MetadataRequest, MetadataResponse

    from tests.support.kafka_server import WireError, eventually, wire_connect

    topic = f"audit-{secrets.token_hex(3)}"
    url = f"{room.server.base}/api/kafka/{room.code}/v3/clusters/{room.code}/topics"
    status, body, _ = http_json(
        "POST",
        url,
        {
            "topic_name": topic,
            "partitions_count": 1,
            "replication_factor": 3,
            "configs": [{"name": "min.insync.replicas", "value": "2"}],
        },
    )
    assert status == 201 and body["replication_factor"] == 3, body
    with wire_connect(room) as wire:
        metadata = wire.call(MetadataRequest(topics=[topic]), MetadataResponse, 1)
        ports = {b.node_id: b.port for b in metadata.brokers}
        [partition] = metadata.topics[0].partitions
    assert partition.leader_id == 1 and list(partition.isr_nodes) == [1, 2, 3]
    with wire_connect(room, ("127.0.0.1", ports[2])) as follower:
        assert _produce(follower, topic, 1) == 6
    for broker in (2, 3):
        status, _, _ = http_json(
            "POST", f"{room.server.base}/api/rooms/{room.code}/brokers/{broker}/stop"
        )
        assert status == 200
    with wire_connect(room) as leader:
        assert _produce(leader, topic, -1) == 19
        assert _produce(leader, topic, 1) == 0
    status, cluster, _ = http_json("GET", f"{room.server.base}/api/rooms/{room.code}/brokers")
    [state] = [p for p in cluster["partitions"] if p["topic"] == topic]
    assert (state["isr"], state["log_end_offset"], state["high_watermark"]) == ([1], 1, 0)

    def refused() -> bool:
        # A listener reads a room's broker states at most every 0.2 s (brokers.CACHE_SECONDS).
        stopped = wire_connect(room, ("127.0.0.1", ports[2]))
        try:
            stopped.call(MetadataRequest(topics=[topic]), MetadataResponse, 1)
        except WireError:
            return True
        finally:
            stopped.__exit__()
        return False

    assert eventually(refused, timeout=5, interval=0.1), "broker 2's port still serves the room"
