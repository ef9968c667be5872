"""Amazon SQS queues as pure functions over frozen state: FIFO, and standard for contrast.

What is reproduced, with the AWS names (API Reference and Developer Guide):

- FIFO order within a ``MessageGroupId``. While any message of a group is in flight, no later
  message of that group is delivered (the group is blocked); other groups flow. One receive
  fills up from the oldest available group first, then takes other groups.
- Deduplication over a 5 minute interval, by ``MessageDeduplicationId`` or, with
  ``ContentBasedDeduplication``, the SHA-256 hex of the body. A duplicate is accepted (it gets
  the original ``MessageId`` and ``SequenceNumber``) and never delivered.
- Visibility timeout, receipt handles that change at every receive, ``ApproximateReceiveCount``,
  retention, queue-level ``DelaySeconds``, ``PurgeQueue``'s 60 s cool-down, batch validation and
  the ``RedrivePolicy`` (``maxReceiveCount`` -> dead-letter queue).

Simplifications, said here so the lessons can say them too: a standard queue here delivers in
send order and never twice at once (a real one is best-effort ordered and at-least-once); a
purge is instant (AWS takes up to 60 s); long polling is the caller's job (the engine answers
with what is available at ``now_ms``); message attributes, encryption and throttling are not
modelled.

Time is virtual milliseconds passed in by the caller and may never go backwards. Ids (message
ids, sequence numbers, receipt handles) derive from a counter in the state and the queue's seed,
so the same calls give the same queue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import ClassVar, Final

MS_PER_SECOND: Final = 1_000
DEDUPLICATION_INTERVAL_MS: Final = 5 * 60 * MS_PER_SECOND
RECEIVE_ATTEMPT_INTERVAL_MS: Final = 5 * 60 * MS_PER_SECOND
PURGE_COOLDOWN_MS: Final = 60 * MS_PER_SECOND
MAX_VISIBILITY_TIMEOUT_S: Final = 43_200
MAX_MESSAGES_PER_RECEIVE: Final = 10
MAX_BATCH_ENTRIES: Final = 10
# The sum of the bodies of one batch may not exceed the largest message SQS accepts (1 MiB
# since August 2025), whatever the queue's own MaximumMessageSize.
MAX_BATCH_PAYLOAD_BYTES: Final = 1_048_576
MAX_MESSAGE_DELAY_S: Final = 900
MIN_MAX_RECEIVE_COUNT: Final = 1
MAX_MAX_RECEIVE_COUNT: Final = 1_000

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_ID: Final = "000000000000"
DEFAULT_SEED: Final = "loglab"

# Sequence numbers: AWS returns large (up to 128-bit) non-consecutive decimal strings. Each id
# gets its own stride and a jitter smaller than the stride, so they always increase as numbers.
_SEQUENCE_BASE: Final = 18_000_000_000_000_000_000
_SEQUENCE_STRIDE: Final = 1_000_000
# Real receipt handles are opaque base64 that starts like this; learners recognise the look.
_HANDLE_PREFIX: Final = "AQEB"

_ALLOWED_ID_CHARS: Final = frozenset(string.ascii_letters + string.digits + string.punctuation)
_BATCH_ENTRY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")
_STANDARD_QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_QUEUE_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:([A-Za-z0-9_-]{1,80}(?:\.fifo)?)"
)
_INVALID_BODY_CHAR: Final = re.compile(
    "[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


# --- errors -------------------------------------------------------------------------------


class SqsError(ValueError):
    """An error SQS itself would return, ready to be served over the SQS JSON protocol.

    ``code`` is the error shape name of the JSON protocol (``__type``); ``query_code`` is what
    the ``x-amzn-query-error`` header carries, and what boto3 reports as ``Error.Code``.
    """

    code: ClassVar[str] = "InternalFailure"
    query_code: ClassVar[str] = "InternalFailure"
    http_status: ClassVar[int] = 500
    sender_fault: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValue(SqsError):
    code = query_code = "InvalidParameterValue"
    http_status = 400
    sender_fault = True


class MissingParameter(SqsError):
    code = query_code = "MissingParameter"
    http_status = 400
    sender_fault = True


class InvalidAttributeName(SqsError):
    code = query_code = "InvalidAttributeName"
    http_status = 400
    sender_fault = True


class InvalidAttributeValue(SqsError):
    code = query_code = "InvalidAttributeValue"
    http_status = 400
    sender_fault = True


class InvalidMessageContents(SqsError):
    code = query_code = "InvalidMessageContents"
    http_status = 400
    sender_fault = True


class ReceiptHandleIsInvalid(SqsError):
    code = query_code = "ReceiptHandleIsInvalid"
    http_status = 404
    sender_fault = True


class MessageNotInflight(SqsError):
    code = "MessageNotInflight"
    query_code = "AWS.SimpleQueueService.MessageNotInflight"
    http_status = 400
    sender_fault = True


class PurgeQueueInProgress(SqsError):
    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"
    http_status = 403
    sender_fault = True


class EmptyBatchRequest(SqsError):
    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"
    http_status = 400
    sender_fault = True


class TooManyEntriesInBatchRequest(SqsError):
    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    http_status = 400
    sender_fault = True


class BatchEntryIdsNotDistinct(SqsError):
    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    http_status = 400
    sender_fault = True


class InvalidBatchEntryId(SqsError):
    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"
    http_status = 400
    sender_fault = True


class BatchRequestTooLong(SqsError):
    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"
    http_status = 400
    sender_fault = True


class TimeWentBackwards(SqsError):
    """The caller's clock moved backwards: a bug in the caller, not something SQS says."""


# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class RedrivePolicy:
    """``RedrivePolicy``: after ``max_receive_count`` receives, the next receive moves the
    message to the dead-letter queue instead of delivering it."""

    dead_letter_target_arn: str
    max_receive_count: int = 10

    @property
    def dead_letter_queue_name(self) -> str:
        return self.dead_letter_target_arn.rsplit(":", 1)[-1]

    def to_json(self) -> str:
        return json.dumps(
            {
                "deadLetterTargetArn": self.dead_letter_target_arn,
                "maxReceiveCount": self.max_receive_count,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class QueueAttributes:
    """The settable queue attributes, defaults as AWS creates them (seconds, like the API)."""

    fifo_queue: bool = False
    content_based_deduplication: bool = False
    visibility_timeout: int = 30
    message_retention_period: int = 345_600
    delay_seconds: int = 0
    receive_message_wait_time_seconds: int = 0
    maximum_message_size: int = 1_048_576
    redrive_policy: RedrivePolicy | None = None
    deduplication_scope: str = "queue"
    fifo_throughput_limit: str = "perQueue"
    # Accepted and echoed back but without effect here (policies, encryption).
    passthrough: tuple[tuple[str, str], ...] = ()

    @property
    def high_throughput(self) -> bool:
        return (
            self.deduplication_scope == "messageGroup"
            and self.fifo_throughput_limit == "perMessageGroupId"
        )


_INTEGER_ATTRIBUTES: Final[dict[str, tuple[str, int, int]]] = {
    "DelaySeconds": ("delay_seconds", 0, 900),
    "MaximumMessageSize": ("maximum_message_size", 1_024, 1_048_576),
    "MessageRetentionPeriod": ("message_retention_period", 60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": ("receive_message_wait_time_seconds", 0, 20),
    "VisibilityTimeout": ("visibility_timeout", 0, MAX_VISIBILITY_TIMEOUT_S),
}
_CHOICE_ATTRIBUTES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "DeduplicationScope": ("deduplication_scope", ("messageGroup", "queue")),
    "FifoThroughputLimit": ("fifo_throughput_limit", ("perQueue", "perMessageGroupId")),
}
_FIFO_ONLY_ATTRIBUTES: Final = frozenset(
    {"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
)
_PASSTHROUGH_ATTRIBUTES: Final = frozenset(
    {
        "Policy",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
    }
)
_COMPUTED_ATTRIBUTES: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A stored message. ``order`` is its place in the queue and never changes, which is how
    a message whose visibility ran out goes back to the same place in its group."""

    message_id: str
    body: str
    md5_of_body: str
    order: int
    sent_timestamp: int
    # Retention counts from here; a FIFO dead-letter queue resets it, a standard one does not.
    enqueued_ms: int
    visible_at_ms: int
    message_group_id: str | None = None
    message_deduplication_id: str | None = None
    sequence_number: str | None = None
    receive_count: int = 0
    first_receive_timestamp: int | None = None
    receipt_handle: str | None = None
    received_at_ms: int | None = None
    in_flight_until_ms: int | None = None

    @property
    def in_flight(self) -> bool:
        return self.in_flight_until_ms is not None


@dataclass(frozen=True)
class DeduplicationRecord:
    # "" when DeduplicationScope is queue, the group id when it is messageGroup.
    scope: str
    message_deduplication_id: str
    message_id: str
    sequence_number: str | None
    sent_ms: int


@dataclass(frozen=True)
class ReceiveAttempt:
    receive_request_attempt_id: str
    at_ms: int
    receipt_handles: tuple[str, ...]


@dataclass(frozen=True)
class QueueTotals:
    """Running counts for the board and for checking that nothing is lost."""

    sent: int = 0
    duplicates: int = 0
    deliveries: int = 0
    deleted: int = 0
    expired: int = 0
    dead_lettered: int = 0
    purged: int = 0


@dataclass(frozen=True)
class Queue:
    name: str
    arn: str
    attributes: QueueAttributes
    created_ms: int
    last_modified_ms: int
    clock_ms: int
    seed: str = DEFAULT_SEED
    messages: tuple[Message, ...] = ()
    deduplication: tuple[DeduplicationRecord, ...] = ()
    receive_attempts: tuple[ReceiveAttempt, ...] = ()
    counter: int = 0
    last_purge_ms: int | None = None
    totals: QueueTotals = QueueTotals()

    @property
    def fifo(self) -> bool:
        return self.attributes.fifo_queue


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    message_id: str
    md5_of_message_body: str
    sequence_number: str | None
    message_deduplication_id: str | None
    # Not in AWS's answer (a duplicate looks like a success there); the board shows it.
    duplicate: bool = False


@dataclass(frozen=True)
class ReceivedMessage:
    """What a consumer gets from ReceiveMessage."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    sent_timestamp: int
    approximate_receive_count: int
    approximate_first_receive_timestamp: int
    visibility_deadline_ms: int
    message_group_id: str | None = None
    message_deduplication_id: str | None = None
    sequence_number: str | None = None

    def system_attributes(self) -> dict[str, str]:
        """The message system attributes under their AWS names, as the API returns them."""
        attributes = {
            "SentTimestamp": str(self.sent_timestamp),
            "ApproximateReceiveCount": str(self.approximate_receive_count),
            "ApproximateFirstReceiveTimestamp": str(self.approximate_first_receive_timestamp),
        }
        optional = {
            "MessageGroupId": self.message_group_id,
            "MessageDeduplicationId": self.message_deduplication_id,
            "SequenceNumber": self.sequence_number,
        }
        attributes.update({name: value for name, value in optional.items() if value is not None})
        return attributes


@dataclass(frozen=True)
class DeadLetterMove:
    """A message the receive moved out instead of delivering; the caller hands it to
    :func:`accept_dead_letter` on the queue named ``target_queue_name``.

    On a FIFO queue this breaks the group's order: the next message of the group is delivered
    while this one waits in the dead-letter queue.
    """

    source_queue_name: str
    target_arn: str
    target_queue_name: str
    moved_at_ms: int
    message: Message


@dataclass(frozen=True)
class ReceiveResult:
    messages: tuple[ReceivedMessage, ...]
    dead_lettered: tuple[DeadLetterMove, ...] = ()
    # True when a ReceiveRequestAttemptId retry returned the earlier answer again.
    replayed: bool = False


@dataclass(frozen=True)
class DeleteResult:
    # None when the handle pointed at a message that is already gone: AWS still says OK.
    message_id: str | None

    @property
    def deleted(self) -> bool:
        return self.message_id is not None


@dataclass(frozen=True)
class VisibilityChange:
    message_id: str
    in_flight_until_ms: int | None


@dataclass(frozen=True)
class PurgeResult:
    purged_message_ids: tuple[str, ...]


@dataclass(frozen=True)
class Settled:
    """What happened by itself as time passed: nobody called anything for these."""

    expired: tuple[str, ...] = ()
    returned: tuple[str, ...] = ()
    released: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendBatchEntry:
    id: str
    message_body: str
    message_group_id: str | None = None
    message_deduplication_id: str | None = None
    delay_seconds: int | None = None


@dataclass(frozen=True)
class DeleteBatchEntry:
    id: str
    receipt_handle: str


@dataclass(frozen=True)
class ChangeVisibilityBatchEntry:
    id: str
    receipt_handle: str
    visibility_timeout: int


@dataclass(frozen=True)
class BatchResultErrorEntry:
    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True)
class SendBatchResultEntry:
    id: str
    result: SendResult


@dataclass(frozen=True)
class SendBatchResult:
    successful: tuple[SendBatchResultEntry, ...]
    failed: tuple[BatchResultErrorEntry, ...]


@dataclass(frozen=True)
class BatchResult:
    """Delete and ChangeMessageVisibility batches: the ids that worked, and the failures."""

    successful: tuple[str, ...]
    failed: tuple[BatchResultErrorEntry, ...]


# --- views for the board ------------------------------------------------------------------


@dataclass(frozen=True)
class LaneMessage:
    message_id: str
    body: str
    sequence_number: str | None
    state: str  # "visible", "delayed" or "in_flight"
    receive_count: int
    visible_at_ms: int
    in_flight_until_ms: int | None


@dataclass(frozen=True)
class GroupLane:
    """One message group as the board draws it: a blocked lane waits on its in-flight head."""

    message_group_id: str
    queued: tuple[LaneMessage, ...]
    in_flight: tuple[LaneMessage, ...]
    blocked: bool


@dataclass(frozen=True)
class QueueCounts:
    approximate_number_of_messages: int
    approximate_number_of_messages_not_visible: int
    approximate_number_of_messages_delayed: int


# --- queue creation and attributes -------------------------------------------------------


def create_queue(
    name: str,
    attributes: Mapping[str, object] | None = None,
    *,
    now_ms: int = 0,
    seed: str = DEFAULT_SEED,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> Queue:
    """CreateQueue: ``attributes`` uses the AWS names and string values (``"true"``, ``"30"``)."""
    given = dict(attributes or {})
    fifo = _parse_bool("FifoQueue", given.pop("FifoQueue", False))
    _check_queue_name(name, fifo)
    parsed = _apply_attributes(QueueAttributes(fifo_queue=fifo), given)
    return Queue(
        name=name,
        arn=f"arn:aws:sqs:{region}:{account_id}:{name}",
        attributes=parsed,
        created_ms=now_ms,
        last_modified_ms=now_ms,
        clock_ms=now_ms,
        seed=seed,
    )


def set_queue_attributes(queue: Queue, attributes: Mapping[str, object], *, now_ms: int) -> Queue:
    """SetQueueAttributes. A shorter retention period applies to the messages already there."""
    given = dict(attributes)
    fifo = _parse_bool("FifoQueue", given.pop("FifoQueue", queue.fifo))
    if fifo != queue.fifo:
        raise InvalidAttributeValue(
            "Invalid value for the parameter FifoQueue. "
            "Reason: Modifying queue type is not supported."
        )
    queue, _ = advance(queue, now_ms=now_ms)
    updated = replace(
        queue,
        attributes=_apply_attributes(queue.attributes, given),
        last_modified_ms=now_ms,
    )
    updated, _ = _settle(updated, now_ms)
    return updated


def get_queue_attributes(queue: Queue, names: Sequence[str] = ("All",)) -> dict[str, str]:
    """GetQueueAttributes as of the queue's clock (call :func:`advance` first to move it)."""
    every = _all_attributes(queue)
    if "All" in names:
        return every
    unknown = [name for name in names if name not in every and not _is_known_unset(queue, name)]
    if unknown:
        raise InvalidAttributeName(f"Unknown Attribute {unknown[0]}.")
    return {name: every[name] for name in names if name in every}


def _is_known_unset(queue: Queue, name: str) -> bool:
    # A known attribute that simply has no value (no RedrivePolicy yet) is not an error.
    known = set(_INTEGER_ATTRIBUTES) | _PASSTHROUGH_ATTRIBUTES | {"RedrivePolicy"}
    return name in known or (queue.fifo and name in _FIFO_ONLY_ATTRIBUTES)


def _all_attributes(queue: Queue) -> dict[str, str]:
    attributes = queue.attributes
    counts = approximate_counts(queue)
    result = {
        "ApproximateNumberOfMessages": str(counts.approximate_number_of_messages),
        "ApproximateNumberOfMessagesNotVisible": str(
            counts.approximate_number_of_messages_not_visible
        ),
        "ApproximateNumberOfMessagesDelayed": str(counts.approximate_number_of_messages_delayed),
        "CreatedTimestamp": str(queue.created_ms // MS_PER_SECOND),
        "LastModifiedTimestamp": str(queue.last_modified_ms // MS_PER_SECOND),
        "QueueArn": queue.arn,
    }
    for aws_name, (field_name, _, _) in _INTEGER_ATTRIBUTES.items():
        result[aws_name] = str(getattr(attributes, field_name))
    if attributes.redrive_policy is not None:
        result["RedrivePolicy"] = attributes.redrive_policy.to_json()
    if queue.fifo:
        result["FifoQueue"] = "true"
        result["ContentBasedDeduplication"] = _bool_text(attributes.content_based_deduplication)
        result["DeduplicationScope"] = attributes.deduplication_scope
        result["FifoThroughputLimit"] = attributes.fifo_throughput_limit
    result.update(dict(attributes.passthrough))
    return result


def _apply_attributes(current: QueueAttributes, given: Mapping[str, object]) -> QueueAttributes:
    changes: dict[str, object] = {}
    passthrough = dict(current.passthrough)
    for name, value in given.items():
        if name in _INTEGER_ATTRIBUTES:
            field_name, low, high = _INTEGER_ATTRIBUTES[name]
            changes[field_name] = _parse_int_attribute(name, value, low, high)
        elif name == "RedrivePolicy":
            changes["redrive_policy"] = _parse_redrive_policy(value, current.fifo_queue)
        elif name in _FIFO_ONLY_ATTRIBUTES and current.fifo_queue:
            changes.update(_parse_fifo_attribute(name, value))
        elif name in _PASSTHROUGH_ATTRIBUTES:
            passthrough[name] = _text(value)
        else:
            # AWS answers this way for FIFO-only attributes on a standard queue too.
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
    changes["passthrough"] = tuple(sorted(passthrough.items()))
    result = replace(current, **changes)
    _check_throughput_combination(result)
    return result


def _parse_fifo_attribute(name: str, value: object) -> dict[str, object]:
    if name == "ContentBasedDeduplication":
        return {"content_based_deduplication": _parse_bool(name, value)}
    field_name, choices = _CHOICE_ATTRIBUTES[name]
    text = _text(value)
    if text not in choices:
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return {field_name: text}


def _check_throughput_combination(attributes: QueueAttributes) -> None:
    if (
        attributes.fifo_throughput_limit == "perMessageGroupId"
        and attributes.deduplication_scope != "messageGroup"
    ):
        raise InvalidAttributeValue(
            "Invalid value for the parameter FifoThroughputLimit. Reason: The perMessageGroupId "
            "value is allowed only when the value for DeduplicationScope is messageGroup."
        )


def _parse_int_attribute(name: str, value: object, low: int, high: int) -> int:
    text = _text(value)
    if not re.fullmatch(r"-?\d+", text) or not low <= int(text) <= high:
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return int(text)


def _parse_bool(name: str, value: object) -> bool:
    text = _text(value).lower()
    if text not in ("true", "false"):
        raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
    return text == "true"


def _parse_redrive_policy(value: object, fifo: bool) -> RedrivePolicy | None:
    text = value if isinstance(value, str) else json.dumps(value)
    if text == "":
        return None  # SetQueueAttributes with an empty RedrivePolicy removes it.

    def invalid(reason: str) -> InvalidAttributeValue:
        return InvalidAttributeValue(
            f"Value {text} for parameter RedrivePolicy is invalid. Reason: {reason}"
        )

    try:
        policy = json.loads(text)
    except json.JSONDecodeError:
        raise invalid("Redrive policy is not a valid JSON map.") from None
    if not isinstance(policy, dict):
        raise invalid("Redrive policy is not a valid JSON map.")
    if "deadLetterTargetArn" not in policy or "maxReceiveCount" not in policy:
        raise invalid("Redrive policy must contain deadLetterTargetArn and maxReceiveCount.")
    count = _text(policy["maxReceiveCount"])
    if not re.fullmatch(r"-?\d+", count) or not (
        MIN_MAX_RECEIVE_COUNT <= int(count) <= MAX_MAX_RECEIVE_COUNT
    ):
        raise invalid(
            f"Invalid value for maxReceiveCount: {count}, valid values are from "
            f"{MIN_MAX_RECEIVE_COUNT} to {MAX_MAX_RECEIVE_COUNT} both inclusive."
        )
    arn = _text(policy["deadLetterTargetArn"])
    match = _QUEUE_ARN.fullmatch(arn)
    if match is None:
        raise invalid("Invalid value for deadLetterTargetArn.")
    if match.group(1).endswith(".fifo") != fifo:
        raise invalid("Dead-letter target must be of same type as the source.")
    return RedrivePolicy(dead_letter_target_arn=arn, max_receive_count=int(count))


def _check_queue_name(name: str, fifo: bool) -> None:
    if fifo and not _FIFO_QUEUE_NAME.fullmatch(name):
        raise InvalidParameterValue(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or "
            "underscores, must end with .fifo suffix and be 1 to 80 in length."
        )
    if not fifo and not _STANDARD_QUEUE_NAME.fullmatch(name):
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return _bool_text(value)
    return str(value)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


# --- time ---------------------------------------------------------------------------------


def advance(queue: Queue, *, now_ms: int) -> tuple[Queue, Settled]:
    """Let virtual time reach ``now_ms``: retention expires messages, visibility timeouts run
    out (the message is visible again, in its old place), delays end.

    Every other function does this first, so calling it is only needed to see these events.
    """
    return _settle(queue, now_ms)


def _settle(queue: Queue, now_ms: int) -> tuple[Queue, Settled]:
    if now_ms < queue.clock_ms:
        raise TimeWentBackwards(
            f"time only moves forward: the queue is at {queue.clock_ms} ms, asked {now_ms} ms"
        )
    retention_ms = queue.attributes.message_retention_period * MS_PER_SECOND
    kept: list[Message] = []
    expired: list[str] = []
    returned: list[str] = []
    released: list[str] = []
    for message in queue.messages:
        if now_ms - message.enqueued_ms >= retention_ms:
            expired.append(message.message_id)
            continue
        until = message.in_flight_until_ms
        if until is not None and until <= now_ms:
            message = replace(message, in_flight_until_ms=None, visible_at_ms=until)
            returned.append(message.message_id)
        elif until is None and _delay_ends(message, queue.clock_ms, now_ms):
            released.append(message.message_id)
        kept.append(message)
    settled = replace(
        queue,
        clock_ms=now_ms,
        messages=tuple(kept),
        deduplication=tuple(
            record
            for record in queue.deduplication
            if now_ms - record.sent_ms < DEDUPLICATION_INTERVAL_MS
        ),
        receive_attempts=tuple(
            attempt
            for attempt in queue.receive_attempts
            if now_ms - attempt.at_ms < RECEIVE_ATTEMPT_INTERVAL_MS
        ),
        totals=replace(queue.totals, expired=queue.totals.expired + len(expired)),
    )
    return settled, Settled(tuple(expired), tuple(returned), tuple(released))


def _delay_ends(message: Message, before_ms: int, now_ms: int) -> bool:
    return message.receive_count == 0 and before_ms < message.visible_at_ms <= now_ms


# --- sending ------------------------------------------------------------------------------


def send(
    queue: Queue,
    body: str,
    *,
    now_ms: int,
    message_group_id: str | None = None,
    deduplication_id: str | None = None,
    delay_seconds: int | None = None,
) -> tuple[Queue, SendResult]:
    """SendMessage. On a FIFO queue ``message_group_id`` is required and a duplicate inside the
    5 minute deduplication interval is accepted, answered with the original ids, and dropped."""
    queue, _ = _settle(queue, now_ms)
    _check_body(body, queue.attributes.maximum_message_size)
    if queue.fifo:
        return _send_fifo(queue, body, now_ms, message_group_id, deduplication_id, delay_seconds)
    return _send_standard(queue, body, now_ms, message_group_id, deduplication_id, delay_seconds)


def _send_fifo(
    queue: Queue,
    body: str,
    now_ms: int,
    group_id: str | None,
    deduplication_id: str | None,
    delay_seconds: int | None,
) -> tuple[Queue, SendResult]:
    if group_id is None:
        raise MissingParameter("The request must contain the parameter MessageGroupId.")
    _check_id_parameter("MessageGroupId", group_id)
    if delay_seconds is not None:
        # FIFO queues only know the queue-level DelaySeconds.
        raise InvalidParameterValue(
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: The request include parameter that is not valid for this queue type."
        )
    dedup_id = _deduplication_id(queue, body, deduplication_id)
    scope = group_id if queue.attributes.deduplication_scope == "messageGroup" else ""
    original = _find_duplicate(queue, scope, dedup_id)
    if original is not None:
        totals = replace(queue.totals, duplicates=queue.totals.duplicates + 1)
        result = SendResult(
            message_id=original.message_id,
            md5_of_message_body=_md5(body),
            sequence_number=original.sequence_number,
            message_deduplication_id=dedup_id,
            duplicate=True,
        )
        return replace(queue, totals=totals), result
    queue, message = _enqueue(
        queue, body, now_ms, queue.attributes.delay_seconds, group_id, dedup_id, sequenced=True
    )
    record = DeduplicationRecord(
        scope, dedup_id, message.message_id, message.sequence_number, now_ms
    )
    queue = replace(queue, deduplication=(*queue.deduplication, record))
    return queue, _send_result(message)


def _send_standard(
    queue: Queue,
    body: str,
    now_ms: int,
    group_id: str | None,
    deduplication_id: str | None,
    delay_seconds: int | None,
) -> tuple[Queue, SendResult]:
    if deduplication_id is not None:
        raise InvalidParameterValue(
            f"Value {deduplication_id} for parameter MessageDeduplicationId is invalid. "
            "Reason: The request include parameter that is not valid for this queue type."
        )
    if group_id is not None:
        # Accepted on standard queues (fair queues); it does not order anything.
        _check_id_parameter("MessageGroupId", group_id)
    delay = queue.attributes.delay_seconds if delay_seconds is None else delay_seconds
    if not 0 <= delay <= MAX_MESSAGE_DELAY_S:
        raise InvalidParameterValue(
            f"Value {delay} for parameter DelaySeconds is invalid. "
            f"Reason: DelaySeconds must be >= 0 and <= {MAX_MESSAGE_DELAY_S}."
        )
    queue, message = _enqueue(queue, body, now_ms, delay, group_id, None, sequenced=False)
    return queue, _send_result(message)


def _deduplication_id(queue: Queue, body: str, given: str | None) -> str:
    if given is not None:
        _check_id_parameter("MessageDeduplicationId", given)
        return given
    if queue.attributes.content_based_deduplication:
        return hashlib.sha256(body.encode("utf-8")).hexdigest()
    raise InvalidParameterValue(
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )


def _find_duplicate(queue: Queue, scope: str, dedup_id: str) -> DeduplicationRecord | None:
    for record in queue.deduplication:
        if record.scope == scope and record.message_deduplication_id == dedup_id:
            return record
    return None


def _enqueue(
    queue: Queue,
    body: str,
    now_ms: int,
    delay_seconds: int,
    group_id: str | None,
    dedup_id: str | None,
    *,
    sequenced: bool,
) -> tuple[Queue, Message]:
    number = queue.counter + 1
    message = Message(
        message_id=_message_id(queue, number),
        body=body,
        md5_of_body=_md5(body),
        order=number,
        sent_timestamp=now_ms,
        enqueued_ms=now_ms,
        visible_at_ms=now_ms + delay_seconds * MS_PER_SECOND,
        message_group_id=group_id,
        message_deduplication_id=dedup_id,
        sequence_number=_sequence_number(queue, number) if sequenced else None,
    )
    totals = replace(queue.totals, sent=queue.totals.sent + 1)
    updated = replace(queue, counter=number, messages=(*queue.messages, message), totals=totals)
    return updated, message


def _send_result(message: Message) -> SendResult:
    return SendResult(
        message_id=message.message_id,
        md5_of_message_body=message.md5_of_body,
        sequence_number=message.sequence_number,
        message_deduplication_id=message.message_deduplication_id,
    )


def _check_body(body: str, maximum_size: int) -> None:
    if body == "":
        raise MissingParameter("The request must contain the parameter MessageBody.")
    if _INVALID_BODY_CHAR.search(body):
        raise InvalidMessageContents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | "
            "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
        )
    if len(body.encode("utf-8")) > maximum_size:
        raise InvalidParameterValue(
            "One or more parameters are invalid. "
            f"Reason: Message must be shorter than {maximum_size} bytes."
        )


def _check_id_parameter(name: str, value: str) -> None:
    if not 1 <= len(value) <= 128 or not set(value) <= _ALLOWED_ID_CHARS:
        raise InvalidParameterValue(
            f"Value {value} for parameter {name} is invalid. Reason: {name} can only include "
            "alphanumeric and punctuation characters. 1 to 128 in length."
        )


# --- receiving ----------------------------------------------------------------------------


def receive(
    queue: Queue,
    *,
    now_ms: int,
    max_messages: int = 1,
    visibility_timeout: int | None = None,
    receive_request_attempt_id: str | None = None,
) -> tuple[Queue, ReceiveResult]:
    """ReceiveMessage (``MaxNumberOfMessages`` 1..10, ``VisibilityTimeout`` overrides the
    queue's for these messages). Returns the messages and any dead-letter moves it made."""
    _check_receive_parameters(max_messages, visibility_timeout, receive_request_attempt_id)
    queue, _ = _settle(queue, now_ms)
    timeout_s = visibility_timeout
    if timeout_s is None:
        timeout_s = queue.attributes.visibility_timeout
    attempt_id = receive_request_attempt_id if queue.fifo else None
    if attempt_id is not None:
        replayed = _replay_attempt(queue, attempt_id, now_ms, timeout_s)
        if replayed is not None:
            return replayed
    deliver, dead = _pick(queue, now_ms, max_messages)
    queue, moves = _dead_letter(queue, dead, now_ms)
    queue, received = _deliver(queue, deliver, now_ms, timeout_s)
    if attempt_id is not None and received:
        attempt = ReceiveAttempt(
            attempt_id, now_ms, tuple(message.receipt_handle for message in received)
        )
        others = tuple(
            known
            for known in queue.receive_attempts
            if known.receive_request_attempt_id != attempt_id
        )
        queue = replace(queue, receive_attempts=(*others, attempt))
    return queue, ReceiveResult(messages=received, dead_lettered=moves)


def _check_receive_parameters(
    max_messages: int, visibility_timeout: int | None, attempt_id: str | None
) -> None:
    if not 1 <= max_messages <= MAX_MESSAGES_PER_RECEIVE:
        raise InvalidParameterValue(
            f"Value {max_messages} for parameter MaxNumberOfMessages is invalid. "
            f"Reason: Must be between 1 and {MAX_MESSAGES_PER_RECEIVE}, if provided."
        )
    if visibility_timeout is not None:
        _check_visibility_timeout(visibility_timeout)
    if attempt_id is not None:
        _check_id_parameter("ReceiveRequestAttemptId", attempt_id)


def _check_visibility_timeout(seconds: int) -> None:
    if not 0 <= seconds <= MAX_VISIBILITY_TIMEOUT_S:
        raise InvalidParameterValue(
            f"Value {seconds} for parameter VisibilityTimeout is invalid. "
            f"Reason: Must be between 0 and {MAX_VISIBILITY_TIMEOUT_S}, if provided."
        )


def _pick(queue: Queue, now_ms: int, limit: int) -> tuple[list[Message], list[Message]]:
    """Which messages this receive delivers, and which it moves to the dead-letter queue."""
    deliver: list[Message] = []
    dead: list[Message] = []
    for lane in _delivery_lanes(queue):
        for message in lane:
            if len(deliver) == limit:
                return deliver, dead
            if message.visible_at_ms > now_ms:
                # Later messages of a FIFO group wait behind a delayed one; on a standard
                # queue every message is its own lane, so this only skips that message.
                break
            if _exhausted(queue, message):
                dead.append(message)
                continue
            deliver.append(message)
    return deliver, dead


def _delivery_lanes(queue: Queue) -> list[list[Message]]:
    """FIFO: the unblocked groups, oldest head first, each in order. Standard: one message
    per lane, in send order."""
    waiting = [message for message in queue.messages if not message.in_flight]
    if not queue.fifo:
        return [[message] for message in waiting]
    blocked = {message.message_group_id for message in queue.messages if message.in_flight}
    by_group: dict[str | None, list[Message]] = {}
    for message in waiting:
        if message.message_group_id not in blocked:
            by_group.setdefault(message.message_group_id, []).append(message)
    return list(by_group.values())


def _exhausted(queue: Queue, message: Message) -> bool:
    policy = queue.attributes.redrive_policy
    return policy is not None and message.receive_count >= policy.max_receive_count


def _dead_letter(
    queue: Queue, dead: list[Message], now_ms: int
) -> tuple[Queue, tuple[DeadLetterMove, ...]]:
    policy = queue.attributes.redrive_policy
    if not dead or policy is None:
        return queue, ()
    gone = {message.order for message in dead}
    moves = tuple(
        DeadLetterMove(
            source_queue_name=queue.name,
            target_arn=policy.dead_letter_target_arn,
            target_queue_name=policy.dead_letter_queue_name,
            moved_at_ms=now_ms,
            message=message,
        )
        for message in dead
    )
    totals = replace(queue.totals, dead_lettered=queue.totals.dead_lettered + len(dead))
    remaining = tuple(message for message in queue.messages if message.order not in gone)
    return replace(queue, messages=remaining, totals=totals), moves


def _deliver(
    queue: Queue, chosen: list[Message], now_ms: int, timeout_s: int
) -> tuple[Queue, tuple[ReceivedMessage, ...]]:
    counter = queue.counter
    updated: dict[int, Message] = {}
    received: list[ReceivedMessage] = []
    for message in chosen:
        counter += 1
        delivered = replace(
            message,
            receive_count=message.receive_count + 1,
            first_receive_timestamp=(
                now_ms
                if message.first_receive_timestamp is None
                else message.first_receive_timestamp
            ),
            receipt_handle=_receipt_handle(queue, message.order, counter),
            received_at_ms=now_ms,
            in_flight_until_ms=now_ms + timeout_s * MS_PER_SECOND,
        )
        updated[message.order] = delivered
        received.append(_as_received(delivered))
    messages = tuple(updated.get(message.order, message) for message in queue.messages)
    totals = replace(queue.totals, deliveries=queue.totals.deliveries + len(chosen))
    queue = replace(queue, messages=messages, counter=counter, totals=totals)
    # A zero visibility timeout hands the message back at once, as AWS does.
    queue, _ = _settle(queue, now_ms)
    return queue, tuple(received)


def _as_received(message: Message) -> ReceivedMessage:
    assert message.receipt_handle is not None and message.in_flight_until_ms is not None
    assert message.first_receive_timestamp is not None
    return ReceivedMessage(
        message_id=message.message_id,
        receipt_handle=message.receipt_handle,
        body=message.body,
        md5_of_body=message.md5_of_body,
        sent_timestamp=message.sent_timestamp,
        approximate_receive_count=message.receive_count,
        approximate_first_receive_timestamp=message.first_receive_timestamp,
        visibility_deadline_ms=message.in_flight_until_ms,
        message_group_id=message.message_group_id,
        message_deduplication_id=message.message_deduplication_id,
        sequence_number=message.sequence_number,
    )


def _replay_attempt(
    queue: Queue, attempt_id: str, now_ms: int, timeout_s: int
) -> tuple[Queue, ReceiveResult] | None:
    """A retried ReceiveRequestAttemptId gets the same messages and receipt handles, with the
    visibility timeout reset, as long as none of them was deleted or had its visibility
    changed; otherwise it is a fresh receive."""
    attempt = next(
        (a for a in queue.receive_attempts if a.receive_request_attempt_id == attempt_id), None
    )
    if attempt is None:
        return None
    by_handle = {m.receipt_handle: m for m in queue.messages if m.in_flight}
    if not all(handle in by_handle for handle in attempt.receipt_handles):
        return None
    until = now_ms + timeout_s * MS_PER_SECOND
    again = [replace(by_handle[h], in_flight_until_ms=until) for h in attempt.receipt_handles]
    reset = {message.order: message for message in again}
    messages = tuple(reset.get(message.order, message) for message in queue.messages)
    queue, _ = _settle(replace(queue, messages=messages), now_ms)
    received = tuple(_as_received(message) for message in again)
    return queue, ReceiveResult(messages=received, replayed=True)


# --- deleting and visibility --------------------------------------------------------------


def delete(queue: Queue, receipt_handle: str, *, now_ms: int) -> tuple[Queue, DeleteResult]:
    """DeleteMessage. FIFO: only the handle of the current, unexpired receive deletes; an
    older one fails with "The receipt handle has expired". Standard: any handle the message
    was ever received with deletes it. A message that is already gone is an idempotent OK."""
    order = _decode_handle(queue, receipt_handle)
    queue, _ = _settle(queue, now_ms)
    message = _message_at(queue, order)
    if message is None:
        return queue, DeleteResult(message_id=None)
    if queue.fifo and not _holds_current(message, receipt_handle):
        raise _expired_handle(receipt_handle)
    remaining = tuple(m for m in queue.messages if m.order != order)
    totals = replace(queue.totals, deleted=queue.totals.deleted + 1)
    return replace(queue, messages=remaining, totals=totals), DeleteResult(message.message_id)


def change_visibility(
    queue: Queue, receipt_handle: str, visibility_timeout: int, *, now_ms: int
) -> tuple[Queue, VisibilityChange]:
    """ChangeMessageVisibility: the new timeout counts from now; 0 makes the message visible
    at once. The total may not pass 12 hours after the receive."""
    _check_visibility_timeout(visibility_timeout)
    order = _decode_handle(queue, receipt_handle)
    queue, _ = _settle(queue, now_ms)
    message = _message_at(queue, order)
    if message is None or not message.in_flight:
        raise MessageNotInflight(
            "Message does not exist or is not available for visibility timeout change."
        )
    if queue.fifo and message.receipt_handle != receipt_handle:
        raise _expired_handle(receipt_handle)
    until = now_ms + visibility_timeout * MS_PER_SECOND
    assert message.received_at_ms is not None
    if until - message.received_at_ms > MAX_VISIBILITY_TIMEOUT_S * MS_PER_SECOND:
        raise InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: "
            f"Total VisibilityTimeout for the message is beyond the limit "
            f"[{MAX_VISIBILITY_TIMEOUT_S} seconds]"
        )
    changed = replace(message, in_flight_until_ms=until)
    messages = tuple(changed if m.order == order else m for m in queue.messages)
    queue, _ = _settle(replace(queue, messages=messages), now_ms)
    after = _message_at(queue, order)
    assert after is not None
    return queue, VisibilityChange(after.message_id, after.in_flight_until_ms)


def purge(queue: Queue, *, now_ms: int) -> tuple[Queue, PurgeResult]:
    """PurgeQueue: every message goes, in flight or not. Once per 60 seconds."""
    queue, _ = _settle(queue, now_ms)
    if queue.last_purge_ms is not None and now_ms - queue.last_purge_ms < PURGE_COOLDOWN_MS:
        raise PurgeQueueInProgress(
            f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds."
        )
    ids = tuple(message.message_id for message in queue.messages)
    totals = replace(queue.totals, purged=queue.totals.purged + len(ids))
    return replace(queue, messages=(), last_purge_ms=now_ms, totals=totals), PurgeResult(ids)


def _holds_current(message: Message, receipt_handle: str) -> bool:
    return message.in_flight and message.receipt_handle == receipt_handle


def _expired_handle(receipt_handle: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Value {receipt_handle} for parameter ReceiptHandle is invalid. "
        "Reason: The receipt handle has expired."
    )


def _message_at(queue: Queue, order: int) -> Message | None:
    return next((message for message in queue.messages if message.order == order), None)


# --- dead-letter queue --------------------------------------------------------------------


def accept_dead_letter(dlq: Queue, move: DeadLetterMove, *, now_ms: int) -> Queue:
    """Put a message moved by a receive into its dead-letter queue.

    It keeps its MessageId, body, group and receive count. A FIFO dead-letter queue gives it
    a new sequence number and restarts its retention clock; a standard one keeps the original
    enqueue time, so it can expire sooner than the dead-letter queue's retention suggests.
    """
    if dlq.fifo != (move.message.sequence_number is not None):
        raise InvalidParameterValue(
            "The dead-letter queue of a FIFO queue must also be a FIFO queue, and the "
            "dead-letter queue of a standard queue must also be a standard queue."
        )
    dlq, _ = _settle(dlq, now_ms)
    number = dlq.counter + 1
    source = move.message
    message = replace(
        source,
        order=number,
        enqueued_ms=now_ms if dlq.fifo else source.enqueued_ms,
        visible_at_ms=now_ms,
        sequence_number=_sequence_number(dlq, number) if dlq.fifo else None,
        receipt_handle=None,
        received_at_ms=None,
        in_flight_until_ms=None,
    )
    totals = replace(dlq.totals, sent=dlq.totals.sent + 1)
    dlq = replace(dlq, counter=number, messages=(*dlq.messages, message), totals=totals)
    dlq, _ = _settle(dlq, now_ms)
    return dlq


# --- batches ------------------------------------------------------------------------------


def validate_batch_entry_ids(ids: Sequence[str]) -> None:
    """The checks every *Batch action makes before looking at any entry."""
    if not ids:
        raise EmptyBatchRequest("There should be at least one batch entry in the request.")
    if len(ids) > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. "
            f"You have sent {len(ids)}."
        )
    seen: set[str] = set()
    for entry_id in ids:
        if not _BATCH_ENTRY_ID.fullmatch(entry_id):
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and "
                "underscores. It can be at most 80 letters long."
            )
        if entry_id in seen:
            raise BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)


