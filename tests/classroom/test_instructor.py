"""The instructor's controls on the presenter page: locks, the clock, follow-me, reset, remove,
and the roster; and what a student's or a visitor's board shows of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import ConsumerGroup, Member, Room, RoomEvent, Student, Topic
from messaging.permissions import student_permissions
from messaging.services.classroom import student_consumer_join, student_join
from messaging.services.groups import offset_commit
from messaging.services.records import RecordIn, records_produce
from messaging.services.topics import topic_create
from tests.classroom.helpers import HTMX, joined

pytestmark = [pytest.mark.django_db]


def last_event(room: Room) -> RoomEvent:
    return RoomEvent.objects.filter(room=room).order_by("-seq").first()


def test_the_presenter_page_has_the_controls_and_the_join_code_always_in_view(owner, room):
    page = owner.get(f"/r/{room.code}/present/").content.decode()
    assert f'<span class="present-badge">join <b class="join-code">{room.code}</b>' in page
    for control in ("present/clock/", "present/locks/", "present/follow/", "present/reset/"):
        assert f'action="/r/{room.code}/{control}"' in page
    for action in ("produce", "join", "crash", "settings", "clients"):
        assert f'name="allow" value="{action}"' in page
    assert "<svg" in page  # the QR code stays


def test_it_locks_and_unlocks_student_actions_with_an_event(owner, room):
    response = owner.post(
        f"/r/{room.code}/present/locks/", {"allow": ["join", "crash"]}, headers=HTMX
    )
    assert response.status_code == 200
    assert "Locked: students cannot produce records" in response.content.decode()
    room.refresh_from_db()
    assert student_permissions(room) == {
        "produce": False,
        "join": True,
        "crash": True,
        "settings": False,
        "clients": False,
    }
    event = last_event(room)
    assert event.type == "room.permissions"
    assert event.payload["permissions"]["produce"] is False
    owner.post(f"/r/{room.code}/present/locks/", {"allow": ["produce", "join"]})
    room.refresh_from_db()
    assert student_permissions(room)["produce"] is True
    assert student_permissions(room)["crash"] is False
    refused = owner.post(f"/r/{room.code}/present/locks/", {"allow": ["produce", "fly"]})
    assert refused.status_code == 302  # unknown names are simply not ticked boxes


def test_it_pauses_resumes_and_speeds_up_the_clock(owner, room):
    owner.post(f"/r/{room.code}/present/clock/", {"action": "play"})
    room.refresh_from_db()
    assert room.clock_running
    response = owner.post(
        f"/r/{room.code}/present/clock/", {"action": "speed", "speed": "5"}, headers=HTMX
    )
    assert "5× as fast" in response.content.decode()
    owner.post(f"/r/{room.code}/present/clock/", {"action": "pause"})
    room.refresh_from_db()
    assert (room.clock_running, room.clock_speed) == (False, 5.0)
    bad = owner.post(f"/r/{room.code}/present/clock/", {"action": "speed", "speed": "99"})
    assert bad.status_code == 400
    assert last_event(room).type == "clock.changed"


def test_follow_me_stores_a_path_of_the_room_and_tells_every_screen(owner, room):
    path = f"/r/{room.code}/queues/"
    response = owner.post(f"/r/{room.code}/present/follow/", {"path": path}, headers=HTMX)
    assert response.status_code == 200
    room.refresh_from_db()
    assert room.follow_path == path
    event = last_event(room)
    assert (event.type, event.payload) == ("room.follow", {"path": path})
    for wrong in (
        "https://evil.example/",
        "/r/OTHER1/",
        f"/r/{room.code}/../../admin/",
        f"/r/{room.code}/present/",
        f"/r/{room.code}/nowhere/",
        f"/r/{room.code}/me/consumer/",  # a form's POST address, not a page
        f"/r/{room.code}/state.json",
        f"/r/{room.code}/lesson/present/",
        f"//evil.example/r/{room.code}/",
        f"/r/{room.code}/?next=https://evil.example",
    ):
        refused = owner.post(f"/r/{room.code}/present/follow/", {"path": wrong}, headers=HTMX)
        assert refused.status_code == 400, wrong
    room.refresh_from_db()
    assert room.follow_path == path
    owner.post(f"/r/{room.code}/present/follow/", {"path": ""})
    room.refresh_from_db()
    assert room.follow_path == ""
    assert last_event(room).payload == {"path": ""}


def test_a_students_pages_are_marked_to_follow_and_nobody_elses_are(owner, client, room):
    student = joined(room, "Grace")
    owner.post(f"/r/{room.code}/present/follow/", {"path": f"/r/{room.code}/"})
    board = student.get(f"/r/{room.code}/").content.decode()
    assert f'data-follows="1" data-follow-path="/r/{room.code}/"' in board
    assert "loglab/follow.js" in board
    me = student.get(f"/r/{room.code}/me/").content.decode()
    assert 'data-follows="1"' in me
    for other in (owner, client):
        assert "data-follows" not in other.get(f"/r/{room.code}/").content.decode()


def test_reset_keeps_the_students_drops_their_consumers_and_reseeds(owner, room):
    grace = student_join(room=room, display_name="Grace", session_key="s-grace")[0]
    member, _ = student_consumer_join(student=grace, group_id="billing")
    topic_create(room=room, name="extra", partitions=2)
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value="v")])
    Room.objects.filter(pk=room.pk).update(sim_time_ms=90_000, clock_running=True)
    owner.post(f"/r/{room.code}/present/locks/", {"allow": ["join"]})
    seq_before = Room.objects.get(pk=room.pk).last_seq

    response = owner.post(f"/r/{room.code}/present/reset/", headers=HTMX)
    assert response.status_code == 200
    room.refresh_from_db()
    assert Student.objects.filter(room=room).count() == 1
    assert Student.objects.get(pk=grace.pk).member is None
    assert not Member.objects.filter(pk=member.pk).exists()
    assert sorted(Topic.objects.filter(room=room).values_list("name", flat=True)) == ["orders"]
    assert sorted(ConsumerGroup.objects.filter(room=room).values_list("group_id", flat=True)) == [
        "analytics",
        "billing",
    ]
    assert not room.topics.get(name="orders").partitions.filter(log_end_offset__gt=0).exists()
    assert (room.sim_time_ms, room.clock_running) == (0, False)
    assert student_permissions(room)["produce"] is False  # the locks are the instructor's
    event = last_event(room)
    assert event.type == "room.reset" and event.seq > seq_before
    assert not RoomEvent.objects.filter(room=room, seq__lte=seq_before).exists()


def test_removing_a_student_rebalances_and_shuts_their_session_out(owner, room):
    student = joined(room, "Grace")
    student.post(f"/r/{room.code}/me/consumer/", {"group_id": "billing"})
    grace = Student.objects.get(room=room, display_name="Grace")
    member_pk = grace.member_id
    response = owner.post(f"/r/{room.code}/present/students/{grace.pk}/remove/", headers=HTMX)
    assert response.status_code == 200
    assert "Grace was removed." in response.content.decode()
    assert not Member.objects.filter(pk=member_pk).exists()
    newest = RoomEvent.objects.filter(room=room).order_by("-seq")
    types = list(newest.values_list("type", flat=True)[:2])
    assert types == ["student.removed", "group.changed"]
    # Their page says so; they cannot join again from this browser, and the name stays taken.
    me = student.get(f"/r/{room.code}/me/", follow=True)
    assert me.status_code == 403
    assert "removed" in me.content.decode()
    assert f'href="/r/{room.code}/">Watch the board' in me.content.decode()  # not a dead end
    join_page = student.get(f"/j/{room.code}/")
    assert join_page.status_code == 403
    assert "The instructor removed you from this classroom." in join_page.content.decode()
    again = student.post(f"/j/{room.code}/", {"display_name": "Grace 2"})
    assert again.status_code == 403
    assert Student.objects.filter(room=room).count() == 1
    assert joined_status(room, "grace") == 400
    # Removing twice, or a student of another room, is a plain 404.
    assert owner.post(f"/r/{room.code}/present/students/{grace.pk}/remove/").status_code == 404
    # A double click from the page keeps the class list (and its poll), the reason above it.
    twice = owner.post(f"/r/{room.code}/present/students/{grace.pk}/remove/", headers=HTMX)
    assert twice.status_code == 404
    page = twice.content.decode()
    assert page.lstrip().startswith('<div id="students"') and 'hx-trigger="every 3s"' in page
    assert 'class="form-result is-error" role="alert"' in page


def joined_status(room: Room, name: str) -> int:
    return Client().post(f"/j/{room.code}/", {"display_name": name}).status_code


def page_open(room: Room, session_key: str, page_id: str) -> None:
    """The student's page connected its websocket (what the live consumer calls)."""
    from messaging.services.student_consumers import student_page_open

    assert student_page_open(
        room_pk=room.pk, session_key=session_key, page_id=page_id, owner="test"
    )


