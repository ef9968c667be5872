"""SQS queues and a classic (RabbitMQ-style) broker in a room, decided by the engine.

`messaging.engine.sqs` and `messaging.engine.classic` hold every rule (message groups,
visibility, deduplication, round-robin with prefetch, ack/nack, fanout). These functions load
the engine's state from its row, ask the engine, bound what a room may hold, store the result
and record a numbered room event ("sqs.changed" or "classic.changed") for the page to redraw.

Stored shape: `SqsQueue.state` is `sqs.queue_to_dict(queue)` plus one key of LogLab's own,
"board", with what the page shows that SQS itself does not keep: which simulated consumer
holds each in-flight message, the last few duplicates that were dropped, and `due_ms`, the
simulated time of the next thing that time alone will change (a visibility timeout, a delay,
retention), so that `sqs_tick` finds the queues to advance with one query.
`ClassicBroker.state` is `classic.broker_to_dict(broker)` plus "board" with the Kafka key each
mirrored message came from (the page colours it like the record it copies).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import transaction

from messaging.engine import classic, sqs
from messaging.errors import Conflict, Invalid, LogLabError, NotFound
from messaging.models import ClassicBroker, Room, SqsQueue, Topic
from messaging.services.events import event_record, room_lock

# LogLab's bounds: what one room may hold. SQS's own limits are the engine's.
MAX_QUEUES_PER_ROOM = 10
MAX_MESSAGES_PER_QUEUE = 1000
# Bodies are bounded like Kafka values on the board (SQS's own MaximumMessageSize, up to
# 1 MiB, is still checked by the engine).
MAX_BODY_BYTES = settings.LOGLAB_MAX_VALUE_BYTES
# The deduplication ids one queue remembers within its 5 minute interval.
MAX_DEDUPLICATION_IDS = 2000
MAX_CONSUMER_LABEL_CHARS = 40
MAX_RECEIPT_HANDLE_CHARS = 1024
MAX_ATTRIBUTES = 20
MAX_ATTRIBUTE_CHARS = 4096
DUPLICATES_SHOWN = 5
BODY_PREVIEW_CHARS = 80

MAX_CLASSIC_QUEUES = 20
MAX_CLASSIC_EXCHANGES = 10
MAX_CLASSIC_CONSUMERS = 20
MAX_CLASSIC_BINDINGS = 50
MAX_CLASSIC_MESSAGES_PER_QUEUE = 1000
MAX_CLASSIC_NAME_CHARS = 120  # RabbitMQ allows 255 bytes; the board has less room
MAX_CONSUMER_TAG_CHARS = 64

# Side-by-side mode: the records of a null key have no MessageGroupId of their own.
NULL_KEY_GROUP = "(null-key)"
EMPTY_KEY_GROUP = "(empty-key)"
MIRROR_WORKERS = ("worker-1", "worker-2")
MIRROR_PREFETCH = 1
MIRROR_SUBSCRIBERS = ("billing", "analytics")


# --- SQS: loading and storing ---------------------------------------------------------------


def sqs_state_load(row: SqsQueue) -> sqs.Queue:
    """The engine's queue kept in a row."""
    return sqs.queue_from_dict(row.state)


def sqs_board_load(row: SqsQueue) -> dict[str, Any]:
    board = dict(row.state.get("board") or {})
    board.setdefault("holders", {})
    board.setdefault("duplicates", [])
    return board


def _due_ms(queue: sqs.Queue) -> int | None:
    """When time alone next changes the queue: a message comes back from flight, a delay ends,
    or the oldest message reaches MessageRetentionPeriod. None when the queue is empty."""
    if not queue.messages:
        return None
    retention_ms = queue.attributes.message_retention_period * sqs.MS_PER_SECOND
    moments = [min(m.enqueued_ms for m in queue.messages) + retention_ms]
    for message in queue.messages:
        if message.in_flight_until_ms is not None:
            moments.append(message.in_flight_until_ms)
        elif message.visible_at_ms > queue.clock_ms:
            moments.append(message.visible_at_ms)
    return min(moments)