def validate_batch_payload(bodies: Sequence[str]) -> None:
    total = sum(len(body.encode("utf-8", "surrogatepass")) for body in bodies)
    if total > MAX_BATCH_PAYLOAD_BYTES:
        raise BatchRequestTooLong(
            f"Batch requests cannot be longer than {MAX_BATCH_PAYLOAD_BYTES} bytes. "
            f"You have sent {total} bytes."
        )


def send_batch(
    queue: Queue, entries: Sequence[SendBatchEntry], *, now_ms: int
) -> tuple[Queue, SendBatchResult]:
    """SendMessageBatch: whole-request checks raise; each entry then succeeds or fails alone,
    in entry order (which is the order within a FIFO group)."""
    validate_batch_entry_ids([entry.id for entry in entries])
    validate_batch_payload([entry.message_body for entry in entries])
    successful: list[SendBatchResultEntry] = []
    failed: list[BatchResultErrorEntry] = []
    for entry in entries:
        try:
            queue, result = send(
                queue,
                entry.message_body,
                now_ms=now_ms,
                message_group_id=entry.message_group_id,
                deduplication_id=entry.message_deduplication_id,
                delay_seconds=entry.delay_seconds,
            )
        except SqsError as error:
            failed.append(_batch_error(entry.id, error))
        else:
            successful.append(SendBatchResultEntry(entry.id, result))
    return queue, SendBatchResult(tuple(successful), tuple(failed))


