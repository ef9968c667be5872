"""`POST /api/rooms`: a sandbox room for a script, and the URLs its clients need."""

from __future__ import annotations

import json

import pytest

from messaging.api.errors import ROOM_CREATE_BURST
from messaging.infra.rates import buckets
from messaging.models import ConsumerGroup, Room, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_buckets():
    buckets.clear()
    yield
    buckets.clear()


def post(client, body=None, content_type="application/json", **extra):
    data = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
    return client.post("/api/rooms", data=data, content_type=content_type, **extra)


def test_it_creates_a_seeded_sandbox_room_and_answers_its_urls(client):
    response = post(client, {"title": "my first consumer"})
    assert response.status_code == 201
    answer = response.json()
    room = Room.objects.get(code=answer["code"])
    assert (room.title, room.kind) == ("my first consumer", Room.Kind.SANDBOX)
    code = room.code
    assert answer["board_url"] == f"http://testserver/r/{code}/"
    assert answer["rest_base"] == f"http://testserver/api/kafka/{code}"
    assert answer["sqs_endpoint"] == f"http://testserver/api/sqs/{code}/"
    # The same sandbox as the board's "New room".
    assert list(Topic.objects.filter(room=room).values_list("name", flat=True)) == ["orders"]
    assert sorted(ConsumerGroup.objects.filter(room=room).values_list("group_id", flat=True)) == [
        "analytics",
        "billing",
    ]
    # The URLs work: the board, and the room's REST Proxy (its root answers {}).
    assert client.get(answer["board_url"]).status_code == 200
    root = client.get(answer["rest_base"])
    assert (root.status_code, root.json()) == (200, {})


def test_it_takes_no_body_for_an_untitled_room(client):
    response = client.generic("POST", "/api/rooms")  # as `curl -X POST`: no body at all
    assert response.status_code == 201
    assert Room.objects.get(code=response.json()["code"]).title == ""


def test_it_answers_on_the_path_with_a_trailing_slash_too(client):
    assert client.post("/api/rooms/", data="", content_type="application/json").status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error_code"),
    [
        ({"title": "t" * 81}, "application/json", 422, 422),
        ({"title": 7}, "application/json", 422, 422),
        (["a list"], "application/json", 422, 422),
        ("{not json", "application/json", 400, 400),
        ("title=x", "application/x-www-form-urlencoded", 415, 415),
    ],
)
def test_it_refuses_a_bad_request_in_json_and_creates_nothing(
    client, body, content_type, status, error_code
):
    response = post(client, body, content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error_code"] == error_code
    assert response.json()["message"]
    assert Room.objects.count() == 0
    assert Topic.objects.count() == 0


def test_it_allows_only_post(client):
    response = client.get("/api/rooms")
    assert response.status_code == 405
    assert response.json()["error_code"] == 405
    assert response["Allow"] == "POST"


def test_it_is_an_api_so_it_needs_no_csrf_token():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post(strict, {"title": "no token"}).status_code == 201


def test_it_limits_how_fast_one_client_creates_rooms(client, rate_clock_stopped):
    for _ in range(int(ROOM_CREATE_BURST)):
        assert post(client).status_code == 201
    response = post(client)
    assert response.status_code == 429
    assert response.json()["error_code"] == 42901
    assert int(response["Retry-After"]) >= 1
    assert Room.objects.count() == ROOM_CREATE_BURST
    # Another client is not held back by the first one's burst.
    assert post(client, REMOTE_ADDR="10.0.0.2").status_code == 201


def test_it_answers_the_kafka_login_of_the_room_and_runs_its_clock_at_1x(client, settings):
    settings.LOGLAB_KAFKA_PORT = 19092
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "192.168.1.20"]
    answer = post(client, HTTP_HOST="192.168.1.20:8000").json()
    room = Room.objects.get(code=answer["code"])
    # A LAN address stays a LAN address: the host the script reached, the listener's port.
    assert answer["kafka"] == {
        "bootstrap_servers": "192.168.1.20:19092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": room.code,
        "sasl_password": room.client_secret,
    }
    assert (room.clock_running, room.clock_speed) == (True, 1.0)


def test_it_says_no_kafka_when_the_listener_is_off(client, settings):
    settings.LOGLAB_KAFKA_PORT = 0
    assert post(client).json()["kafka"] is None


def test_it_names_a_paused_or_faster_clock_in_every_api_answer(client):
    code = post(client).json()["code"]
    assert client.get(f"/api/kafka/{code}")["X-LogLab-Clock"] == "running 1x"
    Room.objects.filter(code=code).update(clock_speed=4.0)
    assert client.get(f"/api/kafka/{code}/topics")["X-LogLab-Clock"] == "running 4x"
    Room.objects.filter(code=code).update(clock_running=False, sim_time_ms=130_000)
    answer = client.post(
        f"/api/sqs/{code}/",
        data="{}",
        content_type="application/x-amz-json-1.0",
        HTTP_X_AMZ_TARGET="AmazonSQS.ListQueues",
    )
    assert answer["X-LogLab-Clock"].startswith("paused at ")
    assert "2:10" in answer["X-LogLab-Clock"]