def test_it_puts_every_student_not_consuming_into_a_group_in_one_rebalance(owner, room):
    ada, grace, linus = joined(room, "Ada"), joined(room, "Grace"), joined(room, "Linus")
    joined(room, "Closed")  # joined, then closed the page: not online, left out
    for client in (ada, grace, linus):
        page_open(room, client.session.session_key, f"page-{client.session.session_key}")
    ada.post(f"/r/{room.code}/me/consumer/", {"action": "join", "group_id": "analytics"})
    billing = ConsumerGroup.objects.get(room=room, group_id="billing")
    generation, events = billing.generation, RoomEvent.objects.filter(room=room).count()

    # A student cannot do it for the class.
    refused = grace.post(f"/r/{room.code}/present/enlist/", {"group_id": "billing"}, headers=HTMX)
    assert refused.status_code == 403
    response = owner.post(f"/r/{room.code}/present/enlist/", {"group_id": "billing"}, headers=HTMX)
    assert response.status_code == 200
    assert "2 students joined billing, in one rebalance." in response.content.decode()

    billing.refresh_from_db()
    assert billing.generation == generation + 1
    assert RoomEvent.objects.filter(room=room).count() == events + 1
    students = {s.display_name: s for s in Student.objects.filter(room=room)}
    assert students["Ada"].member.group.group_id == "analytics"  # already consuming: untouched
    for name in ("Grace", "Linus"):
        member = students[name].member
        assert (member.group_id, member.kind, member.display_name) == (billing.pk, "student", name)
        assert member.online
    assert students["Closed"].member is None
    assert "You are consumer" in grace.get(f"/r/{room.code}/me/").content.decode()

    again = owner.post(f"/r/{room.code}/present/enlist/", {"group_id": "billing"}, headers=HTMX)
    assert again.status_code == 400
    # The controls are drawn again, with the reason in them.
    assert 'id="controls"' in again.content.decode()
    assert "has their page open" in again.content.decode()
    missing = owner.post(f"/r/{room.code}/present/enlist/", {"group_id": "nope"}, headers=HTMX)
    assert missing.status_code == 404


