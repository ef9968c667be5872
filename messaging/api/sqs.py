"""SQS's AWS JSON 1.0 protocol, as botocore and the other AWS SDKs send it.

A request is `POST` with `X-Amz-Target: AmazonSQS.<Action>` and a JSON object of the action's
members; the answer is a JSON object with SQS's member names. A refusal answers the error's
HTTP status with `{"__type": "com.amazonaws.sqs#<Code>", "message": ...}` and the header
`x-amzn-query-error: <query code>;Sender`, from which boto3 takes `Error.Code`
(`AWS.SimpleQueueService.NonExistentQueue`, ...) as it does against real SQS.

This module only translates: it reads the members, asks `messaging.services.sqs_api` and writes
the answer. The room is the SigV4 access key id (`Credential=<room code>/...`; the signature is
not checked) or the code in the path, see `_room_for`.

The view is async so that a long poll (WaitTimeSeconds) waits on the event loop, asking the
services in short calls without holding a transaction, instead of holding the thread that
Django runs every synchronous view of this process on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from messaging.api import sqs_actions as actions
from messaging.engine import sqs
from messaging.errors import LogLabError
from messaging.infra.rates import buckets, retry_seconds
from messaging.models import Room, SqsQueue
from messaging.permissions import (
    SQS_LOCKS,
    Forbidden,
    TooManyRequests,
    api_lock_check,
    api_produce_rate_check,
)
from messaging.services.sqs import MAX_CONSUMER_LABEL_CHARS

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.0"
ACCOUNT_ID = sqs.DEFAULT_ACCOUNT_ID
# The largest request body read. Batches of LogLab's largest bodies (10 x 10 KB) fit well.
MAX_REQUEST_BYTES = 300 * 1024
# Long polling: WaitTimeSeconds is honoured for at most this much wall time, re-checking the
# queue every POLL_INTERVAL_S.
LONG_POLL_MAX_S = 2.0
POLL_INTERVAL_S = 0.2
# Requests per second one access key may make (every server process counted), with bursts of
# as many.
DEFAULT_RATE_PER_SECOND = 50.0
# The consumer label when the access key is the room's code: the page's label for the SDK.
SDK_LABEL = "sdk"


# --- the protocol's own refusals --------------------------------------------------------------


class _CoralError(sqs.SqsError):
    """An error of the AWS front end rather than of SQS (authentication, the protocol)."""

    namespace: ClassVar[str] = "com.amazon.coral.service"
    sender_fault = True


class InvalidClientTokenId(_CoralError):
    code = "UnrecognizedClientException"
    query_code = "InvalidClientTokenId"
    http_status = 403


class MissingAuthenticationToken(_CoralError):
    code = "MissingAuthenticationTokenException"
    query_code = "MissingAuthenticationToken"
    http_status = 403


class RequestEntityTooLarge(_CoralError):
    code = query_code = "RequestEntityTooLarge"
    http_status = 413


class SerializationException(_CoralError):
    code = query_code = "SerializationException"
    http_status = 400


class UnknownOperation(_CoralError):
    code = "UnknownOperationException"
    query_code = "InvalidAction"
    http_status = 400


class MethodNotAllowed(UnknownOperation):
    http_status = 405


class AccessDenied(_CoralError):
    # What AWS answers a caller its policy does not allow; boto3's Error.Code is AccessDenied.
    code = "AccessDeniedException"
    query_code = "AccessDenied"
    http_status = 403


class RequestThrottled(sqs.SqsError):
    # boto3 reads ThrottlingException and retries with backoff, as it does against AWS.
    code = "RequestThrottled"
    query_code = "ThrottlingException"
    http_status = 400
    sender_fault = True

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        # Whole seconds, as the message says: answered as Retry-After too.
        self.retry_after = retry_after


def _error_response(error: sqs.SqsError, request_id: str) -> HttpResponse:
    namespace = getattr(error, "namespace", "com.amazonaws.sqs")
    response = HttpResponse(
        json.dumps({"__type": f"{namespace}#{error.code}", "message": error.message}),
        status=error.http_status,
        content_type=CONTENT_TYPE,
    )
    fault = "Sender" if error.sender_fault else "Receiver"
    response["x-amzn-query-error"] = f"{error.query_code};{fault}"
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    response["x-amzn-RequestId"] = request_id
    return response


def _success_response(answer: dict[str, Any], request_id: str) -> HttpResponse:
    response = HttpResponse(json.dumps(answer), content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = request_id
    return response


# --- the rate limit ---------------------------------------------------------------------------


def _throttle(request: HttpRequest, access_key: str | None) -> None:
    rate = float(getattr(settings, "LOGLAB_SQS_API_RATE_PER_SECOND", DEFAULT_RATE_PER_SECOND))
    key = f"key:{access_key.upper()}" if access_key else f"ip:{request.META.get('REMOTE_ADDR')}"
    # The same shared token buckets as the REST Proxy API's, under keys of their own.
    wait = buckets.take(("sqs", key), rate=rate, burst=max(rate, 1.0))
    if wait:
        seconds = retry_seconds(wait)
        raise RequestThrottled(
            f"Rate exceeded: at most {rate:g} requests per second per access key here. "
            f"Retry in {seconds} s (the AWS SDKs retry by themselves, with backoff).",
            retry_after=seconds,
        )


# Sends in a classroom are held to a student's produce rate, per client address.
PRODUCING_ACTIONS = frozenset({"SendMessage", "SendMessageBatch"})


def _classroom_send_throttle(request: HttpRequest, caller: Caller, params: dict) -> None:
    entries = params.get("Entries")
    count = len(entries) if isinstance(entries, list) and entries else 1
    try:
        api_produce_rate_check(request=request, room=caller.room, count=count)
    except TooManyRequests as error:
        if not error.retryable:  # the SDKs would retry a throttle forever
            raise sqs.InvalidParameterValue(error.message) from None
        raise RequestThrottled(error.message, retry_after=error.retry_after) from None


# --- reading the request ----------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/")


def _access_key(request: HttpRequest) -> str | None:
    """The access key id of the SigV4 `Authorization` header. The signature is not checked."""
    found = _CREDENTIAL.search(request.META.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else None


def _body(request: HttpRequest) -> dict[str, Any]:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    too_large = RequestEntityTooLarge(
        f"The request body is larger than LogLab's {MAX_REQUEST_BYTES // 1024} KB."
    )
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(raw) > MAX_REQUEST_BYTES:
        raise too_large
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except (ValueError, RecursionError):
        raise SerializationException("The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise SerializationException("The request body is a JSON object of the action's members.")
    try:
        # A "\ud800" escape parses to a lone surrogate, which is no text SQS (or a database)
        # can store.
        json.dumps(params, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationException("The request body holds invalid Unicode.") from None
    return params


def _action(request: HttpRequest) -> str:
    target = request.headers.get("X-Amz-Target", "")
    service, _, action = target.partition(".")
    if service == "AmazonSQS" and action:
        return action
    hint = ""
    form = request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
    if form or "Action=" in request.META.get("QUERY_STRING", ""):
        hint = " (this request looks like the older Query protocol, Action=...)"
    raise UnknownOperation(
        "LogLab's SQS endpoint speaks the AWS JSON 1.0 protocol of current AWS SDKs: POST with "
        f"X-Amz-Target: AmazonSQS.<Action> and a JSON body{hint}."
    )


def _str(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise sqs.MissingParameter(f"The request must contain the parameter {name}.")
        return None
    if not isinstance(value, str):
        raise SerializationException(f"{name} is a string.")
    return value


def _int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise sqs.MissingParameter(f"The request must contain the parameter {name}.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SerializationException(f"{name} is an integer.")
    return value


def _str_map(params: dict[str, Any], name: str) -> dict[str, str]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SerializationException(f"{name} is a map of strings to strings.")
    return value


def _str_list(params: dict[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SerializationException(f"{name} is a list of strings.")
    return value


def _entries(params: dict[str, Any]) -> list[dict[str, Any]]:
    value = params.get("Entries")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise SerializationException("Entries is a list of objects.")
    for entry in value:
        _str(entry, "Id")
    return value


def _queue_name(queue_url: str) -> str:
    """The queue a QueueUrl names: its last path segment (a bare name works too)."""
    path = urlsplit(queue_url).path if "://" in queue_url else queue_url
    return path.rstrip("/").rsplit("/", 1)[-1]


# --- the room and the queue -------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    room: Room
    consumer: str  # the label the page shows on the messages this caller holds
    base_url: str  # the endpoint, to which "/000000000000/<name>" makes a QueueUrl

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/{ACCOUNT_ID}/{name}"


def _room_for(request: HttpRequest, path_code: str | None, access_key: str | None) -> Caller:
    """Who calls, in which room.

    - `api/sqs/` : the access key id is the room's join code (any case).
    - `api/sqs/<code>/` : the room is the path's. An access key id that is another room's code
      is refused (a mix-up); any other access key id is just a name, and labels the messages
      this caller holds on the page.
    """
    key_room = actions.sqs_api_room(access_key) if access_key else None
    if path_code is None:
        if access_key is None:
            raise MissingAuthenticationToken(
                "Request is missing Authentication Token. Sign the request (any AWS SDK does) "
                "with the room's code as the access key id."
            )
        if key_room is None:
            raise InvalidClientTokenId(
                "The security token included in the request is invalid. LogLab: the access key "
                f"id is the room's join code, and no room has the code {access_key!r}."
            )
        room, label = key_room, SDK_LABEL
        base = reverse("sqs_api")
    else:
        room = actions.sqs_api_room(path_code)
        if room is None:
            raise InvalidClientTokenId(
                "The security token included in the request is invalid. LogLab: no room has "
                f"the code {path_code!r} of this endpoint URL."
            )
        if key_room is not None and key_room.pk != room.pk:
            raise InvalidClientTokenId(
                f"The security token included in the request is invalid. LogLab: the access "
                f"key id is room {key_room.code}'s code, but the endpoint URL is room "
                f"{room.code}'s."
            )
        label = SDK_LABEL
        if access_key and key_room is None:
            label = access_key.replace("\x00", "").strip()[:MAX_CONSUMER_LABEL_CHARS]
            label = label or SDK_LABEL
        base = reverse("sqs_api_room", kwargs={"code": room.code})
    return Caller(room=room, consumer=label, base_url=request.build_absolute_uri(base).rstrip("/"))


def _queue(caller: Caller, params: dict[str, Any]) -> SqsQueue:
    url = _str(params, "QueueUrl", required=True)
    assert url is not None
    return actions.sqs_api_queue(room=caller.room, name=_queue_name(url))


# --- the actions ------------------------------------------------------------------------------


def create_queue(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = _str(params, "QueueName", required=True) or ""
    # Tags ("tags") are accepted and not kept: LogLab does not model them.
    row = actions.sqs_api_queue_create(
        room=caller.room, name=name, attributes=_str_map(params, "Attributes")
    )
    return {"QueueUrl": caller.queue_url(row.name)}


def get_queue_url(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = _str(params, "QueueName", required=True) or ""
    row = actions.sqs_api_queue(room=caller.room, name=name)
    return {"QueueUrl": caller.queue_url(row.name)}


def list_queues(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    names, token = actions.sqs_api_queue_names(
        room=caller.room,
        prefix=_str(params, "QueueNamePrefix"),
        max_results=_int(params, "MaxResults"),
        next_token=_str(params, "NextToken"),
    )
    answer: dict[str, Any] = {}
    if names:
        answer["QueueUrls"] = [caller.queue_url(name) for name in names]
    if token:
        answer["NextToken"] = token
    return answer


def _no_message_attributes(params: dict[str, Any]) -> None:
    if params.get("MessageAttributes") or params.get("MessageSystemAttributes"):
        raise actions.UnsupportedOperation(
            "LogLab does not model message attributes (MessageAttributes, "
            "MessageSystemAttributes): put what the consumer needs in the body."
        )


def _send_answer(result: sqs.SendResult) -> dict[str, Any]:
    answer = {"MD5OfMessageBody": result.md5_of_message_body, "MessageId": result.message_id}
    if result.sequence_number is not None:
        answer["SequenceNumber"] = result.sequence_number
    return answer


def send_message(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    body = _str(params, "MessageBody", required=True) or ""
    _no_message_attributes(params)
    result = actions.sqs_api_send(
        queue=queue,
        body=body,
        message_group_id=_str(params, "MessageGroupId"),
        deduplication_id=_str(params, "MessageDeduplicationId"),
        delay_seconds=_int(params, "DelaySeconds"),
    )
    return _send_answer(result)


def _failed(entry: sqs.BatchResultErrorEntry) -> dict[str, Any]:
    return {
        "Id": entry.id,
        "SenderFault": entry.sender_fault,
        "Code": entry.code,
        "Message": entry.message,
    }


def send_message_batch(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    entries = []
    for entry in _entries(params):
        _no_message_attributes(entry)
        entries.append(
            sqs.SendBatchEntry(
                id=_str(entry, "Id") or "",
                message_body=_str(entry, "MessageBody") or "",
                message_group_id=_str(entry, "MessageGroupId"),
                message_deduplication_id=_str(entry, "MessageDeduplicationId"),
                delay_seconds=_int(entry, "DelaySeconds"),
            )
        )
    result = actions.sqs_api_send_batch(queue=queue, entries=entries)
    return {
        "Successful": [{"Id": item.id, **_send_answer(item.result)} for item in result.successful],
        "Failed": [_failed(entry) for entry in result.failed],
    }


def delete_message(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    handle = _str(params, "ReceiptHandle", required=True) or ""
    actions.sqs_api_delete(queue=queue, receipt_handle=handle)
    return {}


def delete_message_batch(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    entries = [
        sqs.DeleteBatchEntry(
            id=_str(entry, "Id") or "", receipt_handle=_str(entry, "ReceiptHandle") or ""
        )
        for entry in _entries(params)
    ]
    result = actions.sqs_api_delete_batch(queue=queue, entries=entries)
    return {
        "Successful": [{"Id": entry_id} for entry_id in result.successful],
        "Failed": [_failed(entry) for entry in result.failed],
    }


def change_message_visibility(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    handle = _str(params, "ReceiptHandle", required=True) or ""
    timeout = _int(params, "VisibilityTimeout", required=True)
    assert timeout is not None
    actions.sqs_api_change_visibility(queue=queue, receipt_handle=handle, timeout=timeout)
    return {}


def change_message_visibility_batch(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    entries = []
    for entry in _entries(params):
        timeout = _int(entry, "VisibilityTimeout", required=True)
        assert timeout is not None
        entries.append(
            sqs.ChangeVisibilityBatchEntry(
                id=_str(entry, "Id") or "",
                receipt_handle=_str(entry, "ReceiptHandle") or "",
                visibility_timeout=timeout,
            )
        )
    result = actions.sqs_api_change_visibility_batch(queue=queue, entries=entries)
    return {
        "Successful": [{"Id": entry_id} for entry_id in result.successful],
        "Failed": [_failed(entry) for entry in result.failed],
    }


def get_queue_attributes(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    attributes = actions.sqs_api_queue_attributes(
        queue=queue, names=_str_list(params, "AttributeNames")
    )
    return {"Attributes": attributes} if attributes else {}


def set_queue_attributes(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = _queue(caller, params)
    if params.get("Attributes") is None:
        raise sqs.MissingParameter("The request must contain the parameter Attributes.")
    actions.sqs_api_queue_attributes_set(queue=queue, attributes=_str_map(params, "Attributes"))
    return {}


def purge_queue(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    actions.sqs_api_purge(queue=_queue(caller, params))
    return {}


def delete_queue(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    actions.sqs_api_queue_delete(queue=_queue(caller, params))
    return {}


async def receive_message(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage. With a wait (WaitTimeSeconds, or the queue's
    ReceiveMessageWaitTimeSeconds) and nothing to receive, it waits up to LONG_POLL_MAX_S of
    wall time, looking again every POLL_INTERVAL_S, then receives once."""
    queue = await sync_to_async(_queue)(caller, params)
    count = _int(params, "MaxNumberOfMessages")
    count = 1 if count is None else count
    timeout = _int(params, "VisibilityTimeout")
    names = _str_list(params, "AttributeNames") + _str_list(params, "MessageSystemAttributeNames")
    _str_list(params, "MessageAttributeNames")  # accepted; LogLab keeps no message attributes
    _str(params, "ReceiveRequestAttemptId")  # accepted; receives are not deduplicated here
    wait = await sync_to_async(actions.sqs_api_wait_seconds)(
        queue=queue, requested=_int(params, "WaitTimeSeconds")
    )
    if wait > 0:
        deadline = time.monotonic() + min(wait, LONG_POLL_MAX_S)
        receivable = sync_to_async(actions.sqs_api_receivable)
        while not await receivable(queue=queue, max_messages=count, visibility_timeout=timeout):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(POLL_INTERVAL_S, remaining))
    result = await sync_to_async(actions.sqs_api_receive)(
        queue=queue, max_messages=count, visibility_timeout=timeout, consumer=caller.consumer
    )
    messages = []
    for message in result.messages:
        item: dict[str, Any] = {
            "MessageId": message.message_id,
            "ReceiptHandle": message.receipt_handle,
            "MD5OfBody": message.md5_of_body,
            "Body": message.body,
        }
        attributes = actions.sqs_api_message_attributes(message, names)
        if attributes:
            item["Attributes"] = attributes
        messages.append(item)
    return {"Messages": messages} if messages else {}


