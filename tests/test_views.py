from __future__ import annotations

import pytest

from messaging.engine.partitioner import partition_for_key
from messaging.models import Record, Topic
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = room_create(title="views")
    topic_create(room=room, name="orders", partitions=3)
    return room


def produce(client, room, htmx=True, **data):
    headers = {"HX-Request": "true"} if htmx else {}
    form = {"topic": "orders", "key": "k", "value": "v", "partition": ""} | data
    return client.post(f"/r/{room.code}/produce/", form, headers=headers)


def test_it_serves_the_home_page_and_the_board(client, room):
    assert client.get("/").status_code == 200
    response = client.get(f"/r/{room.code}/")
    assert response.status_code == 200
    assert b'data-topic="orders"' in response.content


def test_it_says_what_is_exact_and_what_is_simplified(client):
    assert 'href="/about/"' in client.get("/").content.decode()
    page = client.get("/about/").content.decode()
    assert "murmur2" in page and "cooperative-sticky" in page
    assert "Rebalances finish in one step" not in page  # not true since real clients join
    for simplification in (
        "Groups of simulated members rebalance within one step of the clock",
        "rebalance.timeout.ms",
        "metadata.max.age.ms",
        "Segments roll by record count",
        "KIP-848",
    ):
        assert simplification in page
    assert client.post("/about/").status_code == 405


def test_it_produces_from_the_form_and_says_where_the_record_went(client, room):
    response = produce(client, room, key="alice")
    assert response.status_code == 200
    expected = partition_for_key(b"alice", 3)
    assert f"partition <strong>{expected}</strong>" in response.content.decode()
    assert Record.objects.get().partition.index == expected


def test_it_redirects_a_plain_form_post_back_to_the_board(client, room):
    response = produce(client, room, htmx=False)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/r/{room.code}/"


def test_it_answers_404_for_an_unknown_room(client):
    response = client.get("/r/NOPE99/")
    assert response.status_code == 404
    assert b"There is no room with the code" in response.content
    assert client.post("/r/NOPE99/produce/", {"topic": "orders"}).status_code == 404


def test_it_answers_404_for_an_unknown_topic(client, room):
    response = produce(client, room, topic="payments")
    assert response.status_code == 404
    assert b"does not exist" in response.content


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        ({"partition": "3"}, 400, b"partitions 0 to 2"),
        ({"partition": "two"}, 400, b"whole number"),
        ({"key": "k" * 257}, 400, b"at most 256 characters"),
        ({"value": "v" * 10241}, 400, b"at most 10 KB"),
    ],
)
def test_it_refuses_bad_records_with_a_reason_and_changes_nothing(
    client, room, data, status, reason
):
    for htmx in (True, False):
        response = produce(client, room, htmx=htmx, **data)
        assert response.status_code == status
        assert reason in response.content
    assert Record.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        ({"name": "t", "partitions": "0"}, 400, b"between 1 and 128"),
        ({"name": "t", "partitions": "129"}, 400, b"between 1 and 128"),
        ({"name": "orders", "partitions": "2"}, 409, b"already exists"),
        ({"name": "bad name", "partitions": "2"}, 400, b"ASCII letters"),
    ],
)
def test_it_refuses_bad_topics_with_a_reason(client, room, data, status, reason):
    response = client.post(f"/r/{room.code}/topics/new/", data, headers={"HX-Request": "true"})
    assert response.status_code == status
    assert reason in response.content
    assert Topic.objects.filter(room=room).count() == 1


def test_it_answers_json_errors_to_json_clients(client, room):
    response = client.post(
        f"/r/{room.code}/produce/",
        {"topic": "orders", "key": "k", "value": "v", "partition": "9"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_it_shows_a_script_key_as_text(client, room):
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="<script>", value="x")])
    html = client.get(f"/r/{room.code}/").content.decode()
    # Our own script tags all carry attributes: a bare "<script>" could only be the key.
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_it_gives_a_snapshot_for_resync(client, room):
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="a", value="1")])
    state = client.get(f"/r/{room.code}/state.json").json()
    assert state["seq"] == 2
    records = [r for p in state["topics"][0]["partitions"] for r in p["records"]]
    assert records == [{"offset": 0, "key": "a", "value": "1"}]


def test_it_creates_a_sandbox_in_one_click(client):
    response = client.post("/rooms/new/")
    assert response.status_code == 302
    board = client.get(response.headers["Location"])
    assert board.status_code == 200


def test_it_joins_a_room_by_its_code_typed_loosely(client, room):
    code = room.code.lower()[:3] + "-" + room.code.lower()[3:]
    response = client.get("/join/", {"code": code})
    assert response.headers["Location"] == f"/r/{room.code}/"
