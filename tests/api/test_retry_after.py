"""Every 429 or throttle says when to retry in whole seconds, and its Retry-After agrees."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.services.classroom import classroom_create, classroom_permissions_set
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox

pytestmark = pytest.mark.django_db

SAYS = re.compile(r"(?:Retry|Try again) in (\d+) s")


def said_seconds(message: str) -> str:
    found = SAYS.search(message)
    assert found, message
    return found.group(1)


def test_the_rest_proxys_429_says_what_retry_after_says(client, settings, rate_clock_stopped):
    settings.LOGLAB_API_RATE_PER_SECOND = 2
    room = room_seed_sandbox(room=room_create(title="r"))
    answers = [client.get(f"/api/kafka/{room.code}/topics") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert said_seconds(refused.json()["message"]) == refused["Retry-After"] == "1"


def test_the_sqs_throttle_says_what_retry_after_says(client, settings, rate_clock_stopped):
    settings.LOGLAB_SQS_API_RATE_PER_SECOND = 0.5  # a token every 2 s
    room = room_seed_sandbox(room=room_create(title="q"))

    def call():
        return client.post(
            f"/api/sqs/{room.code}/",
            "{}",
            content_type="application/x-amz-json-1.0",
            headers={"X-Amz-Target": "AmazonSQS.ListQueues"},
        )

    assert call().status_code == 200
    throttled = call()
    assert throttled.headers["x-amzn-query-error"] == "ThrottlingException;Sender"
    message = json.loads(throttled.content)["message"]
    assert said_seconds(message) == throttled["Retry-After"] == "2"


def test_a_classrooms_script_and_student_429s_agree_with_retry_after(settings, rate_clock_stopped):
    settings.LOGLAB_STUDENT_PRODUCE_PER_SECOND = 0.25  # a record every 4 s
    owner = get_user_model().objects.create_user("ada", password="a-long-password")
    room = classroom_create(owner=owner, title="Week 3")
    classroom_permissions_set(room=room, permissions={"clients": True})
    script = Client()
    path = f"/api/kafka/{room.code}/topics/orders"
    body = json.dumps({"records": [{"value": 1}]})
    assert (
        script.post(path, body, content_type="application/vnd.kafka.json.v2+json").status_code
        == 200
    )
    refused = script.post(path, body, content_type="application/vnd.kafka.json.v2+json")
    assert refused.status_code == 429
    assert said_seconds(refused.json()["message"]) == refused["Retry-After"] == "4"

    student = Client()
    student.post(f"/j/{room.code}/", {"display_name": "Grace"})
    produce = {"topic": "orders", "value": "v"}
    assert student.post(f"/r/{room.code}/produce/", produce).status_code == 302
    page = student.post(f"/r/{room.code}/produce/", produce, headers={"HX-Request": "true"})
    assert page.status_code == 429
    assert said_seconds(page.content.decode()) == page["Retry-After"] == "4"