def test_the_roster_shows_who_is_in_their_group_partitions_and_lag(owner, room):
    topic_create(room=room, name="clicks", partitions=4)
    group = ConsumerGroup.objects.get(room=room, group_id="billing")
    ada = student_join(room=room, display_name="Ada", session_key="s-ada")[0]
    bob = student_join(room=room, display_name="Bob", session_key="s-bob")[0]
    student_join(room=room, display_name="Cy", session_key="s-cy")
    student_consumer_join(student=ada, group_id="billing")
    student_consumer_join(student=bob, group_id="billing")
    for key in ("s-ada", "s-cy"):
        page_open(room, key, f"page-{key}")
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key=None, value="v", partition=p) for p in (0, 0, 0, 1, 2)],
    )
    ada.refresh_from_db()
    owned = list(ada.member.assignments.select_related("partition"))
    # Nothing committed yet: her lag is "-", as kafka-consumer-groups prints it (lag's one
    # definition, offsets.lag), however many records wait on her partitions.
    before = owner.get(f"/r/{room.code}/present/students/", headers=HTMX).content.decode()
    assert sum(a.partition.log_end_offset for a in owned) > 0
    ada_before = before.split('roster-name">Ada')[1].split("</tr>")[0]
    assert '<td class="num">-</td>' in ada_before
    for assignment in owned:
        offset_commit(
            group=group, topic_name="orders", partition=assignment.partition.index, offset=1
        )
    Member.objects.filter(pk=bob.member_id).update(online=False)
    Student.objects.filter(pk=bob.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))

    page = owner.get(f"/r/{room.code}/present/students/", headers=HTMX).content.decode()
    assert '<span class="student-count">3</span> joined' in page
    assert '<b class="online-count">2</b> online' in page
    rows = {
        row.split("</tr>")[0].split('class="roster-name">')[1][:3]: row
        for row in page.split("<tr ")[1:]
    }
    ada_row = rows["Ada"]
    assert "billing" in ada_row
    expected_lag = sum(a.partition.log_end_offset - 1 for a in owned)
    assert f'<td class="num">{expected_lag}</td>' in ada_row
    for assignment in owned:
        assert f"orders-{assignment.partition.index}" in ada_row
    assert 'class="is-online"' in ada_row
    assert 'class="is-offline"' in rows["Bob"]
    assert '<td class="num">-</td>' in rows["Bob"]  # idle: no partition, no lag
    assert "leaves the group in" in rows["Bob"]
    # Session timeouts run on the room's clock: while it is paused, nobody times out.
    assert "once the clock runs" in rows["Bob"]
    assert "not consuming" in rows["Cy<"]


