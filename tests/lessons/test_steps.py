"""Each kind of lesson step, played through the services on a small room."""

from __future__ import annotations

import pytest

from messaging.engine.partitioner import partition_for_key
from messaging.errors import Invalid
from messaging.lessons.spec import STEP_ARGS, Start, Step, lesson_parse
from messaging.models import (
    ClassicBroker,
    CommittedOffset,
    ConsumerGroup,
    Member,
    Producer,
    Record,
    RoomEvent,
    SqsQueue,
    Topic,
)
from messaging.services.lesson_steps import (
    advance_steps,
    consumer_resolve,
    lesson_room_start,
    step_apply,
    step_describe,
)
from messaging.services.rooms import room_create
from messaging.services.sqs import sqs_state_load

pytestmark = pytest.mark.django_db


def play(room, do, **args) -> str:
    return step_apply(room=room, step=Step(do, args))


@pytest.fixture
def room():
    room = room_create(title="steps", kind="lesson")
    play(room, "create_topic", name="orders", partitions=3)
    return room


def records(room, key=None):
    rows = Record.objects.filter(partition__topic__room=room)
    return list(rows.filter(key=key) if key else rows)


def test_it_produces_keyed_counted_explicit_and_tombstone_records(room):
    play(room, "produce", topic="orders", key="bob", value="order", count=3)
    bob = records(room, "bob")
    assert [r.value for r in bob] == ["order #1", "order #2", "order #3"]
    assert {r.partition.index for r in bob} == {partition_for_key(b"bob", 3)}
    play(room, "produce", topic="orders", key="amy", partition=2, tombstone=True)
    (amy,) = records(room, "amy")
    assert (amy.partition.index, amy.value) == (2, None)


def test_it_creates_grows_and_configures_topics(room):
    play(room, "add_partitions", topic="orders", partitions=6)
    play(room, "configure_topic", topic="orders", retention_ms=60_000, cleanup_policy="compact")
    topic = Topic.objects.get(room=room, name="orders")
    assert (topic.partition_count, topic.retention_ms, topic.cleanup_policy) == (
        6,
        60_000,
        "compact",
    )


def test_it_infers_the_cooperative_protocol_from_the_assignor(room):
    play(room, "create_group", group="etl", topics=["orders"], assignor="cooperative-sticky")
    play(room, "create_group", group="ops", topics=["orders"], protocol="cooperative")
    play(room, "create_group", group="billing", topics=["orders"])
    got = dict(ConsumerGroup.objects.filter(room=room).values_list("group_id", "protocol"))
    assert got == {"etl": "cooperative", "ops": "cooperative", "billing": "eager"}
    assert ConsumerGroup.objects.get(group_id="ops").assignor == "cooperative-sticky"


def test_it_joins_leaves_crashes_and_sets_speed_by_place_in_the_group(room):
    play(room, "create_group", group="billing", topics=["orders"])
    play(room, "join", group="billing", count=3, rate=4.0)
    group = ConsumerGroup.objects.get(room=room, group_id="billing")
    first, second, third = group.members.order_by("join_order")
    assert {m.records_per_second for m in (first, second, third)} == {4.0}
    play(room, "crash", group="billing", consumer=2)
    assert Member.objects.get(pk=second.pk).crashed
    # The crashed member is not live: "last" and the places skip it.
    assert consumer_resolve(group, "last") == third
    assert consumer_resolve(group, 2) == third
    play(room, "speed", group="billing", consumer=1, rate=9)
    assert Member.objects.get(pk=first.pk).records_per_second == 9
    play(room, "leave", group="billing")
    assert not Member.objects.filter(pk=third.pk).exists()
    with pytest.raises(Invalid, match="there is no consumer 5"):
        play(room, "leave", group="billing", consumer=5)


def test_it_joins_a_static_member(room):
    play(room, "create_group", group="billing", topics=["orders"])
    play(room, "join", group="billing", instance_id="billing-a")
    assert Member.objects.get(group__room=room).group_instance_id == "billing-a"


