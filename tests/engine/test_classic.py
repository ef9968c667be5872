"""A classic broker (RabbitMQ-style): each scenario is one fact a lesson teaches."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.engine import classic


def work_queue(*consumers: tuple[str, int]) -> classic.Broker:
    """A queue ``work`` with the given (consumer tag, prefetch) consumers."""
    broker = classic.declare_queue(classic.new_broker(), "work")
    for tag, prefetch in consumers:
        broker, _ = classic.consume(broker, "work", tag, prefetch_count=prefetch)
    return broker


def publish_many(broker: classic.Broker, *bodies: str) -> tuple[classic.Broker, list[str]]:
    """Publish through the default exchange; returns who got each message, in order."""
    receivers = []
    for body in bodies:
        broker, outcome = classic.publish(broker, "", "work", body)
        receivers += [f"{d.consumer_tag}:{d.message.body}" for d in outcome.deliveries]
    return broker, receivers


def held(broker: classic.Broker, tag: str) -> list[str]:
    return [d.message.body for d in classic.get_consumer(broker, tag).unacked]


def ready(broker: classic.Broker, queue: str = "work") -> list[str]:
    return [m.body for m in classic.get_queue(broker, queue).ready]


# --- competing consumers -------------------------------------------------------------------


def test_messages_are_dealt_round_robin_to_competing_consumers() -> None:
    broker = work_queue(("c1", 0), ("c2", 0))
    broker, receivers = publish_many(broker, "m1", "m2", "m3", "m4")
    assert receivers == ["c1:m1", "c2:m2", "c1:m3", "c2:m4"]


def test_prefetch_caps_the_unacked_messages_a_consumer_holds() -> None:
    broker = work_queue(("c1", 1), ("c2", 1))
    broker, receivers = publish_many(broker, "m1", "m2", "m3", "m4")
    assert receivers == ["c1:m1", "c2:m2"]
    assert ready(broker) == ["m3", "m4"]
    assert classic.queue_stats(broker, "work") == classic.QueueStats("work", 2, 2, 2)

    # Acking frees c1's slot, so the next message goes to c1 straight away.
    broker, outcome = classic.ack(broker, "c1", 1)
    assert [(d.consumer_tag, d.message.body) for d in outcome.deliveries] == [("c1", "m3")]


def test_without_prefetch_the_first_consumer_takes_the_whole_backlog() -> None:
    broker, _ = publish_many(work_queue(), "m1", "m2", "m3")
    broker, first = classic.consume(broker, "work", "early")
    broker, second = classic.consume(broker, "work", "late")
    assert [d.message.body for d in first.deliveries] == ["m1", "m2", "m3"]
    assert second.deliveries == ()  # why a fair dispatch needs prefetch_count=1


def test_a_cancelled_consumer_gets_no_more_pushes_and_keeps_what_it_holds() -> None:
    broker = work_queue(("c1", 1), ("c2", 1))
    broker, _ = publish_many(broker, "m1", "m2")
    broker = classic.cancel(broker, "c1", "work")
    # c1's ack frees its slot, but it is out of the ring now: m3 goes to c2 once c2 acks.
    broker, outcome = classic.ack(broker, "c1", 1)
    assert outcome.deliveries == ()
    broker, _ = publish_many(broker, "m3")
    broker, outcome = classic.ack(broker, "c2", 1)
    assert [(d.consumer_tag, d.message.body) for d in outcome.deliveries] == [("c2", "m3")]


def test_ack_deletes_the_message_so_there_is_nothing_to_replay() -> None:
    broker = work_queue(("c1", 0))
    broker, _ = publish_many(broker, "invoice-1")
    broker, _ = classic.ack(broker, "c1", 1)
    assert classic.queue_stats(broker, "work") == classic.QueueStats("work", 0, 0, 1)
    # A newcomer (think: a new service wanting history) finds nothing: unlike a Kafka log.
    broker, newcomer = classic.consume(broker, "work", "c2")
    assert newcomer.deliveries == ()
    with pytest.raises(classic.PreconditionFailed, match="unknown delivery tag 1") as error:
        classic.ack(broker, "c1", 1)  # acking twice
    assert error.value.reply_code == 406


def test_ack_multiple_settles_everything_up_to_the_tag() -> None:
    broker = work_queue(("c1", 0))
    broker, _ = publish_many(broker, "m1", "m2", "m3")
    broker, _ = classic.ack(broker, "c1", 2, multiple=True)
    assert held(broker, "c1") == ["m3"]
    assert broker.totals.acked == 2


# --- nack, reject, redelivery --------------------------------------------------------------


def test_nack_with_requeue_puts_the_message_back_in_place_flagged_redelivered() -> None:
    broker = work_queue(("c1", 1), ("c2", 1))
    broker, _ = publish_many(broker, "m1", "m2", "m3")
    broker, outcome = classic.nack(broker, "c1", 1, requeue=True)
    assert outcome.requeued == ("msg-1",)
    # Back at the head (its old place, ahead of m3), then straight to c1, the consumer
    # with a free slot.
    (again,) = outcome.deliveries
    assert (again.consumer_tag, again.message.body, again.message.redelivered) == (
        "c1",
        "m1",
        True,
    )
    assert again.delivery_tag == 2  # a new delivery, a new tag
    assert ready(broker) == ["m3"]


def test_a_requeued_message_waits_at_its_original_position() -> None:
    broker = work_queue(("c1", 1))
    broker, _ = publish_many(broker, "m1", "m2", "m3")
    broker = classic.declare_queue(broker, "work")  # redeclaring is harmless
    broker, _ = classic.close_channel(broker, "c1")
    assert ready(broker) == ["m1", "m2", "m3"]
    assert [m.redelivered for m in classic.get_queue(broker, "work").ready] == [
        True,
        False,
        False,
    ]


def test_reject_without_requeue_drops_the_message() -> None:
    broker = work_queue(("c1", 0))
    broker, _ = publish_many(broker, "bad")
    broker, outcome = classic.reject(broker, "c1", 1, requeue=False)
    assert outcome.discarded == ("msg-1",)
    assert classic.queue_stats(broker, "work") == classic.QueueStats("work", 0, 0, 1)


def test_reject_without_requeue_dead_letters_when_the_queue_has_a_dlx() -> None:
    broker = classic.new_broker()
    broker = classic.declare_exchange(broker, "dlx", "fanout")
    broker = classic.declare_queue(broker, "parking-lot")
    broker = classic.bind_queue(broker, "parking-lot", "dlx")
    broker = classic.declare_queue(broker, "work", dead_letter_exchange="dlx")
    broker, _ = classic.consume(broker, "work", "c1")
    broker, _ = classic.publish(broker, "", "work", "poison")
    broker, outcome = classic.nack(broker, "c1", 1, requeue=False)
    assert outcome.dead_lettered == ("msg-1",)
    (parked,) = classic.get_queue(broker, "parking-lot").ready
    assert parked.body == "poison"
    assert parked.deaths == (classic.Death("work", "rejected", "", "work"),)
    with pytest.raises(classic.PreconditionFailed, match="inequivalent arg"):
        classic.declare_queue(broker, "work")


def test_a_dead_consumer_s_unacked_messages_go_to_the_others() -> None:
    broker = work_queue(("c1", 2), ("c2", 2))
    broker, _ = publish_many(broker, "m1", "m2", "m3", "m4", "m5")
    assert held(broker, "c1") == ["m1", "m3"] and held(broker, "c2") == ["m2", "m4"]
    broker, _ = classic.ack(broker, "c2", 1)  # c2 finishes m2, takes m5
    broker, _ = classic.ack(broker, "c2", 2)  # and m4

    broker, outcome = classic.close_channel(broker, "c1")  # c1 crashes mid-work
    assert outcome.requeued == ("msg-1", "msg-3")
    assert [
        (d.consumer_tag, d.message.body, d.message.redelivered) for d in outcome.deliveries
    ] == [("c2", "m1", True)]
    assert held(broker, "c2") == ["m5", "m1"]
    assert ready(broker) == ["m3"]
    assert classic.queue_stats(broker, "work").consumers == 1


# --- exchanges -----------------------------------------------------------------------------


def test_a_fanout_exchange_gives_every_bound_queue_its_own_copy() -> None:
    broker = classic.declare_exchange(classic.new_broker(), "billing-events", "fanout")
    for service in ("invoices", "analytics", "emails"):
        broker = classic.declare_queue(broker, service)
        broker = classic.bind_queue(broker, service, "billing-events", "ignored-by-fanout")
    broker, _ = classic.consume(broker, "invoices", "inv-1")
    broker, outcome = classic.publish(broker, "billing-events", "", "paid #42")
    assert outcome.routed_to == ("invoices", "analytics", "emails")
    assert [d.consumer_tag for d in outcome.deliveries] == ["inv-1"]
    assert ready(broker, "analytics") == ready(broker, "emails") == ["paid #42"]
    # Acking one copy leaves the other queues' copies alone.
    broker, _ = classic.ack(broker, "inv-1", 1)
    assert ready(broker, "analytics") == ["paid #42"]


def test_a_direct_exchange_routes_by_routing_key_and_loses_the_unroutable() -> None:
    broker = classic.declare_exchange(classic.new_broker(), "logs", "direct")
    broker = classic.declare_queue(broker, "errors")
    broker = classic.declare_queue(broker, "everything")
    broker = classic.bind_queue(broker, "errors", "logs", "error")
    for key in ("error", "info"):
        broker = classic.bind_queue(broker, "everything", "logs", key)
    broker, error = classic.publish(broker, "logs", "error", "disk full")
    broker, info = classic.publish(broker, "logs", "info", "started")
    broker, debug = classic.publish(broker, "logs", "debug", "x=1")
    assert error.routed_to == ("errors", "everything")
    assert info.routed_to == ("everything",)
    assert debug.routed_to == ()  # nobody bound for "debug": the message is gone
    assert broker.totals.unroutable == 1


def test_broker_errors_carry_amqp_codes() -> None:
    broker = work_queue(("c1", 0))
    with pytest.raises(classic.NotFound, match="no queue 'nope'") as missing:
        classic.consume(broker, "nope", "c9")
    assert missing.value.code == "NOT_FOUND" and missing.value.reply_code == 404
    with pytest.raises(classic.NotFound, match="no exchange"):
        classic.publish(broker, "nowhere", "k", "x")
    with pytest.raises(classic.NotAllowed, match="reuse consumer tag"):
        classic.consume(broker, "work", "c1")
    with pytest.raises(classic.CommandInvalid):
        classic.consume(broker, "work", "c2", prefetch_count=-1)
    broker = classic.declare_exchange(broker, "x", "fanout")
    with pytest.raises(classic.PreconditionFailed, match="received 'direct' but current is"):
        classic.declare_exchange(broker, "x", "direct")
    with pytest.raises(classic.CommandNotImplemented):
        classic.declare_exchange(broker, "t", "topic")
    with pytest.raises(classic.AccessRefused):
        classic.bind_queue(broker, "work", "")
    assert isinstance(missing.value, ValueError)


def test_calls_return_new_values_and_state_is_json() -> None:
    before, _ = publish_many(work_queue(("c1", 1)), "m1", "m2")
    snapshot = asdict(before)
    after, outcome = classic.nack(before, "c1", 1, requeue=True)
    assert asdict(before) == snapshot and after != before
    json.dumps(asdict(after))
    json.dumps(asdict(outcome))


# --- properties ----------------------------------------------------------------------------

ROUTES = (("", "work"), ("jobs", "work"), ("jobs", "nobody"), ("fanout", ""))
QUEUES = ("work", "q1", "q2")

broker_operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(0, len(ROUTES) - 1), st.just(False)),
        st.tuples(st.just("publish"), st.integers(0, len(ROUTES) - 1), st.just(False)),
        st.tuples(st.just("consume"), st.integers(0, 8), st.integers(0, 3)),
        st.tuples(st.just("ack"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("nack"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("nack_drop"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("close"), st.integers(0, 20), st.just(False)),
    ),
    min_size=10,
    max_size=70,
)


def topology() -> classic.Broker:
    broker = classic.new_broker()
    broker = classic.declare_exchange(broker, "jobs", "direct")
    broker = classic.declare_exchange(broker, "fanout", "fanout")
    broker = classic.declare_exchange(broker, "dlx", "fanout")
    broker = classic.declare_queue(broker, "work", dead_letter_exchange="dlx")
    broker = classic.declare_queue(broker, "q1")
    broker = classic.declare_queue(broker, "q2")
    broker = classic.bind_queue(broker, "work", "jobs", "work")
    broker = classic.bind_queue(broker, "q1", "fanout")
    broker = classic.bind_queue(broker, "q2", "fanout")
    return classic.bind_queue(broker, "q2", "dlx")


def step(broker: classic.Broker, operation: tuple[str, int, object], serial: int) -> classic.Broker:
    name, pick, flag = operation
    if name == "publish":
        exchange, key = ROUTES[pick]
        return classic.publish(broker, exchange, key, f"body-{serial}")[0]
    if name == "consume":
        queue = QUEUES[pick % len(QUEUES)]
        assert isinstance(flag, int)
        return classic.consume(broker, queue, f"c{serial}", prefetch_count=flag)[0]
    if not broker.consumers:
        return broker
    consumer = broker.consumers[pick % len(broker.consumers)]
    if name == "close":
        return classic.close_channel(broker, consumer.consumer_tag)[0]
    if not consumer.unacked:
        return broker
    tag = consumer.unacked[pick % len(consumer.unacked)].delivery_tag
    if name == "ack":
        return classic.ack(broker, consumer.consumer_tag, tag, multiple=bool(flag))[0]
    requeue = name == "nack"
    return classic.nack(broker, consumer.consumer_tag, tag, requeue=requeue, multiple=bool(flag))[0]


def check_broker(broker: classic.Broker, acked_before: set[tuple[str, int]]) -> None:
    unacked_total = 0
    for queue in broker.queues:
        consumers = [c for c in broker.consumers if c.queue == queue.name]
        in_hand = [d.message.position for c in consumers for d in c.unacked]
        on_shelf = [m.position for m in queue.ready]
        # Each copy is in one place: ready, or with exactly one consumer.
        assert len(in_hand + on_shelf) == len(set(in_hand + on_shelf))
        assert on_shelf == sorted(on_shelf)
        # Nothing acked ever comes back.
        assert not {(queue.name, p) for p in in_hand + on_shelf} & acked_before
        # The broker never sits on a message a consumer of its queue could take.
        assert not (queue.ready and any(c.has_credit for c in consumers))
        assert sorted(queue.consumer_ring) == sorted(c.consumer_tag for c in consumers)
        unacked_total += len(in_hand)
    for consumer in broker.consumers:
        if consumer.prefetch_count:
            assert len(consumer.unacked) <= consumer.prefetch_count
        tags = [d.delivery_tag for d in consumer.unacked]
        assert tags == sorted(set(tags))
    totals = broker.totals
    ready_total = sum(len(q.ready) for q in broker.queues)
    assert totals.enqueued == (
        ready_total + unacked_total + totals.acked + totals.discarded + totals.dead_lettered
    )


def acked_copies(before: classic.Broker, after: classic.Broker) -> set[tuple[str, int]]:
    """The (queue, position) copies an ack removed between two states."""
    if after.totals.acked == before.totals.acked:
        return set()

    def holding(broker: classic.Broker) -> set[tuple[str, int]]:
        return {(d.queue, d.message.position) for c in broker.consumers for d in c.unacked}

    return holding(before) - holding(after)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=broker_operations)
def test_broker_promises_hold_under_random_traffic(ops: list[tuple[str, int, object]]) -> None:
    broker = topology()
    acked: set[tuple[str, int]] = set()
    for serial, operation in enumerate(ops):
        after = step(broker, operation, serial)
        acked |= acked_copies(broker, after)
        check_broker(after, acked)
        broker = after
    replay = topology()
    for serial, operation in enumerate(ops):
        replay = step(replay, operation, serial)
    assert replay == broker


# --- serialisation -------------------------------------------------------------------------


def json_round_trip(broker: classic.Broker) -> classic.Broker:
    return classic.broker_from_dict(json.loads(json.dumps(classic.broker_to_dict(broker))))


def test_a_broker_survives_a_json_round_trip() -> None:
    broker, _ = publish_many(work_queue(("c1", 1), ("c2", 0)), "m1", "m2", "m3")
    broker = topology_with(broker)
    broker, _ = classic.nack(broker, "c1", 1, requeue=True)
    broker, _ = classic.publish(broker, "fanout", "", "copy")
    assert json_round_trip(broker) == broker
    data = classic.broker_to_dict(broker)
    assert json.loads(json.dumps(data)) == data
    assert classic.broker_from_dict({**data, "board": {"keys": {}}}) == broker
    assert json_round_trip(classic.new_broker()) == classic.new_broker()


def topology_with(broker: classic.Broker) -> classic.Broker:
    broker = classic.declare_exchange(broker, "fanout", "fanout")
    broker = classic.declare_exchange(broker, "dlx", "fanout")
    broker = classic.declare_queue(broker, "q1", dead_letter_exchange="dlx")
    broker = classic.declare_queue(broker, "q2")
    broker = classic.bind_queue(broker, "q1", "fanout")
    broker = classic.bind_queue(broker, "q2", "fanout")
    broker = classic.bind_queue(broker, "q2", "dlx")
    broker, _ = classic.consume(broker, "q1", "d1", prefetch_count=1)
    broker, _ = classic.publish(broker, "fanout", "", "x")
    broker, _ = classic.reject(broker, "d1", 1, requeue=False)  # dead-lettered: an x-death
    assert any(m.deaths for q in broker.queues for m in q.ready)
    return broker


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=broker_operations)
def test_any_broker_the_engine_makes_survives_a_json_round_trip(
    ops: list[tuple[str, int, object]],
) -> None:
    broker = topology()
    for serial, operation in enumerate(ops):
        broker = step(broker, operation, serial)
        restored = json_round_trip(broker)
        assert restored == broker
        broker = restored
