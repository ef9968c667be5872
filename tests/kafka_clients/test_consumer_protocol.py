"""KIP-848 with a real client: librdkafka consumers with group.protocol=consumer.

Two confluent-kafka consumers (``group.remote.assignor=range``) share a topic of six partitions
through LogLab's coordinator: ConsumerGroupHeartbeat gives each its three, by topic id (which
Metadata v12 resolves), each consumes and commits with OffsetCommit v9 at its member epoch, and
when one leaves (a heartbeat with epoch -1) the other gets all six at its next heartbeat, while
it goes on consuming what it had. The group is read back with ConsumerGroupDescribe (the admin
client) and through the room's REST Proxy. The heartbeat interval is the broker's,
group.consumer.heartbeat.interval.ms = 5 s, so the test takes a few of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from tests.support.kafka_server import KafkaRoom, eventually

TOPIC = "kip848-orders"
GROUP = "kip848-app"
RECORDS = 60
# Two heartbeats (revoke, then the freed partitions to the new owner) and a margin.
SETTLE_SECONDS = 40


@dataclass
class Consumer:
    name: str
    assignment: frozenset[int] = frozenset()
    history: list[frozenset[int]] = field(default_factory=list)
    read: dict[tuple[int, int], bytes] = field(default_factory=dict)
    committed: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def assigned(self, partitions: set[int]) -> None:
        with self.lock:
            self.assignment = frozenset(partitions)
            self.history.append(self.assignment)


def run(room: KafkaRoom, consumer: Consumer) -> threading.Thread:
    def body() -> None:
        from confluent_kafka import Consumer as Kafka

        client = Kafka(
            room.confluent(
                **{
                    "group.id": GROUP,
                    "group.protocol": "consumer",
                    "group.remote.assignor": "range",
                    "client.id": consumer.name,
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 100,
                }
            )
        )
        owned: set[int] = set()

        def on_assign(_client, partitions) -> None:
            owned.update(tp.partition for tp in partitions)
            consumer.assigned(owned)

        def on_revoke(_client, partitions) -> None:
            owned.difference_update(tp.partition for tp in partitions)
            consumer.assigned(owned)

        client.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not consumer.stop.is_set():
                message = client.poll(0.1)
                if message is None:
                    continue
                if message.error() is not None:
                    raise AssertionError(f"{consumer.name}: {message.error()}")
                with consumer.lock:
                    consumer.read[(message.partition(), message.offset())] = message.value()
                client.commit(message=message, asynchronous=False)
                consumer.committed += 1
        finally:
            client.close()

    def guarded() -> None:
        try:
            body()
        except BaseException as error:  # the test fails with it
            consumer.error = error

    thread = threading.Thread(target=guarded, name=consumer.name, daemon=True)
    thread.start()
    return thread


def produce(room: KafkaRoom, start: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(room.confluent())
    for i in range(start, start + count):
        producer.produce(TOPIC, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 6)
    assert producer.flush(15) == 0


def describe(room: KafkaRoom):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(room.confluent())
    return admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=10)


def test_it_splits_a_topic_between_two_kip848_consumers_and_hands_over_on_leave(
    room: KafkaRoom,
):
    room.rest_topic_create(TOPIC, 6)
    produce(room, 0, RECORDS)
    first, second = Consumer("kip-first"), Consumer("kip-second")
    threads = [run(room, first)]
    try:
        assert eventually(lambda: len(first.assignment) == 6, timeout=SETTLE_SECONDS), (
            f"the first member never got the six partitions: {first.history} {first.error!r}"
        )
        threads.append(run(room, second))
        split = eventually(
            lambda: (
                first.assignment | second.assignment == frozenset(range(6))
                and len(first.assignment) == len(second.assignment) == 3
            ),
            timeout=SETTLE_SECONDS,
        )
        assert split, (first.history, second.history, first.error, second.error)
        # range, co-partitioned: sorted member ids get 0-2 and 3-5; never a partition twice.
        assert {first.assignment, second.assignment} == {frozenset({0, 1, 2}), frozenset({3, 4, 5})}
        # The first one gave up three partitions without stopping: it never had an empty
        # assignment in between (cooperative by construction, KIP-848).
        assert frozenset() not in first.history

        group = describe(room)
        assert group.group_id == GROUP
        members = {m.client_id: m for m in group.members}
        assert set(members) == {"kip-first", "kip-second"}
        assert {
            name: {tp.partition for tp in m.assignment.topic_partitions}
            for name, m in members.items()
        } == {"kip-first": set(first.assignment), "kip-second": set(second.assignment)}

        produce(room, RECORDS, RECORDS)
        everything = {(i % 6, i // 6) for i in range(2 * RECORDS)}
        read = eventually(
            lambda: set(first.read) | set(second.read) >= everything, timeout=SETTLE_SECONDS
        )
        assert read, f"not all records read: {len(first.read)} + {len(second.read)}"

        second.stop.set()
        threads[1].join(timeout=20)
        assert not threads[1].is_alive(), "the second consumer did not close"
        assert eventually(lambda: len(first.assignment) == 6, timeout=SETTLE_SECONDS), (
            f"the survivor did not get the leaver's partitions: {first.history}"
        )
        produce(room, 2 * RECORDS, 12)
        assert eventually(
            lambda: {(p, o) for p, o in first.read if o >= 20} >= {(p, 20) for p in range(6)},
            timeout=SETTLE_SECONDS,
        ), "the survivor did not read its new partitions"

        # Every partition's commits reached its log end (the REST Proxy's lag view).
        def caught_up() -> bool:
            lags = room.lags(GROUP)
            return len(lags) == 6 and all(row["lag"] == 0 for row in lags.values())

        assert eventually(caught_up, timeout=SETTLE_SECONDS), room.lags(GROUP)
    finally:
        for consumer in (first, second):
            consumer.stop.set()
        for thread in threads:
            thread.join(timeout=20)
    for consumer in (first, second):
        assert consumer.error is None, f"{consumer.name} failed: {consumer.error!r}"
