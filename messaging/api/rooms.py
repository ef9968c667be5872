"""`POST /api/rooms`: a sandbox room for a script, with the URLs its clients talk to."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from messaging.api.errors import (
    METHOD_NOT_ALLOWED,
    UNPROCESSABLE,
    ApiError,
    error_response,
    json_body,
    service_errors,
    throttle,
)
from messaging.services.seeds import sandbox_create

BODIES = frozenset({"application/json"})


@csrf_exempt
def room_create(request: HttpRequest) -> HttpResponse:
    """A new sandbox room (the board's "New room"), answered 201 with its code and URLs.

    The body is optional: `{"title": "..."}` (at most 80 characters).
    """
    try:
        if request.method != "POST":
            raise ApiError(METHOD_NOT_ALLOWED, f"HTTP 405 Method Not Allowed: {request.method}.")
        throttle(request, "rooms")
        body = json_body(request, accepted=BODIES)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(UNPROCESSABLE, 'The body is a JSON object: {"title": "..."}.')
        title = body.get("title", "")
        if not isinstance(title, str):
            raise ApiError(UNPROCESSABLE, "title is a string.")
        with service_errors():
            room = sandbox_create(title=title)
    except ApiError as error:
        response = error_response(error)
        if error.code == METHOD_NOT_ALLOWED:
            response["Allow"] = "POST"
        return response
    absolute = request.build_absolute_uri
    return JsonResponse(
        {
            "code": room.code,
            "title": room.title,
            "board_url": absolute(reverse("room", args=[room.code])),
            "rest_base": absolute(reverse("kafka_root", args=[room.code])),
            "sqs_endpoint": absolute(f"/api/sqs/{room.code}/"),
        },
        status=201,
    )
