"""SQS FIFO queues and the classic broker stored in a room: each scenario is one fact a lesson
teaches, played through the services (the engine decides, the row keeps it, an event says so)."""

from __future__ import annotations

import json

import pytest

from messaging import selectors
from messaging.engine import classic, sqs
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import ClassicBroker, Room, RoomEvent, SqsQueue
from messaging.services import classic as classic_services
from messaging.services import mirror as mirror_services
from messaging.services import sqs as sqs_services
from messaging.services.clock import room_clock_step
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

SECOND = 1_000


@pytest.fixture
def room():
    return room_create(title="queues")


def fifo(room, name="orders.fifo", **attributes) -> SqsQueue:
    given = {"FifoQueue": "true", "ContentBasedDeduplication": "true", **attributes}
    return sqs_services.sqs_queue_create(room=room, name=name, attributes=given)


def send(queue: SqsQueue, group: str, body: str, dedup: str | None = None) -> sqs.SendResult:
    return sqs_services.sqs_send(
        queue=queue, body=body, message_group_id=group, deduplication_id=dedup
    )


def bodies(result: sqs.ReceiveResult) -> list[str]:
    return [m.body for m in result.messages]


def state(queue: SqsQueue) -> sqs.Queue:
    queue.refresh_from_db()
    return selectors.sqs_state_load(queue)


def lanes(queue: SqsQueue) -> dict[str, tuple[bool, list[str], list[str]]]:
    """group -> (blocked, in-flight bodies, queued bodies)."""
    return {
        lane.message_group_id: (
            lane.blocked,
            [m.body for m in lane.in_flight],
            [m.body for m in lane.queued],
        )
        for lane in sqs.lanes(state(queue))
    }


def events(room, type_: str) -> list[dict]:
    return [e.payload for e in RoomEvent.objects.filter(room=room, type=type_).order_by("seq")]


def step(room, ms: int) -> None:
    """Move the room's clock; the room's step runs sqs_tick once it is wired in, and a second
    call is then a no-op (nothing is due any more)."""
    room_clock_step(room=room, step_ms=ms)
    sqs_services.sqs_tick(room=room)


# --- SQS FIFO ---------------------------------------------------------------------------------


def test_it_keeps_fifo_order_within_each_message_group(room):
    queue = fifo(room)
    for group, body in [("alice", "a1"), ("bob", "b1"), ("alice", "a2"), ("alice", "a3")]:
        send(queue, group, body)
    seen = []
    for _ in range(4):
        result = sqs_services.sqs_receive(queue=queue, max_messages=1, consumer="worker")
        (message,) = result.messages
        seen.append(message.body)
        sqs_services.sqs_delete(queue=queue, receipt_handle=message.receipt_handle)
    assert [b for b in seen if b.startswith("a")] == ["a1", "a2", "a3"]
    assert state(queue).messages == ()
    assert [e["action"] for e in events(room, "sqs.changed")][:5] == [
        "create",
        "send",
        "send",
        "send",
        "send",
    ]


def test_a_message_in_flight_blocks_its_group_and_only_its_group(room):
    queue = fifo(room)
    for group, body in [("alice", "a1"), ("alice", "a2"), ("bob", "b1"), ("bob", "b2")]:
        send(queue, group, body)
    first = sqs_services.sqs_receive(queue=queue, consumer="worker-A")
    assert bodies(first) == ["a1"]
    second = sqs_services.sqs_receive(queue=queue, max_messages=1, consumer="worker-B")
    assert bodies(second) == ["b1"]  # alice is blocked, bob flows
    assert lanes(queue) == {
        "alice": (True, ["a1"], ["a2"]),
        "bob": (True, ["b1"], ["b2"]),
    }
    # Deleting bob's message unblocks bob, not alice.
    sqs_services.sqs_delete(queue=queue, receipt_handle=second.messages[0].receipt_handle)
    assert lanes(queue)["bob"] == (False, [], ["b2"])
    assert bodies(sqs_services.sqs_receive(queue=queue, max_messages=10)) == ["b2"]
    # The page shows which simulated consumer holds which message.
    holders = selectors.sqs_board_load(SqsQueue.objects.get(pk=queue.pk))["holders"]
    assert {h["consumer"] for h in holders.values()} == {"worker-A", ""}
    received = events(room, "sqs.changed")[-1]
    assert received["action"] == "receive" and received["groups"] == ["bob"]


