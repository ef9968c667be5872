"""`POST /api/rooms`: a sandbox room for a script, with the URLs its clients talk to."""

from __future__ import annotations

from django.conf import settings
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
from messaging.infra.addresses import host_without_port
from messaging.services.clock import room_clock_set
from messaging.services.seeds import sandbox_create

BODIES = frozenset({"application/json"})


def kafka_credentials(request: HttpRequest, username: str, password: str) -> dict | None:
    """What a Kafka client needs to reach this room: the host the request came to (so a LAN
    address stays a LAN address), the listener's port and the room's SASL/PLAIN login."""
    if not settings.LOGLAB_KAFKA_PORT:
        return None
    host = host_without_port(request.get_host())
    return {
        "bootstrap_servers": f"{host}:{settings.LOGLAB_KAFKA_PORT}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": username,
        "sasl_password": password,
    }


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
            # A script's room lives in real time, as the cluster its code thinks it talks to.
            room = room_clock_set(room=room, running=True, speed=1.0)
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
            "kafka": kafka_credentials(request, room.code, room.client_secret),
        },
        status=201,
    )
