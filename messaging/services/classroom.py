"""Classrooms: rooms an instructor owns, and the students who join them with the join code.

A student has no account: a display name in the room, tied to the browser session that joined.
Joining records no RoomEvent on purpose: the board draws nothing for a student, and board.js
resyncs on any event type it does not know, so each join would make every board refetch.
"""

from __future__ import annotations

import contextlib
import unicodedata

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import events, selectors
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import ConsumerGroup, Member, Room, RoomEvent, Student
from messaging.permissions import STUDENT_ACTIONS, Forbidden, student_permissions
from messaging.services.events import event_record, room_lock
from messaging.services.groups import NewMember, member_join, member_leave, members_join_named
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox
from messaging.services.snapshots import room_rows_clear
from messaging.services.text import name_validate

MAX_DISPLAY_NAME = 40  # Student.display_name's max_length
MAX_STUDENTS_PER_ROOM = getattr(settings, "LOGLAB_MAX_STUDENTS_PER_ROOM", 250)
MAX_CLASSROOMS_PER_OWNER = getattr(settings, "LOGLAB_MAX_CLASSROOMS_PER_OWNER", 100)
NAME_TAKEN = "That name is taken in this room: pick another."
REMOVED = "The instructor removed you from this classroom."


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
    return name_validate(name, field="display_name", what="A name")


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
    if selectors.student_removed(room=room, session_key=session_key):
        raise Forbidden(REMOVED)
    existing = selectors.student_for_session(room=room, session_key=session_key)
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
def classroom_students_enlist(*, room: Room, group_id: str) -> list:
    """ "Everyone join group G": every student who is online (their page is open) and not
    consuming joins `group_id`, in one join window (one rebalance, as consumers started
    together make). A student whose page is closed is left out: they would only time out a
    session later and rebalance the group a second time."""
    room = room_lock(room=room)
    try:
        group = ConsumerGroup.objects.get(room=room, group_id=group_id)
    except ConsumerGroup.DoesNotExist:
        raise NotFound(f"There is no consumer group '{group_id}' in this room.") from None
    idle = Student.objects.filter(room=room, member__isnull=True, removed_at__isnull=True)
    online = selectors.students_online(room=room)
    students = [s for s in idle.order_by("created_at", "pk") if s.pk in online]
    if not students:
        if idle.exists():
            raise Invalid(
                "No student who is not consuming has their page open: only students who are "
                "online join (a closed page would only time out and rebalance the group again)."
            )
        raise Invalid("Every student who joined the room is already in a group.")
    members, _result = members_join_named(
        group=group,
        joiners=[
            (
                _client_id(s.display_name),
                NewMember(display_name=s.display_name, kind=Member.Kind.STUDENT),
            )
            for s in students
        ],
    )
    # One update and one bulk update for the whole class, not two writes per student.
    Member.objects.filter(pk__in=[m.pk for m in members]).update(online=True)
    for student, member in zip(students, members, strict=True):
        student.member = member
    Student.objects.bulk_update(students, ["member"], batch_size=500)
    return members


@transaction.atomic
def student_consumer_leave(*, student: Student) -> None:
    """The student's consumer leaves its group (LeaveGroup: the group rebalances now)."""
    room_lock(room=student.room_id)
    student = Student.objects.select_related("member__group").get(pk=student.pk)
    if student.member is None:
        raise Invalid("You are not a consumer in any group.")
    member_leave(member=student.member)


# --- the instructor's controls -------------------------------------------------------------


@transaction.atomic
def classroom_permissions_set(*, room: Room, permissions: dict[str, object]) -> dict[str, bool]:
    """Lock or unlock what students may do; only the actions named in `permissions` change.

    Records `room.permissions` so every student's page redraws its buttons at once.
    """
    unknown = sorted(set(permissions) - set(STUDENT_ACTIONS))
    if unknown:
        raise Invalid(f"Students cannot be allowed or refused '{unknown[0]}'.")
    room = _classroom_locked(room)
    current = student_permissions(room)
    current.update({action: bool(allowed) for action, allowed in permissions.items()})
    room.student_permissions = current
    room.save(update_fields=["student_permissions"])
    event_record(room=room, type=events.ROOM_PERMISSIONS, payload={"permissions": current})
    return current


