"""What LogLab's SQS endpoint (`api/sqs.py`) asks for, answered in SQS's own terms.

The rules are the engine's (`messaging.engine.sqs`) and the page's services'
(`messaging.services.sqs`): these functions call them and turn a refusal into the error SQS
itself would answer, an `sqs.SqsError` carrying `code` (the JSON protocol's `__type`),
`query_code` (the `x-amzn-query-error` header, boto3's `Error.Code`) and `http_status`. So the
endpoint only translates the wire protocol, and a message sent with boto3 is stored, bounded
and shown on the room's SQS page exactly as one sent from the page.

New here: DeleteQueue, SetQueueAttributes, ListQueues, GetQueueAttributes as of the room's
clock, the *Batch actions (validated as a whole by the engine, then each entry through the
page's service, each succeeding or failing alone as in SQS), the WaitTimeSeconds bound and a
read-only look at the queue for long polling.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence

from django.db import transaction

from messaging import selectors
from messaging.engine import sqs
from messaging.errors import LogLabError, NotFound
from messaging.models import Room, SqsQueue
from messaging.selectors import sqs_state_load
from messaging.services.sqs import (
    sqs_change_visibility,
    sqs_delete,
    sqs_purge,
    sqs_queue_attributes_set,
    sqs_queue_create,
    sqs_queue_delete,
    sqs_receive,
    sqs_send,
)
from messaging.services.text import MAX_BODY_BYTES

# ReceiveMessage's WaitTimeSeconds, as SQS bounds it (the engine knows only the attribute).
MAX_WAIT_TIME_S = 20
# ListQueues' MaxResults.
MAX_LIST_RESULTS = 1000


# --- SQS's errors that the engine has no reason to know --------------------------------------


class QueueDoesNotExist(sqs.SqsError):
    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"
    http_status = 400
    sender_fault = True


class QueueNameExists(sqs.SqsError):
    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"
    http_status = 400
    sender_fault = True


class OverLimit(sqs.SqsError):
    """One of LogLab's bounds on a room (queues, messages per queue) was reached."""

    code = query_code = "OverLimit"
    http_status = 403
    sender_fault = True


class UnsupportedOperation(sqs.SqsError):
    code = "UnsupportedOperation"
    query_code = "AWS.SimpleQueueService.UnsupportedOperation"
    http_status = 400
    sender_fault = True


NO_SUCH_QUEUE = "The specified queue does not exist."

# "SendMessage failed (InvalidParameterValue): ..." and "... (MissingParameter)." are how the
# page's services name SQS's code in their messages; these are the codes that can appear there.
_NAMED = re.compile(r"\((\w+)\)")
_NAMED_ERRORS: dict[str, type[sqs.SqsError]] = {
    "QueueAlreadyExists": QueueNameExists,
    "QueueDoesNotExist": QueueDoesNotExist,
    "InvalidParameterValue": sqs.InvalidParameterValue,
    "MissingParameter": sqs.MissingParameter,
    "InvalidAttributeValue": sqs.InvalidAttributeValue,
    "InvalidAttributeName": sqs.InvalidAttributeName,
}
_PREFIX = re.compile(r"^\w+ failed \(\w+\): ")