def test_the_visibility_timeout_hands_the_message_back_when_room_time_passes(room):
    queue = fifo(room, VisibilityTimeout="30")
    send(queue, "alice", "a1")
    send(queue, "alice", "a2")
    taken = sqs_services.sqs_receive(queue=queue, consumer="crashy")
    handle = taken.messages[0].receipt_handle
    assert taken.messages[0].visibility_deadline_ms == 30 * SECOND

    step(room, 29_999)
    assert lanes(queue)["alice"] == (True, ["a1"], ["a2"])
    assert sqs_services.sqs_receive(queue=queue).messages == ()  # still blocked

    ticks_before = len([e for e in events(room, "sqs.changed") if e["action"] == "tick"])
    step(room, 1)
    assert lanes(queue)["alice"] == (False, [], ["a1", "a2"])
    ticks = [e for e in events(room, "sqs.changed") if e["action"] == "tick"]
    assert len(ticks) == ticks_before + 1
    assert ticks[-1] == {
        "queue": "orders.fifo",
        "action": "tick",
        "returned": 1,
        "expired": 0,
        "released": 0,
    }

    again = sqs_services.sqs_receive(queue=queue)
    assert [(m.body, m.approximate_receive_count) for m in again.messages] == [("a1", 2)]
    # The crashed consumer's handle is stale now: FIFO refuses it.
    with pytest.raises(Invalid, match="The receipt handle has expired"):
        sqs_services.sqs_delete(queue=queue, receipt_handle=handle)


def test_a_tick_with_nothing_due_is_cheap_and_silent(room, django_assert_max_num_queries):
    queue = fifo(room)
    send(queue, "alice", "a1")  # visible: only retention (4 days) is due
    seq = Room.objects.get(pk=room.pk).last_seq
    with django_assert_max_num_queries(4):  # savepoint, room lock, due query, release
        assert sqs_services.sqs_tick(room=room) == []
    assert Room.objects.get(pk=room.pk).last_seq == seq
    assert selectors.sqs_board_load(SqsQueue.objects.get(pk=queue.pk))["due_ms"] == 345_600 * SECOND


def test_retention_expires_messages_on_the_room_clock(room):
    queue = fifo(room, MessageRetentionPeriod="60")
    send(queue, "alice", "a1")
    step(room, 60 * SECOND)
    assert state(queue).messages == ()
    assert events(room, "sqs.changed")[-1]["expired"] == 1


def test_a_duplicate_within_5_minutes_is_accepted_and_dropped(room):
    queue = fifo(room, ContentBasedDeduplication="false")
    first = send(queue, "alice", "pay #1", dedup="pay-1")
    retry = send(queue, "alice", "pay #1 (retry)", dedup="pay-1")
    assert retry.duplicate and retry.message_id == first.message_id
    assert [m.body for m in state(queue).messages] == ["pay #1"]
    assert state(queue).totals.duplicates == 1
    board = selectors.sqs_board_load(SqsQueue.objects.get(pk=queue.pk))
    assert [(d["dedup_id"], d["body"]) for d in board["duplicates"]] == [
        ("pay-1", "pay #1 (retry)")
    ]
    assert events(room, "sqs.changed")[-1]["duplicate"] is True

    step(room, 5 * 60 * SECOND)  # the deduplication interval is over
    later = send(queue, "alice", "pay #1 (much later)", dedup="pay-1")
    assert not later.duplicate and later.message_id != first.message_id
    assert len(state(queue).messages) == 2


def test_content_based_deduplication_uses_the_body(room):
    queue = fifo(room)
    assert not send(queue, "alice", "same").duplicate
    assert send(queue, "bob", "same").duplicate  # DeduplicationScope=queue
    assert len(state(queue).messages) == 1