# The pages of a room a student's screen can be sent to: (path under /r/<code>/, label).
FOLLOW_PAGES = (
    ("me/", "Their own page (their consumer)"),
    ("", "The board"),
    ("queues/", "SQS & RabbitMQ"),
    ("queues/side-by-side/", "Side by side"),
    ("lesson/", "The lesson"),
)


def follow_path_validate(room: Room, raw: str) -> str:
    """A path every student's screen may be sent to: a page of this room, never another site,
    another room, or the instructor's own pages. Empty means follow-me is off."""
    path = (raw or "").strip()
    if not path:
        return ""
    prefix = f"/r/{room.code}/"
    if (
        len(path) > 200
        or not path.startswith(prefix)
        or any(part in path for part in ("//", "..", "\\", "?", "#"))
    ):
        raise Invalid(f"Students can follow a page of this room only (under {prefix}).")
    page = path[len(prefix) :]
    if page.startswith(("present", "lesson/present")):
        raise Invalid("The presenter view is yours alone: students cannot follow you there.")
    # Only the pages a student reads: not a form's POST address, a fragment or a JSON state.
    if page not in {page for page, _ in FOLLOW_PAGES}:
        raise Invalid(f"There is no page for students at {path}.")
    return path


@transaction.atomic
def room_follow_set(*, room: Room, path: str) -> Room:
    """ "Follow me": send every student's screen to `path` (a page of this room), or stop."""
    room = _classroom_locked(room)
    room.follow_path = follow_path_validate(room, path)
    room.save(update_fields=["follow_path"])
    event_record(room=room, type=events.ROOM_FOLLOW, payload={"path": room.follow_path})
    return room


@transaction.atomic
def classroom_reset(*, room: Room) -> Room:
    """Start the room again as a new classroom: the students stay, their consumers go, and the
    topics, groups, producers and queues are dropped and seeded afresh; the clock is paused at
    zero. The locks, follow-me and lesson stay the instructor's choice.

    Records `room.reset` last, so every screen redraws from the new state.
    """
    room = _classroom_locked(room)
    room_rows_clear(room=room)  # a student's member goes with its group; the student stays
    # The old events describe a room that is gone; seqs keep counting up, so a browser that
    # reconnects with an old seq sees the gap and redraws.
    RoomEvent.objects.filter(room=room).delete()
    room.sim_time_ms, room.clock_running, room.clock_speed = 0, False, 1.0
    room.mirror_topic = None  # room_rows_clear cleared the row; this keeps the object in step
    room.save(update_fields=["sim_time_ms", "clock_running", "clock_speed", "mirror_topic"])
    room_seed_sandbox(room=room)
    room.refresh_from_db()
    event_record(room=room, type=events.ROOM_RESET, payload={})
    return room


@transaction.atomic
def student_remove(*, room: Room, student_id: int) -> Student:
    """The instructor removes a student: their consumer leaves its group (which rebalances),
    and their session can no longer act in the room or join it again. Their name stays taken.
    """
    room = _classroom_locked(room)
    student = (
        Student.objects.select_related("member__group")
        .filter(room=room, pk=student_id, removed_at__isnull=True)
        .first()
    )
    if student is None:
        raise NotFound("That student is not in this classroom (any more).")
    member = student.member
    if member is not None:
        with contextlib.suppress(NotFound):  # the coordinator had already removed it
            member_leave(member=member)
    student.removed_at = timezone.now()
    student.member = None
    student.save(update_fields=["removed_at", "member"])
    event_record(
        room=room,
        type=events.STUDENT_REMOVED,
        payload={"student": student.pk, "name": student.display_name},
    )
    return student


def _classroom_locked(room: Room) -> Room:
    room = room_lock(room=room)
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid("Only a classroom has students, locks and follow-me.")
    return room
