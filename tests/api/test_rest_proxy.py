"""The room's Kafka REST API, driven with plain HTTP the way REST Proxy's documentation does.

Most tests go through Django's test client; the examples of docs/clients.md run against a live
server (pytest-django's `live_server`), over real HTTP, with urllib and curl.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from messaging.api.errors import DEFAULT_RATE_PER_SECOND
from messaging.engine.partitioner import partition_for_key
from messaging.infra.rates import buckets
from messaging.models import (
    CommittedOffset,
    ConsumerGroup,
    Member,
    Record,
    RestConsumerInstance,
    Room,
    RoomEvent,
    Topic,
)
from messaging.services.rest_consumers import rest_instances_expire
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox

pytestmark = pytest.mark.django_db

V2 = "application/vnd.kafka.v2+json"
JSON_V2 = "application/vnd.kafka.json.v2+json"
BINARY_V2 = "application/vnd.kafka.binary.v2+json"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "clients.md"


@pytest.fixture(autouse=True)
def generous_rate(settings):
    """The rate limit has its own test; elsewhere a test may fire requests as fast as it can."""
    settings.LOGLAB_API_RATE_PER_SECOND = 100_000
    buckets.clear()
    yield
    buckets.clear()


class RestProxy:
    """HTTP to one room's REST Proxy: paths relative to the room's `rest_base`."""

    def __init__(self, client, room: Room) -> None:
        self.client = client
        self.room = room
        self.base = f"/api/kafka/{room.code}"
        self.v3 = f"/v3/clusters/{room.code}"

    def call(self, method, path, body=None, *, content_type=V2, accept=None, raw=None, **extra):
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        headers = {"Accept": accept} if accept else {}
        return self.client.generic(
            method, self.base + path, data, content_type=content_type, headers=headers, **extra
        )

    def ok(self, method, path, body=None, **kwargs):
        response = self.call(method, path, body, **kwargs)
        assert response.status_code < 300, (response.status_code, response.content)
        return response.json() if response.content else None

    # REST Proxy's steps, as its documentation writes them.
    def create_topic(self, name, partitions):
        return self.ok(
            "POST",
            f"{self.v3}/topics",
            {"topic_name": name, "partitions_count": partitions},
            content_type="application/json",
        )

    def produce(self, topic, records, content_type=JSON_V2):
        return self.ok("POST", f"/topics/{topic}", {"records": records}, content_type=content_type)[
            "offsets"
        ]

    def consumer(self, group, name, **config):
        body = {"name": name, "format": "json", "auto.offset.reset": "earliest", **config}
        return self.ok("POST", f"/consumers/{group}", body)

    def subscribe(self, group, name, topics):
        return self.ok(
            "POST", f"/consumers/{group}/instances/{name}/subscription", {"topics": topics}
        )

    def records(self, group, name, accept=JSON_V2, query=""):
        return self.ok("GET", f"/consumers/{group}/instances/{name}/records{query}", accept=accept)

    def assignments(self, group, name):
        answer = self.ok("GET", f"/consumers/{group}/instances/{name}/assignments")
        return [(p["topic"], p["partition"]) for p in answer["partitions"]]

    def commit(self, group, name, offsets=None):
        body = None if offsets is None else {"offsets": offsets}
        return self.ok("POST", f"/consumers/{group}/instances/{name}/offsets", body)

    def lags(self, group):
        return self.call("GET", f"{self.v3}/consumer-groups/{group}/lags")


@pytest.fixture
def room():
    room = room_create(title="rest proxy")
    room_seed_sandbox(room=room)
    return room


@pytest.fixture
def kafka(client, room):
    return RestProxy(client, room)


def snapshot(room: Room) -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        Room.objects.get(pk=room.pk).last_seq,
        Record.objects.count(),
        Topic.objects.count(),
        ConsumerGroup.objects.count(),
        Member.objects.count(),
        RestConsumerInstance.objects.count(),
        list(CommittedOffset.objects.order_by("pk").values_list("pk", "offset")),
    )


# --- the walk-through -------------------------------------------------------------------------


def test_it_produces_keyed_records_where_the_java_producer_puts_them(kafka):
    kafka.create_topic("payments", 6)
    keys = [f"customer-{i}" for i in range(30)]
    # Binary embedded format: the key's bytes are the key, as with the StringSerializer.
    binary = kafka.produce(
        "payments",
        [
            {"key": base64.b64encode(k.encode()).decode(), "value": base64.b64encode(b"v").decode()}
            for k in keys
        ],
        content_type=BINARY_V2,
    )
    assert [o["partition"] for o in binary] == [partition_for_key(k.encode(), 6) for k in keys]
    # JSON embedded format: REST Proxy serialises the key as JSON, quotes included, and the
    # producer hashes those bytes.
    as_json = kafka.produce("payments", [{"key": k, "value": {"n": 1}} for k in keys])
    assert [o["partition"] for o in as_json] == [
        partition_for_key(json.dumps(k).encode(), 6) for k in keys
    ]
    assert Record.objects.filter(partition__topic__name="payments", key='"customer-0"').exists()
    # v3 STRING keys are sent as they are.
    for key in keys[:5]:
        answer = kafka.ok(
            "POST",
            f"{kafka.v3}/topics/payments/records",
            {"key": {"type": "STRING", "data": key}, "value": {"type": "JSON", "data": {"n": 2}}},
            content_type="application/json",
        )
        assert answer["partition_id"] == partition_for_key(key.encode(), 6)
        assert answer["error_code"] == 200
    # Offsets within each partition are 0, 1, 2, ... in produce order.
    for partition in range(6):
        offsets = list(
            Record.objects.filter(partition__topic__name="payments", partition__index=partition)
            .order_by("offset")
            .values_list("offset", flat=True)
        )
        assert offsets == list(range(len(offsets)))


def test_it_runs_two_consumers_of_one_group_from_produce_to_zero_lag(kafka, room):
    topic = kafka.create_topic("payments", 6)
    assert (topic["kind"], topic["partitions_count"], topic["cluster_id"]) == (
        "KafkaTopic",
        6,
        room.code,
    )
    partitions = kafka.ok("GET", f"{kafka.v3}/topics/payments/partitions")
    assert [p["partition_id"] for p in partitions["data"]] == list(range(6))

    produced = kafka.produce("payments", [{"key": f"k{i}", "value": {"n": i}} for i in range(60)])
    everything = {(o["partition"], o["offset"]) for o in produced}
    assert len(everything) == 60

    for name in ("c1", "c2"):
        created = kafka.consumer("payments-app", name, **{"auto.commit.enable": "false"})
        assert created["instance_id"] == name
        assert created["base_uri"] == (
            f"http://testserver/api/kafka/{room.code}/consumers/payments-app/instances/{name}"
        )
    for name in ("c1", "c2"):
        kafka.subscribe("payments-app", name, ["payments"])

    # Members of the group like any other, named after their instances, dealt by range in
    # member-id order: c1-1 < c2-2, so c1 gets partitions 0-2 and c2 gets 3-5.
    group = ConsumerGroup.objects.get(room=room, group_id="payments-app")
    members = list(group.members.order_by("member_id"))
    assert [(m.member_id, m.display_name, m.kind) for m in members] == [
        ("c1-1", "c1", Member.Kind.REST),
        ("c2-2", "c2", Member.Kind.REST),
    ]
    assert (group.assignor, group.state) == ("range", "Stable")
    assert kafka.assignments("payments-app", "c1") == [("payments", p) for p in (0, 1, 2)]
    assert kafka.assignments("payments-app", "c2") == [("payments", p) for p in (3, 4, 5)]
    board = kafka.client.get(f"/r/{room.code}/").content.decode()
    assert "c1" in board and "c2" in board

    got = {}
    for name, owned in (("c1", {0, 1, 2}), ("c2", {3, 4, 5})):
        records = kafka.records("payments-app", name)
        assert {r["partition"] for r in records} <= owned
        for r in records:
            assert r["value"] == {"n": int(r["key"][1:])}
        got[name] = {(r["partition"], r["offset"]) for r in records}
    assert got["c1"] | got["c2"] == everything
    assert not got["c1"] & got["c2"]
    assert kafka.records("payments-app", "c1") == []  # nothing more to read

    # Nothing committed yet: REST Proxy has no lag to show.
    missing = kafka.lags("payments-app")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 404)

    # c1 commits the first record of partition 0 only: the committed offset is that plus one.
    first = min(o for p, o in got["c1"] if p == 0)
    kafka.commit("payments-app", "c1", [{"topic": "payments", "partition": 0, "offset": first}])
    lags = kafka.lags("payments-app").json()
    assert lags["kind"] == "KafkaConsumerLagList"
    [row] = lags["data"]
    log_end = sum(1 for p, _ in everything if p == 0)
    assert (row["partition_id"], row["current_offset"], row["log_end_offset"]) == (
        0,
        first + 1,
        log_end,
    )
    assert row["lag"] == log_end - first - 1 > 0
    assert (row["consumer_id"], row["client_id"]) == ("c1-1", "c1")

    # An empty body commits everything each instance fetched: lag 0 on all six partitions.
    kafka.commit("payments-app", "c1")
    kafka.commit("payments-app", "c2")
    lags = kafka.lags("payments-app").json()["data"]
    assert sorted(r["partition_id"] for r in lags) == list(range(6))
    assert all(r["lag"] == 0 and r["current_offset"] == r["log_end_offset"] for r in lags)
    assert {r["consumer_id"] for r in lags} == {"c1-1", "c2-2"}

    # New records: lag again, until they are read and committed.
    kafka.produce("payments", [{"key": "k0", "value": {"n": 0}}])
    assert max(r["lag"] for r in kafka.lags("payments-app").json()["data"]) == 1


def test_it_commits_what_a_poll_returned_with_auto_commit(kafka, room):
    kafka.create_topic("payments", 3)
    kafka.produce("payments", [{"key": f"k{i}", "value": i} for i in range(9)])
    kafka.consumer("auto", "w")  # auto.commit.enable defaults to true, as in REST Proxy
    kafka.subscribe("auto", "w", ["payments"])
    assert len(kafka.records("auto", "w")) == 9
    lags = kafka.lags("auto").json()["data"]
    assert sorted((r["partition_id"], r["lag"]) for r in lags) == [(0, 0), (1, 0), (2, 0)]
    assert RoomEvent.objects.filter(room=room, type="offset.committed").count() == 3


def test_it_hands_a_closed_instances_partitions_over_from_the_committed_offsets(kafka, room):
    kafka.create_topic("payments", 2)
    kafka.produce("payments", [{"key": f"k{i}", "value": i, "partition": i % 2} for i in range(6)])
    for name in ("a", "b"):
        kafka.consumer("g", name, **{"auto.commit.enable": False})
        kafka.subscribe("g", name, ["payments"])
    assert kafka.assignments("g", "a") == [("payments", 0)]
    assert len(kafka.records("g", "a")) == 3
    kafka.commit("g", "a", [{"topic": "payments", "partition": 0, "offset": 0}])

    response = kafka.call("DELETE", "/consumers/g/instances/a")
    assert response.status_code == 204
    assert not Member.objects.filter(group__group_id="g", display_name="a").exists()
    assert kafka.assignments("g", "b") == [("payments", 0), ("payments", 1)]
    # b resumes partition 0 after the committed offset 1: offsets 2 and 4 again (at-least-once),
    # not 0, and reads partition 1 from the start.
    replay = kafka.records("g", "b")
    assert sorted((r["partition"], r["offset"]) for r in replay) == [
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    gone = kafka.call("GET", "/consumers/g/instances/a/records", accept=JSON_V2)
    assert (gone.status_code, gone.json()["error_code"]) == (404, 40403)
    assert RoomEvent.objects.filter(room=room, type="rest.consumer.deleted").exists()


def test_it_gives_binary_consumers_base64_and_checks_their_accept_header(kafka):
    kafka.create_topic("payments", 1)
    kafka.produce("payments", [{"key": "alice", "value": {"amount": 3}}])
    kafka.consumer("bin", "raw", format="binary")
    kafka.subscribe("bin", "raw", ["payments"])
    mismatch = kafka.call("GET", "/consumers/bin/instances/raw/records", accept=JSON_V2)
    assert (mismatch.status_code, mismatch.json()["error_code"]) == (406, 40601)
    response = kafka.call("GET", "/consumers/bin/instances/raw/records", accept=BINARY_V2)
    assert response["Content-Type"] == BINARY_V2
    [record] = response.json()
    assert base64.b64decode(record["key"]) == b'"alice"'
    assert json.loads(base64.b64decode(record["value"])) == {"amount": 3}


def test_it_reads_the_boards_plain_text_records_as_json_strings(kafka, room):
    from messaging.services.records import RecordIn, records_produce

    records_produce(room=room, topic_name="orders", records=[RecordIn(key="alice", value="hi")])
    kafka.consumer("readers", "r")
    kafka.subscribe("readers", "r", ["orders"])
    [record] = kafka.records("readers", "r")
    assert (record["key"], record["value"]) == ("alice", "hi")


def test_it_bounds_a_poll_by_max_bytes_but_always_returns_one_record(kafka):
    kafka.create_topic("payments", 1)
    kafka.produce("payments", [{"key": None, "value": "x" * 100} for _ in range(5)])
    kafka.consumer("g", "w")
    kafka.subscribe("g", "w", ["payments"])
    assert len(kafka.records("g", "w", query="?max_bytes=1")) == 1
    assert len(kafka.records("g", "w", query="?max_bytes=250&timeout=1000")) == 2
    assert len(kafka.records("g", "w")) == 2


def test_it_joins_an_existing_group_that_reads_the_same_topics_only(kafka, room):
    kafka.create_topic("payments", 3)
    kafka.consumer("billing", "mine")  # the sandbox's billing group reads orders
    conflict = kafka.call(
        "POST", "/consumers/billing/instances/mine/subscription", {"topics": ["payments"]}
    )
    assert (conflict.status_code, conflict.json()["error_code"]) == (409, 40901)
    assert "reads orders" in conflict.json()["message"]
    kafka.subscribe("billing", "mine", ["orders"])
    billing = ConsumerGroup.objects.get(room=room, group_id="billing")
    assert billing.members.count() == 3
    assert billing.members.get(kind=Member.Kind.REST).records_per_second == 0
    # Subscribing again to the same topics changes nothing; to others, 40901 still.
    kafka.subscribe("billing", "mine", ["orders"])
    again = kafka.call(
        "POST", "/consumers/billing/instances/mine/subscription", {"topics": ["orders", "payments"]}
    )
    assert again.json()["error_code"] == 40901
    assert kafka.ok("GET", "/consumers/billing/instances/mine/subscription") == {
        "topics": ["orders"]
    }


def test_it_describes_the_cluster_topics_and_groups_in_v3_shapes(kafka, room):
    clusters = kafka.ok("GET", "/v3/clusters")
    assert clusters["kind"] == "KafkaClusterList"
    assert clusters["metadata"]["self"] == f"http://testserver/api/kafka/{room.code}/v3/clusters"
    [cluster] = clusters["data"]
    assert (cluster["kind"], cluster["cluster_id"]) == ("KafkaCluster", room.code)
    assert kafka.ok("GET", kafka.v3)["cluster_id"] == room.code
    topics = kafka.ok("GET", f"{kafka.v3}/topics")
    assert [t["topic_name"] for t in topics["data"]] == ["orders"]
    assert (
        topics["data"][0]["metadata"]["resource_name"] == f"crn:///kafka={room.code}/topic=orders"
    )
    groups = kafka.ok("GET", f"{kafka.v3}/consumer-groups")
    assert [
        (g["consumer_group_id"], g["partition_assignor"], g["state"]) for g in groups["data"]
    ] == [("analytics", "cooperative-sticky", "STABLE"), ("billing", "range", "STABLE")]
    assert kafka.ok("GET", f"{kafka.v3}/consumer-groups/billing")["kind"] == "KafkaConsumerGroup"
    assert kafka.ok("GET", "/topics") == ["orders"]
    v2 = kafka.ok("GET", "/topics/orders")
    assert [p["partition"] for p in v2["partitions"]] == [0, 1, 2]


def test_it_creates_topics_with_configs_and_refuses_what_kafka_refuses(kafka, room):
    created = kafka.ok(
        "POST",
        f"{kafka.v3}/topics",
        {
            "topic_name": "users",
            "partitions_count": 2,
            "configs": [{"name": "cleanup.policy", "value": "compact"}],
        },
        content_type="application/json",
    )
    assert created["partitions_count"] == 2
    assert Topic.objects.get(room=room, name="users").cleanup_policy == "compact"
    before = snapshot(room)
    for body in (
        {"topic_name": "users", "partitions_count": 1},  # exists
        {"topic_name": "bad name!", "partitions_count": 1},
        {"topic_name": "t", "partitions_count": 0},
        {"topic_name": "t", "partitions_count": 129},
        {"topic_name": "t", "partitions_count": 1, "replication_factor": 6},  # > brokers
        {"topic_name": "t", "configs": [{"name": "min.insync.replicas", "value": "0"}]},
        {"topic_name": "t", "configs": [{"name": "retention.ms", "value": "soon"}]},
    ):
        response = kafka.call("POST", f"{kafka.v3}/topics", body, content_type="application/json")
        assert (response.status_code, response.json()["error_code"]) == (400, 40002), body
    assert snapshot(room) == before


# --- refusals ---------------------------------------------------------------------------------


def _with_instance(kafka):
    kafka.consumer("g", "w")
    kafka.subscribe("g", "w", ["orders"])


def _with_pending_instance(kafka):
    kafka.consumer("g", "w")


def _nothing(kafka):
    pass


BIG_KEY = "k" * 257
BIG_VALUE = "v" * (10 * 1024 + 1)
CASES = [
    # (setup, method, path, body, content type, accept, status, error code)
    (
        "unknown topic, v2 produce",
        _nothing,
        "POST",
        "/topics/nope",
        {"records": [{"value": 1}]},
        JSON_V2,
        None,
        404,
        40401,
    ),
    (
        "unknown topic, v3 produce",
        _nothing,
        "POST",
        "{v3}/topics/nope/records",
        {"value": {"type": "JSON", "data": 1}},
        "application/json",
        None,
        404,
        40401,
    ),
    ("unknown topic, v3 get", _nothing, "GET", "{v3}/topics/nope", None, V2, None, 404, 40401),
    (
        "unknown topic, subscribe",
        _with_pending_instance,
        "POST",
        "/consumers/g/instances/w/subscription",
        {"topics": ["nope"]},
        V2,
        None,
        404,
        40401,
    ),
    (
        "no such partition, v2",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": 1, "partition": 3}]},
        JSON_V2,
        None,
        404,
        40402,
    ),
    (
        "no such partition, v3",
        _nothing,
        "POST",
        "{v3}/topics/orders/records",
        {"partition_id": 9, "value": {"data": 1}},
        "application/json",
        None,
        404,
        40402,
    ),
    (
        "no such partition, v3 get",
        _nothing,
        "GET",
        "{v3}/topics/orders/partitions/3",
        None,
        V2,
        None,
        404,
        40402,
    ),
    (
        "unknown instance, records",
        _nothing,
        "GET",
        "/consumers/g/instances/w/records",
        None,
        V2,
        JSON_V2,
        404,
        40403,
    ),
    (
        "unknown instance, subscribe",
        _nothing,
        "POST",
        "/consumers/g/instances/w/subscription",
        {"topics": ["orders"]},
        V2,
        None,
        404,
        40403,
    ),
    (
        "unknown instance, commit",
        _nothing,
        "POST",
        "/consumers/g/instances/w/offsets",
        None,
        V2,
        None,
        404,
        40403,
    ),
    (
        "unknown instance, assignments",
        _nothing,
        "GET",
        "/consumers/g/instances/w/assignments",
        None,
        V2,
        None,
        404,
        40403,
    ),
    (
        "unknown instance, delete",
        _nothing,
        "DELETE",
        "/consumers/g/instances/w",
        None,
        V2,
        None,
        404,
        40403,
    ),
    (
        "duplicate instance",
        _with_pending_instance,
        "POST",
        "/consumers/g",
        {"name": "w"},
        V2,
        None,
        409,
        40902,
    ),
    (
        "duplicate of a subscribed instance",
        _with_instance,
        "POST",
        "/consumers/g",
        {"name": "w"},
        V2,
        None,
        409,
        40902,
    ),
    (
        "poll before subscribing",
        _with_pending_instance,
        "GET",
        "/consumers/g/instances/w/records",
        None,
        V2,
        JSON_V2,
        409,
        40903,
    ),
    (
        "commit offsets before subscribing",
        _with_pending_instance,
        "POST",
        "/consumers/g/instances/w/offsets",
        {"offsets": [{"topic": "orders", "partition": 0, "offset": 0}]},
        V2,
        None,
        409,
        40903,
    ),
    (
        "produce as text/plain",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": 1}]},
        "text/plain",
        None,
        415,
        415,
    ),
    (
        "produce as avro",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": 1}]},
        "application/vnd.kafka.avro.v2+json",
        None,
        415,
        415,
    ),
    (
        "create instance from a form",
        _nothing,
        "POST",
        "/consumers/g",
        {"name": "w"},
        "application/x-www-form-urlencoded",
        None,
        415,
        415,
    ),
    (
        "v3 produce as a v2 type",
        _nothing,
        "POST",
        "{v3}/topics/orders/records",
        {"value": {"data": 1}},
        JSON_V2,
        None,
        415,
        415,
    ),
    (
        "key over 256 characters",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"key": "k", "value": 1}, {"key": BIG_KEY, "value": 1}]},
        JSON_V2,
        None,
        422,
        42206,
    ),
    (
        "value over 10 KB",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"key": "k", "value": 1}, {"key": "k", "value": BIG_VALUE}]},
        JSON_V2,
        None,
        422,
        42206,
    ),
    (
        "v3 value over 10 KB",
        _nothing,
        "POST",
        "{v3}/topics/orders/records",
        {"value": {"type": "STRING", "data": BIG_VALUE}},
        "application/json",
        None,
        422,
        42206,
    ),
    (
        "more than 1000 records",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": 1}] * 1001},
        JSON_V2,
        None,
        422,
        42206,
    ),
    (
        "bad base64",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": "not base64!"}]},
        BINARY_V2,
        None,
        422,
        42206,
    ),
    (
        "binary that is not UTF-8",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": base64.b64encode(b"\xff\xfe").decode()}]},
        BINARY_V2,
        None,
        422,
        42206,
    ),
    (
        "v3 avro value",
        _nothing,
        "POST",
        "{v3}/topics/orders/records",
        {"value": {"type": "AVRO", "data": 1}},
        "application/json",
        None,
        422,
        42206,
    ),
    ("empty records", _nothing, "POST", "/topics/orders", {"records": []}, JSON_V2, None, 422, 422),
    (
        "partition not a number",
        _nothing,
        "POST",
        "/topics/orders",
        {"records": [{"value": 1, "partition": "two"}]},
        JSON_V2,
        None,
        422,
        422,
    ),
    (
        "bad JSON, produce",
        _nothing,
        "POST",
        "/topics/orders",
        "{records: [",
        JSON_V2,
        None,
        400,
        400,
    ),
    (
        "bad JSON, subscribe",
        _with_pending_instance,
        "POST",
        "/consumers/g/instances/w/subscription",
        '{"topics": ["orders"',
        V2,
        None,
        400,
        400,
    ),
    (
        "bad JSON, v3 topic",
        _nothing,
        "POST",
        "{v3}/topics",
        "[1, 2",
        "application/json",
        None,
        400,
        400,
    ),
    (
        "NaN is not JSON",
        _nothing,
        "POST",
        "/topics/orders",
        '{"records": [{"value": NaN}]}',
        JSON_V2,
        None,
        400,
        400,
    ),
    (
        "unknown format",
        _nothing,
        "POST",
        "/consumers/g",
        {"name": "w", "format": "avro"},
        V2,
        None,
        422,
        42204,
    ),
    (
        "unknown auto.offset.reset",
        _nothing,
        "POST",
        "/consumers/g",
        {"name": "w", "auto.offset.reset": "smallest"},
        V2,
        None,
        422,
        42204,
    ),
    (
        "auto.commit.enable not a flag",
        _nothing,
        "POST",
        "/consumers/g",
        {"name": "w", "auto.commit.enable": "yes"},
        V2,
        None,
        422,
        42204,
    ),
    (
        "instance name with a slash",
        _nothing,
        "POST",
        "/consumers/g",
        {"name": "a/b"},
        V2,
        None,
        422,
        42204,
    ),
    (
        "topic_pattern",
        _with_pending_instance,
        "POST",
        "/consumers/g/instances/w/subscription",
        {"topic_pattern": "ord.*"},
        V2,
        None,
        422,
        422,
    ),
    (
        "commit past the log end",
        _with_instance,
        "POST",
        "/consumers/g/instances/w/offsets",
        {"offsets": [{"topic": "orders", "partition": 0, "offset": 5}]},
        V2,
        None,
        422,
        422,
    ),
    (
        "commit a negative offset",
        _with_instance,
        "POST",
        "/consumers/g/instances/w/offsets",
        {"offsets": [{"topic": "orders", "partition": 0, "offset": -3}]},
        V2,
        None,
        422,
        422,
    ),
    (
        "max_bytes not a number",
        _with_instance,
        "GET",
        "/consumers/g/instances/w/records?max_bytes=lots",
        None,
        V2,
        JSON_V2,
        422,
        422,
    ),
    (
        "lags of an unknown group",
        _nothing,
        "GET",
        "{v3}/consumer-groups/nope/lags",
        None,
        V2,
        None,
        404,
        404,
    ),
    ("another cluster", _nothing, "GET", "/v3/clusters/ELSEWHERE/topics", None, V2, None, 404, 404),
    ("unknown endpoint", _nothing, "GET", "/v3/clusters/{code}/brokers", None, V2, None, 404, 404),
    ("method not allowed", _nothing, "DELETE", "/topics/orders", None, V2, None, 405, 405),
]


@pytest.mark.parametrize(
    ("setup", "method", "path", "body", "content_type", "accept", "status", "error_code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_it_refuses_with_rest_proxys_status_and_error_code_and_writes_nothing(
    kafka, room, setup, method, path, body, content_type, accept, status, error_code
):
    setup(kafka)
    before = snapshot(room)
    path = path.format(v3=kafka.v3, code=room.code)
    raw = body if isinstance(body, str) else None
    response = kafka.call(
        method, path, None if raw else body, content_type=content_type, accept=accept, raw=raw
    )
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["error_code"] == error_code, answer
    assert isinstance(answer["message"], str) and answer["message"]
    assert snapshot(room) == before


def test_it_is_an_api_so_it_needs_no_csrf_token(room):
    from django.test import Client

    strict = RestProxy(Client(enforce_csrf_checks=True), room)
    assert strict.produce("orders", [{"key": "alice", "value": 1}])
    response = strict.call("POST", "/no/such/endpoint", {"a": 1})
    assert (response.status_code, response.json()["error_code"]) == (404, 404)


def test_it_answers_an_unknown_room_like_an_unknown_cluster(client):
    response = client.get("/api/kafka/NOPE99/v3/clusters")
    assert (response.status_code, response.json()["error_code"]) == (404, 404)


def test_it_stops_at_the_first_bad_record_and_stores_none_of_the_batch(kafka, room):
    before = Record.objects.count()
    records = [{"key": "ok", "value": 1}] * 999 + [{"key": BIG_KEY, "value": 1}]
    response = kafka.call("POST", "/topics/orders", {"records": records}, content_type=JSON_V2)
    assert response.json()["error_code"] == 42206
    assert Record.objects.count() == before


def test_it_refuses_a_body_over_djangos_upload_limit(kafka, room, settings):
    before = snapshot(room)
    records = [{"key": "k", "value": "v" * 5_000}] * 600  # 3 MB, each record within bounds
    response = kafka.call("POST", "/topics/orders", {"records": records}, content_type=JSON_V2)
    assert (response.status_code, response.json()["error_code"]) == (413, 413)
    assert snapshot(room) == before


def test_it_refuses_a_null_key_on_a_compacted_topic(kafka):
    kafka.ok(
        "POST",
        f"{kafka.v3}/topics",
        {"topic_name": "users", "configs": [{"name": "cleanup.policy", "value": "compact"}]},
        content_type="application/json",
    )
    response = kafka.call(
        "POST", "/topics/users", {"records": [{"value": {"a": 1}}]}, content_type=JSON_V2
    )
    assert (response.status_code, response.json()["error_code"]) == (422, 42206)
    assert "compacted" in response.json()["message"]


def test_it_answers_illegal_state_when_auto_offset_reset_is_none_and_nothing_is_committed(kafka):
    kafka.consumer("strict", "w", **{"auto.offset.reset": "none"})
    kafka.subscribe("strict", "w", ["orders"])
    response = kafka.call("GET", "/consumers/strict/instances/w/records", accept=JSON_V2)
    assert (response.status_code, response.json()["error_code"]) == (409, 40903)
    assert "no reset policy" in response.json()["message"]  # Kafka's own words


# --- expiry -----------------------------------------------------------------------------------


def test_it_expires_an_instance_unused_past_the_timeout_and_rebalances_its_group(
    kafka, room, settings
):
    kafka.create_topic("payments", 4)
    for name in ("idle", "busy"):
        kafka.consumer("g", name)
        kafka.subscribe("g", name, ["payments"])
    # Range deals by member id: busy-2 sorts before idle-1.
    assert kafka.assignments("g", "idle") == [("payments", 2), ("payments", 3)]

    settings.LOGLAB_REST_INSTANCE_TIMEOUT_MS = 60_000
    RestConsumerInstance.objects.filter(name="idle").update(
        last_request_at=timezone.now() - timedelta(seconds=61)
    )
    RestConsumerInstance.objects.filter(name="busy").update(
        last_request_at=timezone.now() - timedelta(seconds=59)
    )
    assert rest_instances_expire(room=room) == [("g", "idle")]
    left = Member.objects.filter(group__group_id="g").values_list("display_name", flat=True)
    assert list(left) == ["busy"]
    assert kafka.assignments("g", "busy") == [("payments", p) for p in range(4)]
    event = RoomEvent.objects.filter(room=room, type="rest.consumer.expired").get()
    assert event.payload["instance"] == "idle" and event.payload["timeout_ms"] == 60_000
    assert rest_instances_expire() == []  # nothing else due, in any room


def test_it_expires_idle_instances_on_the_next_request_to_the_room(kafka, room, settings):
    kafka.consumer("g", "w")
    kafka.subscribe("g", "w", ["orders"])
    settings.LOGLAB_REST_INSTANCE_TIMEOUT_MS = 1_000
    RestConsumerInstance.objects.update(last_request_at=timezone.now() - timedelta(seconds=2))
    # Any request to the room's API (here, listing topics) removes it first.
    kafka.ok("GET", "/topics")
    assert not RestConsumerInstance.objects.exists()
    assert not Member.objects.filter(group__group_id="g").exists()
    response = kafka.call("GET", "/consumers/g/instances/w/records", accept=JSON_V2)
    assert (response.status_code, response.json()["error_code"]) == (404, 40403)
    # The name is free again.
    kafka.consumer("g", "w")


def test_each_request_to_an_instance_restarts_its_timeout(kafka, settings):
    kafka.consumer("g", "w")
    kafka.subscribe("g", "w", ["orders"])
    settings.LOGLAB_REST_INSTANCE_TIMEOUT_MS = 60_000
    RestConsumerInstance.objects.update(last_request_at=timezone.now() - timedelta(seconds=50))
    kafka.assignments("g", "w")
    assert RestConsumerInstance.objects.get().last_request_at > timezone.now() - timedelta(
        seconds=5
    )


def test_an_instance_that_never_subscribes_lapses_after_the_timeout(kafka, settings):
    kafka.consumer("g", "w")
    settings.LOGLAB_REST_INSTANCE_TIMEOUT_MS = 1_000
    RoomEvent.objects.filter(type="rest.consumer.created").update(
        created_at=timezone.now() - timedelta(seconds=2)
    )
    response = kafka.call("POST", "/consumers/g/instances/w/subscription", {"topics": ["orders"]})
    assert (response.status_code, response.json()["error_code"]) == (404, 40403)
    kafka.consumer("g", "w")  # the name is free again


# --- the rate limit ---------------------------------------------------------------------------


def test_it_limits_each_client_per_room_and_says_when_to_retry(
    kafka, client, settings, rate_clock_stopped
):
    settings.LOGLAB_API_RATE_PER_SECOND = 5
    buckets.clear()
    statuses = [kafka.call("GET", "/topics").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response = kafka.call("GET", "/topics")
    assert response.json()["error_code"] == 42901
    assert response["Retry-After"] == "1"
    # Another client, or another room, has its own bucket.
    assert kafka.call("GET", "/topics", REMOTE_ADDR="10.0.0.9").status_code == 200
    other = room_create(title="other")
    assert client.get(f"/api/kafka/{other.code}/topics").status_code == 200


def test_the_token_bucket_refills_at_its_rate():
    from messaging.infra.rates import TokenBuckets

    bucket = TokenBuckets()
    assert [bucket.take(("ip", "room"), rate=2, burst=2, now=0) for _ in range(3)] == [
        0.0,
        0.0,
        0.5,
    ]
    assert bucket.take(("ip", "room"), rate=2, burst=2, now=0.5) == 0.0
    small = TokenBuckets(max_keys=2)
    for key in ("a", "b", "c"):
        small.take((key,), rate=1, burst=1, now=0)
    assert small.take(("a",), rate=1, burst=1, now=0) == 0.0  # forgotten: a full bucket again


# --- docs/clients.md, run against a live server -----------------------------------------------

BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.DOTALL)


def doc_blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(DOCS.read_text()) if lang == language]


def test_it_documents_the_kafka_rest_api_with_python_and_curl_examples():
    assert len(doc_blocks("python")) >= 8
    assert len(doc_blocks("bash")) >= 3


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_python_examples_of_the_docs_against_a_live_server(
    live_server, monkeypatch, settings, capsys
):
    settings.LOGLAB_API_RATE_PER_SECOND = DEFAULT_RATE_PER_SECOND  # the limit learners meet
    monkeypatch.setenv("LOGLAB_URL", live_server.url)
    namespace = {"__name__": "docs"}
    for index, code in enumerate(doc_blocks("python")):
        exec(compile(code, f"docs/clients.md[python block {index}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Watch it on" in out and "payments 6 partitions" in out
    group = ConsumerGroup.objects.get(group_id="payments-app")
    assert group.members.count() == 0  # closed at the end
    assert CommittedOffset.objects.filter(group=group).count() == 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_it_runs_the_curl_examples_of_the_docs_against_a_live_server(live_server, settings):
    settings.LOGLAB_API_RATE_PER_SECOND = DEFAULT_RATE_PER_SECOND
    # Fail on the first refused request, and still print its body.
    script = 'curl() { command curl --fail-with-body "$@"; }\n' + "\n".join(doc_blocks("bash"))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "LOGLAB_URL": live_server.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"topic_name": "orders-eu"' in result.stdout
    assert '"key": "alice"' in result.stdout  # the consumer read the records
    assert '"lag": 0' in result.stdout
    assert not Member.objects.filter(group__group_id="eu-billing").exists()