def _sqs_store(row: SqsQueue, queue: sqs.Queue, board: dict[str, Any]) -> None:
    flying = {m.message_id: m.receipt_handle for m in queue.messages if m.in_flight}
    holders = {
        message_id: holder
        for message_id, holder in board.get("holders", {}).items()
        if flying.get(message_id) == holder.get("handle")
    }
    board = {
        "holders": holders,
        "duplicates": board.get("duplicates", [])[-DUPLICATES_SHOWN:],
        "due_ms": _due_ms(queue),
    }
    row.state = {**sqs.queue_to_dict(queue), "board": board}
    if row.pk is None:
        row.save()
    else:
        row.save(update_fields=["state"])


def _sqs_changed(
    room: Room, row: SqsQueue, queue: sqs.Queue, board: dict[str, Any], action: str, **details
) -> None:
    """Store the queue and tell the room's pages what happened: how every SQS action ends."""
    _sqs_store(row, queue, board)
    event_record(
        room=room, type="sqs.changed", payload={"queue": row.name, "action": action, **details}
    )


def _sqs_error(action: str, error: sqs.SqsError) -> LogLabError:
    """An engine refusal as the page shows it: boto3's wording, AWS's message."""
    if isinstance(error, sqs.TimeWentBackwards):
        return Conflict(f"The room's clock is behind this queue's: {error.message}")
    return Invalid(f"{action} failed ({error.code}): {error.message}")


def _locked_queue(queue: SqsQueue) -> tuple[Room, SqsQueue]:
    room = room_lock(room=queue.room_id)
    try:
        return room, SqsQueue.objects.get(pk=queue.pk)
    except SqsQueue.DoesNotExist:
        raise NotFound("The specified queue does not exist (QueueDoesNotExist).") from None


def _preview(body: str) -> str:
    return body if len(body) <= BODY_PREVIEW_CHARS else body[:BODY_PREVIEW_CHARS] + "…"


def _no_nul(value: str, *, field: str) -> str:
    """PostgreSQL cannot store a NUL character, in text or in JSON."""
    if "\x00" in value:
        raise Invalid("LogLab cannot store the NUL character (\\0).", field=field)
    return value


def _body_validate(body: object) -> str:
    if not isinstance(body, str):
        raise Invalid("A message body is text.", field="body")
    _no_nul(body, field="body")
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise Invalid(
            f"A message body is at most {MAX_BODY_BYTES // 1024} KB here (this one is {size} "
            "bytes); SQS itself accepts up to the queue's MaximumMessageSize.",
            field="body",
        )
    return body