def delete_batch(
    queue: Queue, entries: Sequence[DeleteBatchEntry], *, now_ms: int
) -> tuple[Queue, BatchResult]:
    validate_batch_entry_ids([entry.id for entry in entries])
    successful: list[str] = []
    failed: list[BatchResultErrorEntry] = []
    for entry in entries:
        try:
            queue, _ = delete(queue, entry.receipt_handle, now_ms=now_ms)
        except SqsError as error:
            failed.append(_batch_error(entry.id, error))
        else:
            successful.append(entry.id)
    return queue, BatchResult(tuple(successful), tuple(failed))


def change_visibility_batch(
    queue: Queue, entries: Sequence[ChangeVisibilityBatchEntry], *, now_ms: int
) -> tuple[Queue, BatchResult]:
    validate_batch_entry_ids([entry.id for entry in entries])
    successful: list[str] = []
    failed: list[BatchResultErrorEntry] = []
    for entry in entries:
        try:
            queue, _ = change_visibility(
                queue, entry.receipt_handle, entry.visibility_timeout, now_ms=now_ms
            )
        except SqsError as error:
            failed.append(_batch_error(entry.id, error))
        else:
            successful.append(entry.id)
    return queue, BatchResult(tuple(successful), tuple(failed))


def _batch_error(entry_id: str, error: SqsError) -> BatchResultErrorEntry:
    return BatchResultErrorEntry(
        id=entry_id, code=error.code, message=error.message, sender_fault=error.sender_fault
    )


