"""What the JSON APIs refuse, and how: Confluent REST Proxy's error shape and codes.

Every refusal is `{"error_code": <int>, "message": <str>}` with an HTTP status, as REST Proxy
answers. REST Proxy's own codes are the HTTP status times 100 plus a sub-code (40401 topic not
found, 40403 consumer instance not found, ...); where it answers with a bare status (400 for a
body that is not JSON, 415 for a content type it does not take) the code is that status.

Services raise `messaging.errors.Invalid`, `NotFound` or `Conflict`; `translate` turns them into
REST Proxy's code, from the error's `field` where that says more than its class (a missing
partition is 40402, a missing topic 40401), else from what the calling view expects.

The per-client rate limit (a token bucket per client IP and room, shared by every server
process) lives here too: being told to slow down (429, 42901) is one more refusal, whose
message and `Retry-After` name the same whole number of seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from messaging.errors import Conflict, Invalid, LogLabError, NotFound
from messaging.infra.rates import buckets, client_ip, retry_seconds


@dataclass(frozen=True)
class Code:
    status: int
    error_code: int


BAD_JSON = Code(400, 400)  # the body does not parse as JSON
KAFKA_BAD_REQUEST = Code(400, 40002)  # Kafka refused: topic exists, bad name, bad partitions
FORBIDDEN = Code(403, 40301)  # a classroom whose instructor locked students' own code out
NOT_FOUND = Code(404, 404)  # no such room (cluster), consumer group or lag
TOPIC_NOT_FOUND = Code(404, 40401)
PARTITION_NOT_FOUND = Code(404, 40402)
INSTANCE_NOT_FOUND = Code(404, 40403)
METHOD_NOT_ALLOWED = Code(405, 405)
FORMAT_MISMATCH = Code(406, 40601)  # Accept names another embedded format than the consumer's
ALREADY_SUBSCRIBED = Code(409, 40901)  # the group reads other topics
INSTANCE_EXISTS = Code(409, 40902)
ILLEGAL_STATE = Code(409, 40903)  # not subscribed; auto.offset.reset=none with nothing committed
PAYLOAD_TOO_LARGE = Code(413, 413)  # the request body itself is over Django's upload limit
UNSUPPORTED_MEDIA_TYPE = Code(415, 415)
UNPROCESSABLE = Code(422, 422)  # a field is missing or of the wrong type
INVALID_CONSUMER_CONFIG = Code(422, 42204)
INVALID_PAYLOAD = Code(422, 42206)  # a key or value over the bounds, undecodable data
TOO_MANY_REQUESTS = Code(429, 42901)


class ApiError(Exception):
    def __init__(self, code: Code, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


# A service error's field says which REST Proxy code it is, whatever the view expected.
FIELD_CODES: dict[tuple[type[LogLabError], str], Code] = {
    (NotFound, "instance"): INSTANCE_NOT_FOUND,
    (NotFound, "topics"): TOPIC_NOT_FOUND,
    (NotFound, "topic"): TOPIC_NOT_FOUND,
    (NotFound, "partition"): PARTITION_NOT_FOUND,
    (Invalid, "partition"): PARTITION_NOT_FOUND,  # records.record_validate: no such partition
    (Invalid, "key"): INVALID_PAYLOAD,
    (Invalid, "value"): INVALID_PAYLOAD,
    (Conflict, "instance"): INSTANCE_EXISTS,
    (Conflict, "topics"): ALREADY_SUBSCRIBED,
    (Conflict, "subscription"): ILLEGAL_STATE,
}
DEFAULT_CODES: dict[type[LogLabError], Code] = {
    NotFound: NOT_FOUND,
    Invalid: UNPROCESSABLE,
    Conflict: Code(409, 409),
}


def translate(
    error: LogLabError,
    *,
    not_found: Code | None = None,
    invalid: Code | None = None,
    conflict: Code | None = None,
) -> ApiError:
    """The REST Proxy error for a service's refusal."""
    kind = type(error)
    if error.field is not None and (kind, error.field) in FIELD_CODES:
        return ApiError(FIELD_CODES[(kind, error.field)], error.message)
    expected = {NotFound: not_found, Invalid: invalid, Conflict: conflict}.get(kind)
    return ApiError(expected or DEFAULT_CODES.get(kind, UNPROCESSABLE), error.message)


class service_errors:  # noqa: N801 - used as a context manager, like contextlib's
    """Inside the block, a service's refusal leaves as the REST Proxy error the view expects."""

    def __init__(
        self,
        *,
        not_found: Code | None = None,
        invalid: Code | None = None,
        conflict: Code | None = None,
    ) -> None:
        self.expected = {"not_found": not_found, "invalid": invalid, "conflict": conflict}

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, LogLabError):
            raise translate(error, **self.expected) from None
        return False


def error_response(error: ApiError, *, content_type: str = "application/json") -> JsonResponse:
    response = JsonResponse(
        {"error_code": error.code.error_code, "message": error.message},
        status=error.code.status,
        content_type=content_type,
    )
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def media_type(raw: str | None) -> str:
    """A Content-Type or Accept entry without its parameters, in lower case."""
    return (raw or "").split(";", 1)[0].strip().lower()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(request: HttpRequest, *, accepted: frozenset[str] | None) -> Any:
    """The request's JSON body, or None when it is empty.

    A body in a content type not `accepted` is refused with 415 (None accepts any: the caller
    checked), one that is not JSON with 400, one over Django's DATA_UPLOAD_MAX_MEMORY_SIZE with
    413. Reading a body is where the first refusals happen.
    """
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(
            PAYLOAD_TOO_LARGE,
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        ) from None
    if not raw.strip():
        return None
    kind = media_type(request.META.get("CONTENT_TYPE"))
    if accepted is not None and kind not in accepted:
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"HTTP 415 Unsupported Media Type: send Content-Type {' or '.join(sorted(accepted))}"
            f" (not {kind or 'none'}).",
        )
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise ApiError(BAD_JSON, f"The body is not valid JSON: {error}") from None


# --- the rate limit -------------------------------------------------------------------------

# Requests per second a client (one IP address) may make to one room's API, with bursts of as
# many. Settings override them; so do tests.
DEFAULT_RATE_PER_SECOND = 20.0
# Rooms one client may create: bursts of 10, then one a second.
ROOM_CREATE_BURST = 10.0
ROOM_CREATE_PER_SECOND = 1.0


def throttle(request, scope: str) -> None:
    """Refuse with 429 (42901) a client that went over its rate for `scope` (a room's code)."""
    if scope == "rooms":
        rate, burst = ROOM_CREATE_PER_SECOND, ROOM_CREATE_BURST
    else:
        rate = float(getattr(settings, "LOGLAB_API_RATE_PER_SECOND", DEFAULT_RATE_PER_SECOND))
        burst = rate
    wait = buckets.take((client_ip(request), scope), rate=rate, burst=burst)
    if wait:
        seconds = retry_seconds(wait)
        raise ApiError(
            TOO_MANY_REQUESTS,
            f"Too many requests: at most {rate:g} per second from one client"
            + ("" if scope == "rooms" else " to one room")
            + f". Retry in {seconds} s.",
            retry_after=seconds,
        )
