"""The queues pages and their forms: with htmx and without, good input and bad."""

from __future__ import annotations

import pytest

from messaging import selectors
from messaging.engine import classic
from messaging.models import ClassicBroker, Room, RoomEvent, SqsQueue
from messaging.services import classic as classic_services
from messaging.services import mirror as mirror_services
from messaging.services import sqs as sqs_services
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def room():
    return room_create(title="queue views")


@pytest.fixture
def orders(room):
    return sqs_services.sqs_queue_create(
        room=room,
        name="orders.fifo",
        attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )


def url(room, path: str = "") -> str:
    return f"/r/{room.code}/queues/{path}"


def post(client, room, path, data, htmx=True):
    return client.post(url(room, path), data, headers=HTMX if htmx else {})


def seq(room) -> int:
    return Room.objects.get(pk=room.pk).last_seq


def messages_of(queue: SqsQueue) -> list[str]:
    queue.refresh_from_db()
    return [m.body for m in selectors.sqs_state_load(queue).messages]


# --- pages ---------------------------------------------------------------------------------------


def test_it_serves_the_queues_page_the_fragment_and_side_by_side(client, room, orders):
    sqs_services.sqs_send(queue=orders, body="a1", message_group_id="alice")
    sqs_services.sqs_receive(queue=orders, consumer="worker-A")
    classic_services.classic_queue_declare(room=room, name="work")
    page = client.get(url(room))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-sqs-queue="orders.fifo"' in html and 'data-classic-queue="work"' in html
    assert "blocked: a message is in flight" in html and "worker-A" in html
    assert "Approximate<wbr>NumberOf<wbr>Messages<wbr>NotVisible" in html and "queues.css" in html
    fragment = client.get(url(room, "fragment/"), headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.content.decode().lstrip().startswith('<div id="queues-live"')
    side = client.get(url(room, "side-by-side/"))
    assert side.status_code == 200 and b"Mirroring is off" in side.content
    assert client.get(url(room, "side-by-side/fragment/")).status_code == 200


def test_side_by_side_shows_the_mirrored_topic_in_all_three(client, room):
    topic = topic_create(room=room, name="orders", partitions=3)
    mirror_services.mirror_enable(room=room, topic=topic)
    mirror_services.queues_mirror_records(
        room=room,
        topic_name="orders",
        records=[{"key": "alice", "value": "paid", "partition": 1, "offset": 0}],
    )
    html = client.get(url(room, "side-by-side/")).content.decode()
    assert "Kafka topic ~ FIFO queue, partition ~ message group" in html
    assert 'data-sqs-queue="orders.fifo"' in html and 'data-classic-queue="orders"' in html
    assert 'data-classic-queue="orders.billing"' in html
    assert "SQS requires a <code>MessageGroupId</code>" in html
    assert f'action="/r/{room.code}/produce/"' in html

    # The visibility timeouts run on the room's clock: time can be let pass from here too.
    assert f'action="/r/{room.code}/queues/clock/step/"' in html
    response = client.post(url(room, "clock/step/"), {"step_ms": "30000", "back": "side_by_side"})
    assert response.headers["Location"] == url(room, "side-by-side/")
    room.refresh_from_db()
    assert room.sim_time_ms == 30_000


def test_it_redirects_a_loosely_typed_code_and_404s_an_unknown_room(client, room):
    loose = room.code.lower()
    assert client.get(f"/r/{loose}/queues/").headers["Location"] == url(room)
    missing = client.get("/r/NOPE99/queues/")
    assert missing.status_code == 404 and b"There is no room" in missing.content
    assert client.post("/r/NOPE99/queues/sqs/send/", {"queue": "x"}).status_code == 404


def test_forms_only_accept_post(client, room):
    assert client.get(url(room, "sqs/send/")).status_code == 405


# --- SQS forms -----------------------------------------------------------------------------------


def test_it_creates_a_queue_with_htmx_and_without(client, room):
    response = post(
        client,
        room,
        "sqs/new/",
        {"name": "orders.fifo", "type": "fifo", "visibility_timeout": "20"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "loglab:queues-changed"
    assert b"orders.fifo is ready (FIFO)" in response.content
    attributes = selectors.sqs_state_load(SqsQueue.objects.get(name="orders.fifo")).attributes
    assert (attributes.visibility_timeout, attributes.content_based_deduplication) == (20, False)

    plain = post(client, room, "sqs/new/", {"name": "plain", "type": "standard"}, htmx=False)
    assert plain.status_code == 302 and plain.headers["Location"] == url(room)
    after = client.get(plain.headers["Location"]).content.decode()
    assert "Queue plain is ready (standard)." in after  # the flash message


def test_send_receive_delete_through_the_forms(client, room, orders):
    sent = post(
        client,
        room,
        "sqs/send/",
        {"queue": "orders.fifo", "body": "a1", "message_group_id": "alice", "deduplication_id": ""},
    )
    assert sent.status_code == 200 and b"in group alice" in sent.content
    again = post(
        client,
        room,
        "sqs/send/",
        {"queue": "orders.fifo", "body": "a1", "message_group_id": "alice"},
    )
    assert b"Duplicate dropped" in again.content
    received = post(
        client,
        room,
        "sqs/receive/",
        {"queue": "orders.fifo", "max_messages": "1", "visibility_timeout": "", "consumer": "w-A"},
    )
    assert received.status_code == 200
    text = received.content.decode()
    assert "w-A received 1 message from orders.fifo" in text and "ApproximateReceiveCount" in text
    handle = orders.__class__.objects.get(pk=orders.pk)
    (message,) = selectors.sqs_state_load(handle).messages
    nothing = post(client, room, "sqs/receive/", {"queue": "orders.fifo"})
    assert b"blocked by a message in flight" in nothing.content
    changed = post(
        client,
        room,
        "sqs/visibility/",
        {"queue": "orders.fifo", "timeout": "60", "receipt_handle": message.receipt_handle},
    )
    assert changed.status_code == 200 and b"stays in flight until" in changed.content
    deleted = post(
        client,
        room,
        "sqs/delete/",
        {"queue": "orders.fifo", "receipt_handle": message.receipt_handle},
        htmx=False,
    )
    assert deleted.status_code == 302
    assert messages_of(orders) == []


def test_purge_and_time_steps_through_the_forms(client, room, orders):
    sqs_services.sqs_send(queue=orders, body="a1", message_group_id="alice")
    sqs_services.sqs_receive(queue=orders)
    stepped = post(client, room, "clock/step/", {"step_ms": "30000"})
    assert stepped.status_code == 200 and b"day 1, 00:00:30" in stepped.content
    assert b"received 1\xc3\x97" in client.get(url(room, "fragment/")).content  # back, visible
    purged = post(
        client, room, "sqs/purge/", {"queue": "orders.fifo", "back": "side_by_side"}, htmx=False
    )
    assert purged.headers["Location"] == url(room, "side-by-side/")
    assert messages_of(orders) == []


@pytest.mark.parametrize(
    ("path", "data", "status", "reason"),
    [
        ("sqs/send/", {"queue": "orders.fifo", "body": "x"}, 400, b"MissingParameter"),
        (
            "sqs/send/",
            {"queue": "orders.fifo", "body": "", "message_group_id": "g"},
            400,
            b"MessageBody",
        ),
        (
            "sqs/send/",
            {"queue": "orders.fifo", "body": "x", "message_group_id": "a b"},
            400,
            b"MessageGroupId can only include alphanumeric and punctuation",
        ),
        (
            "sqs/send/",
            {"queue": "nope.fifo", "body": "x", "message_group_id": "g"},
            404,
            b"QueueDoesNotExist",
        ),
        (
            "sqs/receive/",
            {"queue": "orders.fifo", "max_messages": "11"},
            400,
            b"Must be between 1 and 10",
        ),
        (
            "sqs/receive/",
            {"queue": "orders.fifo", "max_messages": "ten"},
            400,
            b"MaxNumberOfMessages is a whole number",
        ),
        (
            "sqs/delete/",
            {"queue": "orders.fifo", "receipt_handle": "forged"},
            400,
            b"not a valid receipt handle",
        ),
        (
            "sqs/visibility/",
            {"queue": "orders.fifo", "receipt_handle": "x", "timeout": "z"},
            400,
            b"VisibilityTimeout is a whole number",
        ),
        ("sqs/new/", {"name": "orders", "type": "fifo"}, 400, b"must end with .fifo suffix"),
        (
            "sqs/new/",
            {"name": "orders.fifo", "type": "fifo", "visibility_timeout": "5"},
            409,
            b"QueueAlreadyExists",
        ),
        ("clock/step/", {"step_ms": "999999999"}, 400, b"offered steps"),
        ("classic/ack/", {"consumer_tag": "ghost", "delivery_tag": "1"}, 404, b"no consumer"),
        (
            "classic/publish/",
            {"exchange": "nope", "routing_key": "", "body": "x"},
            404,
            b"NOT_FOUND - no exchange",
        ),
        ("side-by-side/mirror/", {"topic": "nope"}, 404, b"does not exist"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason_and_changes_nothing(
    client, room, orders, path, data, status, reason
):
    before = (seq(room), SqsQueue.objects.get(pk=orders.pk).state)
    for htmx in (True, False):
        response = post(client, room, path, data, htmx=htmx)
        assert response.status_code == status
        assert reason in response.content
    assert (seq(room), SqsQueue.objects.get(pk=orders.pk).state) == before


def test_json_clients_get_json_errors(client, room, orders):
    response = client.post(
        url(room, "sqs/send/"),
        {"queue": "orders.fifo", "body": "x"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "MissingParameter" in response.json()["message"]


# --- classic broker forms --------------------------------------------------------------------


def test_the_classic_broker_through_the_forms(client, room):
    assert post(client, room, "classic/queues/new/", {"name": "work"}).status_code == 200
    assert (
        post(
            client, room, "classic/exchanges/new/", {"name": "billing", "type": "fanout"}
        ).status_code
        == 200
    )
    assert (
        post(client, room, "classic/bind/", {"queue": "work", "exchange": "billing"}).status_code
        == 200
    )
    for tag in ("c1", "c2"):
        consumed = post(
            client,
            room,
            "classic/consume/",
            {"queue": "work", "consumer_tag": tag, "prefetch_count": "1"},
        )
        assert consumed.status_code == 200
    for body in ("m1", "m2", "m3"):
        published = post(
            client, room, "classic/publish/", {"exchange": "", "routing_key": "work", "body": body}
        )
        assert published.status_code == 200
    assert b"Routed to work; waiting for a consumer" in published.content
    lost = post(client, room, "classic/publish/", {"exchange": "", "routing_key": "x", "body": "b"})
    assert b"the message is lost" in lost.content

    acked = post(client, room, "classic/ack/", {"consumer_tag": "c1", "delivery_tag": "1"})
    assert b"c1 acked delivery 1" in acked.content and b"m3" in acked.content
    nacked = post(
        client,
        room,
        "classic/nack/",
        {"consumer_tag": "c2", "delivery_tag": "1", "requeue": "true"},
    )
    assert b"flagged redelivered" in nacked.content
    closed = post(client, room, "classic/close/", {"consumer_tag": "c2"}, htmx=False)
    assert closed.status_code == 302
    broker = selectors.classic_state_load(ClassicBroker.objects.get(room=room))
    assert [c.consumer_tag for c in broker.consumers] == ["c1"]
    assert classic.queue_stats(broker, "work").messages_ready == 1  # m2 back, c1 holds m3
    twice = post(client, room, "classic/ack/", {"consumer_tag": "c1", "delivery_tag": "1"})
    assert twice.status_code == 409 and b"PRECONDITION_FAILED - unknown delivery tag 1" in (
        twice.content
    )
    page = client.get(url(room)).content.decode()
    assert "redelivered" in page and 'data-consumer="c1"' in page


def test_mirroring_is_switched_on_and_off_from_side_by_side(client, room):
    topic_create(room=room, name="orders", partitions=3)
    on = post(
        client,
        room,
        "side-by-side/mirror/",
        {"topic": "orders", "back": "side_by_side"},
        htmx=False,
    )
    assert on.headers["Location"] == url(room, "side-by-side/")
    room.refresh_from_db()
    assert room.mirror_topic.name == "orders"
    off = post(client, room, "side-by-side/mirror/", {"enable": "false"})
    assert b"Mirroring is off" in off.content
    room.refresh_from_db()
    assert room.mirror_topic is None


# --- user data is text -------------------------------------------------------------------------


def test_a_script_body_shows_as_text(client, room, orders):
    evil = "<script>alert(1)</script>"
    sqs_services.sqs_send(queue=orders, body=evil, message_group_id="<script>")
    sqs_services.sqs_send(
        queue=orders,
        body="<img src=x onerror=alert(2)>",
        message_group_id="<b>",
        deduplication_id="<i>",
    )
    sqs_services.sqs_send(queue=orders, body="dup", message_group_id="<b>", deduplication_id="<i>")
    sqs_services.sqs_receive(queue=orders, consumer="<script>x</script>")
    classic_services.classic_queue_declare(room=room, name="<script>")
    classic_services.classic_publish(room=room, exchange="", routing_key="<script>", body=evil)
    sent = post(
        client,
        room,
        "sqs/send/",
        {"queue": "orders.fifo", "body": evil, "message_group_id": "<script>"},
    )
    for html in (
        client.get(url(room)).content.decode(),
        client.get(url(room, "fragment/")).content.decode(),
        sent.content.decode(),
    ):
        # Our own script tags all carry attributes: a bare "<script>" could only be user data.
        assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in client.get(url(room)).content.decode()
    assert RoomEvent.objects.filter(room=room, type="sqs.changed").exists()
