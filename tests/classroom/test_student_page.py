"""The student's own page: who they are in the group, what waits in their partitions, and the
buttons, through the same views a phone uses (htmx and plain form posts)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from messaging.models import CommittedOffset, Member, Room, Student
from messaging.services.groups import group_create
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def generous_rate_limits(settings):
    # The limits have tests of their own; here a test clicks faster than a person would.
    settings.LOGLAB_STUDENT_JOINS_PER_SECOND = 1000
    settings.LOGLAB_STUDENT_ACTIONS_PER_SECOND = 1000


@pytest.fixture
def room(db) -> Room:
    room = room_create(title="Week 3", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="orders", partitions=2)
    group_create(room=room, group_id="billing", topics=["orders"], auto_offset_reset="earliest")
    records_produce(
        room=room,
        topic_name="orders",
        records=[
            RecordIn(key="alice", value="order 1", partition=0),
            RecordIn(key="<b>bob</b>", value="<script>alert(1)</script>", partition=0),
        ],
    )
    return room


def joined(client, room: Room, name: str = "Ada"):
    client.post(f"/j/{room.code}/", {"display_name": name})
    client.post(f"/r/{room.code}/me/consumer/", {"action": "join", "group_id": "billing"})
    return Student.objects.get(room=room, display_name=name)


def act(client, room: Room, action: str, **headers):
    return client.post(f"/r/{room.code}/me/consumer/", {"action": action}, headers=headers)


def test_it_shows_the_consumer_its_partitions_and_the_records_waiting(client, room):
    student = joined(client, room)
    page = client.get(f"/r/{room.code}/me/").content.decode()
    assert f'You are consumer <b class="member-id">{student.member.member_id}</b>' in page
    assert 'in group <b class="me-group" data-group="billing">billing</b>' in page
    assert 'data-tp="orders-0"' in page and 'data-tp="orders-1"' in page
    assert 'data-key="alice"' in page and "order 1" in page
    # Keys and values are the public's: escaped, never markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "&lt;b&gt;bob&lt;/b&gt;" in page
    assert "Your page keeps you in the group" in page
    assert "session.timeout.ms = 45 s" in page
    for label in ("Process next record", "Commit", "Crash", "Leave"):
        assert label in page


def test_the_buttons_process_commit_and_leave_through_htmx(client, room):
    student = joined(client, room)
    processed = act(client, room, "process", **HTMX)
    assert processed.status_code == 200
    body = processed.content.decode()
    assert body.lstrip().startswith('<div id="me"')
    assert "orders-0 offset 0: you processed it." in body
    assert "1 processed, not committed: crash now and they are processed again." in body

    committed = act(client, room, "commit", **HTMX)
    assert "Committed orders-0 at 1" in committed.content.decode()
    assert CommittedOffset.objects.get(partition__index=0).offset == 1

    left = act(client, room, "leave", **HTMX).content.decode()
    assert "You left the group" in left and "Join billing" in left
    assert Student.objects.get(pk=student.pk).member is None


def test_a_plain_form_post_redirects_back_to_the_page(client, room):
    joined(client, room)
    response = act(client, room, "process")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/r/{room.code}/me/"


def test_refusals_are_shown_in_the_page_with_their_status(client, room):
    joined(client, room)
    act(client, room, "process", **HTMX)
    act(client, room, "process", **HTMX)
    act(client, room, "process", **HTMX)  # orders-1 is empty: its turn is skipped
    nothing = act(client, room, "process", **HTMX)
    assert nothing.status_code == 400
    assert "Nothing to process" in nothing.content.decode()

    unknown = act(client, room, "explode", **HTMX)
    assert unknown.status_code == 400 and "Unknown action" in unknown.content.decode()

    crashed = act(client, room, "crash", **HTMX).content.decode()
    assert "Your consumer crashed" in crashed
    assert 'class="countdown" data-deadline=' in crashed
    again = act(client, room, "process", **HTMX)
    assert again.status_code == 409 and "has crashed" in again.content.decode()


def test_locked_actions_are_disabled_and_refused_with_the_reason(client, room):
    joined(client, room)
    Room.objects.filter(pk=room.pk).update(
        student_permissions={"join": False, "crash": False, "produce": True}
    )
    page = client.get(f"/r/{room.code}/me/").content.decode()
    assert "Locked by the instructor" in page
    assert 'value="process" disabled' in page and 'value="crash" disabled' in page
    refused = act(client, room, "process", **HTMX)
    assert refused.status_code == 403
    assert "The instructor has locked this" in refused.content.decode()
    assert 'id="me"' in refused.content.decode()  # the page stays whole around the reason


def test_someone_who_never_joined_cannot_act_and_is_sent_to_join(client, room):
    assert client.get(f"/r/{room.code}/me/").headers["Location"] == f"/j/{room.code}/"
    refused = act(client, room, "process", **HTMX)
    assert refused.status_code == 400
    assert "Join the room with your name first" in refused.content.decode()
    assert not Member.objects.filter(kind="student").exists()


def test_a_removed_student_is_told_so(client, room):
    student = joined(client, room)
    Student.objects.filter(pk=student.pk).update(removed_at=timezone.now(), member=None)
    page = client.get(f"/r/{room.code}/me/")
    assert page.status_code == 403
    assert "You were removed from this room" in page.content.decode()
    fragment = client.get(f"/r/{room.code}/me/", headers=HTMX).content.decode()
    assert 'data-removed="1"' in fragment
    assert act(client, room, "process", **HTMX).status_code == 403


def test_a_student_clicking_too_fast_is_told_to_slow_down(
    client, room, settings, rate_clock_stopped
):
    joined(client, room)
    settings.LOGLAB_STUDENT_ACTIONS_PER_SECOND = 1
    statuses = [act(client, room, "process", **HTMX) for _ in range(3)]
    assert statuses[-1].status_code == 429
    assert "Slow down" in statuses[-1].content.decode()


def test_its_lag_never_reads_zero_before_anything_is_committed(client, room):
    joined(client, room)
    page = client.get(f"/r/{room.code}/me/").content.decode()
    # kafka-consumer-groups prints LAG "-" with no committed offset, and so does every lag on
    # the page, the total too (issue #12: it said 664 while the board said "-").
    assert 'lag <b class="me-lag">-</b>' in page
    assert "lag <b>-</b>" in page
    act(client, room, "process")
    act(client, room, "commit")
    page = client.get(f"/r/{room.code}/me/").content.decode()
    assert 'lag <b class="me-lag">1</b>' in page


def test_it_reads_the_waiting_records_of_all_its_partitions_in_one_query(client, room):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    topic_create(room=room, name="wide", partitions=8)
    wide = group_create(room=room, group_id="wide", topics=["wide"], auto_offset_reset="earliest")
    records_produce(
        room=room,
        topic_name="wide",
        records=[
            RecordIn(key=None, value=f"v{p}-{i}", partition=p) for p in range(8) for i in range(12)
        ],
    )
    client.post(f"/j/{room.code}/", {"display_name": "Ada"})
    client.post(f"/r/{room.code}/me/consumer/", {"action": "join", "group_id": wide.group_id})
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/r/{room.code}/me/").content.decode()
    reads = [q["sql"] for q in queries if 'FROM "messaging_record"' in q["sql"]]
    assert len(reads) == 1
    # Each of the 8 partitions shows its first waiting records, oldest first, and no more.
    for p in range(8):
        assert f"v{p}-0" in page and f"v{p}-11" not in page
