"""A student's own page in a classroom: their consumer, its partitions and the records waiting
in them, and the buttons that drive it (process the next record, commit, crash, leave).

The page is tied to the browser session that joined. While it is open, its websocket keeps the
student's member heartbeating; the student, not the simulation, processes and commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine import offsets as offset_rules
from messaging.errors import Invalid, LogLabError
from messaging.models import (
    Assignment,
    ConsumerGroup,
    Member,
    ProcessedRecord,
    Record,
    Room,
    Student,
    Topic,
)
from messaging.permissions import (
    RATE_ACTION,
    RATE_FOR_ACTION,
    STUDENT_ACTIONS,
    request_act,
    student_permissions,
)
from messaging.services import classroom as classroom_services
from messaging.services import student_consumers
from messaging.views import handles_errors

# Records of each partition the page lists ahead of the consumer's position.
WAITING_SHOWN = 5
RECENT_SHOWN = 8
GROUP_SHOWN = 12


@dataclass(frozen=True)
class WaitingRecord:
    record: Record
    fetched: bool  # in the batch the last poll returned
    committed_ahead: bool  # committed already, not yet processed (at-most-once)


@dataclass(frozen=True)
class PartitionPanel:
    tp: str
    log_start_offset: int
    log_end_offset: int
    committed: int | None
    position: int | None  # the next offset the consumer processes (where it will start)
    start_reason: str  # why it starts there, when it has not read this partition yet
    error: str  # auto.offset.reset=none and nothing to start from
    lag: int | None
    waiting: list[WaitingRecord]
    waiting_total: int
    uncommitted: int  # processed, not committed: processed again after a crash
    committed_unprocessed: int  # committed, not processed: lost after a crash

    @property
    def more_waiting(self) -> int:
        return max(0, self.waiting_total - len(self.waiting))


def _waiting(starts: dict[int, int]) -> dict[int, list[Record]]:
    """The next WAITING_SHOWN records of each partition from its start offset
    ({partition id: offset}), in one query however many partitions a consumer owns."""
    if not starts:
        return {}
    wanted = Q()
    for partition_id, offset in starts.items():
        wanted |= Q(partition_id=partition_id, offset__gte=offset)
    rows = (
        Record.objects.filter(wanted)
        .annotate(
            nth=Window(RowNumber(), partition_by=[F("partition_id")], order_by=F("offset").asc())
        )
        .filter(nth__lte=WAITING_SHOWN)
        .order_by("partition_id", "offset")
    )
    found: dict[int, list[Record]] = {}
    for record in rows:
        found.setdefault(record.partition_id, []).append(record)
    return found


def _partitions(member: Member, group: ConsumerGroup) -> list[PartitionPanel]:
    assignments = selectors.member_assignments(member=member)
    committed = selectors.group_committed(
        group=group, partition_ids=[a.partition_id for a in assignments]
    )
    starts: list[tuple[int | None, str, str]] = []
    for a in assignments:
        p = a.partition
        position, reason, error = a.position, "", ""
        if position is None or not p.log_start_offset <= position <= p.log_end_offset:
            # Not read yet: where its first poll will start (the engine's rule, not a guess).
            try:
                start = offset_rules.starting_position(
                    committed.get(p.pk) if position is None else position,
                    p.log_start_offset, p.log_end_offset,
                    group.auto_offset_reset,  # type: ignore[arg-type]
                    partition=f"{p.topic.name}-{p.index}",
                )
                position, reason = start.offset, start.reason
            except offset_rules.OffsetError as failure:
                position, error = None, str(failure)
        starts.append((position, reason, error))
    waiting_by_partition = _waiting(
        {a.partition_id: position for a, (position, _, _) in zip(assignments, starts, strict=True)
         if position is not None}
    )
    panels = []
    for a, (position, reason, error) in zip(assignments, starts, strict=True):
        p = a.partition
        tp = f"{p.topic.name}-{p.index}"
        done = committed.get(p.pk)
        waiting = waiting_by_partition.get(p.pk, [])
        fetched_until = a.polled_until if a.position is not None else None
        # Where a replacement would start after a crash: the engine's rule for a fresh
        # consumer (the committed offset if retention kept it, else auto.offset.reset).
        try:
            restart: int | None = offset_rules.starting_position(
                done, p.log_start_offset, p.log_end_offset,
                group.auto_offset_reset,  # type: ignore[arg-type]
            ).offset
        except offset_rules.OffsetError:
            restart = None
        panels.append(
            PartitionPanel(
                tp=tp,
                log_start_offset=p.log_start_offset,
                log_end_offset=p.log_end_offset,
                committed=done,
                position=position,
                start_reason=reason,
                error=error,
                lag=offset_rules.lag(p.log_end_offset, done),
                waiting=[
                    WaitingRecord(
                        record=r,
                        fetched=fetched_until is not None and r.offset < fetched_until,
                        committed_ahead=done is not None and r.offset < done,
                    )
                    for r in waiting
                ],
                waiting_total=offset_rules.lag(p.log_end_offset, position) or 0,
                uncommitted=max(0, a.position - restart)
                if restart is not None and a.position is not None else 0,
                committed_unprocessed=max(0, done - a.position)
                if done is not None and a.position is not None else 0,
            )
        )
    return panels


@dataclass(frozen=True)
class Teammate:
    member: Member
    assigned: list[str]


def _teammates(group: ConsumerGroup) -> tuple[list[Teammate], int]:
    """The group's members and their partitions, the first GROUP_SHOWN of them: a phone shows
    how the partitions are dealt out without listing two hundred classmates."""
    members = list(group.members.order_by("join_order")[:GROUP_SHOWN])
    owned: dict[int, list[str]] = {m.pk: [] for m in members}
    for a in (
        Assignment.objects.filter(group=group, member__in=members)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
    ):
        owned[a.member_id].append(f"{a.partition.topic.name}-{a.partition.index}")
    return [Teammate(m, owned[m.pk]) for m in members], group.members.count()


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
        "locked": [words for action, words in STUDENT_ACTIONS.items()
                   if action in ("join", "crash", "produce") and not allowed[action]],
        "groups": ConsumerGroup.objects.filter(room=room).order_by("group_id"),
        "topics": Topic.objects.filter(room=room).order_by("name"),
        "group_topic_ids": set(group.topics.values_list("pk", flat=True)) if group else set(),
        "speed": room.clock_speed,
        **extra,
    }
    if member is not None and group is not None:
        partitions = _partitions(member, group)
        context.update(
            partitions=partitions,
            assigned=[p.tp for p in partitions],
            # As the board's group total: a partition with nothing committed counts its whole
            # retained log, so a group that never committed never looks caught up.
            total_lag=sum(
                offset_rules.lag_or_backlog(p.log_start_offset, p.log_end_offset, p.committed)
                for p in partitions
            ),
            recent=list(
                ProcessedRecord.objects.filter(group=group, member_id=member.member_id)
                .select_related("partition__topic")
                .order_by("-id")[:RECENT_SHOWN]
            ),
            session_deadline_ms=member.session_expires_at(group.session_timeout_ms),
            session_wall_s=group.session_timeout_ms / 1000 / max(room.clock_speed, 0.01),
            rebalancing=group.state != ConsumerGroup.State.STABLE,
        )
        context["teammates"], context["group_size"] = _teammates(group)
    return context


def _student(request: HttpRequest, room: Room) -> Student | None:
    return classroom_services.student_for_session(
        room=room, session_key=request.session.session_key
    )


def _was_removed(request: HttpRequest, room: Room) -> bool:
    return classroom_services.student_removed(room=room, session_key=request.session.session_key)


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
    template = "messaging/classroom_me.html"
    if request.htmx:
        template += "#me"
    return render(request, template, _me_context(room, student))


ACTIONS = ("join", "leave", "process", "commit", "crash")


def _act(request: HttpRequest, room: Room, student: Student, action: str) -> str:
    """Do what the student pressed; returns the sentence their page shows."""
    # Who asks, whether the lock is open, and the student's rate allowance: checked here first
    # so a refusal costs no lock; the services check the permission again under the room lock.
    actor = request_act(
        request, room, "crash" if action == "crash" else "join",
        rate=RATE_FOR_ACTION["join"] if action in ("join", "leave") else RATE_ACTION,
    )
    if action == "process":
        return student_consumers.student_record_process(student=student, actor=actor).message
    if action == "commit":
        commits = student_consumers.student_offsets_commit(student=student, actor=actor)
        return f"Committed {', '.join(commits)}: the group resumes there after a rebalance."
    if action == "crash":
        student_consumers.student_consumer_crash(student=student, actor=actor)
        return ("Your consumer crashed: no commit, no goodbye. The group notices only when "
                "session.timeout.ms runs out.")
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
            request, "messaging/classroom_me.html#me", _me_context(room, student, **extra),
            status=status,
        )
    if status != 200:
        return render(
            request, "messaging/classroom_me.html", _me_context(room, student, **extra),
            status=status,
        )
    return redirect("student_me", code=room.code)
