from __future__ import annotations

import pytest
from django.db import transaction

from messaging.engine.partitioner import partition_for_key
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import Partition, Record, RoomEvent
from messaging.selectors import records_fetch
from messaging.services.groups import group_create, offset_commit
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_demo
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    return room_create(title="test")


@pytest.fixture
def orders(room):
    return topic_create(room=room, name="orders", partitions=3)


def test_it_puts_a_keyed_record_where_kafkas_java_producer_would(room, orders):
    produced = records_produce(
        room=room, topic_name="orders", records=[RecordIn(key="alice", value="v")]
    )[0]
    assert produced.partition == partition_for_key(b"alice", 3)
    assert produced.offset == 0
    assert produced.reason == "key"


def test_it_keeps_one_key_in_one_partition_in_order(room, orders):
    produced = records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key="bob", value=str(i)) for i in range(5)],
    )
    assert {p.partition for p in produced} == {partition_for_key(b"bob", 3)}
    assert [p.offset for p in produced] == [0, 1, 2, 3, 4]


def test_it_lets_an_explicit_partition_win_over_the_key(room, orders):
    key_partition = partition_for_key(b"alice", 3)
    other = (key_partition + 1) % 3
    produced = records_produce(
        room=room, topic_name="orders", records=[RecordIn(key="alice", value="", partition=other)]
    )[0]
    assert (produced.partition, produced.reason) == (other, "explicit")


def test_it_moves_the_log_end_offset_and_fetches_from_an_offset(room, orders):
    records_produce(
        room=room, topic_name="orders", records=[RecordIn(key="k", value=str(i)) for i in range(4)]
    )
    partition = Partition.objects.get(topic=orders, index=partition_for_key(b"k", 3))
    assert (partition.log_start_offset, partition.log_end_offset) == (0, 4)
    fetched = records_fetch(partition=partition, offset=2, max_records=10)
    assert [(r.offset, r.value) for r in fetched] == [(2, "2"), (3, "3")]
    assert records_fetch(partition=partition, offset=4, max_records=10) == []
    with pytest.raises(Invalid, match="out of range"):
        records_fetch(partition=partition, offset=5, max_records=10)


def test_it_numbers_the_rooms_events_and_broadcasts_them_after_commit(room, orders):
    with transaction.atomic():
        pass
    first = RoomEvent.objects.get(room=room, seq=1)
    assert first.type == "topic.created"
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="a", value="1")])
    event = RoomEvent.objects.get(room=room, seq=2)
    assert event.type == "records.produced"
    assert event.payload["records"][0]["key"] == "a"
    room.refresh_from_db()
    assert room.last_seq == 2


def test_it_queues_the_broadcast_until_the_transaction_commits(
    room, orders, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        records_produce(room=room, topic_name="orders", records=[RecordIn(key="a", value="1")])
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (RecordIn(key="k" * 257, value="v"), "at most 256 characters"),
        (RecordIn(key="k", value="v" * (10 * 1024 + 1)), "at most 10 KB"),
        (RecordIn(key="k", value="v", partition=3), "partitions 0 to 2"),
        (RecordIn(key="k", value="v", partition=-1), "does not exist"),
    ],
)
def test_it_refuses_bad_records_and_writes_nothing(room, orders, record, message):
    good = RecordIn(key="fine", value="fine")
    with pytest.raises(Invalid, match=message):
        records_produce(room=room, topic_name="orders", records=[good, record])
    assert Record.objects.count() == 0
    assert not Partition.objects.filter(log_end_offset__gt=0).exists()
    room.refresh_from_db()
    assert room.last_seq == 1


def test_it_refuses_an_unknown_topic(room):
    with pytest.raises(NotFound, match="does not exist"):
        records_produce(room=room, topic_name="nope", records=[RecordIn(key="k", value="v")])


@pytest.mark.parametrize("partitions", [0, 129, -3, "many"])
def test_it_refuses_a_topic_with_a_partition_count_out_of_range(room, partitions):
    with pytest.raises(Invalid, match="partition"):
        topic_create(room=room, name="t", partitions=partitions)
    assert not room.topics.exists()


def test_it_refuses_a_duplicate_topic_name(room, orders):
    with pytest.raises(Conflict, match="already exists"):
        topic_create(room=room, name="orders", partitions=1)
    assert room.topics.count() == 1


@pytest.mark.parametrize("name", ["", "has space", "a/b", "..", "x" * 250])
def test_it_refuses_topic_names_kafka_refuses(room, name):
    with pytest.raises(Invalid):
        topic_create(room=room, name=name, partitions=1)


def test_it_commits_the_offset_of_the_next_record_to_read(room, orders):
    records_produce(
        room=room, topic_name="orders", records=[RecordIn(key="k", value=str(i)) for i in range(3)]
    )
    group = group_create(room=room, group_id="billing", topics=["orders"])
    p = partition_for_key(b"k", 3)
    committed = offset_commit(group=group, topic_name="orders", partition=p, offset=2)
    assert committed.offset == 2
    event = RoomEvent.objects.filter(room=room, type="offset.committed").get()
    assert event.payload["lag"] == 1
    with pytest.raises(Invalid, match="beyond"):
        offset_commit(group=group, topic_name="orders", partition=p, offset=4)


def test_it_seeds_the_demo_room_once(db):
    room, created = room_seed_demo()
    again, created_again = room_seed_demo()
    assert created and not created_again
    assert room.pk == again.pk
    topic = room.topics.get()
    assert (topic.name, topic.partition_count) == ("orders", 3)
    assert Record.objects.filter(partition__topic=topic).count() == 8


def test_it_refuses_a_keyless_record_on_a_compacted_topic_as_kafka_does(room, orders):
    from messaging.services.topics import topic_configure

    topic_configure(topic=orders, cleanup_policy="compact")
    with pytest.raises(Invalid, match="Compacted topic cannot accept message without key"):
        records_produce(room=room, topic_name="orders", records=[RecordIn(key=None, value="v")])
    assert Record.objects.count() == 0
