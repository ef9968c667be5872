"""Brokers and replication stored: failover, the durability ledger, acks, the high watermark."""

from __future__ import annotations

import pytest

from messaging.engine import replication as rep
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    LostRecord,
    Partition,
    PartitionReplicas,
    ProducerState,
    Record,
    RoomEvent,
)
from messaging.selectors import records_fetch
from messaging.services import replication
from messaging.services.client_records import ClientBatch, ClientRecord, client_produce
from messaging.services.records import RecordIn, records_produce
from messaging.services.seeds import sandbox_create
from messaging.services.simulation import room_step
from messaging.services.topics import topic_configure, topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    return sandbox_create(title="brokers")


@pytest.fixture
def payments(room):
    return topic_create(
        room=room, name="payments", partitions=3, replication_factor=3, min_insync_replicas=2
    )


def state(topic, index=0) -> rep.PartitionState:
    row = PartitionReplicas.objects.get(partition__topic=topic, partition__index=index)
    return rep.PartitionState.from_dict(row.state)


def partition(topic, index=0) -> Partition:
    return Partition.objects.get(topic=topic, index=index)


def test_a_sandbox_has_three_brokers_and_a_replicated_topic_spreads_its_leaders(room, payments):
    assert replication.brokers_of(room) == {1: "up", 2: "up", 3: "up"}
    leaders = [state(payments, i).leader for i in range(3)]
    assert leaders == [1, 2, 3]
    assert all(state(payments, i).isr == state(payments, i).brokers for i in range(3))
    # a topic of one replica has no replica state: its high watermark is its log end
    orders = room.topics.get(name="orders")
    assert not PartitionReplicas.objects.filter(partition__topic=orders).exists()
    assert partition(orders).high_watermark is None


def test_consumers_read_up_to_the_high_watermark_which_the_step_moves(room, payments):
    records_produce(
        room=room, topic_name="payments", records=[RecordIn("k", "v", partition=0)], acks=1
    )
    p = partition(payments)
    assert (p.log_end_offset, p.high_watermark) == (1, 0)
    assert records_fetch(partition=p, offset=0, max_records=10) == []
    room.refresh_from_db()
    payload = room_step(room=room, step_ms=100)
    p = partition(payments)
    assert p.high_watermark == 1
    assert [r.offset for r in records_fetch(partition=p, offset=0, max_records=10)] == [0]
    [changed] = payload["replication"]
    assert changed["tp"] == "payments-0" and changed["leo"] == {"1": 1, "2": 1, "3": 1}


def test_stopping_a_leader_elects_from_the_isr_and_names_the_lost_acks_1_record(room, payments):
    records_produce(
        room=room, topic_name="payments", records=[RecordIn("a", "kept", partition=0)], acks=1
    )
    room.refresh_from_db()
    room_step(room=room, step_ms=100)
    records_produce(
        room=room, topic_name="payments", records=[RecordIn("b", "gone", partition=0)], acks=1
    )
    payload = replication.broker_set(room=room, broker_id=1, state="stopped")
    s = state(payments)
    assert s.leader == 2 and s.leader_epoch == 1 and s.isr == (2, 3)
    assert payload["lost"] == 1
    [lost] = LostRecord.objects.filter(room=room)
    assert (lost.topic, lost.partition, lost.offset, lost.value) == ("payments", 0, 1, "gone")
    assert lost.acks == 1 and lost.acknowledged and lost.election == "clean"
    assert list(
        Record.objects.filter(partition__topic=payments).values_list("value", flat=True)
    ) == ["kept"]
    assert partition(payments).log_end_offset == 1
    assert RoomEvent.objects.filter(room=room, type="broker.changed").exists()
    # the next record takes the offset the lost one had: offsets are the new leader's
    [again] = records_produce(
        room=room, topic_name="payments", records=[RecordIn("c", "new", partition=0)], acks=1
    )
    assert again.offset == 1


def test_acks_all_is_refused_under_min_insync_replicas_and_writes_nothing(room, payments):
    replication.broker_set(room=room, broker_id=2, state="stopped")
    replication.broker_set(room=room, broker_id=3, state="stopped")
    with pytest.raises(Conflict, match="NOT_ENOUGH_REPLICAS"):
        records_produce(room=room, topic_name="payments", records=[RecordIn("k", "v", partition=0)])
    assert partition(payments).log_end_offset == 0
    # the autoplay producers leave such a partition out instead of failing the step
    produced = records_produce(
        room=room,
        topic_name="payments",
        records=[RecordIn("k", "v", partition=0)],
        skip_unavailable=True,
    )
    assert produced == []


def test_a_topic_of_one_replica_goes_offline_with_broker_1(room):
    replication.broker_set(room=room, broker_id=1, state="stopped")
    with pytest.raises(Conflict, match="NOT_LEADER_OR_FOLLOWER"):
        records_produce(room=room, topic_name="orders", records=[RecordIn("k", "v")], acks=1)
    replication.broker_set(room=room, broker_id=1, state="up")
    records_produce(room=room, topic_name="orders", records=[RecordIn("k", "v")], acks=1)


