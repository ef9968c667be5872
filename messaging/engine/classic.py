"""A classic broker (RabbitMQ-style AMQP 0-9-1) as pure functions over frozen state.

What is reproduced, with RabbitMQ's names:

- Competing consumers on a queue: the broker pushes each ready message to the next consumer of
  the queue in turn (round-robin), skipping consumers that already hold ``prefetch_count``
  unacknowledged messages (``basic.qos``; 0 means no limit).
- ``basic.ack`` deletes the message: there is nothing left to replay.
- ``basic.nack`` / ``basic.reject`` with ``requeue=True`` put the message back at its original
  position, flagged ``redelivered``; with ``requeue=False`` it is dropped, or dead-lettered
  through the queue's ``x-dead-letter-exchange`` (reason ``rejected``, recorded in ``x-death``).
- A consumer whose channel closes (it crashed, or the connection dropped) gives its unacked
  messages back: they are requeued and flagged ``redelivered``.
- Exchanges: the default exchange ``""`` (routing key = queue name), ``direct`` (binding key
  equals routing key) and ``fanout`` (a copy to every bound queue: pub/sub). A message no queue
  is bound for is lost, as with ``mandatory=false``.

Simplifications: one consumer per channel, so delivery tags count per consumer; no topic or
headers exchanges, TTLs, priorities, queue length limits or publisher confirms. RabbitMQ
streams (3.9+), append-only and replayable like a Kafka log, are a different queue type and are
not modelled here.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import ClassVar, Final, TypeVar

DEFAULT_EXCHANGE: Final = ""
EXCHANGE_TYPES: Final = ("direct", "fanout")
MAX_PREFETCH_COUNT: Final = 65_535  # prefetch-count is an AMQP short
VHOST: Final = "/"


# --- errors -------------------------------------------------------------------------------


class BrokerError(ValueError):
    """An AMQP channel or connection error: ``code`` is the reply-text constant RabbitMQ puts
    in front of its message, ``reply_code`` the AMQP reply code."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    reply_code: ClassVar[int] = 541

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code} - {message}")
        self.message = message


class NotFound(BrokerError):
    code = "NOT_FOUND"
    reply_code = 404


class PreconditionFailed(BrokerError):
    code = "PRECONDITION_FAILED"
    reply_code = 406


class AccessRefused(BrokerError):
    code = "ACCESS_REFUSED"
    reply_code = 403


class NotAllowed(BrokerError):
    code = "NOT_ALLOWED"
    reply_code = 530


class CommandInvalid(BrokerError):
    code = "COMMAND_INVALID"
    reply_code = 503


class CommandNotImplemented(BrokerError):
    code = "NOT_IMPLEMENTED"
    reply_code = 540


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Death:
    """One ``x-death`` entry: why and from where a message was dead-lettered."""

    queue: str
    reason: str
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class BrokerMessage:
    """A message sitting in one queue. Each queue a message is routed to holds its own copy;
    ``position`` is the copy's place in that queue, which a requeue gives back."""

    message_id: str
    body: str
    exchange: str
    routing_key: str
    position: int
    redelivered: bool = False
    deaths: tuple[Death, ...] = ()


@dataclass(frozen=True)
class Binding:
    queue: str
    routing_key: str = ""


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True)
class BrokerQueue:
    name: str
    ready: tuple[BrokerMessage, ...] = ()
    next_position: int = 1
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    # The queue's consumers, next to be served first; a consumer goes to the back once served.
    consumer_ring: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delivery:
    consumer_tag: str
    delivery_tag: int
    queue: str
    message: BrokerMessage


@dataclass(frozen=True)
class Consumer:
    consumer_tag: str
    queue: str
    prefetch_count: int = 0
    unacked: tuple[Delivery, ...] = ()
    next_delivery_tag: int = 1

    @property
    def has_credit(self) -> bool:
        return self.prefetch_count == 0 or len(self.unacked) < self.prefetch_count