def test_it_advances_in_board_steps_and_big_steps_for_long_jumps():
    assert advance_steps(2_500) == [1_000, 1_000, 500]
    day = 24 * 60 * 60 * 1000
    assert advance_steps(day) == [day // 24] * 24


def test_it_keeps_live_members_through_a_long_jump_but_not_crashed_ones(room):
    play(room, "create_group", group="billing", topics=["orders"])
    play(room, "join", group="billing", count=2)
    play(room, "crash", group="billing", consumer=1)
    play(room, "advance", ms=24 * 60 * 60 * 1000)
    group = ConsumerGroup.objects.get(room=room, group_id="billing")
    live = list(group.members.values_list("crashed", flat=True))
    assert live == [False]  # the crashed one timed out; the live one heartbeat throughout
    assert group.state == "Stable"
    room.refresh_from_db()
    assert room.sim_time_ms == 24 * 60 * 60 * 1000


def test_it_advances_consumers_and_resets_offsets(room):
    play(room, "create_group", group="billing", topics=["orders"], auto_offset_reset="earliest")
    play(room, "join", group="billing", rate=20)
    play(room, "produce", topic="orders", key="bob", count=4)
    play(room, "advance", ms=6_000)
    group = ConsumerGroup.objects.get(room=room, group_id="billing")
    assert group.processed_total == 4
    play(room, "leave", group="billing")
    text = play(room, "reset_offsets", group="billing", option="to-earliest")
    assert "reset" in text
    assert set(CommittedOffset.objects.filter(group=group).values_list("offset", flat=True)) == {0}


@pytest.mark.parametrize(
    ("acks", "idempotence", "fault", "copies"),
    [
        ("0", None, "lose_request", 0),  # fire and forget: nobody knows it was lost
        ("0", None, "lose_ack", 1),
        ("1", None, "lose_ack", 2),  # retried: written twice
        ("all", False, "lose_ack", 2),
        ("all", True, "lose_ack", 1),  # the broker drops the retry by its sequence number
        ("all", None, "lose_request", 1),  # retried once, kept once
        ("1", None, "leader_failover", 0),  # acked, then lost with the leader
        ("all", None, "leader_failover", 1),
        ("1", None, "none", 1),
    ],
)
def test_it_keeps_what_the_delivery_engine_says_the_broker_keeps(
    room, acks, idempotence, fault, copies
):
    args = {"topic": "orders", "key": "bob", "value": "pay", "acks": acks, "fault": fault}
    if idempotence is not None:
        args["idempotence"] = idempotence
    text = play(room, "produce_with_fault", **args)
    assert len(records(room, "bob")) == copies
    assert "broker kept" in text


def test_it_starts_and_stops_producers(room):
    lesson = room_create(title="p", kind="lesson")
    spec = _spec_with_start(
        producers=({"name": "checkout", "topic": "orders", "keys": ["a"], "running": False},),
        topics=({"name": "orders", "partitions": 1},),
    )
    lesson_room_start(room=lesson, spec=spec)
    assert not Producer.objects.get(room=lesson).running
    play(lesson, "producer", name="checkout", running=True, rate=5)
    producer = Producer.objects.get(room=lesson)
    assert (producer.running, producer.records_per_second) == (True, 5)


def test_it_sends_receives_and_deletes_sqs_messages(room):
    spec = _spec_with_start(sqs_queues=({"name": "orders.fifo"},))
    lesson = room_create(title="q", kind="lesson")
    lesson_room_start(room=lesson, spec=spec)
    play(lesson, "sqs_send", queue="orders.fifo", group_id="alice", body="order", count=2)
    play(lesson, "sqs_send", queue="orders.fifo", group_id="bob", body="order")
    text = play(lesson, "sqs_send", queue="orders.fifo", group_id="bob", body="order")
    assert "1 dropped as duplicates" in text  # content-based deduplication, the board's default
    play(lesson, "sqs_receive", queue="orders.fifo", max=1)
    queue = sqs_state_load(SqsQueue.objects.get(room=lesson))
    (flying,) = [m for m in queue.messages if m.in_flight]
    play(lesson, "sqs_delete", queue="orders.fifo", group_id=flying.message_group_id)
    queue = sqs_state_load(SqsQueue.objects.get(room=lesson))
    assert (len(queue.messages), queue.totals.deleted) == (2, 1)
    with pytest.raises(Invalid, match="no message in flight"):
        play(lesson, "sqs_delete", queue="orders.fifo", group_id="alice")


def test_it_routes_publishes_and_consumes_classic_messages(room):
    play(room, "classic_exchange", exchange="events", type="fanout")
    for name in ("billing", "audit"):
        play(room, "classic_declare", queue=name)
        play(room, "classic_bind", queue=name, exchange="events")
    assert "routed to audit, billing" in play(
        room, "classic_publish", exchange="events", body="paid", count=3
    )
    assert "Consumed and acked 2 messages" in play(
        room, "classic_consume", queue="billing", count=2
    )
    from messaging.selectors import classic_state_load

    broker = classic_state_load(ClassicBroker.objects.get(room=room))
    ready = {q.name: len(q.ready) for q in broker.queues}
    assert ready == {"billing": 1, "audit": 3}
    # The lesson's consumer is gone and nothing it took came back as a redelivery.
    assert broker.consumers == ()
    assert not any(m.redelivered for q in broker.queues for m in q.ready)


def test_it_describes_every_kind_of_step_in_plain_words():
    examples = {
        "produce": {"topic": "orders", "key": "bob"},
        "create_topic": {"name": "orders", "partitions": 3},
        "add_partitions": {"topic": "orders", "partitions": 6},
        "configure_topic": {"topic": "orders", "retention_ms": 1000},
        "create_group": {"group": "billing", "topics": ["orders"]},
        "join": {"group": "billing"},
        "leave": {"group": "billing", "consumer": 2},
        "crash": {"group": "billing"},
        "speed": {"group": "billing", "rate": 2.0},
        "advance": {"ms": 45_000},
        "reset_offsets": {"group": "billing", "option": "shift-by", "value": -2},
        "produce_with_fault": {"topic": "orders", "acks": "0", "fault": "lose_request"},
        "producer": {"name": "checkout", "running": False},
        "sqs_send": {"queue": "q.fifo", "group_id": "a", "body": "x"},
        "sqs_receive": {"queue": "q.fifo"},
        "sqs_delete": {"queue": "q.fifo", "group_id": "a"},
        "classic_declare": {"queue": "jobs"},
        "classic_exchange": {"exchange": "events", "type": "fanout"},
        "classic_bind": {"queue": "jobs", "exchange": "events"},
        "classic_publish": {"exchange": "", "routing_key": "jobs", "body": "x"},
        "classic_consume": {"queue": "jobs"},
        "share_group": {"group": "workers", "topic": "orders", "consumers": 2},
        "share_crash": {"group": "workers", "consumer": 1},
        "share_speed": {"group": "workers", "failure_rate": 0.5, "on_failure": "reject"},
        "brokers": {"count": 3},
        "broker": {"broker": 1, "state": "stop"},
        "elect_preferred": {},
    }
    assert set(examples) == set(STEP_ARGS)
    words = {do: step_describe(Step(do, args)) for do, args in examples.items()}
    assert words["join"] == "Add 1 consumer to group billing"
    assert words["share_group"] == "Create share group workers on orders with 2 share consumers"
    assert words["share_speed"] == (
        "Set the last consumer of share group workers, failing 50% (reject)"
    )
    assert words["advance"] == "Let 45 s of simulated time pass"
    assert words["broker"] == "Stop broker 1"
    assert words["leave"] == "Close consumer 2 of group billing"
    assert words["produce_with_fault"] == (
        "Send a record with no key to orders with acks=0, enable.idempotence=false; "
        "the request is lost"
    )
    assert all(text and "{" not in text for text in words.values())
    assert step_describe(Step("join", {"group": "g"}, say="Start one more.")) == "Start one more."


def _spec_with_start(**start):
    spec = lesson_parse(_MINIMAL, path="")
    from dataclasses import replace

    return replace(spec, start=Start(**start))


_MINIMAL = """
slug = "t"
title = "t"
order = 0
summary = "t"
intro = "t"
[start]
[[goals]]
id = "g"
text = "g"
check = { kind = "event", type = "step", min = 1 }
[[solution]]
do = "advance"
ms = 1000
[[wrong]]
do = "advance"
ms = 1
"""


def test_it_builds_the_start_in_an_empty_room_only():
    lesson = room_create(title="s", kind="lesson")
    spec = _spec_with_start(
        topics=({"name": "orders", "partitions": 2, "retention_ms": 60_000},),
        groups=({"group": "billing", "topics": ["orders"], "consumers": 2, "rate": 3.0},),
        records=({"topic": "orders", "key": "a"}, {"topic": "orders", "key": "b", "count": 2}),
        clock_speed=4.0,
        steps=(Step("crash", {"group": "billing"}),),
    )
    lesson_room_start(room=lesson, spec=spec)
    lesson.refresh_from_db()
    assert lesson.clock_speed == 4.0
    assert Topic.objects.get(room=lesson).retention_ms == 60_000
    members = Member.objects.filter(group__room=lesson).order_by("join_order")
    assert [(m.records_per_second, m.crashed) for m in members] == [(3.0, False), (3.0, True)]
    assert len(records(lesson)) == 3
    assert RoomEvent.objects.filter(room=lesson).last().type == "lesson.started"
    with pytest.raises(Invalid, match="starts from an empty room"):
        lesson_room_start(room=lesson, spec=spec)
