"""The brokers API and the board's broker controls: who may stop a room's brokers (#16)."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.services import replication
from messaging.services.classroom import classroom_create
from messaging.services.seeds import sandbox_create

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_a_sandboxs_brokers_are_anyones_to_stop_and_the_answer_is_the_cluster():
    room = sandbox_create(title="api")
    client = Client()
    answer = client.post(f"/api/rooms/{room.code}/brokers/2/stop")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [(b["id"], b["state"]) for b in body["brokers"]] == [
        (1, "up"),
        (2, "stopped"),
        (3, "up"),
    ]
    assert client.get(f"/api/rooms/{room.code}/brokers").json()["controller"] == 1
    assert client.post(f"/api/rooms/{room.code}/brokers/2/stop").status_code == 409
    assert client.post(f"/api/rooms/{room.code}/brokers/9/stop").status_code == 404
    assert client.post(f"/api/rooms/{room.code}/brokers/2/reboot").status_code == 404
    assert client.get(f"/api/rooms/{room.code}/brokers/2/start").status_code == 405
    assert client.post("/api/rooms/NOROOM/brokers/2/start").status_code == 404


def test_a_classrooms_brokers_are_the_instructors_only():
    owner = get_user_model().objects.create_user("ada", password="x" * 12)
    room = classroom_create(owner=owner, title="Week 3")
    replication.brokers_resize(room=room, count=3)
    script = Client()
    refused = script.post(f"/api/rooms/{room.code}/brokers/1/stop")
    assert refused.status_code == 403 and "instructor" in refused.json()["message"]
    wrong = script.post(
        f"/api/rooms/{room.code}/brokers/1/stop", HTTP_AUTHORIZATION=basic(room.code, "nope")
    )
    assert wrong.status_code == 403
    assert replication.brokers_of(room)[1] == "up"
    allowed = script.post(
        f"/api/rooms/{room.code}/brokers/1/stop",
        HTTP_AUTHORIZATION=basic(room.code, room.client_secret),
    )
    assert allowed.status_code == 200
    # The board's button: a visitor may not, the logged-in instructor may.
    board = Client()
    assert board.post(f"/r/{room.code}/brokers/1/", {"action": "start"}).status_code == 403
    board.force_login(owner)
    assert board.post(f"/r/{room.code}/brokers/1/", {"action": "start"}).status_code == 302
    assert replication.brokers_of(room)[1] == "up"