@dataclass(frozen=True)
class BrokerTotals:
    """Running counts; ``enqueued == ready + unacked + acked + discarded + dead_lettered``
    always holds, which is how the tests see that nothing is lost."""

    published: int = 0
    unroutable: int = 0
    enqueued: int = 0
    delivered: int = 0
    acked: int = 0
    requeued: int = 0
    discarded: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class Broker:
    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[BrokerQueue, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    counter: int = 0
    totals: BrokerTotals = BrokerTotals()


@dataclass(frozen=True)
class Outcome:
    """What one call caused: the pushes to consumers it triggered and where messages went."""

    deliveries: tuple[Delivery, ...] = ()
    message_id: str | None = None
    routed_to: tuple[str, ...] = ()
    requeued: tuple[str, ...] = ()
    dead_lettered: tuple[str, ...] = ()
    discarded: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueStats:
    """The numbers RabbitMQ's management UI shows for a queue."""

    name: str
    messages_ready: int
    messages_unacknowledged: int
    consumers: int


# --- topology -----------------------------------------------------------------------------


def new_broker() -> Broker:
    return Broker()


def declare_exchange(broker: Broker, name: str, exchange_type: str) -> Broker:
    """``exchange.declare``: idempotent when the type matches."""
    if name == DEFAULT_EXCHANGE or name.startswith("amq."):
        raise AccessRefused(f"exchange name '{name}' is reserved in vhost '{VHOST}'")
    if exchange_type not in EXCHANGE_TYPES:
        raise CommandNotImplemented(
            f"exchange type '{exchange_type}' is not modelled here (only "
            + ", ".join(EXCHANGE_TYPES)
            + ")"
        )
    existing = _find_exchange(broker, name)
    if existing is not None:
        if existing.type != exchange_type:
            raise PreconditionFailed(
                f"inequivalent arg 'type' for exchange '{name}' in vhost '{VHOST}': "
                f"received '{exchange_type}' but current is '{existing.type}'"
            )
        return broker
    return replace(broker, exchanges=(*broker.exchanges, Exchange(name, exchange_type)))


def declare_queue(
    broker: Broker,
    name: str,
    *,
    dead_letter_exchange: str | None = None,
    dead_letter_routing_key: str | None = None,
) -> Broker:
    """``queue.declare``; the dead-letter settings are the ``x-dead-letter-*`` arguments."""
    if not name or name.startswith("amq."):
        raise AccessRefused(f"queue name '{name}' is reserved in vhost '{VHOST}'")
    existing = _find_queue(broker, name)
    if existing is None:
        queue = BrokerQueue(
            name=name,
            dead_letter_exchange=dead_letter_exchange,
            dead_letter_routing_key=dead_letter_routing_key,
        )
        return replace(broker, queues=(*broker.queues, queue))
    _check_equivalent(
        name, "x-dead-letter-exchange", dead_letter_exchange, existing.dead_letter_exchange
    )
    _check_equivalent(
        name, "x-dead-letter-routing-key", dead_letter_routing_key, existing.dead_letter_routing_key
    )
    return broker


def _check_equivalent(queue: str, argument: str, received: str | None, current: str | None) -> None:
    if received != current:
        raise PreconditionFailed(
            f"inequivalent arg '{argument}' for queue '{queue}' in vhost '{VHOST}': "
            f"received {_show(received)} but current is {_show(current)}"
        )


def _show(value: str | None) -> str:
    return "none" if value is None else f"'{value}'"


def bind_queue(broker: Broker, queue: str, exchange: str, routing_key: str = "") -> Broker:
    """``queue.bind``. A fanout exchange ignores the key; binding twice changes nothing."""
    if exchange == DEFAULT_EXCHANGE:
        raise AccessRefused(f"operation not permitted on the default exchange in vhost '{VHOST}'")
    target = _require_exchange(broker, exchange)
    _require_queue(broker, queue)
    binding = Binding(queue, routing_key)
    if binding in target.bindings:
        return broker
    updated = replace(target, bindings=(*target.bindings, binding))
    return replace(broker, exchanges=_replace_named(broker.exchanges, updated))


# --- publishing and consuming -------------------------------------------------------------


def publish(broker: Broker, exchange: str, routing_key: str, body: str) -> tuple[Broker, Outcome]:
    """``basic.publish``: copy the message into every queue the exchange routes it to, then
    push what can be pushed. ``routed_to`` empty means the message was lost."""
    targets = _route(broker, exchange, routing_key)
    number = broker.counter + 1
    message_id = f"msg-{number}"
    totals = replace(
        broker.totals,
        published=broker.totals.published + 1,
        unroutable=broker.totals.unroutable + (0 if targets else 1),
    )
    broker = replace(broker, counter=number, totals=totals)
    for queue_name in targets:
        broker = _enqueue(broker, queue_name, message_id, body, exchange, routing_key, ())
    broker, deliveries = _dispatch(broker)
    return broker, Outcome(deliveries=deliveries, message_id=message_id, routed_to=targets)


def consume(
    broker: Broker, queue: str, consumer_tag: str, *, prefetch_count: int = 0
) -> tuple[Broker, Outcome]:
    """``basic.qos`` + ``basic.consume``. With no prefetch limit the first consumer of a busy
    queue is handed everything that is ready."""
    target = _require_queue(broker, queue)
    if not 0 <= prefetch_count <= MAX_PREFETCH_COUNT:
        raise CommandInvalid(
            f"prefetch_count must be between 0 and {MAX_PREFETCH_COUNT}, got {prefetch_count}"
        )
    if _find_consumer(broker, consumer_tag) is not None:
        raise NotAllowed(f"attempt to reuse consumer tag '{consumer_tag}'")
    consumer = Consumer(consumer_tag, queue, prefetch_count)
    ringed = replace(target, consumer_ring=(*target.consumer_ring, consumer_tag))
    broker = replace(
        broker,
        consumers=(*broker.consumers, consumer),
        queues=_replace_named(broker.queues, ringed),
    )
    broker, deliveries = _dispatch(broker)
    return broker, Outcome(deliveries=deliveries)


def ack(
    broker: Broker, consumer_tag: str, delivery_tag: int, *, multiple: bool = False
) -> tuple[Broker, Outcome]:
    """``basic.ack``: the message is deleted for good. The freed prefetch slot may pull the
    next message."""
    consumer, settled = _take_unacked(broker, consumer_tag, delivery_tag, multiple)
    broker = _replace_consumer(broker, consumer)
    totals = replace(broker.totals, acked=broker.totals.acked + len(settled))
    broker, deliveries = _dispatch(replace(broker, totals=totals))
    return broker, Outcome(deliveries=deliveries)


def nack(
    broker: Broker,
    consumer_tag: str,
    delivery_tag: int,
    *,
    requeue: bool = True,
    multiple: bool = False,
) -> tuple[Broker, Outcome]:
    """``basic.nack``: requeue (back in place, ``redelivered``) or drop / dead-letter."""
    consumer, settled = _take_unacked(broker, consumer_tag, delivery_tag, multiple)
    broker = _replace_consumer(broker, consumer)
    if requeue:
        broker = _requeue(broker, settled)
        broker, deliveries = _dispatch(broker)
        ids = tuple(delivery.message.message_id for delivery in settled)
        return broker, Outcome(deliveries=deliveries, requeued=ids)
    broker, dead, discarded = _reject_for_good(broker, settled)
    broker, deliveries = _dispatch(broker)
    return broker, Outcome(deliveries=deliveries, dead_lettered=dead, discarded=discarded)


def reject(
    broker: Broker, consumer_tag: str, delivery_tag: int, *, requeue: bool = True
) -> tuple[Broker, Outcome]:
    """``basic.reject``: ``basic.nack`` for a single message."""
    return nack(broker, consumer_tag, delivery_tag, requeue=requeue, multiple=False)


def cancel(broker: Broker, consumer_tag: str, queue: str) -> Broker:
    """``basic.cancel``: the consumer gets no more pushes; what it holds stays unacked."""
    target = get_queue(broker, queue)
    ring = tuple(tag for tag in target.consumer_ring if tag != consumer_tag)
    queues = tuple(replace(q, consumer_ring=ring) if q.name == queue else q for q in broker.queues)
    return replace(broker, queues=queues)


def close_channel(broker: Broker, consumer_tag: str) -> tuple[Broker, Outcome]:
    """The consumer's channel closes (crash, lost connection): its unacked messages go back
    to the queue flagged ``redelivered``, and on to the remaining consumers."""
    consumer = _require_consumer(broker, consumer_tag)
    queue = _require_queue(broker, consumer.queue)
    ring = tuple(tag for tag in queue.consumer_ring if tag != consumer_tag)
    broker = replace(
        broker,
        consumers=tuple(c for c in broker.consumers if c.consumer_tag != consumer_tag),
        queues=_replace_named(broker.queues, replace(queue, consumer_ring=ring)),
    )
    broker = _requeue(broker, consumer.unacked)
    broker, deliveries = _dispatch(broker)
    ids = tuple(delivery.message.message_id for delivery in consumer.unacked)
    return broker, Outcome(deliveries=deliveries, requeued=ids)


# --- views --------------------------------------------------------------------------------


def queue_stats(broker: Broker, queue: str) -> QueueStats:
    target = _require_queue(broker, queue)
    consumers = [c for c in broker.consumers if c.queue == queue]
    return QueueStats(
        name=queue,
        messages_ready=len(target.ready),
        messages_unacknowledged=sum(len(c.unacked) for c in consumers),
        consumers=len(consumers),
    )


def get_queue(broker: Broker, name: str) -> BrokerQueue:
    return _require_queue(broker, name)


def get_consumer(broker: Broker, consumer_tag: str) -> Consumer:
    return _require_consumer(broker, consumer_tag)


# --- routing ------------------------------------------------------------------------------


def _route(broker: Broker, exchange: str, routing_key: str) -> tuple[str, ...]:
    if exchange == DEFAULT_EXCHANGE:
        return (routing_key,) if _find_queue(broker, routing_key) is not None else ()
    target = _require_exchange(broker, exchange)
    matches = (
        binding.queue
        for binding in target.bindings
        if target.type == "fanout" or binding.routing_key == routing_key
    )
    # A queue bound twice (two keys that both match) still gets one copy.
    return tuple(dict.fromkeys(matches))


def _enqueue(
    broker: Broker,
    queue_name: str,
    message_id: str,
    body: str,
    exchange: str,
    routing_key: str,
    deaths: tuple[Death, ...],
) -> Broker:
    queue = _require_queue(broker, queue_name)
    message = BrokerMessage(
        message_id=message_id,
        body=body,
        exchange=exchange,
        routing_key=routing_key,
        position=queue.next_position,
        deaths=deaths,
    )
    updated = replace(queue, ready=(*queue.ready, message), next_position=queue.next_position + 1)
    totals = replace(broker.totals, enqueued=broker.totals.enqueued + 1)
    return replace(broker, queues=_replace_named(broker.queues, updated), totals=totals)


def _requeue(broker: Broker, deliveries: tuple[Delivery, ...]) -> Broker:
    """Back to the original position; RabbitMQ does this when it can, and here it always can
    because positions are never reused."""
    for delivery in deliveries:
        queue = _require_queue(broker, delivery.queue)
        message = replace(delivery.message, redelivered=True)
        ready = list(queue.ready)
        index = bisect.bisect_left([m.position for m in ready], message.position)
        ready.insert(index, message)
        broker = replace(
            broker, queues=_replace_named(broker.queues, replace(queue, ready=tuple(ready)))
        )
    totals = replace(broker.totals, requeued=broker.totals.requeued + len(deliveries))
    return replace(broker, totals=totals)


def _reject_for_good(
    broker: Broker, deliveries: tuple[Delivery, ...]
) -> tuple[Broker, tuple[str, ...], tuple[str, ...]]:
    dead: list[str] = []
    discarded: list[str] = []
    for delivery in deliveries:
        broker, routed = _dead_letter(broker, delivery)
        (dead if routed else discarded).append(delivery.message.message_id)
    totals = replace(
        broker.totals,
        dead_lettered=broker.totals.dead_lettered + len(dead),
        discarded=broker.totals.discarded + len(discarded),
    )
    return replace(broker, totals=totals), tuple(dead), tuple(discarded)


def _dead_letter(broker: Broker, delivery: Delivery) -> tuple[Broker, bool]:
    """Republish through the queue's dead-letter exchange. With no such exchange, or nothing
    bound for the key, RabbitMQ drops the message without a word."""
    queue = _require_queue(broker, delivery.queue)
    exchange = queue.dead_letter_exchange
    if exchange is None or (exchange and _find_exchange(broker, exchange) is None):
        return broker, False
    message = delivery.message
    key = queue.dead_letter_routing_key or message.routing_key
    targets = _route(broker, exchange, key)
    death = Death(queue.name, "rejected", message.exchange, message.routing_key)
    for target in targets:
        deaths = (death, *message.deaths)
        broker = _enqueue(broker, target, message.message_id, message.body, exchange, key, deaths)
    return broker, bool(targets)


# --- dispatch -----------------------------------------------------------------------------


def _dispatch(broker: Broker) -> tuple[Broker, tuple[Delivery, ...]]:
    """Push ready messages, head first, to the queues' consumers in turn while any of them
    has prefetch credit."""
    pushed: list[Delivery] = []
    for name in [queue.name for queue in broker.queues]:
        while True:
            queue = _require_queue(broker, name)
            consumer = _next_with_credit(broker, queue)
            if not queue.ready or consumer is None:
                break
            broker, delivery = _push(broker, queue, consumer)
            pushed.append(delivery)
    return broker, tuple(pushed)


def _next_with_credit(broker: Broker, queue: BrokerQueue) -> Consumer | None:
    for tag in queue.consumer_ring:
        consumer = _require_consumer(broker, tag)
        if consumer.has_credit:
            return consumer
    return None


def _push(broker: Broker, queue: BrokerQueue, consumer: Consumer) -> tuple[Broker, Delivery]:
    message, *rest = queue.ready
    delivery = Delivery(consumer.consumer_tag, consumer.next_delivery_tag, queue.name, message)
    served = replace(
        consumer,
        unacked=(*consumer.unacked, delivery),
        next_delivery_tag=consumer.next_delivery_tag + 1,
    )
    ring = tuple(tag for tag in queue.consumer_ring if tag != consumer.consumer_tag)
    updated = replace(queue, ready=tuple(rest), consumer_ring=(*ring, consumer.consumer_tag))
    totals = replace(broker.totals, delivered=broker.totals.delivered + 1)
    broker = replace(
        _replace_consumer(broker, served),
        queues=_replace_named(broker.queues, updated),
        totals=totals,
    )
    return broker, delivery


def _take_unacked(
    broker: Broker, consumer_tag: str, delivery_tag: int, multiple: bool
) -> tuple[Consumer, tuple[Delivery, ...]]:
    """Split a consumer's unacked deliveries into kept and settled, as ack/nack see them."""
    consumer = _require_consumer(broker, consumer_tag)
    if all(d.delivery_tag != delivery_tag for d in consumer.unacked):
        # RabbitMQ closes the channel for this; the caller decides what to do with that.
        raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
    if multiple:
        settled = tuple(d for d in consumer.unacked if d.delivery_tag <= delivery_tag)
    else:
        settled = tuple(d for d in consumer.unacked if d.delivery_tag == delivery_tag)
    kept = tuple(d for d in consumer.unacked if d not in settled)
    return replace(consumer, unacked=kept), settled


_Named = TypeVar("_Named", "Exchange", "BrokerQueue")


# --- lookups ------------------------------------------------------------------------------


def _find_exchange(broker: Broker, name: str) -> Exchange | None:
    return next((e for e in broker.exchanges if e.name == name), None)


def _find_queue(broker: Broker, name: str) -> BrokerQueue | None:
    return next((q for q in broker.queues if q.name == name), None)


def _find_consumer(broker: Broker, tag: str) -> Consumer | None:
    return next((c for c in broker.consumers if c.consumer_tag == tag), None)


def _require_exchange(broker: Broker, name: str) -> Exchange:
    found = _find_exchange(broker, name)
    if found is None:
        raise NotFound(f"no exchange '{name}' in vhost '{VHOST}'")
    return found


def _require_queue(broker: Broker, name: str) -> BrokerQueue:
    found = _find_queue(broker, name)
    if found is None:
        raise NotFound(f"no queue '{name}' in vhost '{VHOST}'")
    return found


def _require_consumer(broker: Broker, tag: str) -> Consumer:
    found = _find_consumer(broker, tag)
    if found is None:
        raise NotFound(f"no consumer '{tag}'")
    return found


def _replace_named(items: tuple[_Named, ...], updated: _Named) -> tuple[_Named, ...]:
    return tuple(updated if item.name == updated.name else item for item in items)


def _replace_consumer(broker: Broker, updated: Consumer) -> Broker:
    consumers = tuple(
        updated if c.consumer_tag == updated.consumer_tag else c for c in broker.consumers
    )
    return replace(broker, consumers=consumers)


# --- serialisation ------------------------------------------------------------------------


def broker_to_dict(broker: Broker) -> dict:
    """The broker as plain JSON data (dicts, lists, strings, ints, bools and None)."""
    return _jsonable(asdict(broker))


def broker_from_dict(data: Mapping[str, object]) -> Broker:
    """The broker :func:`broker_to_dict` wrote, equal to the original. Keys it does not know
    are ignored, so a caller may keep its own notes next to the broker's fields."""
    d: dict = dict(data)
    return Broker(
        exchanges=tuple(
            Exchange(
                name=e["name"],
                type=e["type"],
                bindings=tuple(Binding(**b) for b in e["bindings"]),
            )
            for e in d["exchanges"]
        ),
        queues=tuple(
            BrokerQueue(
                name=q["name"],
                ready=tuple(_message_from_dict(m) for m in q["ready"]),
                next_position=q["next_position"],
                dead_letter_exchange=q["dead_letter_exchange"],
                dead_letter_routing_key=q["dead_letter_routing_key"],
                consumer_ring=tuple(q["consumer_ring"]),
            )
            for q in d["queues"]
        ),
        consumers=tuple(
            Consumer(
                consumer_tag=c["consumer_tag"],
                queue=c["queue"],
                prefetch_count=c["prefetch_count"],
                unacked=tuple(
                    Delivery(
                        consumer_tag=u["consumer_tag"],
                        delivery_tag=u["delivery_tag"],
                        queue=u["queue"],
                        message=_message_from_dict(u["message"]),
                    )
                    for u in c["unacked"]
                ),
                next_delivery_tag=c["next_delivery_tag"],
            )
            for c in d["consumers"]
        ),
        counter=d["counter"],
        totals=BrokerTotals(**d["totals"]),
    )


def _message_from_dict(m: Mapping) -> BrokerMessage:
    fields = dict(m)
    fields["deaths"] = tuple(Death(**death) for death in m["deaths"])
    return BrokerMessage(**fields)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
