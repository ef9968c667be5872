"""SQS FIFO queues in a room, decided by the engine.

`messaging.engine.sqs` holds every rule (message groups, visibility, deduplication, dead-letter
queues). These functions load the engine's state from its row, ask the engine, bound what a
room may hold, store the result and record a numbered "sqs.changed" room event for the page to
redraw.

Stored shape: `SqsQueue.state` is `sqs.queue_to_dict(queue)` plus one key of LogLab's own,
"board", with what the page shows that SQS itself does not keep: which simulated consumer
holds each in-flight message, the last few duplicates that were dropped, and `due_ms`, the
simulated time of the next thing that time alone will change (a visibility timeout, a delay,
retention), so that `sqs_tick` finds the queues to advance with one query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from messaging import events
from messaging.engine import sqs
from messaging.errors import Conflict, Invalid, LogLabError, NotFound
from messaging.models import Room, SqsQueue
from messaging.selectors import sqs_board_load, sqs_state_load
from messaging.services.events import event_record, room_lock
from messaging.services.text import (
    body_validate,
    name_validate,
    no_nul,
    optional_text,
    preview,
    whole_number,
)

# LogLab's bounds: what one room may hold. SQS's own limits are the engine's.
MAX_QUEUES_PER_ROOM = 10
MAX_MESSAGES_PER_QUEUE = 1000
# The deduplication ids one queue remembers within its 5 minute interval.
MAX_DEDUPLICATION_IDS = 2000
MAX_CONSUMER_LABEL_CHARS = 40
MAX_RECEIPT_HANDLE_CHARS = 1024
MAX_ATTRIBUTES = 20
MAX_ATTRIBUTE_CHARS = 4096
DUPLICATES_SHOWN = 5


# --- SQS: loading and storing ---------------------------------------------------------------


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


def sqs_queue_store(row: SqsQueue, queue: sqs.Queue, board: dict[str, Any]) -> None:
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
    sqs_queue_store(row, queue, board)
    event_record(
        room=room, type=events.SQS_CHANGED, payload={"queue": row.name, "action": action, **details}
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


def _attributes_validate(attributes: Mapping[str, object] | None) -> dict[str, str]:
    given = dict(attributes or {})
    if len(given) > MAX_ATTRIBUTES:
        raise Invalid(f"At most {MAX_ATTRIBUTES} queue attributes.", field="attributes")
    checked: dict[str, str] = {}
    for name, value in given.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(str(name)) > 64 or len(text) > MAX_ATTRIBUTE_CHARS:
            raise Invalid(f"The attribute {str(name)[:64]!r} is too long.", field="attributes")
        checked[no_nul(str(name), field="attributes")] = no_nul(text, field="attributes")
    return checked


# --- SQS: services ---------------------------------------------------------------------------


@transaction.atomic
def sqs_queue_create(
    *, room: Room, name: str, attributes: Mapping[str, object] | None = None
) -> SqsQueue:
    """CreateQueue. As in AWS, creating a queue that exists with the same attributes returns
    it; with different attributes it is refused (QueueAlreadyExists)."""
    name = no_nul((name or "").strip(), field="name")
    given = _attributes_validate(attributes)
    room = room_lock(room=room)
    row, _ = sqs_queue_add(room, name, given)
    return row


def sqs_queue_add(room: Room, name: str, given: dict[str, str]) -> tuple[SqsQueue, bool]:
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
    sqs_queue_store(row, queue, {})
    event_record(
        room=room,
        type=events.SQS_CHANGED,
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
    body = body_validate(body)
    group = optional_text(message_group_id)
    dedup = optional_text(deduplication_id)
    delay = None
    if delay_seconds is not None:
        delay = whole_number(delay_seconds, field="delay_seconds", aws_name="DelaySeconds")
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
                "body": preview(body),
                "at_ms": room.sim_time_ms,
            }
        )
    _sqs_changed(
        room,
        row,
        state,
        board,
        "send",
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
    consumer = name_validate((consumer or "").strip(), field="consumer", what="A consumer label")
    if len(consumer) > MAX_CONSUMER_LABEL_CHARS:
        raise Invalid(
            f"A consumer label has at most {MAX_CONSUMER_LABEL_CHARS} characters.",
            field="consumer",
        )
    count = whole_number(max_messages, field="max_messages", aws_name="MaxNumberOfMessages")
    timeout = None
    if visibility_timeout is not None and str(visibility_timeout).strip() != "":
        timeout = whole_number(
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
        sqs_queue_store(target, target_state, sqs_board_load(target))
    board = sqs_board_load(row)
    for message in result.messages:
        board["holders"][message.message_id] = {
            "consumer": consumer,
            "handle": message.receipt_handle,
            "at_ms": now,
        }
    _sqs_changed(
        room,
        row,
        state,
        board,
        "receive",
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
        room,
        row,
        state,
        sqs_board_load(row),
        "delete",
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
    seconds = whole_number(timeout, field="timeout", aws_name="VisibilityTimeout")
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
        room,
        row,
        state,
        sqs_board_load(row),
        "purge",
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
        sqs_queue_store(row, state, sqs_board_load(row))
        if settled.expired or settled.returned or settled.released:
            changed.append(row.name)
            event_record(
                room=room,
                type=events.SQS_CHANGED,
                payload={
                    "queue": row.name,
                    "action": "tick",
                    "returned": len(settled.returned),
                    "expired": len(settled.expired),
                    "released": len(settled.released),
                },
            )
    return changed


@transaction.atomic
def sqs_queue_delete(*, queue: SqsQueue) -> None:
    """The queue and every message in it are gone."""
    room, row = _locked_queue(queue)
    name = row.name
    row.delete()
    event_record(
        room=room, type=events.SQS_CHANGED, payload={"queue": name, "action": "delete_queue"}
    )


@transaction.atomic
def sqs_queue_attributes_set(*, queue: SqsQueue, attributes: Mapping[str, object]) -> None:
    """SetQueueAttributes. A RedrivePolicy's dead-letter queue must exist, as on CreateQueue;
    the engine's refusals leave as SQS's own errors."""
    given = _attributes_validate(attributes)
    room, row = _locked_queue(queue)
    state = sqs_state_load(row)
    state = sqs.set_queue_attributes(state, given, now_ms=room.sim_time_ms)
    policy = state.attributes.redrive_policy
    if (
        policy is not None
        and not SqsQueue.objects.filter(room=room, name=policy.dead_letter_queue_name).exists()
    ):
        raise sqs.InvalidParameterValue(
            f"Value {policy.to_json()} for parameter RedrivePolicy is invalid. Reason: Dead "
            "letter target does not exist."
        )
    sqs_queue_store(row, state, sqs_board_load(row))
    event_record(
        room=room,
        type=events.SQS_CHANGED,
        payload={"queue": row.name, "action": "set_attributes", "attributes": sorted(given)},
    )