def test_a_real_clients_produce_to_a_follower_is_not_leader_or_follower(room, payments):
    batch = ClientBatch(-1, -1, -1, [ClientRecord(b"k", b"v", 0)])
    [answer] = client_produce(
        room=room, writes=[("payments", 0, [batch])], producer="t", broker=2, acks=1
    )
    assert answer.error == "NOT_LEADER_OR_FOLLOWER"
    [answer] = client_produce(
        room=room, writes=[("payments", 0, [batch])], producer="t", broker=1, acks=-1
    )
    assert answer.error is None and answer.wait == (partition(payments).pk, 1, 0)
    assert replication.acks_outcomes([answer.wait]) == ["waiting"]
    room.refresh_from_db()
    room_step(room=room, step_ms=100)
    assert replication.acks_outcomes([answer.wait]) == ["ok"]


def test_a_truncated_idempotent_batch_is_forgotten_so_its_retry_appends(room, payments):
    batch = ClientBatch(7, 0, 0, [ClientRecord(b"k", b"v", 0)])
    client_produce(room=room, writes=[("payments", 0, [batch])], producer="t", broker=1, acks=1)
    assert ProducerState.objects.filter(producer_id=7).exists()
    replication.broker_set(room=room, broker_id=1, state="stopped")
    assert not ProducerState.objects.filter(producer_id=7).exists()
    [answer] = client_produce(
        room=room, writes=[("payments", 0, [batch])], producer="t", broker=2, acks=1
    )
    assert (answer.error, answer.base_offset) == (None, 0)
    assert Record.objects.filter(partition__topic=payments).count() == 1


def test_unclean_leader_election_is_a_topic_config(room, payments):
    topic_configure(topic=payments, unclean_leader_election_enable="true", min_insync_replicas=1)
    payments.refresh_from_db()
    assert payments.unclean_leader_election_enable and payments.min_insync_replicas == 1
    with pytest.raises(Invalid):
        topic_configure(topic=payments, unclean_leader_election_enable="maybe")


def test_broker_controls_refuse_what_kafka_has_not(room, payments):
    with pytest.raises(NotFound):
        replication.broker_set(room=room, broker_id=4, state="stopped")
    with pytest.raises(Conflict):
        replication.broker_set(room=room, broker_id=1, state="up")
    with pytest.raises(Invalid):
        topic_create(room=room, name="wide", partitions=1, replication_factor=4)
    with pytest.raises(Conflict, match="holds replicas"):
        replication.brokers_resize(room=room, count=2)
    replication.brokers_resize(room=room, count=5)
    assert len(replication.brokers_of(room)) == 5
    replication.brokers_resize(room=room, count=3)
    assert len(replication.brokers_of(room)) == 3


def test_the_preferred_leader_returns_when_asked(room, payments):
    replication.broker_set(room=room, broker_id=1, state="stopped")
    replication.broker_set(room=room, broker_id=1, state="up")
    room.refresh_from_db()
    room_step(room=room, step_ms=100)
    assert state(payments).leader == 2 and 1 in state(payments).isr
    replication.leaders_preferred(room=room)
    assert state(payments).leader == 1


def test_undo_brings_the_brokers_and_the_lost_record_back(room, payments):
    from messaging.services.snapshots import room_snapshot_take, room_undo

    records_produce(
        room=room, topic_name="payments", records=[RecordIn("k", "v", partition=0)], acks=1
    )
    room_snapshot_take(room=room, label="before the failover")
    replication.broker_set(room=room, broker_id=1, state="stopped")
    assert LostRecord.objects.filter(room=room).count() == 1
    room_undo(room=room)
    assert replication.brokers_of(room)[1] == "up"
    assert state(payments).leader == 1 and state(payments).leader_epoch == 0
    assert not LostRecord.objects.filter(room=room).exists()
    assert (
        Record.objects.filter(partition__topic__room=room, partition__topic=payments).count() == 1
    )


def test_new_partitions_need_as_many_running_brokers_as_the_replication_factor(room, payments):
    from messaging.services.topics import topic_add_partitions

    replication.broker_set(room=room, broker_id=3, state="stopped")
    with pytest.raises(Invalid, match="larger than available brokers"):
        topic_add_partitions(topic=payments, partitions=4)
    replication.broker_set(room=room, broker_id=3, state="up")
    topic_add_partitions(topic=payments, partitions=4)
    assert state(payments, 3).brokers == (1, 3, 2)  # the placement shifts every n partitions


def test_simulated_consumers_wait_on_a_partition_with_no_leader(room):
    from messaging.models import CommittedOffset

    records_produce(
        room=room, topic_name="orders", records=[RecordIn("k", f"v{i}") for i in range(6)]
    )
    replication.broker_set(room=room, broker_id=1, state="stopped")  # orders has one replica
    for _ in range(50):
        room_step(room=room, step_ms=1000)
    # Nobody could fetch: no record of orders was processed, no offset committed.
    assert not CommittedOffset.objects.filter(partition__topic__name="orders").exists()
    replication.broker_set(room=room, broker_id=1, state="up")
    for _ in range(50):
        room_step(room=room, step_ms=1000)
    assert CommittedOffset.objects.filter(partition__topic__name="orders").exists()
