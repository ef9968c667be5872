"""An idempotent producer's retried batch is stored once.

At the protocol level: the same ProduceRequest (same producer id, epoch and base sequence) sent
twice, as a producer retries after a lost answer; Kafka answers the retry with the first's base
offset and appends nothing (`UnifiedLog.analyzeAndValidateProducerState`: a duplicate of one of
the producer's last five batches). A batch that skips sequence numbers is refused with
OUT_OF_ORDER_SEQUENCE_NUMBER. Then a real idempotent producer (confluent-kafka,
`enable.idempotence=True`) sends a thousand records and each is stored exactly once.
"""

from __future__ import annotations

import secrets
import time

from tests.support.kafka_server import KafkaRoom, KafkaWire, wire_connect

NONE = 0
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def batch(producer_id: int, epoch: int, base_sequence: int, count: int) -> bytes:
    """A record batch (magic 2) of `count` keyed records."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=base_sequence,
        batch_size=1 << 20,
    )
    now = int(time.time() * 1000)
    for i in range(count):
        sequence = base_sequence + i
        builder.append(
            i, timestamp=now, key=f"k{sequence}".encode(), value=f"v{sequence}".encode(), headers=[]
        )
    return bytes(builder.build())


def produce(wire: KafkaWire, topic: str, records: bytes) -> tuple[int, int]:
    """One ProduceRequest (acks=all) of one batch to partition 0: (error code, base offset)."""
    from kafka.protocol.producer import ProduceRequest, ProduceResponse

    data = ProduceRequest.TopicProduceData
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=10_000,
        topic_data=[
            data(name=topic, partition_data=[data.PartitionProduceData(index=0, records=records)])
        ],
    )
    # v3 is the first with record batches v2; librdkafka and kafka-python send up to 9-10.
    version = wire.version(ProduceRequest, highest=9, lowest=3)
    response = wire.call(request, ProduceResponse, version)
    [topic_answer] = response.responses
    [answer] = topic_answer.partition_responses
    return answer.error_code, answer.base_offset


def log_end_offset(wire: KafkaWire, topic: str) -> int:
    from kafka.protocol.consumer import ListOffsetsRequest, ListOffsetsResponse

    request_topic = ListOffsetsRequest.ListOffsetsTopic
    request = ListOffsetsRequest(
        replica_id=-1,
        isolation_level=0,
        topics=[
            request_topic(
                name=topic,
                partitions=[request_topic.ListOffsetsPartition(partition_index=0, timestamp=-1)],
            )
        ],
    )
    response = wire.call(
        request, ListOffsetsResponse, wire.version(ListOffsetsRequest, highest=7, lowest=1)
    )
    [answer] = response.topics[0].partitions
    assert answer.error_code == NONE, answer
    return answer.offset


def leader_of(wire: KafkaWire, topic: str) -> tuple[str, int]:
    """The (host, port) Metadata names as the leader of the topic's partition 0."""
    from kafka.protocol.metadata import MetadataRequest, MetadataResponse

    request = MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
        allow_auto_topic_creation=False,
    )
    response = wire.call(request, MetadataResponse, wire.version(MetadataRequest, highest=12))
    [found] = response.topics
    assert found.error_code == NONE, found
    [partition] = [p for p in found.partitions if p.partition_index == 0]
    [broker] = [b for b in response.brokers if b.node_id == partition.leader_id]
    return broker.host, broker.port


def test_it_stores_a_retried_idempotent_batch_once(room: KafkaRoom):
    from kafka.protocol.producer import InitProducerIdRequest, InitProducerIdResponse

    topic = f"payments-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 1)
    with wire_connect(room) as bootstrap:
        address = leader_of(bootstrap, topic)
    # As a producer does: the partition's leader, wherever Metadata says it is.
    with wire_connect(room, address) as leader:
        init = leader.call(
            InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1),
            InitProducerIdResponse,
            leader.version(InitProducerIdRequest, highest=4),
        )
        assert init.error_code == NONE, init
        assert init.producer_id >= 0 and init.producer_epoch >= 0, init
        pid, epoch = init.producer_id, init.producer_epoch

        first = batch(pid, epoch, 0, 3)
        assert produce(leader, topic, first) == (NONE, 0)
        assert log_end_offset(leader, topic) == 3
        # The retry: byte for byte the same batch. Stored once, answered with its offset.
        assert produce(leader, topic, first) == (NONE, 0)
        assert log_end_offset(leader, topic) == 3

        # The next batch in sequence is appended after it...
        assert produce(leader, topic, batch(pid, epoch, 3, 2)) == (NONE, 3)
        assert log_end_offset(leader, topic) == 5
        # ...and one that skips sequence numbers (5 and 6 never sent) is refused.
        error, _ = produce(leader, topic, batch(pid, epoch, 7, 1))
        assert error == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert log_end_offset(leader, topic) == 5


def test_it_stores_each_record_of_an_idempotent_confluent_producer_once(room: KafkaRoom):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    topic, count, partitions = f"ledger-{secrets.token_hex(3)}", 1000, 3
    room.rest_topic_create(topic, partitions)
    delivered: list[tuple[int, int, bytes]] = []
    errors = []

    def on_delivery(error, message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append((message.partition(), message.offset(), message.value()))

    producer = Producer(
        room.confluent(
            **{
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 20,
                "error_cb": errors.append,
            }
        )
    )
    for i in range(count):
        producer.produce(
            topic,
            key=f"account-{i % 17}".encode(),
            value=f"entry-{i}".encode(),
            on_delivery=on_delivery,
        )
        producer.poll(0)
    assert producer.flush(30) == 0, "every record delivered within 30 s"
    assert not errors, errors
    assert len(delivered) == count
    for partition in range(partitions):
        offsets = sorted(o for p, o, _ in delivered if p == partition)
        assert offsets == list(range(len(offsets))), f"partition {partition}: gaps or repeats"

    consumer = Consumer(room.confluent(**{"group.id": f"audit-{secrets.token_hex(3)}"}))
    try:
        ends = {}
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
            assert low == 0
        assert sum(ends.values()) == count, ends
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        values = []
        deadline = time.monotonic() + 30
        while len(values) < count and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
    assert sorted(values) == sorted(f"entry-{i}".encode() for i in range(count))
