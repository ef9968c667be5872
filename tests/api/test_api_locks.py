"""Every API call in a classroom passes the same locks as a student's button.

The `clients` lock only opens the APIs: each REST Proxy endpoint and each SQS action is then
refused, in its protocol's own error shape, when the lock of what it does is closed, and
answered as usual when it is open. The table of which call passes which lock is
`messaging.permissions.REST_PROXY_LOCKS` / `SQS_LOCKS`; this test walks all of it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging import urls
from messaging.api import kafka_rest
from messaging.infra.rates import buckets
from messaging.models import RoomEvent
from messaging.permissions import REST_PROXY_LOCKS, SQS_LOCKS, STUDENT_ACTIONS
from messaging.services.classroom import classroom_create, classroom_permissions_set

pytestmark = pytest.mark.django_db

V2 = "application/vnd.kafka.v2+json"
JSON_V2 = "application/vnd.kafka.json.v2+json"
SQS_TYPE = "application/x-amz-json-1.0"
LOCKS = [action for action in STUDENT_ACTIONS if action != "clients"]
ALL_OPEN = dict.fromkeys(STUDENT_ACTIONS, True)


@pytest.fixture(autouse=True)
def generous_rates(settings):
    """Only the locks are under test here: no rate limit gets in the way."""
    settings.LOGLAB_API_RATE_PER_SECOND = 100_000
    settings.LOGLAB_SQS_API_RATE_PER_SECOND = 100_000
    settings.LOGLAB_STUDENT_PRODUCE_PER_SECOND = 100_000
    buckets.clear()
    yield
    buckets.clear()


@dataclass
class Call:
    method: str
    path: str
    body: object = None
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    ok: int = 200


class Script:
    """A learner's script (no session) talking to one classroom's APIs."""

    def __init__(self, room) -> None:
        self.room = room
        self.client = Client()
        self.base = f"/api/kafka/{room.code}"
        self.cluster = f"{self.base}/v3/clusters/{room.code}"

    def send(self, call: Call):
        data = "" if call.body is None else json.dumps(call.body)
        return self.client.generic(
            call.method, call.path, data, content_type=call.content_type, headers=call.headers
        )

    def ok(self, call: Call):
        response = self.send(call)
        assert response.status_code == call.ok, (call, response.content)
        return response

    # --- REST Proxy set-up, done while every lock is open

    def instance(self, group: str, *, subscribe: bool = False, poll: bool = False) -> str:
        path = f"{self.base}/consumers/{group}"
        self.ok(Call("POST", path, {"name": "w", "format": "json"}, V2))
        base = f"{path}/instances/w"
        if subscribe or poll:
            self.ok(Call("POST", base + "/subscription", {"topics": ["orders"]}, V2, ok=204))
        if poll:
            self.produce()
            self.ok(Call("GET", base + "/records", headers={"Accept": JSON_V2}))
        return base

    def produce(self) -> None:
        body = {"records": [{"key": "k", "value": 1, "partition": 0}]}
        self.ok(Call("POST", f"{self.base}/topics/orders", body, JSON_V2))

    def committed_group(self, group: str) -> str:
        base = self.instance(group, poll=True)
        self.ok(Call("POST", base + "/offsets", content_type=V2, ok=204))
        return group

    # --- SQS set-up

    def sqs(self, action: str, body: dict | None = None, ok: int = 200) -> Call:
        return Call(
            "POST",
            f"/api/sqs/{self.room.code}/",
            body or {},
            SQS_TYPE,
            {"X-Amz-Target": f"AmazonSQS.{action}"},
            ok,
        )

    def queue(self, name: str, *, send: bool = False) -> str:
        self.ok(self.sqs("CreateQueue", {"QueueName": name}))
        url = f"http://testserver/api/sqs/{self.room.code}/000000000000/{name}"
        if send:
            self.ok(self.sqs("SendMessage", {"QueueUrl": url, "MessageBody": "b"}))
        return url

    def received(self, name: str) -> tuple[str, str]:
        url = self.queue(name, send=True)
        answer = self.ok(self.sqs("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 0}))
        return url, json.loads(answer.content)["Messages"][0]["ReceiptHandle"]


# Each entry prepares what its call needs (unique names: `n`), then returns the call.
REST_CALLS: dict[tuple[str, str], Callable[[Script, int], Call]] = {
    ("root", "GET"): lambda s, n: Call("GET", s.base),
    ("clusters", "GET"): lambda s, n: Call("GET", f"{s.base}/v3/clusters"),
    ("cluster", "GET"): lambda s, n: Call("GET", s.cluster),
    ("v3_topics", "GET"): lambda s, n: Call("GET", f"{s.cluster}/topics"),
    ("v3_topics", "POST"): lambda s, n: Call(
        "POST", f"{s.cluster}/topics", {"topic_name": f"t{n}", "partitions_count": 1}, ok=201
    ),
    ("v3_topic", "GET"): lambda s, n: Call("GET", f"{s.cluster}/topics/orders"),
    ("v3_partitions", "GET"): lambda s, n: Call("GET", f"{s.cluster}/topics/orders/partitions"),
    ("v3_partition", "GET"): lambda s, n: Call("GET", f"{s.cluster}/topics/orders/partitions/0"),
    ("v3_records", "POST"): lambda s, n: Call(
        "POST", f"{s.cluster}/topics/orders/records", {"value": {"type": "JSON", "data": n}}
    ),
    ("v3_groups", "GET"): lambda s, n: Call("GET", f"{s.cluster}/consumer-groups"),
    ("v3_group", "GET"): lambda s, n: Call("GET", f"{s.cluster}/consumer-groups/billing"),
    ("v3_lags", "GET"): lambda s, n: Call(
        "GET", f"{s.cluster}/consumer-groups/{s.committed_group(f'g{n}')}/lags"
    ),
    ("topics", "GET"): lambda s, n: Call("GET", f"{s.base}/topics", headers={"Accept": V2}),
    ("topic", "GET"): lambda s, n: Call("GET", f"{s.base}/topics/orders"),
    ("topic", "POST"): lambda s, n: Call(
        "POST", f"{s.base}/topics/orders", {"records": [{"value": n}]}, JSON_V2
    ),
    # The students' own group: what the issue's script joined.
    ("consumer_create", "POST"): lambda s, n: Call(
        "POST", f"{s.base}/consumers/billing", {"name": f"w{n}", "format": "json"}, V2
    ),
    ("consumer_instance", "DELETE"): lambda s, n: Call(
        "DELETE", s.instance(f"g{n}"), content_type=V2, ok=204
    ),
    ("consumer_subscription", "GET"): lambda s, n: Call(
        "GET", s.instance(f"g{n}", subscribe=True) + "/subscription"
    ),
    ("consumer_subscription", "POST"): lambda s, n: Call(
        "POST", s.instance(f"g{n}") + "/subscription", {"topics": ["orders"]}, V2, ok=204
    ),
    ("consumer_records", "GET"): lambda s, n: (
        s.produce(),
        Call(
            "GET",
            s.instance(f"g{n}", subscribe=True) + "/records",
            headers={"Accept": JSON_V2},
        ),
    )[1],
    ("consumer_offsets", "POST"): lambda s, n: Call(
        "POST",
        s.instance(f"g{n}", poll=True) + "/offsets",
        {"offsets": [{"topic": "orders", "partition": 0, "offset": 0}]},
        V2,
        ok=204,
    ),
    ("consumer_assignments", "GET"): lambda s, n: Call(
        "GET", s.instance(f"g{n}", poll=True) + "/assignments"
    ),
}


def _batch(handle: str) -> list[dict]:
    return [{"Id": "1", "ReceiptHandle": handle}]


SQS_CALLS: dict[str, Callable[[Script, int], Call]] = {
    "CreateQueue": lambda s, n: s.sqs("CreateQueue", {"QueueName": f"q{n}"}),
    "DeleteQueue": lambda s, n: s.sqs("DeleteQueue", {"QueueUrl": s.queue(f"q{n}")}),
    "SetQueueAttributes": lambda s, n: s.sqs(
        "SetQueueAttributes",
        {"QueueUrl": s.queue(f"q{n}"), "Attributes": {"VisibilityTimeout": "10"}},
    ),
    "PurgeQueue": lambda s, n: s.sqs("PurgeQueue", {"QueueUrl": s.queue(f"q{n}", send=True)}),
    "GetQueueUrl": lambda s, n: (s.queue(f"q{n}"), s.sqs("GetQueueUrl", {"QueueName": f"q{n}"}))[1],
    "ListQueues": lambda s, n: s.sqs("ListQueues"),
    "GetQueueAttributes": lambda s, n: s.sqs(
        "GetQueueAttributes", {"QueueUrl": s.queue(f"q{n}"), "AttributeNames": ["All"]}
    ),
    "SendMessage": lambda s, n: s.sqs(
        "SendMessage", {"QueueUrl": s.queue(f"q{n}"), "MessageBody": "b"}
    ),
    "SendMessageBatch": lambda s, n: s.sqs(
        "SendMessageBatch",
        {"QueueUrl": s.queue(f"q{n}"), "Entries": [{"Id": "1", "MessageBody": "b"}]},
    ),
    "ReceiveMessage": lambda s, n: s.sqs(
        "ReceiveMessage", {"QueueUrl": s.queue(f"q{n}", send=True), "WaitTimeSeconds": 0}
    ),
    "DeleteMessage": lambda s, n: (
        lambda url, handle: s.sqs("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": handle})
    )(*s.received(f"q{n}")),
    "DeleteMessageBatch": lambda s, n: (
        lambda url, handle: s.sqs(
            "DeleteMessageBatch", {"QueueUrl": url, "Entries": _batch(handle)}
        )
    )(*s.received(f"q{n}")),
    "ChangeMessageVisibility": lambda s, n: (
        lambda url, handle: s.sqs(
            "ChangeMessageVisibility",
            {"QueueUrl": url, "ReceiptHandle": handle, "VisibilityTimeout": 0},
        )
    )(*s.received(f"q{n}")),
    "ChangeMessageVisibilityBatch": lambda s, n: (
        lambda url, handle: s.sqs(
            "ChangeMessageVisibilityBatch",
            {"QueueUrl": url, "Entries": [{**_batch(handle)[0], "VisibilityTimeout": 0}]},
        )
    )(*s.received(f"q{n}")),
}


@pytest.fixture
def script():
    owner = get_user_model().objects.create_user("ada", password="a-long-password")
    return Script(classroom_create(owner=owner, title="Week 3"))


def test_every_api_endpoint_is_in_the_lock_table_and_in_this_test():
    views = {
        pattern.callback.__name__
        for pattern in urls.urlpatterns
        if getattr(pattern.callback, "__module__", "") == kafka_rest.__name__
        and pattern.callback is not kafka_rest.unknown
    }
    assert views == {name for name, _ in REST_PROXY_LOCKS}
    assert set(REST_CALLS) == set(REST_PROXY_LOCKS)
    assert set(SQS_CALLS) == set(SQS_LOCKS)


def _refused_rest(response, lock: str) -> None:
    assert response.status_code == 403
    answer = response.json()
    assert answer["error_code"] == 40301
    words = "connect their own code" if lock == "clients" else STUDENT_ACTIONS[lock]
    assert "instructor has locked" in answer["message"] and words in answer["message"]


def _refused_sqs(response, lock: str) -> None:
    assert response.status_code == 403
    answer = json.loads(response.content)
    assert answer["__type"] == "com.amazon.coral.service#AccessDeniedException"
    assert response.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    words = "connect their own code" if lock == "clients" else STUDENT_ACTIONS[lock]
    assert "instructor has locked" in answer["message"] and words in answer["message"]


@pytest.mark.parametrize("closed", [None, *LOCKS, "clients"])
def test_each_api_call_passes_its_students_lock_and_only_that(script, closed):
    """With one lock closed (None: all open), every call either is refused in its protocol's
    shape, writing nothing, or succeeds: refused exactly when the table names that lock."""
    counter = itertools.count()
    calls = [
        (key, locks, REST_CALLS[key], _refused_rest) for key, locks in REST_PROXY_LOCKS.items()
    ] + [(key, locks, SQS_CALLS[key], _refused_sqs) for key, locks in SQS_LOCKS.items()]
    for key, locks, prepare, refused in calls:
        script.room.sqs_queues.all().delete()  # a room holds at most 10 queues
        classroom_permissions_set(room=script.room, permissions=ALL_OPEN)
        call = prepare(script, next(counter))
        if closed is not None:
            classroom_permissions_set(room=script.room, permissions={closed: False})
        events = RoomEvent.objects.filter(room=script.room).count()
        response = script.send(call)
        if closed == "clients" or closed in locks:
            refused(response, closed)
            assert RoomEvent.objects.filter(room=script.room).count() == events, key
        else:
            assert response.status_code == call.ok, (key, response.content)


def test_clients_alone_opens_the_apis_and_nothing_else(script):
    """The issue's script: every other lock closed, `clients` open. It may read, but not
    produce, create a topic, join the students' group, poll, commit or manage queues."""
    classroom_permissions_set(
        room=script.room, permissions={**dict.fromkeys(LOCKS, False), "clients": True}
    )
    assert script.send(Call("GET", f"{script.base}/topics")).status_code == 200
    for key in [
        ("topic", "POST"),
        ("v3_records", "POST"),
        ("v3_topics", "POST"),
        ("consumer_create", "POST"),
    ]:
        _refused_rest(script.send(REST_CALLS[key](script, 0)), REST_PROXY_LOCKS[key][0])
    created = script.sqs("CreateQueue", {"QueueName": "jobs"})
    _refused_sqs(script.send(created), "settings")
    assert not script.room.topics.filter(name="t0").exists()
    assert not script.room.sqs_queues.exists()
