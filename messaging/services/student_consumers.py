"""A student's consumer, driven by the buttons on their page instead of by the simulation.

A student member is an ordinary member of its group (the coordinator deals it partitions and
times it out like any other), except that `_consume_group` leaves it alone: it processes a record
when the student presses "process next record", and commits when they press "commit". Every
rule of delivery comes from the engine (`consumption.consume`, with a budget of one record),
so a student's consumer polls, commits and loses or repeats records exactly as the board's
simulated consumers do:

* at-most-once: the poll commits the end of the polled batch before the record is processed,
  so a crash loses the rest of the batch;
* at-least-once: the record is processed; the offset is committed when the student commits, or
  by auto-commit at a poll once `auto.commit.interval.ms` has passed, or by close() on leave;
  a crash replays what was processed since the last commit;
* exactly-once: the record and its offset commit together.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from messaging import events
from messaging.engine import consumption, fetching
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    Assignment,
    ConsumerGroup,
    Member,
    Record,
    Room,
    Student,
    StudentPage,
)
from messaging.permissions import Actor, room_permission_check
from messaging.selectors import group_committed, member_assignments
from messaging.services.classroom import student_consumer_join as join
from messaging.services.events import event_record, room_lock
from messaging.services.groups import member_crash, member_cursors, member_leave, offset_commit

# The ledger helpers of the simulation: a student's records go in the same ledger, with the
# same duplicate and loss detection, so the board's totals count both alike.
from messaging.services.simulation import (
    group_moves_store,
    ledger_highest_processed,
    member_moves_apply,
)

NOT_A_CONSUMER = "You are not a consumer in any group: join one first."
REBALANCING = "The group is rebalancing: wait for your new partitions."


@dataclass(frozen=True)
class Processed:
    """The record a student's consumer just processed, as their page shows it."""

    tp: str
    offset: int
    key: str | None
    value: str | None
    status: str  # ProcessedRecord.Status: first or duplicate


@dataclass(frozen=True)
class ProcessResult:
    processed: Processed | None
    message: str  # a sentence for the student's page


def _tp(assignment: Assignment) -> str:
    return f"{assignment.partition.topic.name}-{assignment.partition.index}"


def _own_member(*, student: Student) -> tuple[Room, Student, Member, ConsumerGroup]:
    """Lock the room and load the student's member fresh: the row may have changed since the
    page was drawn (a rebalance, a session timeout, the instructor)."""
    room = room_lock(room=student.room_id)
    student = Student.objects.select_related("member__group").get(pk=student.pk)
    if student.member is None:
        raise Invalid(NOT_A_CONSUMER)
    return room, student, student.member, student.member.group


@transaction.atomic
def student_record_process(*, student: Student, actor: Actor) -> ProcessResult:
    """The student's consumer processes its next record (one poll, a budget of one record)."""
    room, student, member, group = _own_member(student=student)
    room_permission_check(room=room, actor=actor, action="join", member=member)
    if member.crashed:
        raise Conflict(
            "Your consumer has crashed: it processes nothing more. The group removes it when "
            "session.timeout.ms runs out."
        )
    if group.consumers_paused():
        raise Conflict(REBALANCING)
    assignments = member_assignments(member=member)
    if not assignments:
        raise Invalid(
            "You have no partitions, so nothing to process: the group has more consumers than "
            "partitions, and you are idle until one leaves."
        )
    committed = group_committed(group=group)
    settings = group.consumer_settings()
    result = consumption.consume(
        member_cursors(assignments, committed),
        settings,
        budget=1,
        now_ms=room.sim_time_ms,
        last_auto_commit_ms=group.last_auto_commit_ms,
        # Its fetch buffer and session decide which partition's record comes next, as in Kafka.
        fetch_state=fetching.FetchState.from_dict(member.fetch_state),
    )
    if not (result.processed or result.starts or result.commits):
        if result.stuck:
            raise Conflict(f"Your consumer cannot read: {result.stuck[0].error}")
        raise Invalid(
            "Nothing to process: you have read every record in your partitions. "
            "Wait for new records to arrive."
        )

    highest = ledger_highest_processed(group, [a.partition_id for a in assignments])
    moves = member_moves_apply(
        room=room, group=group, member=member, owned=assignments, result=result, highest=highest
    )
    ledger_rows, starts = moves.ledger, moves.starts
    processed: Processed | None = None
    if result.processed:
        tp, offset = result.processed[-1]
        line = ledger_rows[-1]  # the processed record's line comes after any skipped ones
        record = Record.objects.filter(partition_id=line.partition_id, offset=offset).first()
        processed = Processed(
            tp=tp,
            offset=offset,
            status=line.status,
            key=record.key if record else None,
            value=record.value if record else None,
        )
    part = group_moves_store(
        room=room,
        group=group,
        assignments=assignments,
        moves=moves,
        auto_committed=result.auto_committed,
    )
    # One group's part of a "step" event, as the simulation's step records it; no clock: a
    # student's click does not move the room's time.
    event_record(
        room=room,
        type=events.STEP,
        payload={"student": member.member_id, "produced": [], "groups": [part]},
    )
    if processed is None:
        reading = ", ".join(f"{s['tp']} at offset {s['offset']}" for s in starts)
        message = (
            f"Your consumer starts reading {reading}. Nothing to process yet: wait for records."
            if starts
            else "Nothing to process yet: your offsets were committed."
        )
        return ProcessResult(processed=None, message=message)
    what = (
        "processed it AGAIN: the group had processed it before (a duplicate)"
        if processed.status == "duplicate"
        else "processed it"
    )
    return ProcessResult(
        processed=processed, message=f"{processed.tp} offset {processed.offset}: you {what}."
    )