def test_it_explains_what_sqs_refuses_and_writes_nothing(room):
    queue = fifo(room, ContentBasedDeduplication="false")
    before = (Room.objects.get(pk=room.pk).last_seq, SqsQueue.objects.get(pk=queue.pk).state)
    refusals = [
        (lambda: sqs_services.sqs_send(queue=queue, body="x"), "MissingParameter"),
        (
            lambda: sqs_services.sqs_send(queue=queue, body="x", message_group_id="g"),
            "ContentBasedDeduplication enabled or MessageDeduplicationId",
        ),
        (
            lambda: sqs_services.sqs_send(
                queue=queue, body="", message_group_id="g", deduplication_id="d"
            ),
            "MessageBody",
        ),
        (
            lambda: sqs_services.sqs_send(queue=queue, body="x" * 10_241, message_group_id="g"),
            "at most 10 KB",
        ),
        (
            lambda: sqs_services.sqs_receive(queue=queue, max_messages=11),
            "Must be between 1 and 10",
        ),
        (lambda: sqs_services.sqs_receive(queue=queue, max_messages="lots"), "whole number"),
        (
            lambda: sqs_services.sqs_receive(queue=queue, visibility_timeout=43_201),
            "VisibilityTimeout",
        ),
        (lambda: sqs_services.sqs_receive(queue=queue, consumer="c" * 41), "at most 40"),
        (
            lambda: sqs_services.sqs_delete(queue=queue, receipt_handle="nope"),
            "not a valid receipt handle",
        ),
        (lambda: sqs_services.sqs_delete(queue=queue, receipt_handle=""), "ReceiptHandle"),
        (
            lambda: sqs_services.sqs_change_visibility(
                queue=queue, receipt_handle="AQEBxx", timeout=5
            ),
            "not a valid receipt handle",
        ),
    ]
    for call, reason in refusals:
        with pytest.raises(Invalid, match=reason):
            call()
    after = (Room.objects.get(pk=room.pk).last_seq, SqsQueue.objects.get(pk=queue.pk).state)
    assert after == before


def test_queue_names_and_attributes_follow_aws(room):
    with pytest.raises(Invalid, match="must end with .fifo suffix"):
        sqs_services.sqs_queue_create(room=room, name="orders", attributes={"FifoQueue": "true"})
    with pytest.raises(Invalid, match="alphanumeric characters, hyphens, or underscores"):
        sqs_services.sqs_queue_create(
            room=room, name="bad name.fifo", attributes={"FifoQueue": "true"}
        )
    with pytest.raises(Invalid, match="1 to 80 in length"):
        sqs_services.sqs_queue_create(
            room=room, name="x" * 76 + ".fifo", attributes={"FifoQueue": "true"}
        )
    with pytest.raises(Invalid, match="InvalidAttributeValue"):
        fifo(room, VisibilityTimeout="43201")
    assert not SqsQueue.objects.exists()
    # CreateQueue is idempotent with the same attributes, and refuses different ones.
    created = fifo(room)
    seq = Room.objects.get(pk=room.pk).last_seq
    assert fifo(room).pk == created.pk
    assert Room.objects.get(pk=room.pk).last_seq == seq
    with pytest.raises(Conflict, match="QueueAlreadyExists"):
        fifo(room, VisibilityTimeout="60")
    standard = sqs_services.sqs_queue_create(room=room, name="plain")
    assert not selectors.sqs_state_load(standard).fifo


def test_a_room_holds_at_most_ten_queues_and_a_queue_1000_messages(room, monkeypatch):
    for i in range(sqs_services.MAX_QUEUES_PER_ROOM):
        fifo(room, name=f"q{i}.fifo")
    with pytest.raises(Invalid, match="at most 10 queues"):
        fifo(room, name="one-too-many.fifo")

    monkeypatch.setattr(sqs_services, "MAX_MESSAGES_PER_QUEUE", 3)
    queue = SqsQueue.objects.get(name="q0.fifo")
    for body in ("1", "2", "3"):
        send(queue, "g", body)
    with pytest.raises(Invalid, match="holds 3 messages"):
        send(queue, "g", "4")
    assert send(queue, "g", "3").duplicate  # a duplicate adds nothing, so it is accepted
    assert len(state(queue).messages) == 3


def test_purge_empties_the_queue_once_a_minute(room):
    queue = fifo(room)
    send(queue, "a", "1")
    sqs_services.sqs_receive(queue=queue)
    send(queue, "b", "2")
    assert len(sqs_services.sqs_purge(queue=queue).purged_message_ids) == 2
    with pytest.raises(Invalid, match="PurgeQueueInProgress"):
        sqs_services.sqs_purge(queue=queue)
    step(room, 60 * SECOND)
    sqs_services.sqs_purge(queue=queue)