def _engine_error(error: BaseException) -> sqs.SqsError | None:
    """The engine's refusal a service error was raised from (`raise ... from None` keeps it
    as the exception's context)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, sqs.SqsError):
            return current
        seen.add(id(current))
        current = current.__context__
    return None


def sqs_error_from(
    error: LogLabError, *, values: Mapping[str, object] | None = None
) -> sqs.SqsError:
    """The SQS error for a refusal of the page's services. `values` are the inputs by the
    service's field names, which tell apart refusals that share a field."""
    engine = _engine_error(error)
    if engine is not None:
        return engine
    if isinstance(error, NotFound):
        return QueueDoesNotExist(NO_SUCH_QUEUE)
    message = _PREFIX.sub("", error.message)
    code = next((code for code in _NAMED.findall(error.message) if code in _NAMED_ERRORS), None)
    if code is not None:
        return _NAMED_ERRORS[code](message.replace(f" ({code})", "").strip())
    value = (values or {}).get(error.field or "")
    if error.field == "body" and isinstance(value, str):
        if "\x00" in value:
            return sqs.InvalidMessageContents(message)
        if len(value.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            return sqs.InvalidParameterValue(message)
        return OverLimit(message)  # the queue holds as many messages (or dedup ids) as allowed
    if error.field == "name" and isinstance(value, str) and "\x00" not in value:
        return OverLimit(message)  # the room holds as many queues as allowed
    if error.field == "attributes":
        return sqs.InvalidAttributeValue(message)
    if error.field == "receipt_handle":
        return sqs.ReceiptHandleIsInvalid(message)
    # Anything else (a dead-letter queue deleted since, a parameter of the wrong kind) is the
    # request's fault, as SQS's InvalidParameterValue says.
    return sqs.InvalidParameterValue(message)


class _translated:  # noqa: N801 - a context manager, used like contextlib's
    """Inside the block, a refusal of the page's services leaves as SQS's error."""

    def __init__(self, **values: object) -> None:
        self.values = values

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, LogLabError):
            raise sqs_error_from(error, values=self.values) from error
        return False


def _batch_failure(entry_id: str, error: sqs.SqsError) -> sqs.BatchResultErrorEntry:
    # As the engine's own batches report a failed entry.
    return sqs.BatchResultErrorEntry(
        id=entry_id, code=error.code, message=error.message, sender_fault=error.sender_fault
    )


def _each_entry(entries: Sequence, act: Callable) -> tuple[tuple, tuple]:
    """A batch's entries one by one, each succeeding or failing alone, as in SQS; a queue
    that is gone fails the whole request."""
    successful: list = []
    failed: list[sqs.BatchResultErrorEntry] = []
    for entry in entries:
        try:
            successful.append(act(entry))
        except QueueDoesNotExist:
            raise
        except sqs.SqsError as error:
            failed.append(_batch_failure(entry.id, error))
    return tuple(successful), tuple(failed)


# --- rooms and queues -------------------------------------------------------------------------


def sqs_api_room(code: str) -> Room | None:
    """The room whose join code this is (any case, any dashes), or None."""
    return selectors.room_find(code=code or "")


def sqs_api_queue(*, room: Room, name: str) -> SqsQueue:
    # No queue name holds a NUL (and PostgreSQL cannot even be asked about one).
    valid = bool(name) and "\x00" not in name
    queue = selectors.sqs_queue_find(room=room, name=name) if valid else None
    if queue is None:
        raise QueueDoesNotExist(NO_SUCH_QUEUE)
    return queue


def sqs_api_queue_create(
    *, room: Room, name: str, attributes: Mapping[str, str] | None = None
) -> SqsQueue:
    """CreateQueue: idempotent with the same attributes, QueueAlreadyExists otherwise."""
    with _translated(name=name):
        return sqs_queue_create(room=room, name=name, attributes=attributes)