def _optional_id(value: str | None) -> str | None:
    """An empty form field means the parameter was not sent."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _whole_number(value: object, *, field: str, aws_name: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{aws_name} is a whole number.", field=field)
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid(f"{aws_name} is a whole number.", field=field) from None


def _attributes_validate(attributes: Mapping[str, object] | None) -> dict[str, str]:
    given = dict(attributes or {})
    if len(given) > MAX_ATTRIBUTES:
        raise Invalid(f"At most {MAX_ATTRIBUTES} queue attributes.", field="attributes")
    checked: dict[str, str] = {}
    for name, value in given.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(str(name)) > 64 or len(text) > MAX_ATTRIBUTE_CHARS:
            raise Invalid(f"The attribute {str(name)[:64]!r} is too long.", field="attributes")
        checked[_no_nul(str(name), field="attributes")] = _no_nul(text, field="attributes")
    return checked


# --- SQS: services ---------------------------------------------------------------------------


@transaction.atomic
def sqs_queue_create(
    *, room: Room, name: str, attributes: Mapping[str, object] | None = None
) -> SqsQueue:
    """CreateQueue. As in AWS, creating a queue that exists with the same attributes returns
    it; with different attributes it is refused (QueueAlreadyExists)."""
    name = _no_nul((name or "").strip(), field="name")
    given = _attributes_validate(attributes)
    room = room_lock(room=room)
    row, _ = _sqs_create(room, name, given)
    return row


def _sqs_create(room: Room, name: str, given: dict[str, str]) -> tuple[SqsQueue, bool]:
    try:
        queue = sqs.create_queue(name, given, now_ms=room.sim_time_ms, seed=room.code)
    except sqs.SqsError as error:
        raise _sqs_error("CreateQueue", error) from None
    existing = SqsQueue.objects.filter(room=room, name=name).first()
    if existing is not None:
        if sqs_state_load(existing).attributes != queue.attributes:
            raise Conflict(
                f"CreateQueue failed (QueueAlreadyExists): A queue already exists with the "
                f"same name and a different value for an attribute ({name}).",
                field="name",
            )
        return existing, False
    if SqsQueue.objects.filter(room=room).count() >= MAX_QUEUES_PER_ROOM:
        raise Invalid(f"A room holds at most {MAX_QUEUES_PER_ROOM} queues here.", field="name")
    policy = queue.attributes.redrive_policy
    if (
        policy is not None
        and not SqsQueue.objects.filter(room=room, name=policy.dead_letter_queue_name).exists()
    ):
        raise Invalid(
            f"CreateQueue failed (InvalidParameterValue): Value {policy.to_json()} for "
            "parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.",
            field="attributes",
        )
    row = SqsQueue(room=room, name=name)
    _sqs_store(row, queue, {})
    event_record(
        room=room,
        type="sqs.changed",
        payload={"queue": name, "action": "create", "fifo": queue.fifo},
    )
    return row, True


@transaction.atomic
def sqs_send(
    *,
    queue: SqsQueue,
    body: str,
    message_group_id: str | None = None,
    deduplication_id: str | None = None,
    delay_seconds: object = None,
) -> sqs.SendResult:
    """SendMessage. A duplicate within 5 minutes is accepted with the original MessageId and
    never delivered; the page lists the last few. `delay_seconds` is the message's own
    DelaySeconds (standard queues; a FIFO queue refuses it), None for the queue's."""
    body = _body_validate(body)
    group = _optional_id(message_group_id)
    dedup = _optional_id(deduplication_id)
    delay = None
    if delay_seconds is not None:
        delay = _whole_number(delay_seconds, field="delay_seconds", aws_name="DelaySeconds")
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    try:
        state, result = sqs.send(
            state,
            body,
            now_ms=room.sim_time_ms,
            message_group_id=group,
            deduplication_id=dedup,
            delay_seconds=delay,
        )
    except sqs.SqsError as error:
        raise _sqs_error("SendMessage", error) from None
    _messages_bound(state)
    if len(state.deduplication) > MAX_DEDUPLICATION_IDS:
        raise Invalid(
            f"{row.name} already remembers {MAX_DEDUPLICATION_IDS} deduplication ids from the "
            "last 5 minutes, the most LogLab keeps: let simulated time pass.",
            field="body",
        )
    board = sqs_board_load(row)
    if result.duplicate:
        board["duplicates"].append(
            {
                "dedup_id": result.message_deduplication_id,
                "group": group,
                "message_id": result.message_id,
                "body": _preview(body),
                "at_ms": room.sim_time_ms,
            }
        )
    _sqs_changed(
        room, row, state, board, "send",
        group=group,
        duplicate=result.duplicate,
        dedup_id=result.message_deduplication_id,
    )
    return result


def _messages_bound(state: sqs.Queue) -> None:
    if len(state.messages) > MAX_MESSAGES_PER_QUEUE:
        raise Invalid(
            f"{state.name} holds {MAX_MESSAGES_PER_QUEUE} messages, the most LogLab keeps in "
            "one queue: receive and delete some, or purge it.",
            field="body",
        )