# --- views --------------------------------------------------------------------------------


def approximate_counts(queue: Queue) -> QueueCounts:
    """The three ApproximateNumberOfMessages* attributes, as of the queue's clock. Messages
    waiting behind a blocked FIFO group still count as available, as in AWS."""
    in_flight = sum(1 for message in queue.messages if message.in_flight)
    delayed = sum(
        1
        for message in queue.messages
        if not message.in_flight and message.visible_at_ms > queue.clock_ms
    )
    return QueueCounts(
        approximate_number_of_messages=len(queue.messages) - in_flight - delayed,
        approximate_number_of_messages_not_visible=in_flight,
        approximate_number_of_messages_delayed=delayed,
    )


def lanes(queue: Queue) -> tuple[GroupLane, ...]:
    """One lane per message group (a standard queue has a single lane named ""), oldest
    group first, as of the queue's clock."""
    grouped: dict[str, list[Message]] = {}
    for message in queue.messages:
        key = message.message_group_id if queue.fifo and message.message_group_id else ""
        grouped.setdefault(key, []).append(message)
    return tuple(_lane(queue, group_id, members) for group_id, members in grouped.items())


def _lane(queue: Queue, group_id: str, members: list[Message]) -> GroupLane:
    views = [_lane_message(queue, message) for message in members]
    in_flight = tuple(view for view in views if view.state == "in_flight")
    return GroupLane(
        message_group_id=group_id,
        queued=tuple(view for view in views if view.state != "in_flight"),
        in_flight=in_flight,
        blocked=queue.fifo and bool(in_flight),
    )


