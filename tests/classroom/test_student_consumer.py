"""A student's browser is a consumer: it joins a group, and its open page keeps it alive."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore

from config.asgi import application
from messaging.errors import Conflict, NotFound
from messaging.models import Member, Room, Student
from messaging.services.classroom import student_consumer_join, student_consumer_leave, student_join
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox
from messaging.services.simulation import room_step


def classroom() -> Room:
    room = room_create(title="Class", kind=Room.Kind.CLASSROOM)
    return room_seed_sandbox(room=room)


def new_student(room: Room, name: str) -> Student:
    session = SessionStore()
    session.create()
    student, _ = student_join(room=room, display_name=name, session_key=session.session_key)
    return student


@pytest.mark.django_db
def test_it_makes_a_student_a_consumer_with_their_name():
    room = classroom()
    ada = new_student(room, "Ada L.")
    member, result = student_consumer_join(student=ada, group_id="billing")
    assert (member.kind, member.display_name, member.client_id) == ("student", "Ada L.", "ada-l")
    assert result.plan is not None  # the group rebalanced to let her in
    assert Student.objects.get(pk=ada.pk).member_id == member.pk
    with pytest.raises(Conflict, match="already consumer"):
        student_consumer_join(student=ada, group_id="analytics")
    with pytest.raises(NotFound):
        student_consumer_join(student=new_student(room, "Bob"), group_id="nope")


@pytest.mark.django_db
def test_it_lets_a_student_leave_their_group():
    room = classroom()
    ada = new_student(room, "Ada")
    member, _ = student_consumer_join(student=ada, group_id="billing")
    student_consumer_leave(student=ada)
    assert not Member.objects.filter(pk=member.pk).exists()
    assert Student.objects.get(pk=ada.pk).member is None


@pytest.mark.django_db
def test_the_student_page_joins_and_leaves_through_the_session(client):
    room = classroom()
    client.post(f"/j/{room.code}/", {"display_name": "Grace"})
    page = client.post(
        f"/r/{room.code}/me/consumer/", {"group_id": "billing"}, headers={"HX-Request": "true"}
    )
    assert page.status_code == 200
    assert b"You are consumer" in page.content
    assert Member.objects.filter(kind="student", display_name="Grace").exists()
    other = client.__class__()
    refused = other.post(f"/r/{room.code}/me/consumer/", {"group_id": "billing"})
    assert refused.status_code == 400
    assert Member.objects.filter(kind="student").count() == 1


@database_sync_to_async
def student_in_billing(room: Room, name: str) -> tuple[Student, Member]:
    student = new_student(room, name)
    member, _ = student_consumer_join(student=student, group_id="billing")
    return student, member


async def open_page(room: Room, student: Student) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application,
        f"/ws/rooms/{room.code}/",
        headers=[
            (b"origin", b"http://127.0.0.1"),
            (b"cookie", f"sessionid={student.session_key}".encode()),
        ],
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@database_sync_to_async
def online(member: Member) -> bool | None:
    row = Member.objects.filter(pk=member.pk).first()
    return None if row is None else row.online


@database_sync_to_async
def step(room: Room, ms: int) -> None:
    room_step(room=room, step_ms=ms)


@pytest.mark.django_db(transaction=True)
async def test_a_closed_page_ends_in_a_session_timeout_and_an_open_one_stays():
    room = await database_sync_to_async(classroom)()
    ada, ada_member = await student_in_billing(room, "Ada")
    bob, bob_member = await student_in_billing(room, "Bob")

    ada_page = await open_page(room, ada)
    bob_page = await open_page(room, bob)
    assert await online(ada_member) and await online(bob_member)

    await bob_page.disconnect()  # Bob closes his laptop
    assert await online(bob_member) is False
    for _ in range(10):  # 50 simulated seconds: session.timeout.ms is 45 s
        await step(room, 5_000)
    assert await online(bob_member) is None  # removed by the coordinator
    assert await online(ada_member) is True  # Ada's open page kept her in
    await ada_page.disconnect()
