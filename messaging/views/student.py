"""A student's own page in a classroom: their consumer, its partitions and the records waiting
in them, and the buttons that drive it (process the next record, commit, crash, leave).

The page is tied to the browser session that joined. While it is open, its websocket keeps the
student's member heartbeating; the student, not the simulation, processes and commits.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine import offsets as offset_rules
from messaging.errors import Invalid, LogLabError
from messaging.models import (
    Room,
    Student,
)
from messaging.permissions import (
    RATE_ACTION,
    RATE_FOR_ACTION,
    STUDENT_ACTIONS,
    Actor,
    request_act,
    student_permissions,
)
from messaging.services import student_consumers
from messaging.views._htmx import handles_errors
from messaging.views.board import KafkaLogin, kafka_login

RECENT_SHOWN = 8


def _me_context(room: Room, student: Student, **extra) -> dict:
    member = student.member
    group = member.group if member is not None else None
    allowed = student_permissions(room)
    context = {
        "room": room,
        "student": student,
        "member": member,
        "group": group,
        "allowed": allowed,
        "locked": [
            words
            for action, words in STUDENT_ACTIONS.items()
            if action in ("join", "crash", "produce") and not allowed[action]
        ],
        "groups": selectors.room_groups(room=room),
        "topics": selectors.room_topics(room=room),
        "group_topic_ids": selectors.group_topic_ids(group=group) if group else set(),
        "speed": room.clock_speed,
        **extra,
    }
    if member is not None and group is not None:
        partitions = selectors.student_partitions(member=member, group=group)
        context.update(
            partitions=partitions,
            assigned=[p.tp for p in partitions],
            # Lag's one definition (offsets.lag_total): '-' until the group's first commit.
            total_lag=offset_rules.lag_total(p.lag for p in partitions),
            recent=selectors.ledger_recent(group=group, member=member, limit=RECENT_SHOWN),
            session_deadline_ms=member.session_expires_at(group.session_timeout_ms),
            session_wall_s=group.session_timeout_ms / 1000 / max(room.clock_speed, 0.01),
            rebalancing=group.consumers_paused(),
        )
        context["teammates"], context["group_size"] = selectors.group_teammates(group=group)
    return context


def _kafka(request: HttpRequest, room: Room, student: Student, context: dict) -> KafkaLogin:
    """The student's own Kafka login ("Use your own Kafka client"), its examples on a topic
    of their group, else the room's first."""
    names = [t.name for t in context["topics"] if t.pk in context["group_topic_ids"]]
    names += [t.name for t in context["topics"]]
    actor = Actor(kind="student", student=student)
    return kafka_login(request, room, topic=names[0] if names else "orders", actor=actor)


def _student(request: HttpRequest, room: Room) -> Student | None:
    return selectors.student_for_session(room=room, session_key=request.session.session_key)


def _was_removed(request: HttpRequest, room: Room) -> bool:
    return selectors.student_removed(room=room, session_key=request.session.session_key)


def _removed(request: HttpRequest, room: Room) -> HttpResponse:
    template = "messaging/classroom_me.html"
    if request.htmx:
        template += "#me"
    return render(request, template, {"room": room, "removed": True}, status=403)


@require_GET
@handles_errors
def student_me(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    student = _student(request, room)
    if student is None:
        if _was_removed(request, room):
            return _removed(request, room)
        # Another browser, or one that never joined: the name belongs to its session.
        return redirect("student_join", code=room.code)
    context = _me_context(room, student)
    if request.htmx:
        return render(request, "messaging/classroom_me.html#me", context)
    context["kafka"] = _kafka(request, room, student, context)
    return render(request, "messaging/classroom_me.html", context)


ACTIONS = ("join", "leave", "process", "commit", "crash")


def _act(request: HttpRequest, room: Room, student: Student, action: str) -> str:
    """Do what the student pressed; returns the sentence their page shows."""
    # Who asks, whether the lock is open, and the student's rate allowance: checked here first
    # so a refusal costs no lock; the services check the permission again under the room lock.
    actor = request_act(
        request,
        room,
        "crash" if action == "crash" else "join",
        rate=RATE_FOR_ACTION["join"] if action in ("join", "leave") else RATE_ACTION,
    )
    if action == "process":
        return student_consumers.student_record_process(student=student, actor=actor).message
    if action == "commit":
        commits = student_consumers.student_offsets_commit(student=student, actor=actor)
        return f"Committed {', '.join(commits)}: the group resumes there after a rebalance."
    if action == "crash":
        student_consumers.student_consumer_crash(student=student, actor=actor)
        return (
            "Your consumer crashed: no commit, no goodbye. The group notices only when "
            "session.timeout.ms runs out."
        )
    if action == "leave":
        commits = student_consumers.student_consumer_leave(student=student, actor=actor)
        committed = f" close() committed {', '.join(commits)}, then" if commits else ""
        return f"You left the group:{committed} it rebalanced your partitions to the others."
    member = student_consumers.student_consumer_join(
        student=student, actor=actor, group_id=request.POST.get("group_id", "")
    )
    return f"You joined {member.group.group_id} as {member.member_id}."


@require_POST
@handles_errors
def student_consumer(request: HttpRequest, code: str) -> HttpResponse:
    """The student's own consumer: join a group, process, commit, crash or leave."""
    room = selectors.room_get(code=code)
    student = _student(request, room)
    if student is None:
        if _was_removed(request, room):
            return _removed(request, room)
        raise Invalid("Join the room with your name first.")
    action = request.POST.get("action") or "join"
    if action not in ACTIONS:
        raise Invalid(f"Unknown action {action!r}: use one of {', '.join(ACTIONS)}.")
    status, extra = 200, {}
    try:
        extra["notice"] = _act(request, room, student, action)
    except LogLabError as error:
        status, extra["error"] = error.status, error.message
    room.refresh_from_db()
    student.refresh_from_db()
    if request.htmx:
        return render(
            request,
            "messaging/classroom_me.html#me",
            _me_context(room, student, **extra),
            status=status,
        )
    if status != 200:
        context = _me_context(room, student, **extra)
        context["kafka"] = _kafka(request, room, student, context)
        return render(request, "messaging/classroom_me.html", context, status=status)
    return redirect("student_me", code=room.code)