def test_change_visibility_zero_hands_the_message_back_at_once(room):
    queue = fifo(room)
    send(queue, "alice", "a1")
    handle = sqs_services.sqs_receive(queue=queue).messages[0].receipt_handle
    change = sqs_services.sqs_change_visibility(queue=queue, receipt_handle=handle, timeout=0)
    assert change.in_flight_until_ms is None
    assert lanes(queue)["alice"] == (False, [], ["a1"])


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(room):
    dlq = fifo(room, name="orders-dlq.fifo")
    with pytest.raises(Invalid, match="Dead letter target does not exist"):
        fifo(
            room,
            RedrivePolicy=json.dumps(
                {
                    "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:missing.fifo",
                    "maxReceiveCount": 1,
                }
            ),
        )
    queue = fifo(
        room,
        RedrivePolicy=json.dumps(
            {
                "deadLetterTargetArn": selectors.sqs_state_load(dlq).arn,
                "maxReceiveCount": 1,
            }
        ),
    )
    send(queue, "alice", "poison")
    send(queue, "alice", "next")
    sqs_services.sqs_receive(queue=queue, visibility_timeout=0)  # received once, back at once
    result = sqs_services.sqs_receive(queue=queue)
    assert bodies(result) == ["next"]  # the poison message moved; order is broken
    assert [m.body for m in state(dlq).messages] == ["poison"]


# --- classic broker -----------------------------------------------------------------------------


def broker(room) -> classic.Broker:
    return selectors.classic_state_load(ClassicBroker.objects.get(room=room))


def unacked(room, tag: str) -> list[str]:
    return [d.message.body for d in classic.get_consumer(broker(room), tag).unacked]


def test_competing_consumers_share_a_queue_round_robin_within_their_prefetch(room):
    classic_services.classic_queue_declare(room=room, name="work")
    classic_services.classic_consume(room=room, queue="work", consumer_tag="c1", prefetch_count=1)
    classic_services.classic_consume(room=room, queue="work", consumer_tag="c2", prefetch_count=1)
    for body in ("m1", "m2", "m3"):
        classic_services.classic_publish(room=room, exchange="", routing_key="work", body=body)
    assert (unacked(room, "c1"), unacked(room, "c2")) == (["m1"], ["m2"])
    assert classic.queue_stats(broker(room), "work") == classic.QueueStats("work", 1, 2, 2)

    # ack deletes m1 for good, and c1's free slot pulls m3
    outcome = classic_services.classic_ack(room=room, consumer_tag="c1", delivery_tag=1)
    assert [d.message.body for d in outcome.deliveries] == ["m3"]
    # nack with requeue: m2 goes back in place, flagged redelivered, and comes straight back
    classic_services.classic_nack(room=room, consumer_tag="c2", delivery_tag=1, requeue=True)
    (again,) = classic.get_consumer(broker(room), "c2").unacked
    assert (again.message.body, again.message.redelivered) == ("m2", True)
    # c1 dies before acking m3: it is redelivered once c2 has room
    classic_services.classic_close(room=room, consumer_tag="c1")
    assert classic.get_queue(broker(room), "work").ready[0].body == "m3"
    classic_services.classic_ack(room=room, consumer_tag="c2", delivery_tag=2)
    assert unacked(room, "c2") == ["m3"]
    assert [e["action"] for e in events(room, "classic.changed")][-3:] == ["nack", "close", "ack"]


def test_nack_without_requeue_drops_and_a_fanout_copies(room):
    classic_services.classic_exchange_declare(room=room, name="billing", exchange_type="fanout")
    for name in ("invoices", "analytics"):
        classic_services.classic_queue_declare(room=room, name=name)
        classic_services.classic_bind(room=room, queue=name, exchange="billing")
    outcome = classic_services.classic_publish(
        room=room, exchange="billing", routing_key="", body="paid #42"
    )
    assert outcome.routed_to == ("invoices", "analytics")
    classic_services.classic_consume(
        room=room, queue="invoices", consumer_tag="inv", prefetch_count=0
    )
    dropped = classic_services.classic_nack(
        room=room, consumer_tag="inv", delivery_tag=1, requeue=False
    )
    assert dropped.discarded == ("msg-1",)
    assert classic.queue_stats(broker(room), "analytics").messages_ready == 1
    lost = classic_services.classic_publish(room=room, exchange="", routing_key="nobody", body="x")
    assert lost.routed_to == ()


