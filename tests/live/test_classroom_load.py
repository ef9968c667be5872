"""A classroom of 200 students, each with their page's websocket open, in one consumer group:
when the group rebalances, every one of them receives every event of the rebalance, in order.

Not a timing test (`make bench` measures how long it takes); this one counts.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore

from config.asgi import application
from messaging.models import ConsumerGroup, Member, Room, Student
from messaging.services.classroom import student_consumer_join
from messaging.services.groups import group_create
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db(transaction=True)

STUDENTS = 200
PARTITIONS = 100  # the lessons' 100 partitions: 100 students get one each, the rest are idle


@database_sync_to_async
def full_classroom() -> tuple[Room, list[str]]:
    room = room_create(title="Lecture hall", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="billing_events", partitions=PARTITIONS)
    group_create(room=room, group_id="billing", topics=["billing_events"])
    sessions = []
    for number in range(STUDENTS):
        session = SessionStore()
        session.create()
        student = Student.objects.create(
            room=room, display_name=f"Student {number:03}", session_key=session.session_key
        )
        student_consumer_join(student=student, group_id="billing")
        sessions.append(session.session_key)
    return Room.objects.get(pk=room.pk), sessions


async def open_page(room: Room, session_key: str, since: int | None = None):
    query = f"?since={since}" if since is not None else ""
    page = WebsocketCommunicator(
        application,
        f"/ws/rooms/{room.code}/{query}",
        headers=[
            (b"origin", b"http://127.0.0.1"),
            (b"cookie", f"sessionid={session_key}".encode()),
        ],
    )
    connected, _ = await page.connect(timeout=10)
    assert connected
    return page


async def seqs_received(page: WebsocketCommunicator, wanted: set[int]) -> set[int]:
    seen: set[int] = set()
    while not wanted <= seen:
        try:
            event = await page.receive_json_from(timeout=5)
        except TimeoutError:
            break
        if isinstance(event.get("seq"), int):
            seen.add(event["seq"])
    return seen


@database_sync_to_async
def one_more_joins(room: Room) -> tuple[int, int, list[str]]:
    """A late student joins: the group rebalances. Returns the seqs before and after, and the
    types of the events in between."""
    before = Room.objects.get(pk=room.pk).last_seq
    session = SessionStore()
    session.create()
    late = Student.objects.create(room=room, display_name="Late", session_key=session.session_key)
    student_consumer_join(student=late, group_id="billing")
    after = Room.objects.get(pk=room.pk).last_seq
    types = list(
        room.events.filter(seq__gt=before, seq__lte=after)
        .order_by("seq")
        .values_list("type", flat=True)
    )
    return before, after, types


@database_sync_to_async
def online_members(room: Room) -> int:
    return Member.objects.filter(group__room=room, kind="student", online=True).count()


async def test_every_one_of_200_students_receives_every_event_of_a_rebalance():
    room, sessions = await full_classroom()
    pages = await asyncio.gather(*(open_page(room, key) for key in sessions))
    try:
        assert await online_members(room) == STUDENTS  # every open page keeps its member alive

        before, after, types = await one_more_joins(room)
        assert "group.changed" in types  # the late student's join rebalanced the group
        wanted = set(range(before + 1, after + 1))

        received = await asyncio.gather(*(seqs_received(page, wanted) for page in pages))
        missing = [index for index, seen in enumerate(received) if not wanted <= seen]
        # A page that missed events (the in-memory layer drops on a full channel) asks for a
        # replay from the last seq it saw, as the browser does when it reconnects.
        for index in missing:
            await pages[index].disconnect()
            pages[index] = await open_page(room, sessions[index], since=before)
            received[index] |= await seqs_received(pages[index], wanted)
        assert all(wanted <= seen for seen in received), "some students missed the rebalance"
        group = await database_sync_to_async(ConsumerGroup.objects.get)(room=room)
        assert group.state == ConsumerGroup.State.STABLE
    finally:
        await asyncio.gather(*(page.disconnect() for page in pages))