@transaction.atomic
def sqs_receive(
    *,
    queue: SqsQueue,
    max_messages: object = 1,
    visibility_timeout: object = None,
    consumer: str = "",
) -> sqs.ReceiveResult:
    """ReceiveMessage, as the simulated consumer `consumer` (a label the page shows on the
    messages it now holds). Messages past maxReceiveCount move to the dead-letter queue."""
    consumer = _no_nul((consumer or "").strip(), field="consumer")
    if len(consumer) > MAX_CONSUMER_LABEL_CHARS:
        raise Invalid(
            f"A consumer label has at most {MAX_CONSUMER_LABEL_CHARS} characters.",
            field="consumer",
        )
    count = _whole_number(max_messages, field="max_messages", aws_name="MaxNumberOfMessages")
    timeout = None
    if visibility_timeout is not None and str(visibility_timeout).strip() != "":
        timeout = _whole_number(
            visibility_timeout, field="visibility_timeout", aws_name="VisibilityTimeout"
        )
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    now = room.sim_time_ms
    try:
        state, result = sqs.receive(
            state, now_ms=now, max_messages=count, visibility_timeout=timeout
        )
    except sqs.SqsError as error:
        raise _sqs_error("ReceiveMessage", error) from None
    dead_letter_rows = _dead_letter_targets(room, result.dead_lettered)
    for move in result.dead_lettered:
        target = dead_letter_rows[move.target_queue_name]
        target_state = sqs_state_load(target)
        try:
            target_state = sqs.accept_dead_letter(target_state, move, now_ms=now)
        except sqs.SqsError as error:
            raise _sqs_error("ReceiveMessage", error) from None
        _messages_bound(target_state)
        _sqs_store(target, target_state, sqs_board_load(target))
    board = sqs_board_load(row)
    for message in result.messages:
        board["holders"][message.message_id] = {
            "consumer": consumer,
            "handle": message.receipt_handle,
            "at_ms": now,
        }
    _sqs_changed(
        room, row, state, board, "receive",
        consumer=consumer,
        received=len(result.messages),
        groups=sorted({m.message_group_id or "" for m in result.messages}),
        dead_lettered=len(result.dead_lettered),
    )
    return result


def _dead_letter_targets(room: Room, moves: tuple[sqs.DeadLetterMove, ...]) -> dict[str, SqsQueue]:
    names = {move.target_queue_name for move in moves}
    rows = {row.name: row for row in SqsQueue.objects.filter(room=room, name__in=names)}
    missing = names - set(rows)
    if missing:
        raise Conflict(
            f"The dead-letter queue {sorted(missing)[0]} does not exist any more, so the "
            "message cannot be moved."
        )
    return rows


def _handle_validate(receipt_handle: str) -> str:
    handle = (receipt_handle or "").strip()
    if not handle:
        raise Invalid(
            "The request must contain the parameter ReceiptHandle (MissingParameter).",
            field="receipt_handle",
        )
    if len(handle) > MAX_RECEIPT_HANDLE_CHARS:
        raise Invalid(
            f'The input receipt handle "{handle[:40]}…" is not a valid receipt handle.',
            field="receipt_handle",
        )
    return handle


@transaction.atomic
def sqs_delete(*, queue: SqsQueue, receipt_handle: str) -> sqs.DeleteResult:
    """DeleteMessage: the message is gone for good (SQS has no replay). On FIFO only the
    handle of the current receive works."""
    handle = _handle_validate(receipt_handle)
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    groups = {m.message_id: m.message_group_id for m in state.messages}
    try:
        state, result = sqs.delete(state, handle, now_ms=room.sim_time_ms)
    except sqs.SqsError as error:
        raise _sqs_error("DeleteMessage", error) from None
    _sqs_changed(
        room, row, state, sqs_board_load(row), "delete",
        deleted=result.deleted,
        group=groups.get(result.message_id or ""),
    )
    return result


@transaction.atomic
def sqs_change_visibility(
    *, queue: SqsQueue, receipt_handle: str, timeout: object
) -> sqs.VisibilityChange:
    """ChangeMessageVisibility: the new timeout counts from now; 0 hands the message back."""
    handle = _handle_validate(receipt_handle)
    seconds = _whole_number(timeout, field="timeout", aws_name="VisibilityTimeout")
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    try:
        state, change = sqs.change_visibility(state, handle, seconds, now_ms=room.sim_time_ms)
    except sqs.SqsError as error:
        raise _sqs_error("ChangeMessageVisibility", error) from None
    _sqs_changed(room, row, state, sqs_board_load(row), "change_visibility", timeout=seconds)
    return change


