"""A database that went away answers 503 with a reason and `Retry-After`, never a bare 500.

When PostgreSQL restarts, the requests whose connections it cut (and any that reach it while it
is down) raise `django.db.OperationalError` or `InterfaceError`. The transaction they were in is
rolled back by the database, so nothing is half-written; the client only has to try again, and
is told so in its own terms: REST Proxy's error JSON on /api/kafka/ and /api/rooms, the AWS
JSON protocol's ServiceUnavailable on /api/sqs/ (boto3 retries it), the error fragment for htmx,
the error page otherwise. The page is rendered without the request: context processors could
touch the database that just failed.

A cut connection can fail at COMMIT after the server applied it, so the message does not claim
the request had no effect: a produce retried after a 503 may be stored twice, as a Kafka
producer without idempotence retrying after a timeout can be.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2
MESSAGE = (
    "LogLab's database did not answer (it may be restarting). Try again in a few seconds: "
    "the request may or may not have been applied."
)
KAFKA_UNAVAILABLE = 50301  # REST Proxy's scheme: the HTTP status times 100 plus a sub-code
SQS_CONTENT_TYPE = "application/x-amz-json-1.0"


def unavailable_response(request: HttpRequest) -> HttpResponse:
    path = request.path
    if path.startswith("/api/sqs"):
        response = HttpResponse(
            json.dumps({"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": MESSAGE}),
            status=503,
            content_type=SQS_CONTENT_TYPE,
        )
        response["x-amzn-query-error"] = "ServiceUnavailable;Receiver"
    elif path.startswith("/api/") or request.headers.get("Accept", "").startswith(
        "application/json"
    ):
        response = JsonResponse({"error_code": KAFKA_UNAVAILABLE, "message": MESSAGE}, status=503)
    else:
        template = "messaging/error.html"
        if request.headers.get("HX-Request") == "true":
            template = "messaging/partials.html#form-result"
        response = HttpResponse(
            render_to_string(template, {"error": MESSAGE, "ok": None}), status=503
        )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        # One line, not a traceback: the cause is outside this process, and a restart would
        # otherwise bury the log under identical tracebacks.
        reason = (str(exception).strip().splitlines() or [type(exception).__name__])[0]
        logger.warning(
            "database unavailable, answered 503 to %s %s: %s", request.method, request.path, reason
        )
        return unavailable_response(request)
