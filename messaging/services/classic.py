"""A classic (RabbitMQ-style) broker in a room, decided by the engine.

`messaging.engine.classic` holds every rule (round-robin with prefetch, ack/nack, requeue,
default, direct and fanout exchanges). These functions load the broker from its row, ask the
engine, bound what a room may hold, store the result and record a numbered "classic.changed"
room event. `ClassicBroker.state` is `classic.broker_to_dict(broker)` plus "board" with the
Kafka key each mirrored message came from (the page colours it like the record it copies).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from messaging import events
from messaging.engine import classic
from messaging.errors import Conflict, Invalid, LogLabError, NotFound
from messaging.models import ClassicBroker, Room
from messaging.selectors import classic_board_load, classic_state_load
from messaging.services.events import event_record, room_lock
from messaging.services.text import (
    body_validate,
    name_validate,
    no_nul,
    optional_text,
    whole_number,
)

MAX_CLASSIC_QUEUES = 20
MAX_CLASSIC_EXCHANGES = 10
MAX_CLASSIC_CONSUMERS = 20
MAX_CLASSIC_BINDINGS = 50
MAX_CLASSIC_MESSAGES_PER_QUEUE = 1000
MAX_CLASSIC_NAME_CHARS = 120  # RabbitMQ allows 255 bytes; the board has less room
MAX_CONSUMER_TAG_CHARS = 64


# --- classic broker: loading and storing -----------------------------------------------------


def classic_broker_store(row: ClassicBroker, broker: classic.Broker, board: dict[str, Any]) -> None:
    present = {m.message_id for q in broker.queues for m in q.ready}
    present |= {d.message.message_id for c in broker.consumers for d in c.unacked}
    keys = {mid: key for mid, key in board.get("keys", {}).items() if mid in present}
    row.state = {**classic.broker_to_dict(broker), "board": {"keys": keys}}
    row.save(update_fields=["state"])


def classic_broker_row(room: Room) -> tuple[ClassicBroker, bool]:
    row, created = ClassicBroker.objects.get_or_create(room=room)
    if created:
        classic_broker_store(row, classic.new_broker(), {})
    return row, created


def _broker_error(error: classic.BrokerError) -> LogLabError:
    """An AMQP refusal as RabbitMQ words it ("NOT_FOUND - no queue 'x' in vhost '/'")."""
    text = str(error)
    if isinstance(error, classic.NotFound):
        return NotFound(text)
    if isinstance(error, classic.PreconditionFailed | classic.NotAllowed):
        return Conflict(text)
    return Invalid(text)


def classic_broker_bound(broker: classic.Broker) -> None:
    if len(broker.queues) > MAX_CLASSIC_QUEUES:
        raise Invalid(f"The broker holds at most {MAX_CLASSIC_QUEUES} queues here.")
    if len(broker.exchanges) > MAX_CLASSIC_EXCHANGES:
        raise Invalid(f"The broker holds at most {MAX_CLASSIC_EXCHANGES} exchanges here.")
    if len(broker.consumers) > MAX_CLASSIC_CONSUMERS:
        raise Invalid(f"The broker has at most {MAX_CLASSIC_CONSUMERS} consumers here.")
    if sum(len(e.bindings) for e in broker.exchanges) > MAX_CLASSIC_BINDINGS:
        raise Invalid(f"The broker holds at most {MAX_CLASSIC_BINDINGS} bindings here.")
    for queue in broker.queues:
        stats = classic.queue_stats(broker, queue.name)
        if stats.messages_ready + stats.messages_unacknowledged > MAX_CLASSIC_MESSAGES_PER_QUEUE:
            raise Invalid(
                f"Queue '{queue.name}' holds {MAX_CLASSIC_MESSAGES_PER_QUEUE} messages, the "
                "most LogLab keeps in one queue: consume and ack some first."
            )


def _name_validate(value: str, *, what: str, field: str, allow_empty: bool = False) -> str:
    value = name_validate((value or "").strip(), field=field, what=f"A {what} name")
    if not value and not allow_empty:
        raise Invalid(f"A {what} needs a name.", field=field)
    if len(value) > MAX_CLASSIC_NAME_CHARS:
        raise Invalid(
            f"A {what} name has at most {MAX_CLASSIC_NAME_CHARS} characters here.", field=field
        )
    return value


def classic_broker_apply(
    room: Room, action: str, payload: dict[str, Any], change
) -> tuple[classic.Broker, Any]:
    """Run one engine call on the room's broker (the caller holds the room lock), bound the
    result, store it and record the event. `change` maps a broker to (broker, outcome)."""
    row, _ = classic_broker_row(room)
    board = classic_board_load(row)
    try:
        broker, outcome = change(classic_state_load(row))
    except classic.BrokerError as error:
        raise _broker_error(error) from None
    classic_broker_bound(broker)
    classic_broker_store(row, broker, board)
    extra: dict[str, Any] = {}
    if isinstance(outcome, classic.Outcome):
        extra = {
            "deliveries": len(outcome.deliveries),
            "routed_to": list(outcome.routed_to),
            "requeued": len(outcome.requeued),
        }
    event_record(
        room=room, type=events.CLASSIC_CHANGED, payload={"action": action, **payload, **extra}
    )
    return broker, outcome


# --- classic broker: services ----------------------------------------------------------------


@transaction.atomic
def classic_broker_get_or_create(*, room: Room) -> ClassicBroker:
    room = room_lock(room=room)
    row, created = classic_broker_row(room)
    if created:
        event_record(room=room, type=events.CLASSIC_CHANGED, payload={"action": "create"})
    return row


@transaction.atomic
def classic_queue_declare(
    *, room: Room, name: str, dead_letter_exchange: str | None = None
) -> classic.Broker:
    """queue.declare (idempotent); `dead_letter_exchange` is x-dead-letter-exchange."""
    name = _name_validate(name, what="queue", field="name")
    dlx = optional_text(dead_letter_exchange)
    room = room_lock(room=room)
    broker, _ = classic_broker_apply(
        room,
        "queue.declare",
        {"queue": name},
        lambda b: (classic.declare_queue(b, name, dead_letter_exchange=dlx), None),
    )
    return broker


@transaction.atomic
def classic_exchange_declare(*, room: Room, name: str, exchange_type: str) -> classic.Broker:
    """exchange.declare: direct or fanout (idempotent when the type matches)."""
    name = _name_validate(name, what="exchange", field="name")
    exchange_type = (exchange_type or "").strip()
    room = room_lock(room=room)
    broker, _ = classic_broker_apply(
        room,
        "exchange.declare",
        {"exchange": name, "type": exchange_type},
        lambda b: (classic.declare_exchange(b, name, exchange_type), None),
    )
    return broker


@transaction.atomic
def classic_bind(*, room: Room, queue: str, exchange: str, routing_key: str = "") -> classic.Broker:
    """queue.bind: a fanout exchange ignores the key."""
    queue = _name_validate(queue, what="queue", field="queue")
    exchange = _name_validate(exchange, what="exchange", field="exchange", allow_empty=True)
    routing_key = _name_validate(
        routing_key, what="routing key", field="routing_key", allow_empty=True
    )
    room = room_lock(room=room)
    broker, _ = classic_broker_apply(
        room,
        "queue.bind",
        {"queue": queue, "exchange": exchange, "routing_key": routing_key},
        lambda b: (classic.bind_queue(b, queue, exchange, routing_key), None),
    )
    return broker


@transaction.atomic
def classic_publish(*, room: Room, exchange: str, routing_key: str, body: str) -> classic.Outcome:
    """basic.publish. The default exchange "" routes to the queue named by the routing key; a
    message no queue is bound for is lost (`routed_to` is empty)."""
    exchange = _name_validate(exchange, what="exchange", field="exchange", allow_empty=True)
    routing_key = _name_validate(
        routing_key, what="routing key", field="routing_key", allow_empty=True
    )
    body = body_validate(body)
    room = room_lock(room=room)
    _, outcome = classic_broker_apply(
        room,
        "publish",
        {"exchange": exchange, "routing_key": routing_key},
        lambda b: classic.publish(b, exchange, routing_key, body),
    )
    return outcome


@transaction.atomic
def classic_consume(
    *, room: Room, queue: str, consumer_tag: str, prefetch_count: object = 0
) -> classic.Outcome:
    """basic.qos + basic.consume: ready messages are pushed round-robin to the queue's
    consumers that have prefetch credit (0 = no limit)."""
    queue = _name_validate(queue, what="queue", field="queue")
    tag = name_validate((consumer_tag or "").strip(), field="consumer_tag", what="A consumer tag")
    if not tag:
        raise Invalid("A consumer needs a consumer tag (e.g. worker-3).", field="consumer_tag")
    if len(tag) > MAX_CONSUMER_TAG_CHARS:
        raise Invalid(
            f"A consumer tag has at most {MAX_CONSUMER_TAG_CHARS} characters.",
            field="consumer_tag",
        )
    prefetch = whole_number(prefetch_count, field="prefetch_count", aws_name="prefetch_count")
    room = room_lock(room=room)
    _, outcome = classic_broker_apply(
        room,
        "consume",
        {"queue": queue, "consumer": tag, "prefetch": prefetch},
        lambda b: classic.consume(b, queue, tag, prefetch_count=prefetch),
    )
    return outcome


@transaction.atomic
def classic_consume_and_ack(
    *, room: Room, queue: str, count: int = 1, consumer_prefix: str = "worker"
) -> classic.Outcome:
    """A short-lived consumer takes up to `count` ready messages and acks them: consumed for
    good, as a worker that processed them would leave them (nothing to replay)."""
    queue = _name_validate(queue, what="queue", field="queue")
    room = room_lock(room=room)
    broker = classic_state_load(getattr(room, "classic_broker", None))
    tag = f"{consumer_prefix}-{broker.counter + 1}"

    def consume_and_ack(broker: classic.Broker):
        # prefetch=count takes at most `count`; cancelling before the ack keeps the freed
        # credit from pulling more, and the close then has nothing to requeue.
        broker, outcome = classic.consume(broker, queue, tag, prefetch_count=count)
        mine = [d for d in outcome.deliveries if d.consumer_tag == tag]
        broker = classic.cancel(broker, tag, queue)
        if mine:
            broker, _ = classic.ack(broker, tag, mine[-1].delivery_tag, multiple=True)
        broker, _ = classic.close_channel(broker, tag)
        return broker, classic.Outcome(deliveries=tuple(mine))

    _, outcome = classic_broker_apply(
        room, "consume", {"queue": queue, "consumer": tag, "prefetch": count}, consume_and_ack
    )
    return outcome


@transaction.atomic
def classic_ack(
    *, room: Room, consumer_tag: str, delivery_tag: object, multiple: bool = False
) -> classic.Outcome:
    """basic.ack: the message is deleted; the freed prefetch slot may pull the next one."""
    tag = whole_number(delivery_tag, field="delivery_tag", aws_name="delivery_tag")
    consumer_tag = no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = classic_broker_apply(
        room,
        "ack",
        {"consumer": consumer_tag, "delivery_tag": tag},
        lambda b: classic.ack(b, consumer_tag, tag, multiple=multiple),
    )
    return outcome


@transaction.atomic
def classic_nack(
    *,
    room: Room,
    consumer_tag: str,
    delivery_tag: object,
    requeue: bool = True,
    multiple: bool = False,
) -> classic.Outcome:
    """basic.nack: requeued in place (flagged redelivered), or dropped / dead-lettered."""
    tag = whole_number(delivery_tag, field="delivery_tag", aws_name="delivery_tag")
    consumer_tag = no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = classic_broker_apply(
        room,
        "nack",
        {"consumer": consumer_tag, "delivery_tag": tag, "requeue": requeue},
        lambda b: classic.nack(b, consumer_tag, tag, requeue=requeue, multiple=multiple),
    )
    return outcome


@transaction.atomic
def classic_close(*, room: Room, consumer_tag: str) -> classic.Outcome:
    """The consumer's channel closes (it crashed): its unacked messages are requeued,
    flagged redelivered, and go to the remaining consumers."""
    consumer_tag = no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = classic_broker_apply(
        room,
        "close",
        {"consumer": consumer_tag},
        lambda b: classic.close_channel(b, consumer_tag),
    )
    return outcome
