"""The room's websocket takes nothing but replay requests: crafted frames write nothing.

Actions go through HTTP, where the permission checks are. Here a browser (or a script) that
sends fake actions, forged channel-layer messages, garbage or binary gets an error back; one
that sends huge frames or floods the socket is disconnected.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from config.asgi import application
from messaging.live.consumers import CLOSE_FLOOD, CLOSE_TOO_BIG, MAX_FRAME_CHARS, presence
from messaging.models import Member, Record, Room, RoomEvent, Student, StudentPage
from messaging.services.classroom import student_consumer_join, student_join
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox
from messaging.services.simulation import room_step

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@database_sync_to_async
def classroom_with_student() -> tuple[Room, Student]:
    room = room_seed_sandbox(room=room_create(title="ws", kind=Room.Kind.CLASSROOM))
    session = SessionStore()
    session.create()
    student, _ = student_join(room=room, display_name="Mallory", session_key=session.session_key)
    return room, student


@database_sync_to_async
def state(room: Room) -> tuple:
    room.refresh_from_db()
    return (
        room.last_seq,
        RoomEvent.objects.filter(room=room).count(),
        Record.objects.filter(partition__topic__room=room).count(),
        Member.objects.filter(group__room=room, crashed=True).count(),
        Member.objects.filter(group__room=room).count(),
        json.dumps(room.student_permissions, sort_keys=True),
        room.clock_running,
        room.follow_path,
    )


async def connect(room: Room, session_key: str | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if session_key:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.code}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


CRAFTED = [
    {"type": "produce", "topic": "orders", "key": "k", "value": "v"},
    {"type": "records.produced", "payload": {"topic": "orders", "records": [{"key": "k"}]}},
    {"type": "member.crash", "member": 1},
    {"type": "member_control", "action": "crash", "pk": 1},
    {"type": "room.permissions", "payload": {"permissions": {"settings": True}}},
    {"type": "locks", "allow": ["produce", "join", "crash", "settings", "clients"]},
    {"type": "room.follow", "payload": {"path": "https://evil.example/"}},
    {"type": "clock", "action": "play"},
    {"type": "room.event", "text": '{"seq": 999, "type": "room.reset", "payload": {}}'},
    {"type": "room_event", "text": "{}"},
    {"type": "websocket.disconnect", "code": 1000},
    {"type": "replay", "since": -1},
    {"type": "replay", "since": "0 OR 1=1"},
    {"type": "replay", "since": True},
    ["replay", 0],
    "replay",
    None,
]


async def test_crafted_action_frames_write_nothing_and_are_answered_with_an_error():
    room, student = await classroom_with_student()
    mallory = await connect(room, student.session_key)
    watcher = await connect(room)
    before = await state(room)
    for frame in CRAFTED:
        await mallory.send_to(text_data=json.dumps(frame))
        answer = await mallory.receive_json_from(timeout=3)
        assert answer["type"] == "error", frame
        assert "only replays events" in answer["payload"]["message"]
        await mallory.receive_nothing(timeout=0.25)  # a gap keeps the flood guard out of it
    for garbage in ("not json", "{", "\x00\x01", "[" * 500):
        await mallory.send_to(text_data=garbage)
        answer = await mallory.receive_json_from(timeout=3)
        assert answer == {"type": "error", "payload": {"message": "Not JSON."}}
        await mallory.receive_nothing(timeout=0.25)
    await mallory.send_to(bytes_data=b'{"type": "produce"}')
    answer = await mallory.receive_json_from(timeout=3)
    assert "Binary frames are not accepted" in answer["payload"]["message"]
    # The forged room.event reached nobody: the watcher heard nothing at all.
    assert await watcher.receive_nothing(timeout=0.3)
    assert await state(room) == before
    await mallory.disconnect()
    await watcher.disconnect()


async def test_a_real_replay_still_works():
    room, _ = await classroom_with_student()
    client = await connect(room)
    await client.send_json_to({"type": "replay", "since": 0})
    first = await client.receive_json_from(timeout=3)
    assert first["seq"] == 1
    await client.disconnect()


async def test_a_huge_frame_closes_the_socket():
    room, student = await classroom_with_student()
    client = await connect(room, student.session_key)
    before = await state(room)
    huge = json.dumps({"type": "replay", "since": 0, "pad": "x" * MAX_FRAME_CHARS})
    await client.send_to(text_data=huge)
    closed = await client.receive_output(timeout=3)
    assert (closed["type"], closed["code"]) == ("websocket.close", CLOSE_TOO_BIG)
    assert await state(room) == before
    await client.disconnect()


async def test_a_flood_of_frames_closes_the_socket():
    room, _ = await classroom_with_student()
    client = await connect(room)
    for _ in range(20):
        await client.send_to(text_data='{"type": "nothing"}')
    outputs = []
    while True:
        output = await client.receive_output(timeout=3)
        outputs.append(output)
        if output["type"] == "websocket.close":
            break
    assert outputs[-1]["code"] == CLOSE_FLOOD
    assert sum(1 for o in outputs if o["type"] == "websocket.send") <= 6
    await client.disconnect()


# --- a student's member online only while their page is seen --------------------------------


@database_sync_to_async
def student_member(room: Room, student: Student) -> Member:
    member, _ = student_consumer_join(student=student, group_id="billing")
    return member


@database_sync_to_async
def member_state(member: Member) -> tuple[bool, bool] | None:
    row = Member.objects.filter(pk=member.pk).first()
    return None if row is None else (row.online, row.crashed)


@database_sync_to_async
def seen_long_ago(student: Student) -> None:
    Student.objects.filter(pk=student.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))


@database_sync_to_async
def last_seen(student: Student):
    return Student.objects.get(pk=student.pk).last_seen_at


@database_sync_to_async
def open_pages(student: Student) -> list[str]:
    return list(StudentPage.objects.filter(student=student).values_list("page_id", flat=True))


@database_sync_to_async
def step(room: Room, ms: int) -> None:
    room_step(room=room, step_ms=ms)


async def test_a_stale_online_flag_left_by_a_dead_server_ends_in_a_session_timeout():
    room, student = await classroom_with_student()
    member = await student_member(room, student)
    # The process that held the page's websocket died: online stays set, nobody refreshes it.
    assert await member_state(member) == (True, False)
    await seen_long_ago(student)
    for _ in range(10):  # 50 simulated seconds: session.timeout.ms is 45 s
        await step(room, 5_000)
    assert await member_state(member) is None


async def test_a_connected_page_keeps_its_student_seen_in_bulk():
    room, student = await classroom_with_student()
    member = await student_member(room, student)
    await seen_long_ago(student)
    page = await connect(room, student.session_key)
    connected_at = await last_seen(student)
    assert timezone.now() - connected_at < timedelta(seconds=5)
    await seen_long_ago(student)
    await presence.flush()  # what the presence task does every STUDENT_SEEN_REFRESH_S
    assert timezone.now() - await last_seen(student) < timedelta(seconds=5)
    for _ in range(10):
        await step(room, 5_000)
    assert await member_state(member) == (True, False)
    await page.disconnect()
    assert not presence.pages
    assert await member_state(member) == (False, False)  # its session timeout starts now
    assert not await open_pages(student)