def _uncommitted(member: Member, group: ConsumerGroup) -> list[Assignment]:
    """The member's partitions whose position is past the group's committed offset."""
    committed = group_committed(group=group)
    return [
        a
        for a in Assignment.objects.filter(member=member)
        .select_related("partition__topic")
        .order_by("partition__topic__name", "partition__index")
        if a.position is not None
        and (committed.get(a.partition_id) is None or a.position > committed[a.partition_id])
    ]


def _commit_positions(group: ConsumerGroup, assignments: list[Assignment]) -> list[str]:
    for a in assignments:
        offset_commit(
            group=group,
            topic_name=a.partition.topic.name,
            partition=a.partition.index,
            offset=a.position,
        )
    return [f"{_tp(a)} at {a.position}" for a in assignments]


@transaction.atomic
def student_offsets_commit(*, student: Student, actor: Actor) -> list[str]:
    """Commit what the student's consumer processed: for each of its partitions, the offset of
    the next record it will process (last processed + 1), as `commitSync(offsets)` does.

    Only forwards: an at-most-once consumer committed its polled batch already, ahead of its
    position, and committing the position would move the group back over records it meant to
    lose. Returns the commits as "topic-partition at offset".
    """
    room, student, member, group = _own_member(student=student)
    room_permission_check(room=room, actor=actor, action="join", member=member)
    if member.crashed:
        raise Conflict("Your consumer has crashed: a crashed process commits nothing.")
    if group.consumers_paused():
        # Kafka's CommitFailedException: the partitions may already belong to someone else.
        raise Conflict(REBALANCING)
    pending = _uncommitted(member, group)
    if not pending:
        reasons = {
            ConsumerGroup.Delivery.AT_MOST_ONCE: (
                " At-most-once commits when it polls, before processing."
            ),
            ConsumerGroup.Delivery.EXACTLY_ONCE: (
                " Exactly-once commits each record's offset with its processing."
            ),
        }
        raise Invalid(
            "Nothing to commit: the group's committed offsets are already at your position."
            + reasons.get(group.delivery, "")
        )
    return _commit_positions(group, pending)


@transaction.atomic
def student_consumer_crash(*, student: Student, actor: Actor) -> None:
    """The student's consumer dies without committing or leaving: only the session timeout
    tells the group."""
    room, student, member, _ = _own_member(student=student)
    room_permission_check(room=room, actor=actor, action="crash", member=member)
    if member.crashed:
        raise Conflict(
            "Your consumer has already crashed: the group removes it at its session timeout."
        )
    member_crash(member=member)


@transaction.atomic
def student_consumer_join(*, student: Student, actor: Actor, group_id: str) -> Member:

    room = room_lock(room=student.room_id)
    room_permission_check(room=room, actor=actor, action="join")
    member, _ = join(student=student, group_id=group_id)
    return member


@transaction.atomic
def student_consumer_leave(*, student: Student, actor: Actor) -> list[str]:
    """`consumer.close()`: with auto-commit (at-least-once) it commits what was processed, then
    sends LeaveGroup, and the group rebalances at once. Returns what close() committed."""
    room, student, member, group = _own_member(student=student)
    room_permission_check(room=room, actor=actor, action="join", member=member)
    if member.crashed:
        raise Conflict(
            "Your consumer has crashed: it is gone at its session timeout, it cannot leave cleanly."
        )
    committed: list[str] = []
    if group.delivery == ConsumerGroup.Delivery.AT_LEAST_ONCE and not group.consumers_paused():
        committed = _commit_positions(group, _uncommitted(member, group))
    member_leave(member=member)
    return committed