def test_the_broker_refuses_with_rabbitmq_s_words_and_writes_nothing(room):
    classic_services.classic_queue_declare(room=room, name="work")
    classic_services.classic_consume(room=room, queue="work", consumer_tag="c1", prefetch_count=1)
    before = (Room.objects.get(pk=room.pk).last_seq, ClassicBroker.objects.get(room=room).state)
    with pytest.raises(Conflict, match="PRECONDITION_FAILED - unknown delivery tag 7"):
        classic_services.classic_ack(room=room, consumer_tag="c1", delivery_tag=7)
    with pytest.raises(NotFound, match="NOT_FOUND - no queue 'nope'"):
        classic_services.classic_consume(room=room, queue="nope", consumer_tag="c2")
    with pytest.raises(Conflict, match="NOT_ALLOWED - attempt to reuse consumer tag"):
        classic_services.classic_consume(room=room, queue="work", consumer_tag="c1")
    with pytest.raises(NotFound, match="no consumer 'ghost'"):
        classic_services.classic_close(room=room, consumer_tag="ghost")
    with pytest.raises(Invalid, match="NOT_IMPLEMENTED"):
        classic_services.classic_exchange_declare(room=room, name="t", exchange_type="topic")
    with pytest.raises(Invalid, match="ACCESS_REFUSED"):
        classic_services.classic_queue_declare(room=room, name="amq.mine")
    with pytest.raises(Invalid, match="at most 10 KB"):
        classic_services.classic_publish(
            room=room, exchange="", routing_key="work", body="x" * 10_241
        )
    with pytest.raises(Invalid, match="whole number"):
        classic_services.classic_ack(room=room, consumer_tag="c1", delivery_tag="one")
    after = (Room.objects.get(pk=room.pk).last_seq, ClassicBroker.objects.get(room=room).state)
    assert after == before


def test_the_room_gets_one_broker(room):
    first = classic_services.classic_broker_get_or_create(room=room)
    assert classic_services.classic_broker_get_or_create(room=room).pk == first.pk
    assert events(room, "classic.changed") == [{"action": "create"}]
    assert selectors.classic_state_load(first) == classic.new_broker()


def test_a_classic_queue_holds_at_most_its_bound(room, monkeypatch):
    monkeypatch.setattr(classic_services, "MAX_CLASSIC_MESSAGES_PER_QUEUE", 2)
    classic_services.classic_queue_declare(room=room, name="work")
    for body in ("1", "2"):
        classic_services.classic_publish(room=room, exchange="", routing_key="work", body=body)
    with pytest.raises(Invalid, match="holds 2 messages"):
        classic_services.classic_publish(room=room, exchange="", routing_key="work", body="3")


# --- side-by-side -------------------------------------------------------------------------------


@pytest.fixture
def mirrored(room):
    topic = topic_create(room=room, name="orders", partitions=3)
    mirror_services.mirror_enable(room=room, topic=topic)
    return topic


def produce(room, records: list[RecordIn]) -> None:
    """Produce to the mirrored topic: records_produce mirrors by itself."""
    records_produce(room=room, topic_name="orders", records=records)


def test_mirroring_sets_up_a_fifo_queue_competing_workers_and_a_fanout(room, mirrored):
    room.refresh_from_db()
    assert room.mirror_topic == mirrored
    attributes = sqs.get_queue_attributes(selectors.sqs_state_load(SqsQueue.objects.get(room=room)))
    assert (attributes["FifoQueue"], attributes["ContentBasedDeduplication"]) == ("true", "false")
    b = broker(room)
    assert [(c.consumer_tag, c.queue, c.prefetch_count) for c in b.consumers] == [
        ("worker-1", "orders", 1),
        ("worker-2", "orders", 1),
    ]
    assert [binding.queue for binding in b.exchanges[0].bindings] == [
        "orders.billing",
        "orders.analytics",
    ]
    # Enabling twice changes nothing but says so again.
    mirror_services.mirror_enable(room=room, topic=mirrored)
    assert broker(room) == b and SqsQueue.objects.count() == 1