def sqs_api_queue_names(
    *,
    room: Room,
    prefix: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> tuple[list[str], str | None]:
    """ListQueues: the names in order, and a NextToken when MaxResults left some out."""
    if max_results is not None and not 1 <= max_results <= MAX_LIST_RESULTS:
        raise sqs.InvalidParameterValue(
            f"Value {max_results} for parameter MaxResults is invalid. Reason: MaxResults must "
            f"be an integer between 1 and {MAX_LIST_RESULTS}."
        )
    if prefix and "\x00" in prefix:
        return [], None  # no queue name holds a NUL
    limit = max_results or MAX_LIST_RESULTS
    names = selectors.sqs_queue_names(
        room=room,
        prefix=prefix or "",
        after=_token_name(next_token) if next_token else None,
        limit=limit + 1,
    )
    token = None
    if len(names) > limit:
        names = names[:limit]
        if max_results is not None:
            token = base64.urlsafe_b64encode(names[-1].encode()).decode()
    return names, token


def _token_name(token: str) -> str:
    try:
        name = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        name = "\x00"
    if "\x00" in name:
        raise sqs.InvalidParameterValue("Invalid NextToken value.")
    return name


def sqs_api_queue_delete(*, queue: SqsQueue) -> None:
    """DeleteQueue: the queue and every message in it are gone. (AWS takes up to 60 s and
    refuses the name for 60 s more; here it is immediate.)"""
    with _translated():
        sqs_queue_delete(queue=queue)


# --- attributes -------------------------------------------------------------------------------


def sqs_api_queue_attributes(*, queue: SqsQueue, names: Sequence[str]) -> dict[str, str]:
    """GetQueueAttributes as of the room's clock (a read: nothing is stored)."""
    row = selectors.sqs_queue_fresh(queue=queue)
    if row is None:
        raise QueueDoesNotExist(NO_SUCH_QUEUE)
    state = sqs_state_load(row)
    if row.room.sim_time_ms >= state.clock_ms:
        state, _ = sqs.advance(state, now_ms=row.room.sim_time_ms)
    if not names:
        return {}
    return sqs.get_queue_attributes(state, names)


def sqs_api_queue_attributes_set(*, queue: SqsQueue, attributes: Mapping[str, str]) -> None:
    """SetQueueAttributes. A RedrivePolicy's dead-letter queue must exist, as on CreateQueue."""
    with _translated():
        sqs_queue_attributes_set(queue=queue, attributes=attributes)


# --- sending ----------------------------------------------------------------------------------


def sqs_api_send(
    *,
    queue: SqsQueue,
    body: str,
    message_group_id: str | None = None,
    deduplication_id: str | None = None,
    delay_seconds: int | None = None,
) -> sqs.SendResult:
    with _translated(body=body):
        return sqs_send(
            queue=queue,
            body=body,
            message_group_id=message_group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
        )


@transaction.atomic
def sqs_api_send_batch(
    *, queue: SqsQueue, entries: Sequence[sqs.SendBatchEntry]
) -> sqs.SendBatchResult:
    """SendMessageBatch: the engine's checks of the whole request, then each entry in order
    (the order within a FIFO group) through SendMessage, succeeding or failing alone."""
    sqs.validate_batch_entry_ids([entry.id for entry in entries])
    sqs.validate_batch_payload([entry.message_body for entry in entries])

    def send(entry: sqs.SendBatchEntry) -> sqs.SendBatchResultEntry:
        result = sqs_api_send(
            queue=queue,
            body=entry.message_body,
            message_group_id=entry.message_group_id,
            deduplication_id=entry.message_deduplication_id,
            delay_seconds=entry.delay_seconds,
        )
        return sqs.SendBatchResultEntry(entry.id, result)

    return sqs.SendBatchResult(*_each_entry(entries, send))


# --- receiving --------------------------------------------------------------------------------


def sqs_api_wait_seconds(*, queue: SqsQueue, requested: int | None) -> int:
    """ReceiveMessage's WaitTimeSeconds (0 to 20), or the queue's ReceiveMessageWaitTimeSeconds
    when the request has none."""
    if requested is None:
        row = selectors.sqs_queue_fresh(queue=queue)
        if row is None:
            raise QueueDoesNotExist(NO_SUCH_QUEUE)
        return sqs_state_load(row).attributes.receive_message_wait_time_seconds
    if not 0 <= requested <= MAX_WAIT_TIME_S:
        raise sqs.InvalidParameterValue(
            f"Value {requested} for parameter WaitTimeSeconds is invalid. "
            f"Reason: Must be >= 0 and <= {MAX_WAIT_TIME_S}, if provided."
        )
    return requested


def sqs_api_receivable(
    *, queue: SqsQueue, max_messages: int = 1, visibility_timeout: int | None = None
) -> bool:
    """Would a receive now get a message (or move one to the dead-letter queue)? The engine
    answers on a copy of the state: nothing is stored, no transaction is held. A long poll
    asks this until it is true or the wait is over. Bad parameters are refused here already."""
    row = selectors.sqs_queue_fresh(queue=queue)
    if row is None:
        raise QueueDoesNotExist(NO_SUCH_QUEUE)
    state = sqs_state_load(row)
    try:
        _, result = sqs.receive(
            state,
            now_ms=row.room.sim_time_ms,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
        )
    except sqs.TimeWentBackwards:
        return True  # let the receive itself say what is wrong
    return bool(result.messages or result.dead_lettered)


def sqs_api_receive(
    *,
    queue: SqsQueue,
    max_messages: int = 1,
    visibility_timeout: int | None = None,
    consumer: str = "sdk",
) -> sqs.ReceiveResult:
    """ReceiveMessage as `consumer` (the label the page shows on the messages it holds)."""
    with _translated():
        return sqs_receive(
            queue=queue,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
            consumer=consumer,
        )


def sqs_api_message_attributes(
    message: sqs.ReceivedMessage, names: Sequence[str]
) -> dict[str, str]:
    """The message system attributes asked for (`All` for every one LogLab keeps). SenderId,
    AWSTraceHeader and DeadLetterQueueSourceArn are not kept, so never answered."""
    every = message.system_attributes()
    if "All" in names:
        return every
    return {name: every[name] for name in names if name in every}


# --- deleting and visibility ------------------------------------------------------------------


def sqs_api_delete(*, queue: SqsQueue, receipt_handle: str) -> sqs.DeleteResult:
    with _translated():
        return sqs_delete(queue=queue, receipt_handle=receipt_handle)


@transaction.atomic
def sqs_api_delete_batch(
    *, queue: SqsQueue, entries: Sequence[sqs.DeleteBatchEntry]
) -> sqs.BatchResult:
    sqs.validate_batch_entry_ids([entry.id for entry in entries])

    def delete(entry: sqs.DeleteBatchEntry) -> str:
        sqs_api_delete(queue=queue, receipt_handle=entry.receipt_handle)
        return entry.id

    return sqs.BatchResult(*_each_entry(entries, delete))


def sqs_api_change_visibility(
    *, queue: SqsQueue, receipt_handle: str, timeout: int
) -> sqs.VisibilityChange:
    with _translated():
        return sqs_change_visibility(queue=queue, receipt_handle=receipt_handle, timeout=timeout)


@transaction.atomic
def sqs_api_change_visibility_batch(
    *, queue: SqsQueue, entries: Sequence[sqs.ChangeVisibilityBatchEntry]
) -> sqs.BatchResult:
    sqs.validate_batch_entry_ids([entry.id for entry in entries])

    def change(entry: sqs.ChangeVisibilityBatchEntry) -> str:
        sqs_api_change_visibility(
            queue=queue, receipt_handle=entry.receipt_handle, timeout=entry.visibility_timeout
        )
        return entry.id

    return sqs.BatchResult(*_each_entry(entries, change))


def sqs_api_purge(*, queue: SqsQueue) -> sqs.PurgeResult:
    with _translated():
        return sqs_purge(queue=queue)


__all__ = [
    "MAX_WAIT_TIME_S",
    "OverLimit",
    "QueueDoesNotExist",
    "QueueNameExists",
    "UnsupportedOperation",
    "sqs_api_change_visibility",
    "sqs_api_change_visibility_batch",
    "sqs_api_delete",
    "sqs_api_delete_batch",
    "sqs_api_message_attributes",
    "sqs_api_purge",
    "sqs_api_queue",
    "sqs_api_queue_attributes",
    "sqs_api_queue_attributes_set",
    "sqs_api_queue_create",
    "sqs_api_queue_delete",
    "sqs_api_queue_names",
    "sqs_api_receivable",
    "sqs_api_receive",
    "sqs_api_room",
    "sqs_api_send",
    "sqs_api_send_batch",
    "sqs_api_wait_seconds",
]
