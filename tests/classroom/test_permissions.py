"""Who may do what in a classroom: every write checked on the server, whatever the page shows.

Requests here are crafted: a student with the lock closed, a student acting on someone else's
consumer, a visitor, a logged-in user who does not own the room, forged htmx headers, and
scripts on the APIs. Each refusal is a 403 (or 429) with a sentence, and nothing is written.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.models import ConsumerGroup, Member, Record, Room, RoomEvent, Student, Topic
from messaging.services.classroom import classroom_create, classroom_permissions_set
from messaging.services.groups import member_join
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox
from messaging.services.topics import topic_create
from tests.classroom.helpers import HTMX, PASSWORD, joined

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def student(room):
    return joined(room, "Grace")


@pytest.fixture
def other_instructor():
    user = get_user_model().objects.create_user("eve", password=PASSWORD)
    client = Client()
    client.force_login(user)
    return client


def written(room: Room) -> tuple:
    """Everything a refused request must leave as it was."""
    room.refresh_from_db()
    return (
        room.last_seq,
        RoomEvent.objects.filter(room=room).count(),
        Record.objects.filter(partition__topic__room=room).count(),
        Member.objects.filter(group__room=room).count(),
        room.clock_running,
        room.clock_speed,
        json.dumps(room.student_permissions, sort_keys=True),
    )


def writes(room: Room) -> list[tuple[str, dict]]:
    """One crafted request for every write view of the board and the queue pages."""
    billing = ConsumerGroup.objects.get(room=room, group_id="billing")
    member = billing.members.first()
    topic = room.topics.get(name="orders")
    producer = room.producers.first()
    r = f"/r/{room.code}"
    return [
        (f"{r}/produce/", {"topic": "orders", "key": "k", "value": "v"}),
        (f"{r}/topics/new/", {"name": "more", "partitions": "2"}),
        (f"{r}/clock/", {"action": "play"}),
        (f"{r}/producers/new/", {"name": "p", "topic": "orders", "key_mode": "null", "rate": "1"}),
        (f"{r}/producers/{producer.pk}/", {"action": "pause"}),
        (f"{r}/groups/new/", {"group_id": "g2", "topics": "orders"}),
        (f"{r}/groups/{billing.pk}/members/", {"client_id": "x"}),
        (f"{r}/groups/{billing.pk}/reset/", {"option": "to-earliest", "execute": "1"}),
        (f"{r}/members/{member.pk}/", {"action": "crash"}),
        (f"{r}/members/{member.pk}/", {"action": "leave"}),
        (f"{r}/members/{member.pk}/", {"action": "speed", "rate": "3"}),
        (f"{r}/topics/{topic.pk}/partitions/", {"partitions": "4"}),
        (f"{r}/topics/{topic.pk}/config/", {"retention_s": "60"}),
        (f"{r}/queues/sqs/new/", {"name": "jobs.fifo", "type": "fifo"}),
        (f"{r}/queues/sqs/send/", {"queue": "jobs.fifo", "body": "b", "message_group_id": "g"}),
        (f"{r}/queues/sqs/receive/", {"queue": "jobs.fifo"}),
        (f"{r}/queues/sqs/delete/", {"queue": "jobs.fifo", "receipt_handle": "h"}),
        (f"{r}/queues/sqs/visibility/", {"queue": "q", "receipt_handle": "h", "timeout": "0"}),
        (f"{r}/queues/sqs/purge/", {"queue": "jobs.fifo"}),
        (f"{r}/queues/clock/step/", {"step_ms": "1000"}),
        (f"{r}/queues/classic/publish/", {"exchange": "", "routing_key": "work", "body": "b"}),
        (f"{r}/queues/classic/consume/", {"queue": "work", "consumer_tag": "c1"}),
        (f"{r}/queues/classic/ack/", {"consumer_tag": "c1", "delivery_tag": "1"}),
        (f"{r}/queues/classic/nack/", {"consumer_tag": "c1", "delivery_tag": "1"}),
        (f"{r}/queues/classic/close/", {"consumer_tag": "c1"}),
        (f"{r}/queues/classic/queues/new/", {"name": "work"}),
        (f"{r}/queues/classic/exchanges/new/", {"name": "fan", "type": "fanout"}),
        (f"{r}/queues/classic/bind/", {"queue": "work", "exchange": "fan"}),
        (f"{r}/queues/side-by-side/mirror/", {"topic": "orders"}),
        (f"{r}/present/clock/", {"action": "play"}),
        (f"{r}/present/locks/", {"allow": "settings"}),
        (f"{r}/present/follow/", {"path": f"/r/{room.code}/"}),
        (f"{r}/present/reset/", {}),
    ]


def test_it_refuses_a_visitor_every_write_and_writes_nothing(client, room):
    before = written(room)
    for path, data in writes(room):
        response = client.post(path, data, headers=HTMX)
        assert response.status_code == 403, path
        assert "classroom" in response.content.decode() or "instructor" in response.content.decode()
    assert written(room) == before


def test_it_treats_a_logged_in_user_who_does_not_own_the_room_as_a_visitor(other_instructor, room):
    before = written(room)
    for path, data in writes(room):
        assert other_instructor.post(path, data).status_code == 403, path
    assert written(room) == before


def test_forged_htmx_headers_change_nothing_but_the_shape_of_the_refusal(client, room):
    before = written(room)
    forged = {
        **HTMX,
        "HX-Current-URL": f"http://testserver/r/{room.code}/present/",
        "HX-Target": "controls",
        "HX-Trigger": "play-pause",
    }
    response = client.post(f"/r/{room.code}/clock/", {"action": "play"}, headers=forged)
    assert response.status_code == 403
    page = response.content.decode()
    assert "<html" not in page and 'role="alert"' in page
    assert "join it with your name first" in page
    json_refusal = client.post(
        f"/r/{room.code}/produce/",
        {"topic": "orders", "value": "v"},
        headers={"Accept": "application/json"},
    )
    assert json_refusal.status_code == 403
    assert json_refusal.json()["error"] == "forbidden"
    assert written(room) == before


def test_it_refuses_a_student_what_the_instructor_locked_with_the_reason(owner, student, room):
    assert (
        student.post(
            f"/r/{room.code}/produce/", {"topic": "orders", "key": "k", "value": "v"}
        ).status_code
        == 302
    )
    classroom_permissions_set(room=room, permissions={"produce": False})
    before = written(room)
    refused = student.post(
        f"/r/{room.code}/produce/", {"topic": "orders", "key": "k", "value": "v"}, headers=HTMX
    )
    assert refused.status_code == 403
    assert "The instructor has locked this: students cannot produce records" in (
        refused.content.decode()
    )
    queued = student.post(
        f"/r/{room.code}/queues/sqs/send/", {"queue": "q", "body": "b"}, headers=HTMX
    )
    assert queued.status_code == 403
    assert written(room) == before
    # The instructor is never locked out.
    assert (
        owner.post(
            f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"}, headers=HTMX
        ).status_code
        == 200
    )


def test_it_keeps_settings_and_the_clock_from_students_by_default(owner, student, room):
    before = written(room)
    for path, data in writes(room):
        if "/produce/" in path or "/sqs/send/" in path or "/classic/publish/" in path:
            continue
        response = student.post(path, data, headers=HTMX)
        if "/sqs/" in path and path.endswith(("receive/", "delete/", "visibility/")):
            assert response.status_code == 404, path  # allowed (join), but no such queue
            continue
        if "/classic/" in path and path.endswith(("consume/", "ack/", "nack/", "close/")):
            assert response.status_code in (400, 404), path  # allowed, nothing to act on
            continue
        assert response.status_code == 403, path
    assert written(room) == before
    clock = student.post(f"/r/{room.code}/clock/", {"action": "play"}, headers=HTMX)
    assert "Only the instructor can do that" in clock.content.decode()
    # The queues pages do not offer them the room's clock either; the instructor's do.
    topic_create(room=room, name="mirrored", partitions=1)
    Room.objects.filter(pk=room.pk).update(mirror_topic=Topic.objects.get(name="mirrored"))
    for page in ("queues/", "queues/side-by-side/"):
        assert "/queues/clock/step/" not in student.get(f"/r/{room.code}/{page}").content.decode()
        assert "/queues/clock/step/" in owner.get(f"/r/{room.code}/{page}").content.decode()


def test_it_lets_a_student_touch_only_their_own_consumer(student, room):
    billing = ConsumerGroup.objects.get(room=room, group_id="billing")
    simulated = billing.members.filter(kind="simulated").first()
    grace = Student.objects.get(room=room, display_name="Grace")
    other = joined(room, "Linus")
    student.post(f"/r/{room.code}/me/consumer/", {"group_id": "billing"})
    other.post(f"/r/{room.code}/me/consumer/", {"group_id": "billing"})
    grace.refresh_from_db()
    linus = Student.objects.get(room=room, display_name="Linus")
    for target in (simulated, linus.member):
        for action in ("crash", "leave"):
            response = student.post(
                f"/r/{room.code}/members/{target.pk}/", {"action": action}, headers=HTMX
            )
            assert response.status_code == 403, (target, action)
            assert "your own consumer" in response.content.decode()
        speed = student.post(
            f"/r/{room.code}/members/{target.pk}/", {"action": "speed", "rate": "9"}
        )
        assert speed.status_code == 403
    assert not Member.objects.get(pk=linus.member.pk).crashed
    own = student.post(f"/r/{room.code}/members/{grace.member.pk}/", {"action": "crash"})
    assert own.status_code == 302
    assert Member.objects.get(pk=grace.member.pk).crashed


def test_it_takes_the_crash_lock_away_from_a_students_own_consumer(student, room):
    student.post(f"/r/{room.code}/me/consumer/", {"group_id": "billing"})
    grace = Student.objects.get(room=room, display_name="Grace")
    classroom_permissions_set(room=room, permissions={"crash": False})
    response = student.post(f"/r/{room.code}/members/{grace.member_id}/", {"action": "crash"})
    assert response.status_code == 403
    assert "cannot crash their consumer" in response.content.decode()
    assert not Member.objects.get(pk=grace.member_id).crashed


def test_it_lets_students_change_settings_once_unlocked(student, room):
    classroom_permissions_set(room=room, permissions={"settings": True})
    response = student.post(f"/r/{room.code}/topics/new/", {"name": "more", "partitions": "2"})
    assert response.status_code == 302
    assert room.topics.filter(name="more").exists()
    # The clock stays the instructor's, whatever is unlocked.
    assert student.post(f"/r/{room.code}/clock/", {"action": "play"}).status_code == 403


def test_sandboxes_and_lesson_rooms_stay_open_to_everyone(client):
    for kind in (Room.Kind.SANDBOX, Room.Kind.LESSON):
        room = room_seed_sandbox(room=room_create(title="open", kind=kind))
        produced = client.post(f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"})
        assert produced.status_code == 302
        assert client.post(f"/r/{room.code}/clock/", {"action": "play"}).status_code == 302
        for _ in range(8):  # no student rate limit outside classrooms
            assert (
                client.post(
                    f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"}
                ).status_code
                == 302
            )


# --- rate limits ----------------------------------------------------------------------------


def test_it_limits_a_student_to_five_records_a_second_with_a_message(
    owner, student, room, rate_clock_stopped
):
    answers = [
        student.post(f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"}, headers=HTMX)
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    message = answers[-1].content.decode()
    assert "Slow down: students may produce at most 5 records per second" in message
    assert "Try again in" in message
    assert Record.objects.filter(partition__topic__room=room, producer="you").count() == 5
    # The instructor is not rate limited.
    for _ in range(6):
        assert (
            owner.post(
                f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"}, headers=HTMX
            ).status_code
            == 200
        )


def test_it_limits_how_often_a_student_joins_and_leaves(student, room, rate_clock_stopped):
    codes = [
        student.post(
            f"/r/{room.code}/queues/classic/consume/", {"queue": "nope", "consumer_tag": "c"}
        ).status_code
        for _ in range(3)
    ]
    assert 429 not in codes[:2] and codes[2] == 429


def test_the_student_rate_follows_the_setting(settings, student, room, rate_clock_stopped):
    settings.LOGLAB_STUDENT_PRODUCE_PER_SECOND = 2
    codes = [
        student.post(f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"}).status_code
        for _ in range(3)
    ]
    assert codes == [302, 302, 429]


# --- the APIs: scripts count as students ----------------------------------------------------

V2 = "application/vnd.kafka.v2+json"
JSON_V2 = "application/vnd.kafka.json.v2+json"


def test_it_locks_a_classrooms_rest_api_unless_clients_are_allowed(
    client, room, rate_clock_stopped
):
    path = f"/api/kafka/{room.code}/topics/orders"
    body = json.dumps({"records": [{"key": "k", "value": 1}]})
    refused = client.post(path, body, content_type=JSON_V2)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == 40301
    assert "instructor has locked" in refused.json()["message"]
    assert client.get(f"/api/kafka/{room.code}/topics").status_code == 403
    assert Record.objects.filter(partition__topic__room=room).count() == 0

    classroom_permissions_set(room=room, permissions={"clients": True})
    assert client.post(path, body, content_type=JSON_V2).status_code == 200
    too_many = json.dumps({"records": [{"key": "k", "value": i} for i in range(5)]})
    throttled = client.post(path, too_many, content_type=JSON_V2)  # 1 + 5 within the second
    assert throttled.status_code == 429
    assert throttled.json()["error_code"] == 42901
    assert "scripts may produce at most 5 records per second" in throttled.json()["message"]
    # More at once than a second's allowance can never pass: not a "retry later".
    oversized = json.dumps({"records": [{"key": "k", "value": i} for i in range(6)]})
    refused = client.post(path, oversized, content_type=JSON_V2)
    assert refused.status_code == 422
    assert refused.json()["error_code"] == 42206
    assert "Send fewer at a time" in refused.json()["message"]


def test_it_leaves_a_sandboxs_rest_api_open(client):
    room = room_seed_sandbox(room=room_create(title="open"))
    assert client.get(f"/api/kafka/{room.code}/topics", HTTP_ACCEPT=V2).status_code == 200


def sqs(client, room, action: str, body: dict | None = None):
    return client.post(
        f"/api/sqs/{room.code}/",
        json.dumps(body or {}),
        content_type="application/x-amz-json-1.0",
        headers={"X-Amz-Target": f"AmazonSQS.{action}"},
    )


def test_it_locks_a_classrooms_sqs_endpoint_unless_clients_are_allowed(
    client, room, rate_clock_stopped
):
    refused = sqs(client, room, "CreateQueue", {"QueueName": "jobs"})
    assert refused.status_code == 403
    answer = json.loads(refused.content)
    assert answer["__type"].endswith("#AccessDeniedException")
    assert refused.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    assert "instructor has locked" in answer["message"]
    assert not room.sqs_queues.exists()

    # Creating a queue is a change of settings: `clients` opens the API, `settings` the call.
    classroom_permissions_set(room=room, permissions={"clients": True, "settings": True})
    assert sqs(client, room, "CreateQueue", {"QueueName": "jobs"}).status_code == 200
    url = f"http://testserver/api/sqs/{room.code}/000000000000/jobs"
    entries = [{"Id": str(i), "MessageBody": f"b{i}"} for i in range(5)]
    sent = sqs(client, room, "SendMessageBatch", {"QueueUrl": url, "Entries": entries})
    assert sent.status_code == 200
    throttled = sqs(client, room, "SendMessageBatch", {"QueueUrl": url, "Entries": entries[:1]})
    assert throttled.status_code == 400
    assert throttled.headers["x-amzn-query-error"] == "ThrottlingException;Sender"
    # A batch larger than a second's allowance is refused as a bad parameter: boto3 retries a
    # throttle, and this one could never get through.
    entries = [{"Id": str(i), "MessageBody": f"c{i}"} for i in range(6)]
    oversized = sqs(client, room, "SendMessageBatch", {"QueueUrl": url, "Entries": entries})
    assert oversized.status_code == 400
    assert oversized.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert "Send fewer at a time" in json.loads(oversized.content)["message"]


def test_a_removed_students_session_can_no_longer_act(owner, student, room):
    grace = Student.objects.get(room=room, display_name="Grace")
    owner.post(f"/r/{room.code}/present/students/{grace.pk}/remove/")
    refused = student.post(f"/r/{room.code}/produce/", {"topic": "orders", "value": "v"})
    assert refused.status_code == 403


def test_an_instructor_drives_only_their_own_classroom(owner, instructor):
    other = get_user_model().objects.create_user("bob", password=PASSWORD)
    theirs = classroom_create(owner=other, title="Bob's")
    member_join(group=theirs.groups.get(group_id="billing"), client_id="x")
    before = written(theirs)
    assert owner.post(f"/r/{theirs.code}/clock/", {"action": "play"}).status_code == 403
    assert owner.post(f"/r/{theirs.code}/present/reset/").status_code == 403
    assert written(theirs) == before
