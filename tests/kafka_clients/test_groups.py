"""Consumer groups of real clients: two libraries in one group, and a member killed with -9.

Both tests run members in threads of their own (each client library polls in its own thread, as
an application would) and watch what the clients report: their assignments and the records
they read. The broker's side is read through the clients' admin APIs (DescribeGroups) and the
room's REST Proxy.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.kafka_server import (
    ROOT,
    SESSION_TIMEOUT_MS,
    KafkaRoom,
    eventually,
    python_env,
)

# Members heartbeat often so that they hear of a rebalance quickly (Kafka tells a member to
# rejoin in its next heartbeat's answer).
HEARTBEAT_MS = 500
REBALANCE_SECONDS = 30


@dataclass
class Member:
    """What a member thread reports: its current assignment, the records it read
    (partition, offset, value), when its assignment last changed; and what it is asked to do."""

    name: str
    assignment: frozenset[int] = frozenset()
    assigned_at: float = 0.0
    changes: int = 0
    records: list[tuple[int, int, bytes]] = field(default_factory=list)
    error: BaseException | None = None
    commit: threading.Event = field(default_factory=threading.Event)
    committed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def assigned(self, partitions: set[int]) -> None:
        with self.lock:
            if frozenset(partitions) != self.assignment:
                self.assignment = frozenset(partitions)
                self.assigned_at = time.monotonic()
                self.changes += 1

    def read(self, partition: int, offset: int, value: bytes) -> None:
        with self.lock:
            self.records.append((partition, offset, value))


def run_member(member: Member, body: Callable[[Member], None]) -> threading.Thread:
    def guarded() -> None:
        try:
            body(member)
        except BaseException as error:  # reported to the test, which fails with it
            member.error = error

    thread = threading.Thread(target=guarded, name=member.name, daemon=True)
    thread.start()
    return thread


def confluent_member(
    room: KafkaRoom, topic: str, group: str, **extra: object
) -> Callable[[Member], None]:
    def body(member: Member) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(
            room.confluent(
                **{
                    "group.id": group,
                    "client.id": member.name,
                    "partition.assignment.strategy": "range",
                    "session.timeout.ms": SESSION_TIMEOUT_MS,
                    "heartbeat.interval.ms": HEARTBEAT_MS,
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 100,
                    **extra,
                }
            )
        )

        def on_assign(_consumer, partitions) -> None:
            member.assigned({tp.partition for tp in partitions})

        def on_revoke(_consumer, _partitions) -> None:
            member.assigned(set())

        consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        try:
            while not member.stop.is_set():
                message = consumer.poll(0.1)
                if message is not None:
                    if message.error() is not None:
                        raise AssertionError(f"{member.name}: {message.error()}")
                    member.read(message.partition(), message.offset(), message.value())
                if member.commit.is_set() and not member.committed.is_set():
                    consumer.commit(asynchronous=False)
                    member.committed.set()
        finally:
            consumer.close()

    return body


def kafka_python_member(room: KafkaRoom, topic: str, group: str) -> Callable[[Member], None]:
    def body(member: Member) -> None:
        from kafka import KafkaConsumer
        from kafka.coordinator.assignors.range import RangePartitionAssignor

        consumer = KafkaConsumer(
            topic,
            **room.kafka_python(
                group_id=group,
                client_id=member.name,
                partition_assignment_strategy=[RangePartitionAssignor],
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
            ),
        )
        try:
            while not member.stop.is_set():
                for batch in consumer.poll(timeout_ms=100).values():
                    for r in batch:
                        member.read(r.partition, r.offset, r.value)
                member.assigned({tp.partition for tp in consumer.assignment()})
                if member.commit.is_set() and not member.committed.is_set():
                    consumer.commit()
                    member.committed.set()
        finally:
            consumer.close(autocommit=False)

    return body


def check_alive(*members: Member) -> None:
    for member in members:
        assert member.error is None, f"{member.name} failed: {member.error!r}"


def describe_group(room: KafkaRoom, group: str):
    """DescribeGroups through confluent-kafka's admin client."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(room.confluent())
    [future] = admin.describe_consumer_groups([group], request_timeout=10).values()
    return future.result(timeout=15)


