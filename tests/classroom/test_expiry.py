"""Idle rooms expire with their data; the demo room and rooms in use stay."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging.models import Record, Room, RoomEvent, Student
from messaging.services.classroom import student_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import (
    EXPIRE_SWEEP_EVERY_S,
    room_create,
    room_touch,
    rooms_expire,
    rooms_expire_maybe,
)
from messaging.services.seeds import room_seed_demo, room_seed_sandbox

pytestmark = [pytest.mark.django_db]


def idle_for(room: Room, hours: float) -> None:
    Room.objects.filter(pk=room.pk).update(last_active_at=timezone.now() - timedelta(hours=hours))


def busy_room(title: str, kind: str = Room.Kind.CLASSROOM) -> Room:
    room = room_seed_sandbox(room=room_create(title=title, kind=kind))
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value="v")])
    if kind == Room.Kind.CLASSROOM:
        student_join(room=room, display_name="Ada", session_key=f"s-{title}")
    return room


def test_it_deletes_rooms_idle_past_the_setting_with_their_data_but_not_the_demo(settings):
    settings.LOGLAB_ROOM_IDLE_HOURS = 72
    old, fresh = busy_room("old"), busy_room("fresh")
    demo, _ = room_seed_demo()
    idle_for(old, 73)
    idle_for(fresh, 71)
    idle_for(demo, 10_000)

    assert rooms_expire() == [(old.code, "old")]
    assert not Room.objects.filter(pk=old.pk).exists()
    assert not Record.objects.filter(partition__topic__room_id=old.pk).exists()
    assert not Student.objects.filter(room_id=old.pk).exists()
    assert not RoomEvent.objects.filter(room_id=old.pk).exists()
    assert Room.objects.filter(pk__in=[fresh.pk, demo.pk]).count() == 2
    assert Record.objects.filter(partition__topic__room=fresh).exists()

    settings.LOGLAB_ROOM_IDLE_HOURS = 1
    assert [code for code, _ in rooms_expire()] == [fresh.code]


def test_the_command_prints_what_it_deleted(settings):
    settings.LOGLAB_ROOM_IDLE_HOURS = 72
    old = busy_room("Week 1", kind=Room.Kind.SANDBOX)
    idle_for(old, 100)
    out = StringIO()
    call_command("rooms_expire", stdout=out)
    assert out.getvalue().splitlines() == [
        f"deleted {old.code} (Week 1)",
        "1 room(s) idle for more than 72 h deleted.",
    ]
    out = StringIO()
    call_command("rooms_expire", stdout=out)
    assert out.getvalue() == "0 room(s) idle for more than 72 h deleted.\n"


def test_the_sweep_runs_at_most_once_every_ten_minutes_per_process():
    old = busy_room("old")
    idle_for(old, 1000)
    first = rooms_expire_maybe(now=1_000_000.0)
    assert first == [(old.code, "old")]
    again = busy_room("again")
    idle_for(again, 1000)
    assert rooms_expire_maybe(now=1_000_000.0 + EXPIRE_SWEEP_EVERY_S - 1) is None
    assert Room.objects.filter(pk=again.pk).exists()
    assert rooms_expire_maybe(now=1_000_000.0 + EXPIRE_SWEEP_EVERY_S + 1) == [(again.code, "again")]


def test_creating_a_room_sweeps_after_it_commits(django_capture_on_commit_callbacks):
    from messaging.services import rooms

    old = busy_room("old")
    idle_for(old, 1000)
    rooms._last_sweep["at"] = None
    with django_capture_on_commit_callbacks(execute=True):
        room_create(title="new")
    assert not Room.objects.filter(pk=old.pk).exists()


def test_watching_a_room_counts_as_activity_without_a_write_each_time(
    django_assert_num_queries,
):
    room = busy_room("watched")
    idle_for(room, 50)
    room.refresh_from_db()
    assert room_touch(room=room) is True
    room.refresh_from_db()
    assert timezone.now() - room.last_active_at < timedelta(minutes=1)
    with django_assert_num_queries(0):
        assert room_touch(room=room) is False
