"""boto3 against LogLab's SQS endpoint on a live server (tests/support/server.py), over HTTP.

The server runs LogLab's own settings on a scratch SQLite file. Each test gets a fresh room;
the room's clock is stepped through the SQS page's own step form, as a person would.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.sync.client import connect

from tests.support.server import ROOT, manage, serve, server_env

ROOMS_PER_SERVER = 40
DOCS = ROOT / "docs" / "clients-sqs.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
SESSION = boto3.session.Session()


class Server:
    def __init__(self, base: str, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.rooms: list[str] = []

    def room(self) -> str:
        if not self.rooms:
            self.rooms = _rooms_create(self.env, ROOMS_PER_SERVER)
        return self.rooms.pop()


def _rooms_create(env: dict[str, str], count: int) -> list[str]:
    """Fresh rooms, made by the room service in a subprocess on the server's database."""
    script = (
        "import django; django.setup()\n"
        "from messaging.services.rooms import room_create\n"
        f"print(' '.join(room_create().code for _ in range({count})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.split()


def _serve(tmp: Path, **overrides: str):
    env = server_env(
        SQLITE_PATH=str(tmp / "sqs-api.sqlite3"),
        **overrides,
    )
    manage("migrate", "--noinput", env=env)
    return env, serve(env)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    env, serving = _serve(tmp_path_factory.mktemp("sqs-api"))
    with serving as base:
        yield Server(base, env)


@pytest.fixture
def room(server: Server) -> str:
    return server.room()


def client(server: Server, key: str, *, endpoint: str | None = None, **config):
    return SESSION.client(
        "sqs",
        endpoint_url=endpoint or f"{server.base}/api/sqs/",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="x",
        config=Config(**config) if config else None,
    )


def fifo(sqs, name: str = "orders.fifo", **attributes: str) -> str:
    given = {"FifoQueue": "true", **attributes}
    return sqs.create_queue(QueueName=name, Attributes=given)["QueueUrl"]


def bodies(answer: dict) -> list[str]:
    return [message["Body"] for message in answer.get("Messages", [])]


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return {
        **caught.value.response["Error"],
        "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


def page(server: Server, code: str, path: str = "queues/") -> str:
    with urllib.request.urlopen(f"{server.base}/r/{code}/{path}", timeout=10) as response:
        return response.read().decode()


def clock_step(server: Server, code: str, seconds: int) -> None:
    """Press the SQS page's step button (simulated time: 1, 10, 30 or 300 seconds)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server.base}/r/{code}/queues/", timeout=10).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    request = urllib.request.Request(
        f"{server.base}/r/{code}/queues/clock/step/",
        data=urllib.parse.urlencode({"step_ms": str(seconds * 1000)}).encode(),
        headers={"X-CSRFToken": token, "HX-Request": "true"},
        method="POST",
    )
    with opener.open(request, timeout=10) as response:
        assert response.status == 200


def raw(
    server: Server,
    action: str | None,
    body: bytes | str = b"{}",
    *,
    key: str | None = None,
    path: str = "/api/sqs/",
    method: str = "POST",
    headers: dict | None = None,
):
    """One request as bytes on the wire: (status, headers, parsed JSON body)."""
    sent = dict(headers or {})
    if action is not None:
        sent["X-Amz-Target"] = f"AmazonSQS.{action}"
    sent.setdefault("Content-Type", "application/x-amz-json-1.0")
    if key is not None:
        sent["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key}/20250101/us-east-1/sqs/aws4_request, "
            "SignedHeaders=host, Signature=00"
        )
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(
        server.base + path, data=data if method == "POST" else None, headers=sent, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"{}")


# --- FIFO semantics through boto3 -------------------------------------------------------------


def test_fifo_order_is_kept_within_each_message_group(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true")
    sent = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3"), ("c", "c1")]
    for group, body in sent:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)

    seen: dict[str, list[str]] = {}
    for _ in range(len(sent)):
        [message] = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["MessageGroupId"]
        )["Messages"]
        seen.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert seen == {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1"]}
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_group_is_blocked_while_its_message_is_in_flight_and_others_flow(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true")
    for group, body in [("alice", "alice-1"), ("alice", "alice-2"), ("bob", "bob-1")]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)

    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert first["Body"] == "alice-1"
    # alice-2 waits behind alice-1 in flight; bob's group is independent.
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == ["bob-1"]
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == ["alice-2"]

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["FifoQueue"] == "true"


def test_the_visibility_timeout_returns_the_message_as_the_room_clock_runs(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true", VisibilityTimeout="30")
    sqs.send_message(QueueUrl=url, MessageBody="job-1", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="job-2", MessageGroupId="g")

    taken = sqs.receive_message(
        QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"][0]
    assert (taken["Body"], taken["Attributes"]["ApproximateReceiveCount"]) == ("job-1", "1")
    clock_step(server, room, 10)
    assert bodies(sqs.receive_message(QueueUrl=url)) == []  # 10 s of 30: still in flight

    clock_step(server, room, 30)  # the consumer "crashed": the timeout hands job-1 back, first
    again = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert again["Body"] == "job-1"
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != taken["ReceiptHandle"]
    # On a FIFO queue the old receipt handle no longer deletes.
    stale = error_of(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=taken["ReceiptHandle"]))
    assert stale["Code"] == "InvalidParameterValue"
    assert "expired" in stale["Message"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])

    # ChangeMessageVisibility 0 hands a message back at once.
    held = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0
    )
    assert bodies(sqs.receive_message(QueueUrl=url)) == ["job-2"]


def test_a_duplicate_within_5_minutes_is_accepted_and_never_delivered(server, room):
    sqs = client(server, room)
    url = fifo(sqs)  # explicit MessageDeduplicationId
    original = sqs.send_message(
        QueueUrl=url, MessageBody="pay #7", MessageGroupId="p", MessageDeduplicationId="pay-7"
    )
    retry = sqs.send_message(
        QueueUrl=url, MessageBody="pay #7", MessageGroupId="p", MessageDeduplicationId="pay-7"
    )
    assert retry["MessageId"] == original["MessageId"]  # accepted, as the original
    assert retry["SequenceNumber"] == original["SequenceNumber"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["pay #7"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])

    clock_step(server, room, 30)  # still inside the 5 minutes: dropped again
    sqs.send_message(
        QueueUrl=url, MessageBody="pay #7", MessageGroupId="p", MessageDeduplicationId="pay-7"
    )
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == []

    clock_step(server, room, 300)  # past the interval: the same id is a new message
    later = sqs.send_message(
        QueueUrl=url, MessageBody="pay #7", MessageGroupId="p", MessageDeduplicationId="pay-7"
    )
    assert later["MessageId"] != original["MessageId"]
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == ["pay #7"]


def test_batches_send_receive_change_and_delete_entry_by_entry(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true")
    entries = [
        {"Id": f"m{i}", "MessageBody": f"body-{i}", "MessageGroupId": f"g{i % 3}"} for i in range(9)
    ] + [{"Id": "bad", "MessageBody": "no group"}]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert [entry["Id"] for entry in sent["Successful"]] == [f"m{i}" for i in range(9)]
    for entry in sent["Successful"]:
        assert entry["MessageId"] and entry["SequenceNumber"] and entry["MD5OfMessageBody"]
    [failed] = sent["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "bad",
        "MissingParameter",
        True,
    )

    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert sorted(m["Body"] for m in received) == sorted(f"body-{i}" for i in range(9))
    by_group: dict[str, list[str]] = {}
    for message in received:
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
    assert by_group["g0"] == ["body-0", "body-3", "body-6"]  # in order within each group
    assert {"SentTimestamp", "SequenceNumber", "MessageDeduplicationId"} <= set(
        received[0]["Attributes"]
    )

    handles = [m["ReceiptHandle"] for m in received]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": "c0", "ReceiptHandle": handles[0], "VisibilityTimeout": 60}],
    )
    assert changed["Successful"] == [{"Id": "c0"}] and changed["Failed"] == []
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"d{i}", "ReceiptHandle": h} for i, h in enumerate(handles)]
        + [{"Id": "forged", "ReceiptHandle": "AQEBnot-a-handle"}],
    )
    assert len(deleted["Successful"]) == 9
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid")
    ]
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_a_standard_queue_delays_and_a_dead_letter_queue_catches_poison(server, room):
    sqs = client(server, room)
    dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    policy = json.dumps(
        {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:jobs-dlq", "maxReceiveCount": 1}
    )
    url = sqs.create_queue(QueueName="jobs", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=10)
    assert "SequenceNumber" not in sent
    assert bodies(sqs.receive_message(QueueUrl=url)) == []  # delayed
    clock_step(server, room, 10)
    assert bodies(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)) == ["later"]
    # Received once (maxReceiveCount 1): the next receive moves it to the dead-letter queue.
    assert bodies(sqs.receive_message(QueueUrl=url)) == []
    assert bodies(sqs.receive_message(QueueUrl=dlq)) == ["later"]


# --- queues: create, find, list, attributes, purge, delete ---------------------------------------


def test_queue_management_calls(server, room):
    sqs = client(server, room)
    url = fifo(sqs, "alpha.fifo", ContentBasedDeduplication="true")
    assert url == f"{server.base}/api/sqs/000000000000/alpha.fifo"
    # CreateQueue is idempotent with the same attributes.
    assert fifo(sqs, "alpha.fifo", ContentBasedDeduplication="true") == url
    for name in ("beta", "beta-2", "gamma"):
        sqs.create_queue(QueueName=name)
    assert sqs.get_queue_url(QueueName="beta")["QueueUrl"].endswith("/000000000000/beta")

    listed = sqs.list_queues()["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in listed] == ["alpha.fifo", "beta", "beta-2", "gamma"]
    prefixed = sqs.list_queues(QueueNamePrefix="beta")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in prefixed] == ["beta", "beta-2"]
    page_1 = sqs.list_queues(MaxResults=3)
    page_2 = sqs.list_queues(MaxResults=3, NextToken=page_1["NextToken"])
    assert len(page_1["QueueUrls"]) == 3 and len(page_2["QueueUrls"]) == 1
    assert "NextToken" not in page_2
    paginated = [
        u
        for p in sqs.get_paginator("list_queues").paginate(PaginationConfig={"PageSize": 2})
        for u in p.get("QueueUrls", [])
    ]
    assert paginated == listed

    beta = sqs.get_queue_url(QueueName="beta")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=beta, Attributes={"VisibilityTimeout": "45"})
    got = sqs.get_queue_attributes(QueueUrl=beta, AttributeNames=["VisibilityTimeout", "QueueArn"])
    assert got["Attributes"] == {
        "VisibilityTimeout": "45",
        "QueueArn": "arn:aws:sqs:us-east-1:000000000000:beta",
    }
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=beta)

    sqs.send_message(QueueUrl=beta, MessageBody="to be purged")
    sqs.purge_queue(QueueUrl=beta)
    assert bodies(sqs.receive_message(QueueUrl=beta)) == []
    again = error_of(lambda: sqs.purge_queue(QueueUrl=beta))
    assert again["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert again["status"] == 403

    sqs.delete_queue(QueueUrl=beta)
    gone = error_of(lambda: sqs.get_queue_url(QueueName="beta"))
    assert gone["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


# --- errors as boto3 sees them ------------------------------------------------------------------


def test_errors_carry_the_real_sqs_codes(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true")

    missing = f"{server.base}/api/sqs/000000000000/missing.fifo"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.send_message(QueueUrl=missing, MessageBody="x", MessageGroupId="g")
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    bad_value = error_of(
        lambda: sqs.create_queue(QueueName="slow", Attributes={"VisibilityTimeout": "99999"})
    )
    assert (bad_value["Code"], bad_value["status"]) == ("InvalidAttributeValue", 400)
    unknown = error_of(lambda: sqs.create_queue(QueueName="odd", Attributes={"Colour": "blue"}))
    assert unknown["Code"] == "InvalidAttributeName"
    with pytest.raises(sqs.exceptions.QueueNameExists) as caught:
        fifo(sqs, ContentBasedDeduplication="false")
    assert caught.value.response["Error"]["Code"] == "QueueAlreadyExists"
    bad_name = error_of(lambda: sqs.create_queue(QueueName="no spaces"))
    assert bad_name["Code"] == "InvalidParameterValue"

    too_many = error_of(
        lambda: sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": "x", "MessageGroupId": "g"} for i in range(11)],
        )
    )
    assert too_many["Code"] == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    empty = error_of(lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[]))
    assert empty["Code"] == "AWS.SimpleQueueService.EmptyBatchRequest"
    twice = error_of(
        lambda: sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "same", "MessageBody": "x", "MessageGroupId": "g"}] * 2
        )
    )
    assert twice["Code"] == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"

    no_group = error_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x"))
    assert no_group["Code"] == "MissingParameter"
    delay_on_fifo = error_of(
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", DelaySeconds=5)
    )
    assert delay_on_fifo["Code"] == "InvalidParameterValue"
    eleven = error_of(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11))
    assert eleven["Code"] == "InvalidParameterValue"
    long_wait = error_of(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21))
    assert long_wait["Code"] == "InvalidParameterValue"
    forged = error_of(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="AQEBbogus"))
    assert (forged["Code"], forged["status"]) == ("ReceiptHandleIsInvalid", 404)
    not_in_flight = error_of(
        lambda: sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=_a_handle_then_deleted(sqs, url), VisibilityTimeout=10
        )
    )
    assert not_in_flight["Code"] == "AWS.SimpleQueueService.MessageNotInflight"
    too_big = error_of(
        lambda: sqs.send_message(
            QueueUrl=url, MessageBody="x" * (10 * 1024 + 1), MessageGroupId="g"
        )
    )
    assert too_big["Code"] == "InvalidParameterValue"
    unmodelled = error_of(lambda: sqs.list_queue_tags(QueueUrl=url))
    assert unmodelled["Code"] == "AWS.SimpleQueueService.UnsupportedOperation"
    attributes = error_of(
        lambda: sqs.send_message(
            QueueUrl=url,
            MessageBody="x",
            MessageGroupId="g",
            MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
        )
    )
    assert attributes["Code"] == "AWS.SimpleQueueService.UnsupportedOperation"

    # LogLab's bound of 10 queues a room, in SQS's terms.
    for n in range(9):
        sqs.create_queue(QueueName=f"extra-{n}")
    over = error_of(lambda: sqs.create_queue(QueueName="one-too-many"))
    assert (over["Code"], over["status"]) == ("OverLimit", 403)


def _a_handle_then_deleted(sqs, url: str) -> str:
    sqs.send_message(QueueUrl=url, MessageBody="short-lived", MessageGroupId="tmp")
    message = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return message["ReceiptHandle"]


def test_an_unknown_room_is_refused_like_a_bad_access_key(server, room):
    stranger = client(server, "NOSUCH")
    refused = error_of(lambda: stranger.list_queues())
    assert (refused["Code"], refused["status"]) == ("InvalidClientTokenId", 403)
    at_path = client(server, "anyone", endpoint=f"{server.base}/api/sqs/NOSUCH/")
    assert error_of(lambda: at_path.list_queues())["Code"] == "InvalidClientTokenId"
    # Another room's code as the key of this room's endpoint is a mix-up.
    other = server.room()
    mixed = client(server, other, endpoint=f"{server.base}/api/sqs/{room}/")
    assert error_of(lambda: mixed.list_queues())["Code"] == "InvalidClientTokenId"


def test_the_room_endpoint_takes_any_key_as_the_consumers_name(server, room):
    # No trailing slash: botocore posts to the path as given.
    alice = client(server, "alice", endpoint=f"{server.base}/api/sqs/{room.lower()}")
    url = alice.create_queue(QueueName="work")["QueueUrl"]
    assert url == f"{server.base}/api/sqs/{room}/000000000000/work"
    alice.send_message(QueueUrl=url, MessageBody="for alice")
    assert bodies(alice.receive_message(QueueUrl=url)) == ["for alice"]
    assert "held by alice" in page(server, room)
    # The room's own code (any case) works at both endpoints, and it is the same room.
    by_code = client(server, room.lower())
    assert by_code.get_queue_url(QueueName="work")["QueueUrl"].endswith("/000000000000/work")


def test_messages_sent_with_boto3_appear_on_the_sqs_page_escaped(server, room):
    sqs = client(server, room)
    url = fifo(sqs, ContentBasedDeduplication="true")
    sqs.send_message(QueueUrl=url, MessageBody="<b>tea & cake</b>", MessageGroupId="cafe")
    html = page(server, room)
    assert "orders.fifo" in html
    assert "&lt;b&gt;tea &amp; cake&lt;/b&gt;" in html
    assert "<b>tea & cake</b>" not in html
    sqs.receive_message(QueueUrl=url)
    assert "held by sdk" in page(server, room)
    # The live fragment the page swaps in on every "sqs.changed" event shows it too.
    assert "&lt;b&gt;tea &amp; cake&lt;/b&gt;" in page(server, room, "queues/fragment/")


def test_every_call_records_the_room_events_the_page_follows(server, room):
    sqs = client(server, room)
    ws_url = server.base.replace("http://", "ws://") + f"/ws/rooms/{room}/"
    with connect(ws_url, origin="http://127.0.0.1", open_timeout=10) as socket:
        url = fifo(sqs, ContentBasedDeduplication="true")
        sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g")
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "a", "MessageBody": "two", "MessageGroupId": "g"},
                {"Id": "b", "MessageBody": "three", "MessageGroupId": "h"},
            ],
        )
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
            ],
        )
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
        sqs.purge_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=url)
        events = []
        while len(events) < 11:
            event = json.loads(socket.recv(timeout=10))
            if event["type"] == "sqs.changed":
                events.append(event["payload"])
    assert [event["action"] for event in events] == [
        "create",
        "send",
        "send",
        "send",
        "receive",
        "delete",
        "delete",
        "delete",
        "set_attributes",
        "purge",
        "delete_queue",
    ]
    assert events[4]["consumer"] == "sdk" and events[4]["received"] == 3


# --- long polling -------------------------------------------------------------------------------


def test_long_polling_waits_for_a_message_and_is_bounded(server, room):
    sqs = client(server, room)
    url = sqs.create_queue(QueueName="polled")["QueueUrl"]

    started = time.monotonic()
    assert bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)) == []
    assert 0.9 <= time.monotonic() - started < 2.5

    started = time.monotonic()
    assert bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)) == []
    assert 1.9 <= time.monotonic() - started < 4  # the wall-time bound is 2 s

    sender = client(server, room)
    timer = threading.Timer(0.5, lambda: sender.send_message(QueueUrl=url, MessageBody="hi"))
    timer.start()
    try:
        started = time.monotonic()
        assert bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)) == ["hi"]
        assert time.monotonic() - started < 1.9
    finally:
        timer.join()

    # While one client long-polls, the rest of the site keeps answering.
    poller = threading.Thread(
        target=lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20), daemon=True
    )
    poller.start()
    time.sleep(0.2)
    started = time.monotonic()
    page(server, room)
    assert time.monotonic() - started < 1.5
    poller.join()


# --- the wire, byte for byte --------------------------------------------------------------------


def test_the_wire_format_of_answers_and_errors(server, room):
    status, headers, body = raw(server, "ListQueues", key=room)
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.0"
    assert body == {}
    status, headers, body = raw(server, "GetQueueUrl", json.dumps({"QueueName": "nope"}), key=room)
    assert status == 400
    assert body == {
        "__type": "com.amazonaws.sqs#QueueDoesNotExist",
        "message": "The specified queue does not exist.",
    }
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert headers["x-amzn-RequestId"]

    status, headers, body = raw(server, "ListQueues", key="nosuch")
    assert status == 403 and headers["x-amzn-query-error"] == "InvalidClientTokenId;Sender"
    assert body["__type"].endswith("#UnrecognizedClientException")
    status, headers, _ = raw(server, "ListQueues")  # unsigned, and no room in the path
    assert (status, headers["x-amzn-query-error"]) == (403, "MissingAuthenticationToken;Sender")
    # Unsigned with the room in the path: allowed (curl), labelled "sdk".
    status, _, body = raw(server, "ListQueues", path=f"/api/sqs/{room}/")
    assert (status, body) == (200, {})

    status, _, body = raw(server, "ListQueues", b"{not json", key=room)
    assert status == 400 and body["__type"].endswith("#SerializationException")
    status, _, body = raw(server, "ListQueues", b'{"MaxResults": "ten"}', key=room)
    assert status == 400 and body["__type"].endswith("#SerializationException")
    status, headers, body = raw(server, "Frobnicate", key=room)
    assert status == 400 and body["__type"].endswith("#UnknownOperationException")
    status, _, body = raw(
        server,
        None,
        b"Action=ListQueues",
        key=room,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400 and "JSON 1.0" in body["message"]
    status, _, body = raw(server, None, method="GET", path=f"/api/sqs/{room}/")
    assert status == 405 and "POST" in body["message"]

    big = json.dumps({"QueueUrl": "x", "MessageBody": "x" * (300 * 1024)})
    status, headers, body = raw(server, "SendMessage", big, key=room)
    assert status == 413 and headers["x-amzn-query-error"] == "RequestEntityTooLarge;Sender"

    # Some SDKs post to the queue's URL: the same endpoint answers there.
    sqs = client(server, room)
    url = sqs.create_queue(QueueName="direct")["QueueUrl"]
    status, _, body = raw(
        server,
        "SendMessage",
        json.dumps({"QueueUrl": url, "MessageBody": "posted to the URL"}),
        key=room,
        path=urllib.parse.urlsplit(url).path,
    )
    assert status == 200
    assert body["MD5OfMessageBody"] == hashlib.md5(b"posted to the URL").hexdigest()
    assert bodies(sqs.receive_message(QueueUrl=url)) == ["posted to the URL"]


ODD_MEMBERS = [
    {},
    {"QueueUrl": ["not", "a", "string"]},
    {"QueueUrl": "", "QueueName": ""},
    {"QueueName": "q\u0000", "Attributes": {"Policy": "\u0000"}},
    {"QueueName": "x" * 100, "Attributes": {"VisibilityTimeout": 5}},
    {"QueueName": "q", "Attributes": {f"A{i}": "v" for i in range(30)}},
    {"QueueUrl": "/000000000000/odd", "MessageBody": "\u0000", "MessageGroupId": "\u0000"},
    {"QueueUrl": "odd", "MessageBody": 7, "DelaySeconds": 10**30},
    {"QueueUrl": "odd", "MessageBody": "x", "DelaySeconds": -1},
    {"QueueUrl": "odd", "Entries": [1, 2]},
    {"QueueUrl": "odd", "Entries": [{"Id": 5}]},
    {"QueueUrl": "odd", "Entries": [{}]},
    {"QueueUrl": "odd", "Entries": [{"Id": "a", "ReceiptHandle": "\u00e9" * 2000}]},
    {"QueueUrl": "odd", "ReceiptHandle": "AQEB\u00e9", "VisibilityTimeout": 10**30},
    {"QueueUrl": "odd", "MaxNumberOfMessages": 0, "WaitTimeSeconds": -5},
    {"QueueUrl": "odd", "VisibilityTimeout": 1.5, "AttributeNames": "All"},
    {"QueueUrl": "odd", "AttributeNames": ["Nope"], "MaxResults": 0, "NextToken": "%%%"},
    {"QueueUrl": "odd", "Attributes": {"RedrivePolicy": "{not json"}},
    {"QueueUrl": "odd", "Attributes": {"FifoQueue": "true"}},
    {"MaxResults": 10**30, "NextToken": "\u00e9"},
    {"QueueNamePrefix": "\u0000", "NextToken": "AA=="},
    {"QueueUrl": "http://h/000000000000/odd\u0000", "QueueName": "odd\u0000"},
]
ACTIONS = [
    "CreateQueue",
    "GetQueueUrl",
    "ListQueues",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "PurgeQueue",
    "DeleteQueue",
]


def test_odd_requests_are_refused_in_sqs_shape_never_with_a_500(server, room):
    sqs = client(server, room)
    sqs.create_queue(QueueName="odd")
    statuses = set()
    endpoint = f"/api/sqs/{room}/"
    for action in ACTIONS:
        for n, members in enumerate(ODD_MEMBERS):
            # A key (a consumer's name at this endpoint) per request: no throttling here.
            status, headers, body = raw(
                server, action, json.dumps(members), key=f"{action}-{n}", path=endpoint
            )
            statuses.add(status)
            assert status < 500, (action, members, body)
            if status >= 400:
                assert body["__type"].count("#") == 1 and body["message"], (action, members)
                assert headers["x-amzn-query-error"].endswith(";Sender")
    for text in ('{"MessageBody": "\\ud800"}', "[]", '"text"', "\xff\xfe", "{" * 5000):
        status, _, body = raw(server, "SendMessage", text.encode("latin-1"), path=endpoint)
        assert status == 400 and body["__type"].endswith("#SerializationException"), text
    assert 200 in statuses and 400 in statuses
    # No odd CreateQueue made a queue; the one DeleteQueue that was well formed removed "odd".
    assert "QueueUrls" not in sqs.list_queues()


def test_a_client_over_the_rate_is_throttled_as_sqs_throttles(tmp_path_factory):
    env, serving = _serve(
        tmp_path_factory.mktemp("sqs-throttle"), LOGLAB_SQS_API_RATE_PER_SECOND="2"
    )
    with serving as base:
        throttled = Server(base, env)
        code = throttled.room()
        sqs = client(throttled, code, retries={"total_max_attempts": 1, "mode": "standard"})
        errors = []
        for _ in range(5):
            try:
                sqs.list_queues()
            except ClientError as error:
                errors.append(error)
        assert errors, "5 calls at once at 2 per second: some must be throttled"
        error = errors[0]
        assert error.response["Error"]["Code"] == "ThrottlingException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert isinstance(error, sqs.exceptions.RequestThrottled)
        # Another access key has a bucket of its own.
        bob = client(
            throttled,
            "bob",
            endpoint=f"{base}/api/sqs/{code}/",
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        assert "QueueUrls" not in bob.list_queues()
        # boto3's own retries (with backoff) get through.
        patient = client(throttled, code, retries={"max_attempts": 10, "mode": "standard"})
        time.sleep(1)
        for _ in range(4):
            patient.list_queues()


# --- the docs -----------------------------------------------------------------------------------


def test_the_docs_examples_run_against_the_live_server(server, room, monkeypatch, capsys):
    blocks = BLOCK.findall(DOCS.read_text())
    assert len(blocks) >= 5
    monkeypatch.setenv("LOGLAB_SQS_ENDPOINT", f"{server.base}/api/sqs/{room}/")
    monkeypatch.setenv("LOGLAB_ROOM", room)
    namespace: dict = {"__name__": "docs"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"docs/clients-sqs.md[python block {index}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert f"{server.base}/api/sqs/{room}/000000000000/orders.fifo" in out
    assert "AWS.SimpleQueueService.NonExistentQueue" in out
    html = page(server, room)
    assert "orders.fifo" in html