def test_it_splits_a_topic_between_two_libraries_in_one_group(room: KafkaRoom):
    from kafka import KafkaProducer

    topic, group = f"shared-{secrets.token_hex(3)}", f"mixed-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 4)
    librdkafka = Member("confluent-member")
    python = Member("kafka-python-member")
    threads = [
        run_member(librdkafka, confluent_member(room, topic, group)),
        run_member(python, kafka_python_member(room, topic, group)),
    ]
    try:

        def split() -> bool:
            check_alive(librdkafka, python)
            a, b = librdkafka.assignment, python.assignment
            return len(a) == 2 and len(b) == 2 and a | b == {0, 1, 2, 3}

        assert eventually(split, timeout=REBALANCE_SECONDS), (
            f"assignments: confluent {sorted(librdkafka.assignment)}, "
            f"kafka-python {sorted(python.assignment)}"
        )
        described = describe_group(room, group)
        assert described.partition_assignor == "range", described
        by_client = {m.client_id: m for m in described.members}
        assert set(by_client) == {"confluent-member", "kafka-python-member"}, described
        for member in (librdkafka, python):
            told = {tp.partition for tp in by_client[member.name].assignment.topic_partitions}
            assert told == set(member.assignment), (member.name, told, member.assignment)

        # Records are produced once the split is settled: each member reads only its own.
        producer = KafkaProducer(**room.kafka_python())
        for partition in range(4):
            for i in range(10):
                producer.send(topic, value=f"{partition}-{i}".encode(), partition=partition)
        producer.flush(timeout=20)
        producer.close()

        def all_read() -> bool:
            check_alive(librdkafka, python)
            return len(librdkafka.records) + len(python.records) >= 40

        assert eventually(all_read, timeout=20), (len(librdkafka.records), len(python.records))
        time.sleep(0.5)  # anything read twice would show up now
        for member in (librdkafka, python):
            assert {p for p, _, _ in member.records} == set(member.assignment), member.name
            for partition, offset, value in member.records:
                assert value == f"{partition}-{offset}".encode()
            assert len(member.records) == 20, (member.name, len(member.records))

        for member in (librdkafka, python):
            member.commit.set()
        for member in (librdkafka, python):
            assert member.committed.wait(15), f"{member.name} did not commit"
            check_alive(member)
        lags = room.lags(group)
        for member in (librdkafka, python):
            for partition in member.assignment:
                row = lags[(topic, partition)]
                assert (row["current_offset"], row["lag"]) == (10, 0), row
                assert row["client_id"] == member.name, row
    finally:
        for member in (librdkafka, python):
            member.stop.set()
        for thread in threads:
            thread.join(timeout=20)
    check_alive(librdkafka, python)


# A member in its own process, which the test kills: kafka-python, printing its assignment
# each time it changes.
VICTIM = """
import sys
from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

bootstrap, username, password, topic, group, session, heartbeat = sys.argv[1:]
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    security_protocol="SASL_PLAINTEXT",
    sasl_mechanism="PLAIN",
    sasl_plain_username=username,
    sasl_plain_password=password,
    group_id=group,
    client_id="victim",
    partition_assignment_strategy=[RangePartitionAssignor],
    session_timeout_ms=int(session),
    heartbeat_interval_ms=int(heartbeat),
    enable_auto_commit=False,
    fetch_max_wait_ms=100,
)
shown = None
while True:
    consumer.poll(timeout_ms=100)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    if assignment != shown:
        shown = assignment
        print("ASSIGNED", ",".join(map(str, assignment)), flush=True)
"""


