"""A room's brokers for scripts (#16): `GET /api/rooms/<code>/brokers` and
`POST /api/rooms/<code>/brokers/<id>/stop` (`start`, `slow`; `POST .../brokers/elect` for a
preferred leader election).

Who may: in a sandbox or a lesson room anyone with the code, as on its board. A classroom's
brokers are the instructor's (the board's `drive` action): a script proves it is the
instructor's with the room's Kafka login (its code and client secret) as HTTP Basic
credentials, the login its Kafka clients use; the API takes no cookies, so a page elsewhere
cannot make an instructor's browser stop a classroom's brokers.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from messaging.api.errors import (
    FORBIDDEN,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    ApiError,
    error_response,
    service_errors,
    throttle,
)
from messaging.models import Room
from messaging.selectors import room_cluster_json, room_get
from messaging.services import replication

ACTIONS = {"stop": "stopped", "start": "up", "slow": "slow"}


def _basic_login(request: HttpRequest) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return username, password


def _allowed(request: HttpRequest, room: Room) -> None:
    if room.kind != Room.Kind.CLASSROOM:
        return
    login = _basic_login(request)
    if (
        login is not None
        and login[0].upper() == room.code
        and secrets.compare_digest(login[1].encode(), room.client_secret.encode())
    ):
        return
    raise ApiError(
        FORBIDDEN,
        "Only the instructor stops and starts a classroom's brokers: send the room's Kafka "
        "login (its code and client secret) as HTTP Basic credentials.",
    )


def _room(request: HttpRequest, code: str) -> Room:
    with service_errors(not_found=NOT_FOUND):
        room = room_get(code=code)
    throttle(request, room.code)
    return room


def _answer(room: Room, payload: dict, status: int = 200) -> JsonResponse:
    body = room_cluster_json(room=room)
    body["changed"] = payload.get("partitions", [])
    body["lost_now"] = payload.get("lost", 0)
    return JsonResponse(body, status=status)


@csrf_exempt
def brokers(request: HttpRequest, code: str) -> HttpResponse:
    """The room's brokers, replicated partitions (leader, epoch, ISR, HW, LEO per replica) and
    the newest lines of its durability ledger."""
    try:
        if request.method != "GET":
            raise ApiError(METHOD_NOT_ALLOWED, f"HTTP 405 Method Not Allowed: {request.method}.")
        room = _room(request, code)
    except ApiError as error:
        response = error_response(error)
        if error.code == METHOD_NOT_ALLOWED:
            response["Allow"] = "GET"
        return response
    return JsonResponse(room_cluster_json(room=room))


@csrf_exempt
def broker_action(request: HttpRequest, code: str, broker_id: int, action: str) -> HttpResponse:
    """Stop, start or slow down broker `broker_id`; the answer is the cluster afterwards, with
    the partitions whose leaders or ISRs changed (`changed`) and the records lost (`lost_now`)."""
    try:
        if request.method != "POST":
            raise ApiError(METHOD_NOT_ALLOWED, f"HTTP 405 Method Not Allowed: {request.method}.")
        if action not in ACTIONS:
            raise ApiError(NOT_FOUND, "A broker can be stopped, started or slowed down (slow).")
        room = _room(request, code)
        _allowed(request, room)
        with service_errors():
            payload = replication.broker_set(room=room, broker_id=broker_id, state=ACTIONS[action])
    except ApiError as error:
        response = error_response(error)
        if error.code == METHOD_NOT_ALLOWED:
            response["Allow"] = "POST"
        return response
    return _answer(room, payload)


@csrf_exempt
def leaders_elect(request: HttpRequest, code: str) -> HttpResponse:
    """kafka-leader-election.sh --election-type preferred, for every partition."""
    try:
        if request.method != "POST":
            raise ApiError(METHOD_NOT_ALLOWED, f"HTTP 405 Method Not Allowed: {request.method}.")
        room = _room(request, code)
        _allowed(request, room)
        with service_errors():
            payload = replication.leaders_preferred(room=room)
    except ApiError as error:
        response = error_response(error)
        if error.code == METHOD_NOT_ALLOWED:
            response["Allow"] = "POST"
        return response
    return _answer(room, payload)
