"""Classrooms: rooms an instructor owns, and the students who join them with the join code.

A student has no account: a display name in the room, tied to the browser session that joined.
Joining records no RoomEvent on purpose: the board draws nothing for a student, and board.js
resyncs on any event type it does not know, so each join would make every board refetch.
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.db import IntegrityError, transaction

from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import Room, Student
from messaging.services.events import room_lock
from messaging.services.rooms import room_create, room_seed_sandbox

MAX_DISPLAY_NAME = 40  # Student.display_name's max_length
MAX_STUDENTS_PER_ROOM = getattr(settings, "LOGLAB_MAX_STUDENTS_PER_ROOM", 250)
MAX_CLASSROOMS_PER_OWNER = getattr(settings, "LOGLAB_MAX_CLASSROOMS_PER_OWNER", 100)
NAME_TAKEN = "That name is taken in this room: pick another."


@transaction.atomic
def classroom_create(*, owner, title: str = "") -> Room:
    """A classroom for `owner`, seeded like a sandbox so the first Play has something to show."""
    if owner is None or not owner.is_authenticated:
        raise Invalid("Log in to create a classroom.")
    if Room.objects.filter(owner=owner, kind=Room.Kind.CLASSROOM).count() >= (
        MAX_CLASSROOMS_PER_OWNER
    ):
        raise Invalid(
            f"You have {MAX_CLASSROOMS_PER_OWNER} classrooms, the most one instructor may have."
        )
    room = room_create(title=title, kind=Room.Kind.CLASSROOM, owner=owner)
    room_seed_sandbox(room=room)
    return room


def display_name_validate(raw: str) -> str:
    """What a student typed as the name the room shows: trimmed, inner spaces collapsed."""
    name = unicodedata.normalize("NFC", " ".join(raw.split()))
    if not name:
        raise Invalid("Type the name the class will see.", field="display_name")
    if len(name) > MAX_DISPLAY_NAME:
        raise Invalid(f"A name has at most {MAX_DISPLAY_NAME} characters.", field="display_name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise Invalid("A name cannot contain control characters.", field="display_name")
    return name


def student_for_session(*, room: Room, session_key: str | None) -> Student | None:
    if not session_key:
        return None
    return Student.objects.filter(room=room, session_key=session_key).first()


@transaction.atomic
def student_join(*, room: Room, display_name: str, session_key: str) -> tuple[Student, bool]:
    """The student this browser session is in `room`, joining it first if need be.

    Returns (student, created). A session that already joined gets its Student back, whatever
    name it typed this time. Names are unique in a room without regard to case.
    """
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid(
            f"Room {room.code} is a sandbox: only classrooms take students. "
            "Open the board with the code instead.",
        )
    name = display_name_validate(display_name)
    if not session_key:
        raise Invalid("Your browser sent no session: allow cookies for this site and retry.")
    room = room_lock(room=room)  # serialises the name check and the count with other joins
    existing = student_for_session(room=room, session_key=session_key)
    if existing is not None:
        return existing, False
    # Compared in Python: SQLite's LIKE folds only ASCII, and a room holds a few hundred names.
    taken = {
        other.casefold()
        for other in Student.objects.filter(room=room).values_list("display_name", flat=True)
    }
    if name.casefold() in taken:
        raise Invalid(NAME_TAKEN, field="display_name")
    if len(taken) >= MAX_STUDENTS_PER_ROOM:
        raise Invalid(
            f"This room is full: it has {MAX_STUDENTS_PER_ROOM} students, the most a room takes."
        )
    try:
        with transaction.atomic():
            student = Student.objects.create(room=room, display_name=name, session_key=session_key)
    except IntegrityError:
        raise Invalid(NAME_TAKEN, field="display_name") from None
    return student, True


# --- students as consumers ----------------------------------------------------------------


def _client_id(name: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return (slug or "student")[:40]


@transaction.atomic
def student_consumer_join(*, student: Student, group_id: str):
    """The student becomes a consumer in `group_id`, with their name as client.id."""
    from messaging.models import ConsumerGroup, Member
    from messaging.services.groups import member_join

    room = room_lock(room=student.room_id)
    student = Student.objects.select_related("member").get(pk=student.pk)
    if student.member is not None:
        raise Conflict(
            f"You are already consumer {student.member.member_id}: leave that group first."
        )
    try:
        group = ConsumerGroup.objects.get(room=room, group_id=group_id)
    except ConsumerGroup.DoesNotExist:
        raise NotFound(f"There is no consumer group '{group_id}' in this room.") from None
    member, result = member_join(
        group=group,
        client_id=_client_id(student.display_name),
        display_name=student.display_name,
        kind=Member.Kind.STUDENT,
    )
    Member.objects.filter(pk=member.pk).update(online=True)
    student.member = member
    student.save(update_fields=["member", "last_seen_at"])
    return member, result


@transaction.atomic
def student_consumer_leave(*, student: Student) -> None:
    """The student's consumer leaves its group (LeaveGroup: the group rebalances now)."""
    from messaging.services.groups import member_leave

    room_lock(room=student.room_id)
    student = Student.objects.select_related("member__group").get(pk=student.pk)
    if student.member is None:
        raise Invalid("You are not a consumer in any group.")
    member_leave(member=student.member)


def student_set_online(*, room_pk: int, session_key: str, online: bool) -> bool:
    """A student's page connected or went away: their member heartbeats only while connected.

    One row write per connect and disconnect, not per heartbeat. Returns whether a member of
    this session's student was updated.
    """
    from messaging.models import Member

    if not session_key:
        return False
    updated = Member.objects.filter(
        student__room_id=room_pk, student__session_key=session_key
    ).update(online=online)
    return updated > 0