# --- presence: which students have their page open ------------------------------------------
#
# One StudentPage row per open page (a websocket), whatever process serves it. A student's
# member is `online` (it heartbeats) while the student has a fresh row: closing one of two tabs,
# or one process of two going away, changes nothing while another page is open.


def _presence_sync(*, room_pk: int, student_pk: int) -> bool:
    """Set the student's member `online` to whether they have a fresh page; if that flips it,
    record `member.presence` so every board redraws the member card (with its countdown to
    the session timeout once the last page is closed). Returns whether it flipped."""
    if not Member.objects.filter(student__pk=student_pk).exists():
        return False  # not a consumer: nothing heartbeats, nothing to redraw
    # Under the room lock: two processes opening and closing the same student's pages at once
    # see each other's rows, and the last to decide sees them all.
    room = room_lock(room=room_pk)
    member = Member.objects.select_related("group").filter(student__pk=student_pk).first()
    if member is None:
        return False
    online = StudentPage.objects.filter(
        student_id=student_pk, seen_at__gte=Student.seen_since()
    ).exists()
    if member.online == online:
        return False
    Member.objects.filter(pk=member.pk).update(online=online)
    event_record(
        room=room,
        type=events.MEMBER_PRESENCE,
        payload={
            "group": member.group.group_id,
            "member": member.member_id,
            "online": online,
            "session_expires_at_ms": member.session_expires_at(member.group.session_timeout_ms),
        },
    )
    return True


@transaction.atomic
def student_page_open(*, room_pk: int, session_key: str, page_id: str, owner: str) -> bool:
    """A page connected to the room (its websocket `page_id`, held by process `owner`): if it
    is a student's, they are online. Returns whether it is a student's page (one to keep
    refreshing and to close)."""
    if not session_key:
        return False
    student = Student.objects.filter(
        room_id=room_pk, session_key=session_key, removed_at__isnull=True
    ).first()
    if student is None:
        return False  # the board of someone who is not a student here
    now = timezone.now()
    StudentPage.objects.update_or_create(
        page_id=page_id, defaults={"student": student, "owner": owner, "seen_at": now}
    )
    # Seen now: group_tick counts a student's member only while their page was seen recently.
    Student.objects.filter(pk=student.pk).update(last_seen_at=now)
    _presence_sync(room_pk=room_pk, student_pk=student.pk)
    return True


@transaction.atomic
def student_page_close(*, page_id: str) -> bool:
    """The page's websocket closed, whoever closed it (the browser, the server, the network):
    with no other page open, the student is offline and their session timeout starts.
    Returns whether that flipped their member offline."""
    page = StudentPage.objects.select_related("student").filter(page_id=page_id).first()
    if page is None:
        return False
    page.delete()
    try:
        return _presence_sync(room_pk=page.student.room_id, student_pk=page.student_id)
    except NotFound:
        return False  # the room is gone, and the student with it


def student_pages_refresh(*, page_ids: list[str], owner: str) -> set[str]:
    """The pages a process holds are still open: a few writes for all of them, whatever the
    number of students. Returns the ids that have no row any more (another process swept
    them while this one stalled): the caller opens those again."""
    if not page_ids:
        return set()
    now = timezone.now()
    with transaction.atomic():
        StudentPage.objects.filter(page_id__in=page_ids).update(seen_at=now, owner=owner)
        present = set(
            StudentPage.objects.filter(page_id__in=page_ids).values_list("page_id", flat=True)
        )
        Student.objects.filter(pages__page_id__in=present).update(last_seen_at=now)
    return set(page_ids) - present


def student_pages_sweep() -> int:
    """Pages whose process died without closing them: their rows went stale. Delete them, and
    set offline the members of students no fresh page was seen for (with their event), so
    boards and rosters stop calling them online. Returns how many members went offline."""
    since = Student.seen_since()
    with transaction.atomic():
        StudentPage.objects.filter(seen_at__lt=since).delete()
    flipped = 0
    stale = Member.objects.filter(
        kind=Member.Kind.STUDENT, online=True, student__last_seen_at__lt=since
    ).values_list("student__pk", "student__room_id")
    for student_pk, room_pk in list(stale):
        try:
            with transaction.atomic():
                flipped += _presence_sync(room_pk=room_pk, student_pk=student_pk)
        except NotFound:
            continue
    return flipped