def test_a_produced_record_reaches_the_fifo_queue_the_classic_queue_and_the_fanout(room, mirrored):
    produce(
        room,
        [
            RecordIn(key="alice", value="a1"),
            RecordIn(key="bob", value="b1"),
            RecordIn(key="alice", value="a2"),
            RecordIn(key=None, value="n1"),
        ],
    )
    fifo_row = SqsQueue.objects.get(room=room, name="orders.fifo")
    assert lanes(fifo_row) == {
        "alice": (False, [], ["a1", "a2"]),
        "bob": (False, [], ["b1"]),
        "(null-key)": (False, [], ["n1"]),
    }
    dedup_ids = [m.message_deduplication_id for m in state(fifo_row).messages]
    assert all(d.startswith("orders/") for d in dedup_ids) and len(set(dedup_ids)) == 4
    b = broker(room)
    # Competing consumers: one message each (prefetch 1), the rest waits.
    assert (unacked(room, "worker-1"), unacked(room, "worker-2")) == (["a1"], ["b1"])
    assert [m.body for m in classic.get_queue(b, "orders").ready] == ["a2", "n1"]
    # Pub/sub: every subscriber queue gets its own copy of everything.
    for name in ("orders.billing", "orders.analytics"):
        assert [m.body for m in classic.get_queue(b, name).ready] == ["a1", "b1", "a2", "n1"]
    keys = selectors.classic_board_load(ClassicBroker.objects.get(room=room))["keys"]
    assert sorted(set(keys.values())) == ["alice", "bob"]
    mirror_events = [e for e in events(room, "sqs.changed") if e["action"] == "mirror"]
    assert mirror_events[-1]["sent"] == 4 and mirror_events[-1]["skipped"] == []


def test_records_produce_mirrors_by_itself(room, mirrored):
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value="v")])
    assert [m.body for m in state(SqsQueue.objects.get(name="orders.fifo")).messages] == ["v"]


def test_keys_sqs_cannot_take_as_a_group_id_are_encoded_and_nothing_is_refused(room, mirrored):
    produce(
        room,
        [
            RecordIn(key="order 42", value=""),
            RecordIn(key="é" * 200, value=None),
            RecordIn(key="", value="bad\x01char"),
        ],
    )
    fifo_row = SqsQueue.objects.get(room=room, name="orders.fifo")
    groups = [m.message_group_id for m in state(fifo_row).messages]
    assert groups[0] == "order%2042"
    assert len(groups[1]) == 128 and "~" in groups[1]
    bodies_ = [m.body for m in state(fifo_row).messages]
    assert bodies_ == ["(empty value)", "(null value: a tombstone in Kafka)"]
    skipped = [e for e in events(room, "sqs.changed") if e["action"] == "mirror"][-1]["skipped"]
    assert [s["to"] for s in skipped] == ["orders.fifo"]
    assert "InvalidMessageContents" in skipped[0]["reason"]


def test_records_of_another_topic_or_after_disabling_are_not_mirrored(room, mirrored):
    topic_create(room=room, name="payments", partitions=1)
    result = mirror_services.queues_mirror_records(
        room=room,
        topic_name="payments",
        records=[{"key": "k", "value": "v", "partition": 0, "offset": 0}],
    )
    assert result.sent == 0
    mirror_services.mirror_disable(room=room)
    room.refresh_from_db()
    assert room.mirror_topic is None
    produce(room, [RecordIn(key="k", value="v")])
    assert state(SqsQueue.objects.get(name="orders.fifo")).messages == ()
    assert events(room, "sqs.changed")[-1]["action"] == "mirror_off"


def test_a_dotted_topic_gets_a_valid_fifo_queue_name(room):
    topic = topic_create(room=room, name="billing.events", partitions=2)
    names = mirror_services.mirror_enable(room=room, topic=topic)
    assert names["fifo"] == "billing-events.fifo"
    assert SqsQueue.objects.filter(name="billing-events.fifo").exists()
    assert names["classic"] == "billing.events"


def test_mirroring_reuses_a_fifo_queue_of_that_name_whatever_its_attributes(room):
    existing = fifo(room, name="orders.fifo")  # ContentBasedDeduplication=true
    topic = topic_create(room=room, name="orders", partitions=3)
    mirror_services.mirror_enable(room=room, topic=topic)
    assert list(SqsQueue.objects.filter(room=room)) == [existing]
    produce(room, [RecordIn(key="k", value="same"), RecordIn(key="k", value="same")])
    assert len(state(existing).messages) == 2  # deduplicated by place in the log, not body


def test_mirroring_another_topic_moves_the_workers(room, mirrored):
    other = topic_create(room=room, name="payments", partitions=1)
    mirror_services.mirror_enable(room=room, topic=other)
    assert {c.queue for c in broker(room).consumers} == {"payments"}