def test_it_gives_a_killed_members_partitions_away_after_the_session_timeout(
    room: KafkaRoom, tmp_path
):
    topic, group = f"crash-{secrets.token_hex(3)}", f"crash-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 2)
    output = tmp_path / "victim.out"
    with output.open("wb") as out:
        victim = subprocess.Popen(
            [
                sys.executable,
                "-c",
                VICTIM,
                room.bootstrap,
                room.username,
                room.password,
                topic,
                group,
                str(SESSION_TIMEOUT_MS),
                str(HEARTBEAT_MS),
            ],
            cwd=ROOT,
            env=python_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def victim_has(partitions: str) -> bool:
        assert victim.poll() is None, f"the victim exited:\n{output.read_text()}"
        lines = [ln for ln in output.read_text().splitlines() if ln.startswith("ASSIGNED")]
        return bool(lines) and lines[-1] == f"ASSIGNED {partitions}"

    survivor = Member("survivor")
    thread = None
    try:
        assert eventually(lambda: victim_has("0,1"), timeout=REBALANCE_SECONDS), output.read_text()
        thread = run_member(survivor, confluent_member(room, topic, group))

        def one_each() -> bool:
            check_alive(survivor)
            return (
                len(survivor.assignment) == 1
                and (victim_has("0") or victim_has("1"))
                and not victim_has(",".join(map(str, sorted(survivor.assignment))))
            )

        assert eventually(one_each, timeout=REBALANCE_SECONDS), (
            sorted(survivor.assignment),
            output.read_text(),
        )
        described = describe_group(room, group)
        assert sorted(m.client_id for m in described.members) == ["survivor", "victim"]

        time.sleep(1)  # a few heartbeats of both, in the Stable group
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)

        assert eventually(
            lambda: check_alive(survivor) or survivor.assignment == {0, 1},
            timeout=SESSION_TIMEOUT_MS / 1000 + REBALANCE_SECONDS,
        ), sorted(survivor.assignment)
        took = survivor.assigned_at - killed_at
        # Kafka's session timer restarts at each heartbeat, and the victim's last one came at
        # most one heartbeat interval before the kill: the member expires no sooner than this.
        # A broker that dropped the member when its connection closed would be much quicker.
        earliest = (SESSION_TIMEOUT_MS - HEARTBEAT_MS) / 1000
        assert took >= earliest, f"the partitions moved {took:.2f} s after the kill"
        assert took <= SESSION_TIMEOUT_MS / 1000 + 10, f"{took:.2f} s after the kill"

        described = describe_group(room, group)
        assert [m.client_id for m in described.members] == ["survivor"], described
        assert str(described.state).endswith("STABLE"), described.state
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout=10)
        survivor.stop.set()
        if thread is not None:
            thread.join(timeout=20)
    check_alive(survivor)


def test_it_takes_a_static_member_back_without_a_rebalance(room: KafkaRoom):
    """KIP-345: a member with a `group.instance.id` leaves no LeaveGroup when it closes, and
    rejoining under the same instance id within its session timeout gets its partitions back
    while the group stays Stable: the other member's assignment never moves."""
    topic, group = f"static-{secrets.token_hex(3)}", f"static-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, 2)
    static = {"group.instance.id": "till-1"}
    moving = Member("dynamic")
    first = Member("static-first")
    threads = [
        run_member(moving, confluent_member(room, topic, group)),
        run_member(first, confluent_member(room, topic, group, **static)),
    ]
    second = Member("static-second")
    try:

        def split() -> bool:
            check_alive(moving, first)
            return len(moving.assignment) == 1 and len(first.assignment) == 1

        assert eventually(split, timeout=REBALANCE_SECONDS), (moving, first)
        kept, changes = first.assignment, moving.changes
        before = {m.client_id: m for m in describe_group(room, group).members}
        assert before["static-first"].group_instance_id == "till-1", before
        first.stop.set()
        threads[1].join(timeout=20)
        check_alive(first)

        threads.append(run_member(second, confluent_member(room, topic, group, **static)))
        assert eventually(
            lambda: check_alive(second) or second.assignment, timeout=REBALANCE_SECONDS
        ), "the static member got nothing back"
        assert second.assignment == kept
        time.sleep(2)  # a rebalance, if there were one, would reach the dynamic member now
        check_alive(moving, second)
        assert (moving.changes, moving.assignment) == (changes, {0, 1} - kept)
        # The instance id's member is replaced: a new member id, fencing the old one, with the
        # replaced member's client.id and host kept (ClassicGroup.replaceStaticMember).
        after = {m.client_id: m for m in describe_group(room, group).members}
        assert sorted(after) == ["dynamic", "static-first"], after
        assert after["static-first"].group_instance_id == "till-1"
        assert after["static-first"].member_id != before["static-first"].member_id
        assert after["dynamic"].member_id == before["dynamic"].member_id
    finally:
        for member in (moving, first, second):
            member.stop.set()
        for thread in threads:
            thread.join(timeout=20)
    check_alive(moving, first, second)