@transaction.atomic
def sqs_purge(*, queue: SqsQueue) -> sqs.PurgeResult:
    """PurgeQueue: every message goes, in flight or not; once per 60 simulated seconds."""
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    try:
        state, result = sqs.purge(state, now_ms=room.sim_time_ms)
    except sqs.SqsError as error:
        raise _sqs_error("PurgeQueue", error) from None
    _sqs_changed(
        room, row, state, sqs_board_load(row), "purge",
        purged=len(result.purged_message_ids),
    )
    return result


@transaction.atomic
def sqs_tick(*, room: Room | int) -> list[str]:
    """Let the room's simulated time reach every queue: visibility timeouts hand messages
    back, delays end, retention expires messages. Returns the names of the queues that
    changed; each gets one "sqs.changed" event.

    Cheap when nothing is due: one query finds the queues whose next timer (`due_ms`) has come.
    """
    room = room_lock(room=room)
    now = room.sim_time_ms
    changed: list[str] = []
    for row in SqsQueue.objects.filter(room=room, state__board__due_ms__lte=now):
        state = sqs_state_load(row)
        try:
            state, settled = sqs.advance(state, now_ms=now)
        except sqs.TimeWentBackwards:
            continue  # the queue is ahead of the room's clock: nothing is due yet
        _sqs_store(row, state, sqs_board_load(row))
        if settled.expired or settled.returned or settled.released:
            changed.append(row.name)
            event_record(
                room=room,
                type="sqs.changed",
                payload={
                    "queue": row.name,
                    "action": "tick",
                    "returned": len(settled.returned),
                    "expired": len(settled.expired),
                    "released": len(settled.released),
                },
            )
    return changed


# --- classic broker: loading and storing -----------------------------------------------------


def classic_state_load(row: ClassicBroker | None) -> classic.Broker:
    if row is None or not row.state:
        return classic.new_broker()
    return classic.broker_from_dict(row.state)


def classic_board_load(row: ClassicBroker | None) -> dict[str, Any]:
    board = dict((row.state.get("board") if row is not None else None) or {})
    board.setdefault("keys", {})
    return board


def _classic_store(row: ClassicBroker, broker: classic.Broker, board: dict[str, Any]) -> None:
    present = {m.message_id for q in broker.queues for m in q.ready}
    present |= {d.message.message_id for c in broker.consumers for d in c.unacked}
    keys = {mid: key for mid, key in board.get("keys", {}).items() if mid in present}
    row.state = {**classic.broker_to_dict(broker), "board": {"keys": keys}}
    row.save(update_fields=["state"])


def _classic_row(room: Room) -> tuple[ClassicBroker, bool]:
    row, created = ClassicBroker.objects.get_or_create(room=room)
    if created:
        _classic_store(row, classic.new_broker(), {})
    return row, created


def _broker_error(error: classic.BrokerError) -> LogLabError:
    """An AMQP refusal as RabbitMQ words it ("NOT_FOUND - no queue 'x' in vhost '/'")."""
    text = str(error)
    if isinstance(error, classic.NotFound):
        return NotFound(text)
    if isinstance(error, classic.PreconditionFailed | classic.NotAllowed):
        return Conflict(text)
    return Invalid(text)


def _classic_bound(broker: classic.Broker) -> None:
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
    value = _no_nul((value or "").strip(), field=field)
    if not value and not allow_empty:
        raise Invalid(f"A {what} needs a name.", field=field)
    if len(value) > MAX_CLASSIC_NAME_CHARS:
        raise Invalid(
            f"A {what} name has at most {MAX_CLASSIC_NAME_CHARS} characters here.", field=field
        )
    return value