def _lane_message(queue: Queue, message: Message) -> LaneMessage:
    if message.in_flight:
        state = "in_flight"
    elif message.visible_at_ms > queue.clock_ms:
        state = "delayed"
    else:
        state = "visible"
    return LaneMessage(
        message_id=message.message_id,
        body=message.body,
        sequence_number=message.sequence_number,
        state=state,
        receive_count=message.receive_count,
        visible_at_ms=message.visible_at_ms,
        in_flight_until_ms=message.in_flight_until_ms,
    )


# --- ids ----------------------------------------------------------------------------------


def _digest(queue: Queue, purpose: str, number: int) -> bytes:
    return hashlib.sha256(f"{queue.seed}|{queue.name}|{purpose}|{number}".encode()).digest()


def _message_id(queue: Queue, number: int) -> str:
    return str(uuid.UUID(bytes=_digest(queue, "message", number)[:16], version=4))


def _sequence_number(queue: Queue, number: int) -> str:
    jitter = int.from_bytes(_digest(queue, "sequence", number)[:8], "big") % _SEQUENCE_STRIDE
    return str(_SEQUENCE_BASE + number * _SEQUENCE_STRIDE + jitter)


def _md5(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _receipt_handle(queue: Queue, order: int, number: int) -> str:
    payload = f"{queue.name}:{order}:{number}"
    tag = _handle_tag(queue, payload)
    encoded = base64.urlsafe_b64encode(f"{payload}:{tag}".encode()).decode()
    return _HANDLE_PREFIX + encoded


def _handle_tag(queue: Queue, payload: str) -> str:
    return hashlib.sha256(f"{queue.seed}|handle|{payload}".encode()).hexdigest()[:24]


def _decode_handle(queue: Queue, receipt_handle: str) -> int:
    """The order of the message a handle was issued for. Only the exact handle this queue
    issued decodes: the tag and the round trip catch typos and forgeries."""
    invalid = ReceiptHandleIsInvalid(
        f'The input receipt handle "{receipt_handle}" is not a valid receipt handle.'
    )
    if not receipt_handle.startswith(_HANDLE_PREFIX):
        raise invalid
    try:
        decoded = base64.urlsafe_b64decode(receipt_handle[len(_HANDLE_PREFIX) :]).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    parts = decoded.split(":")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        raise invalid
    name, order, number, _ = parts
    if name != queue.name:
        # Another queue's seed signed it, so only its queue could check it further.
        raise ReceiptHandleIsInvalid(
            f'The receipt handle "{receipt_handle}" is not valid for this queue.'
        )
    if receipt_handle != _receipt_handle(queue, int(order), int(number)):
        raise invalid
    return int(order)


# --- serialisation ------------------------------------------------------------------------


def queue_to_dict(queue: Queue) -> dict:
    """The queue as plain JSON data (dicts, lists, strings, ints, bools and None)."""
    return _jsonable(asdict(queue))


def queue_from_dict(data: Mapping[str, object]) -> Queue:
    """The queue :func:`queue_to_dict` wrote, equal to the original. Keys it does not know are
    ignored, so a caller may keep its own notes next to the queue's fields."""
    d: dict = dict(data)
    attributes = dict(d["attributes"])
    policy = attributes["redrive_policy"]
    attributes["redrive_policy"] = None if policy is None else RedrivePolicy(**policy)
    attributes["passthrough"] = tuple((str(k), str(v)) for k, v in attributes["passthrough"])
    return Queue(
        name=d["name"],
        arn=d["arn"],
        attributes=QueueAttributes(**attributes),
        created_ms=d["created_ms"],
        last_modified_ms=d["last_modified_ms"],
        clock_ms=d["clock_ms"],
        seed=d["seed"],
        messages=tuple(Message(**m) for m in d["messages"]),
        deduplication=tuple(DeduplicationRecord(**r) for r in d["deduplication"]),
        receive_attempts=tuple(
            ReceiveAttempt(
                receive_request_attempt_id=a["receive_request_attempt_id"],
                at_ms=a["at_ms"],
                receipt_handles=tuple(a["receipt_handles"]),
            )
            for a in d["receive_attempts"]
        ),
        counter=d["counter"],
        last_purge_ms=d["last_purge_ms"],
        totals=QueueTotals(**d["totals"]),
    )


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