def test_the_roster_costs_the_same_few_queries_for_many_students(owner, room):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner.get(f"/r/{room.code}/present/students/", headers=HTMX).status_code == 200
        return len(captured)

    for i in range(3):
        student = student_join(room=room, display_name=f"s{i}", session_key=f"k{i}")[0]
        student_consumer_join(student=student, group_id="billing")
    few = queries()
    for i in range(3, 40):
        student = student_join(room=room, display_name=f"s{i}", session_key=f"k{i}")[0]
        student_consumer_join(student=student, group_id="billing")
    assert queries() == few


def test_a_students_board_shows_locked_controls_as_locked_and_no_instructor_controls(owner, room):
    student = joined(room, "Grace")
    owner.post(f"/r/{room.code}/present/locks/", {"allow": ["join"]})
    board = student.get(f"/r/{room.code}/").content.decode()
    assert '<fieldset class="lockable" data-needs="produce" disabled>' in board
    assert '<p class="lock-note" data-needs="produce">locked by the instructor</p>' in board
    assert f'action="/r/{room.code}/clock/"' not in board  # no clock buttons
    assert 'id="sim-clock"' in board  # but the time is shown
    assert "/present/" not in board
    assert 'data-actor="student"' in board
    live = student.get(f"/r/{room.code}/board/", headers=HTMX).content.decode()
    assert "reset-offsets" not in live and "Reset offsets" not in live

    owner_board = owner.get(f"/r/{room.code}/").content.decode()
    assert '<fieldset class="lockable" data-needs="produce">' in owner_board
    assert f'action="/r/{room.code}/clock/"' in owner_board
    assert "Instructor controls" in owner_board


def test_a_visitors_board_is_read_only(client, room):
    board = client.get(f"/r/{room.code}/").content.decode()
    assert "You are watching this classroom" in board
    assert '<fieldset class="lockable" data-needs="produce" disabled>' in board
    assert "read-only: join the classroom to take part" in board
    assert f'action="/r/{room.code}/clock/"' not in board
    assert 'data-actor="visitor"' in board