def _classic_apply(
    room: Room, action: str, payload: dict[str, Any], change
) -> tuple[classic.Broker, Any]:
    """Run one engine call on the room's broker (the caller holds the room lock), bound the
    result, store it and record the event. `change` maps a broker to (broker, outcome)."""
    row, _ = _classic_row(room)
    board = classic_board_load(row)
    try:
        broker, outcome = change(classic_state_load(row))
    except classic.BrokerError as error:
        raise _broker_error(error) from None
    _classic_bound(broker)
    _classic_store(row, broker, board)
    extra: dict[str, Any] = {}
    if isinstance(outcome, classic.Outcome):
        extra = {
            "deliveries": len(outcome.deliveries),
            "routed_to": list(outcome.routed_to),
            "requeued": len(outcome.requeued),
        }
    event_record(room=room, type="classic.changed", payload={"action": action, **payload, **extra})
    return broker, outcome


# --- classic broker: services ----------------------------------------------------------------


@transaction.atomic
def classic_broker_get_or_create(*, room: Room) -> ClassicBroker:
    room = room_lock(room=room)
    row, created = _classic_row(room)
    if created:
        event_record(room=room, type="classic.changed", payload={"action": "create"})
    return row


@transaction.atomic
def classic_queue_declare(
    *, room: Room, name: str, dead_letter_exchange: str | None = None
) -> classic.Broker:
    """queue.declare (idempotent); `dead_letter_exchange` is x-dead-letter-exchange."""
    name = _name_validate(name, what="queue", field="name")
    dlx = _optional_id(dead_letter_exchange)
    room = room_lock(room=room)
    broker, _ = _classic_apply(
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
    broker, _ = _classic_apply(
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
    broker, _ = _classic_apply(
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
    body = _body_validate(body)
    room = room_lock(room=room)
    _, outcome = _classic_apply(
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
    tag = _no_nul((consumer_tag or "").strip(), field="consumer_tag")
    if not tag:
        raise Invalid("A consumer needs a consumer tag (e.g. worker-3).", field="consumer_tag")
    if len(tag) > MAX_CONSUMER_TAG_CHARS:
        raise Invalid(
            f"A consumer tag has at most {MAX_CONSUMER_TAG_CHARS} characters.",
            field="consumer_tag",
        )
    prefetch = _whole_number(prefetch_count, field="prefetch_count", aws_name="prefetch_count")
    room = room_lock(room=room)
    _, outcome = _classic_apply(
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

    _, outcome = _classic_apply(
        room, "consume", {"queue": queue, "consumer": tag, "prefetch": count}, consume_and_ack
    )
    return outcome


@transaction.atomic
def classic_ack(
    *, room: Room, consumer_tag: str, delivery_tag: object, multiple: bool = False
) -> classic.Outcome:
    """basic.ack: the message is deleted; the freed prefetch slot may pull the next one."""
    tag = _whole_number(delivery_tag, field="delivery_tag", aws_name="delivery_tag")
    consumer_tag = _no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = _classic_apply(
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
    tag = _whole_number(delivery_tag, field="delivery_tag", aws_name="delivery_tag")
    consumer_tag = _no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = _classic_apply(
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
    consumer_tag = _no_nul(consumer_tag or "", field="consumer_tag")
    room = room_lock(room=room)
    _, outcome = _classic_apply(
        room,
        "close",
        {"consumer": consumer_tag},
        lambda b: classic.close_channel(b, consumer_tag),
    )
    return outcome


# --- side-by-side mode -------------------------------------------------------------------------


def mirror_names(topic_name: str) -> dict[str, str]:
    """What a topic is mirrored to. SQS queue names allow only letters, digits, - and _, so a
    Kafka topic's dots become dashes in the FIFO queue's name."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", topic_name)
    return {
        "fifo": f"{safe[:75]}.fifo",
        "classic": topic_name,
        "fanout": f"{topic_name}.fanout",
        **{name: f"{topic_name}.{name}" for name in MIRROR_SUBSCRIBERS},
    }


def mirror_group_id(key: str | None) -> str:
    """The MessageGroupId for a Kafka key. SQS requires one on every FIFO send, so a null key
    gets a group of its own; characters SQS does not take (spaces, non-ASCII) are
    percent-encoded, and a key too long for the 128 characters is shortened with a hash."""
    if key is None:
        return NULL_KEY_GROUP
    if key == "":
        return EMPTY_KEY_GROUP
    encoded = quote(key, safe=string.punctuation.replace("%", ""))
    if len(encoded) > 128:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        encoded = f"{encoded[:111]}~{digest}"
    return encoded


def mirror_deduplication_id(topic_name: str, partition: int, offset: int) -> str:
    """A record's place in the log is unique for ever, so it makes a deduplication id."""
    text = f"{topic_name}/{partition}/{offset}"
    return text if len(text) <= 128 else hashlib.sha256(text.encode()).hexdigest()


def mirror_body(value: str | None) -> str:
    """SQS refuses an empty body: a tombstone or an empty value is sent as a note."""
    if value is None:
        return "(null value: a tombstone in Kafka)"
    return value or "(empty value)"


@transaction.atomic
def mirror_enable(*, room: Room, topic: Topic) -> dict[str, str]:
    """Side-by-side mode: from now on records produced to `topic` are also sent to the FIFO
    queue `<topic>.fifo` (MessageGroupId = key), and published to the classic queue `<topic>`
    (competing consumers worker-1 and worker-2, prefetch 1) and to the fanout exchange
    `<topic>.fanout` (one copy each for `<topic>.billing` and `<topic>.analytics`)."""
    room = room_lock(room=room)
    if topic.room_id != room.pk:
        raise NotFound(f"Topic '{topic.name}' does not exist in this room.")
    names = mirror_names(topic.name)
    if not SqsQueue.objects.filter(room=room, name=names["fifo"]).exists():
        # An existing queue of that name is reused as it is: the mirror always sends its own
        # MessageDeduplicationId, so ContentBasedDeduplication does not matter to it.
        _sqs_create(
            room, names["fifo"], {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        )

    def topology(broker: classic.Broker) -> tuple[classic.Broker, classic.Outcome]:
        broker = classic.declare_queue(broker, names["classic"])
        broker = classic.declare_exchange(broker, names["fanout"], "fanout")
        for subscriber in MIRROR_SUBSCRIBERS:
            broker = classic.declare_queue(broker, names[subscriber])
            broker = classic.bind_queue(broker, names[subscriber], names["fanout"])
        deliveries: list[classic.Delivery] = []
        for tag in MIRROR_WORKERS:
            current = next((c for c in broker.consumers if c.consumer_tag == tag), None)
            if current is not None and current.queue == names["classic"]:
                continue
            if current is not None:
                # The worker moves to the newly mirrored queue: its old channel closes.
                broker, closed = classic.close_channel(broker, tag)
                deliveries.extend(closed.deliveries)
            broker, started = classic.consume(
                broker, names["classic"], tag, prefetch_count=MIRROR_PREFETCH
            )
            deliveries.extend(started.deliveries)
        return broker, classic.Outcome(deliveries=tuple(deliveries))

    _classic_apply(room, "mirror_on", {"topic": topic.name, "queue": names["classic"]}, topology)
    room.mirror_topic = topic
    room.save(update_fields=["mirror_topic"])
    event_record(
        room=room,
        type="sqs.changed",
        payload={
            "queue": names["fifo"],
            "action": "mirror_on",
            "topic": topic.name,
        },
    )
    return names


@transaction.atomic
def mirror_disable(*, room: Room) -> None:
    """Stop mirroring; the queues and what they hold stay for inspection."""
    room = room_lock(room=room)
    if room.mirror_topic_id is None:
        return
    topic_name = Topic.objects.filter(pk=room.mirror_topic_id).values_list("name", flat=True)
    room.mirror_topic = None
    room.save(update_fields=["mirror_topic"])
    event_record(
        room=room,
        type="sqs.changed",
        payload={"action": "mirror_off", "topic": topic_name.first()},
    )


@dataclass
class MirrorResult:
    sent: int = 0
    duplicates: int = 0
    published: int = 0
    # (partition, offset, why) of each copy that could not be made; the record itself stays.
    skipped: list[dict[str, Any]] = field(default_factory=list)


@transaction.atomic
def queues_mirror_records(
    *, room: Room, topic_name: str, records: list[Mapping[str, Any]]
) -> MirrorResult:
    """Copy produced records into the mirrored FIFO queue and classic queues.

    Called by the produce service inside its own transaction when `room.mirror_topic` is the
    topic (and a no-op otherwise). It never raises for what a record holds: a copy SQS or the
    broker would refuse is skipped and reported, so the Kafka produce itself always stands.
    """
    result = MirrorResult()
    if not records:
        return result
    room = room_lock(room=room)
    mirrored = (
        Topic.objects.filter(pk=room.mirror_topic_id).values_list("name", flat=True).first()
        if room.mirror_topic_id
        else None
    )
    if mirrored != topic_name:
        return result
    names = mirror_names(topic_name)
    _mirror_to_fifo(room, names, topic_name, records, result)
    _mirror_to_classic(room, names, records, result)
    event_record(
        room=room,
        type="sqs.changed",
        payload={
            "queue": names["fifo"],
            "action": "mirror",
            "topic": topic_name,
            "sent": result.sent,
            "duplicates": result.duplicates,
            "published": result.published,
            "skipped": result.skipped[:10],
        },
    )
    return result


def _mirror_to_fifo(
    room: Room,
    names: dict[str, str],
    topic_name: str,
    records: list[Mapping[str, Any]],
    result: MirrorResult,
) -> None:
    row = SqsQueue.objects.filter(room=room, name=names["fifo"]).first()
    if row is None:
        result.skipped.extend(
            {
                "partition": r["partition"],
                "offset": r["offset"],
                "to": names["fifo"],
                "reason": "the FIFO queue no longer exists",
            }
            for r in records
        )
        return
    state = sqs_state_load(row)
    board = sqs_board_load(row)
    for record in records:
        where = {"partition": record["partition"], "offset": record["offset"], "to": row.name}
        if len(state.messages) >= MAX_MESSAGES_PER_QUEUE:
            result.skipped.append({**where, "reason": f"{row.name} is full"})
            continue
        group = mirror_group_id(record.get("key"))
        try:
            state, sent = sqs.send(
                state,
                mirror_body(record.get("value")),
                now_ms=room.sim_time_ms,
                message_group_id=group,
                deduplication_id=mirror_deduplication_id(
                    topic_name, record["partition"], record["offset"]
                ),
            )
        except sqs.SqsError as error:
            result.skipped.append({**where, "reason": f"{error.code}: {error.message}"})
            continue
        if sent.duplicate:
            result.duplicates += 1
            board["duplicates"].append(
                {
                    "dedup_id": sent.message_deduplication_id,
                    "group": group,
                    "message_id": sent.message_id,
                    "body": _preview(mirror_body(record.get("value"))),
                    "at_ms": room.sim_time_ms,
                }
            )
        else:
            result.sent += 1
    _sqs_store(row, state, board)


def _mirror_to_classic(
    room: Room, names: dict[str, str], records: list[Mapping[str, Any]], result: MirrorResult
) -> None:
    row, _ = _classic_row(room)
    broker = classic_state_load(row)
    board = classic_board_load(row)
    routes = (("", names["classic"]), (names["fanout"], ""))
    for record in records:
        for exchange, routing_key in routes:
            where = {
                "partition": record["partition"],
                "offset": record["offset"],
                "to": exchange or names["classic"],
            }
            try:
                published, outcome = classic.publish(
                    broker,
                    exchange,
                    routing_key,
                    _no_nul(mirror_body(record.get("value")), field="value"),
                )
                _classic_bound(published)
            except classic.BrokerError as error:
                result.skipped.append({**where, "reason": str(error)})
                continue
            except Invalid as error:
                result.skipped.append({**where, "reason": error.message})
                continue
            broker = published
            if outcome.routed_to:
                result.published += 1
                if record.get("key") is not None and outcome.message_id is not None:
                    board["keys"][outcome.message_id] = record["key"]
    _classic_store(row, broker, board)