Action = Callable[[Caller, dict[str, Any]], dict[str, Any]]

ACTIONS: dict[str, Action] = {
    "CreateQueue": create_queue,
    "GetQueueUrl": get_queue_url,
    "ListQueues": list_queues,
    "SendMessage": send_message,
    "SendMessageBatch": send_message_batch,
    "DeleteMessage": delete_message,
    "DeleteMessageBatch": delete_message_batch,
    "ChangeMessageVisibility": change_message_visibility,
    "ChangeMessageVisibilityBatch": change_message_visibility_batch,
    "GetQueueAttributes": get_queue_attributes,
    "SetQueueAttributes": set_queue_attributes,
    "PurgeQueue": purge_queue,
    "DeleteQueue": delete_queue,
}
ASYNC_ACTIONS: dict[str, Callable[[Caller, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "ReceiveMessage": receive_message,
}
# Every action names the classroom locks it passes: one missing fails at import.
if _unlisted := sorted({*ACTIONS, *ASYNC_ACTIONS} ^ set(SQS_LOCKS)):
    raise RuntimeError(f"permissions.SQS_LOCKS and the SQS actions differ on {_unlisted}")
# SQS actions LogLab does not model: refused with UnsupportedOperation, not as unknown.
UNMODELLED = frozenset(
    {
        "AddPermission",
        "RemovePermission",
        "TagQueue",
        "UntagQueue",
        "ListQueueTags",
        "ListDeadLetterSourceQueues",
        "StartMessageMoveTask",
        "CancelMessageMoveTask",
        "ListMessageMoveTasks",
    }
)


# --- the view ---------------------------------------------------------------------------------


async def _answer(request: HttpRequest, code: str | None) -> dict[str, Any]:
    if request.method != "POST":
        raise MethodNotAllowed(
            "LogLab's SQS endpoint answers POST requests in the AWS JSON 1.0 protocol: point an "
            "AWS SDK at it (endpoint_url), see docs/clients-sqs.md."
        )
    action = _action(request)
    params = _body(request)
    access_key = _access_key(request)
    # The buckets are shared (Redis or the database): asked from a thread, not the event loop.
    await sync_to_async(_throttle)(request, access_key)
    caller = await sync_to_async(_room_for)(request, code, access_key)
    try:  # reads the room already loaded: no query
        api_lock_check(caller.room, SQS_LOCKS.get(action, ()))
    except Forbidden as error:
        raise AccessDenied(error.message) from None
    if action in PRODUCING_ACTIONS and caller.room.kind == Room.Kind.CLASSROOM:
        await sync_to_async(_classroom_send_throttle)(request, caller, params)
    if action in ASYNC_ACTIONS:
        return await ASYNC_ACTIONS[action](caller, params)
    if action in ACTIONS:
        return await sync_to_async(ACTIONS[action])(caller, params)
    if action in UNMODELLED:
        raise actions.UnsupportedOperation(
            f"LogLab does not model {action}. It answers "
            + ", ".join(sorted([*ACTIONS, *ASYNC_ACTIONS]))
            + "."
        )
    raise UnknownOperation(f"Unknown operation AmazonSQS.{action}.")


@csrf_exempt
async def endpoint(
    request: HttpRequest,
    code: str | None = None,
    account: str | None = None,
    name: str | None = None,
) -> HttpResponse:
    """Every SQS action, at the endpoint and at each queue's URL (`account` and `name` are
    not used: the body's QueueUrl names the queue, as in SQS)."""
    request_id = str(uuid.uuid4())
    try:
        answer = await _answer(request, code)
    except sqs.SqsError as error:
        return _error_response(error, request_id)
    except LogLabError as error:
        # A refusal the services did not put in SQS's terms yet.
        return _error_response(actions.sqs_error_from(error), request_id)
    except Exception:
        logger.exception("SQS endpoint: unexpected error (request %s)", request_id)
        internal = sqs.SqsError("We encountered an internal error. Please try again.")
        return _error_response(internal, request_id)
    return _success_response(answer, request_id)
