"""A student's consumer is driven by their buttons: process, commit, crash, leave, each with the
delivery semantics of its group, exactly as the simulation's consumers apply them."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore

from messaging.errors import Conflict, Invalid
from messaging.models import (
    CommittedOffset,
    ConsumerGroup,
    Member,
    ProcessedRecord,
    Room,
    RoomEvent,
    Student,
)
from messaging.permissions import Actor, Forbidden, actor_for
from messaging.services.classroom import student_consumer_join, student_join
from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import room_step
from messaging.services.student_consumers import (
    student_consumer_crash,
    student_consumer_leave,
    student_offsets_commit,
    student_record_process,
)
from messaging.services.topics import topic_create


def classroom(delivery: str = "at-least-once", partitions: int = 2, **group) -> Room:
    room = room_create(title="Class", kind=Room.Kind.CLASSROOM)
    topic_create(room=room, name="orders", partitions=partitions)
    group_create(
        room=room,
        group_id="billing",
        topics=["orders"],
        delivery=delivery,
        auto_offset_reset="earliest",
        **group,
    )
    return room


def produce(room: Room, partition: int, count: int) -> None:
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key=f"k{i}", value=f"v{i}", partition=partition) for i in range(count)],
    )


def student_in(room: Room, name: str, group_id: str = "billing") -> tuple[Student, Actor]:
    session = SessionStore()
    session.create()
    student, _ = student_join(room=room, display_name=name, session_key=session.session_key)
    student_consumer_join(student=student, group_id=group_id)
    student.refresh_from_db()
    return student, actor_for(room=room, session_key=session.session_key)


def committed(room: Room) -> dict[int, int]:
    return {
        c.partition.index: c.offset
        for c in CommittedOffset.objects.filter(group__room=room).select_related("partition")
    }


def ledger(room: Room) -> list[tuple[int, int, str]]:
    return [
        (r.partition.index, r.offset, r.status)
        for r in ProcessedRecord.objects.filter(group__room=room)
        .select_related("partition")
        .order_by("id")
    ]


@pytest.mark.django_db
def test_it_processes_one_record_at_a_time_in_poll_order_and_commits_only_when_asked():
    room = classroom()
    produce(room, 0, 2)
    produce(room, 1, 2)
    ada, actor = student_in(room, "Ada")

    outcomes = [student_record_process(student=ada, actor=actor) for _ in range(4)]

    # One fetch buffered both partitions; the poll returns them partition after partition.
    assert [(o.processed.tp, o.processed.offset) for o in outcomes] == [
        ("orders-0", 0),
        ("orders-0", 1),
        ("orders-1", 0),
        ("orders-1", 1),
    ]
    assert outcomes[0].processed.key == "k0" and outcomes[0].processed.value == "v0"
    assert ledger(room) == [(0, 0, "first"), (0, 1, "first"), (1, 0, "first"), (1, 1, "first")]
    assert committed(room) == {}  # at-least-once: processed, not yet committed
    event = RoomEvent.objects.filter(room=room, type="step").latest("seq")
    [summary] = event.payload["groups"]
    assert summary["group"] == "billing" and summary["positions"] == {"orders-0": 2, "orders-1": 2}
    assert summary["totals"]["processed"] == 4
    assert "clock" not in event.payload  # a click does not move the room's time

    assert student_offsets_commit(student=ada, actor=actor) == ["orders-0 at 2", "orders-1 at 2"]
    assert committed(room) == {0: 2, 1: 2}
    with pytest.raises(Invalid, match="Nothing to commit"):
        student_offsets_commit(student=ada, actor=actor)
    with pytest.raises(Invalid, match="Nothing to process"):
        student_record_process(student=ada, actor=actor)


@pytest.mark.django_db
def test_at_most_once_commits_the_polled_batch_before_processing_and_a_crash_loses_it():
    room = classroom(delivery="at-most-once", partitions=1, session_timeout_ms=6_000)
    produce(room, 0, 8)
    ada, actor = student_in(room, "Ada")

    student_record_process(student=ada, actor=actor)
    assert committed(room) == {0: 5}  # the batch of 5 was committed before record 0 was processed
    with pytest.raises(Invalid, match="At-most-once commits when it polls"):
        student_offsets_commit(student=ada, actor=actor)

    student_consumer_crash(student=ada, actor=actor)
    with pytest.raises(Conflict, match="crashed"):
        student_record_process(student=ada, actor=actor)
    bob, bob_actor = student_in(room, "Bob")  # joins while Ada's member is still in the group
    for _ in range(4):
        room_step(room=room, step_ms=3_000)  # Ada's session times out; the group rebalances
    assert not Member.objects.filter(display_name="Ada").exists()
    outcome = student_record_process(student=bob, actor=bob_actor)
    assert (outcome.processed.tp, outcome.processed.offset) == ("orders-0", 5)
    # Records 1 to 4 were committed but never processed: lost to the group.
    assert [line for line in ledger(room) if line[2] == "skipped"] == [
        (0, 1, "skipped"),
        (0, 2, "skipped"),
        (0, 3, "skipped"),
        (0, 4, "skipped"),
    ]


@pytest.mark.django_db
def test_at_least_once_processes_again_what_a_crashed_student_did_not_commit():
    room = classroom(partitions=1, session_timeout_ms=6_000)
    produce(room, 0, 3)
    ada, actor = student_in(room, "Ada")
    student_record_process(student=ada, actor=actor)
    student_offsets_commit(student=ada, actor=actor)
    student_record_process(student=ada, actor=actor)  # offset 1: processed, not committed
    student_consumer_crash(student=ada, actor=actor)
    bob, bob_actor = student_in(room, "Bob")
    for _ in range(4):
        room_step(room=room, step_ms=3_000)
    outcome = student_record_process(student=bob, actor=bob_actor)
    assert (outcome.processed.offset, outcome.processed.status) == (1, "duplicate")
    assert "AGAIN" in outcome.message
    assert ConsumerGroup.objects.get(room=room).duplicates_total == 1


@pytest.mark.django_db
def test_exactly_once_commits_each_record_with_its_processing():
    room = classroom(delivery="exactly-once", partitions=1)
    produce(room, 0, 3)
    ada, actor = student_in(room, "Ada")
    student_record_process(student=ada, actor=actor)
    student_record_process(student=ada, actor=actor)
    assert committed(room) == {0: 2}
    with pytest.raises(Invalid, match="Exactly-once commits each record"):
        student_offsets_commit(student=ada, actor=actor)


@pytest.mark.django_db
def test_leaving_commits_what_was_processed_then_the_group_rebalances():
    room = classroom(partitions=2)
    produce(room, 0, 2)
    ada, actor = student_in(room, "Ada")
    student_record_process(student=ada, actor=actor)
    member_pk = ada.member_id
    # Both partitions have a position once polled (orders-1 from earliest, 0): close() commits
    # every position, as the Java client's auto-commit on close does.
    assert student_consumer_leave(student=ada, actor=actor) == ["orders-0 at 1", "orders-1 at 0"]
    assert committed(room) == {0: 1, 1: 0}
    assert not Member.objects.filter(pk=member_pk).exists()
    assert Student.objects.get(pk=ada.pk).member is None


@pytest.mark.django_db
def test_it_says_why_there_is_nothing_to_do():
    room = classroom(partitions=1)
    ada, actor = student_in(room, "Ada")
    bob, bob_actor = student_in(room, "Bob")  # one partition, two consumers: someone is idle
    idle = ada if not ada.member.assignments.exists() else bob
    idle_actor = actor if idle is ada else bob_actor
    with pytest.raises(Invalid, match="You have no partitions"):
        student_record_process(student=idle, actor=idle_actor)

    ConsumerGroup.objects.filter(room=room).update(state=ConsumerGroup.State.PREPARING_REBALANCE)
    with pytest.raises(Conflict, match="The group is rebalancing: wait for your new partitions"):
        student_record_process(student=ada, actor=actor)
    with pytest.raises(Conflict, match="rebalancing"):
        student_offsets_commit(student=ada, actor=actor)

    session = SessionStore()
    session.create()
    newcomer, _ = student_join(room=room, display_name="Cy", session_key=session.session_key)
    with pytest.raises(Invalid, match="You are not a consumer in any group"):
        student_record_process(
            student=newcomer, actor=actor_for(room=room, session_key=session.session_key)
        )


@pytest.mark.django_db
def test_each_action_checks_the_instructors_locks_and_ownership():
    room = classroom(partitions=2)
    produce(room, 0, 2)
    produce(room, 1, 2)
    ada, ada_actor = student_in(room, "Ada")
    bob, bob_actor = student_in(room, "Bob")
    visitor = Actor(kind="visitor")

    with pytest.raises(Forbidden, match="your own consumer"):
        student_record_process(student=ada, actor=bob_actor)
    with pytest.raises(Forbidden, match="your own consumer"):
        student_consumer_crash(student=ada, actor=bob_actor)
    with pytest.raises(Forbidden, match="join it with your name"):
        student_offsets_commit(student=ada, actor=visitor)

    Room.objects.filter(pk=room.pk).update(
        student_permissions={"join": False, "crash": False, "produce": True}
    )
    for action in (student_record_process, student_offsets_commit, student_consumer_leave):
        with pytest.raises(Forbidden, match="locked"):
            action(student=ada, actor=ada_actor)
    with pytest.raises(Forbidden, match="cannot crash their consumer"):
        student_consumer_crash(student=ada, actor=ada_actor)
    # The instructor may act on any student's consumer whatever the locks.
    student_record_process(student=bob, actor=Actor(kind="owner"))
    assert not Member.objects.filter(crashed=True).exists()
    assert ProcessedRecord.objects.count() == 1


@pytest.mark.django_db
def test_the_simulation_leaves_students_alone_but_keeps_them_heartbeating():
    room = classroom(partitions=2, session_timeout_ms=6_000)
    ada, _ = student_in(room, "Ada")
    robot, _ = member_join(group=ConsumerGroup.objects.get(room=room), client_id="robot")
    Member.objects.filter(pk=ada.member_id).update(online=True)
    produce(room, 0, 3)
    produce(room, 1, 3)
    for _ in range(5):
        room_step(room=room, step_ms=3_000)
    processed_by = {r.member_id for r in ProcessedRecord.objects.filter(group__room=room)}
    assert processed_by == {robot.member_id}
    assert Member.objects.filter(pk=ada.member_id).exists()  # her open page kept her in


@pytest.mark.django_db
def test_a_page_closing_or_reopening_is_an_event_the_boards_redraw_from():
    from messaging.services.student_consumers import student_page_close, student_page_open

    room = classroom(partitions=1)
    ada, _ = student_in(room, "Ada")
    open_page = {"room_pk": room.pk, "session_key": ada.session_key, "owner": "p1"}
    assert student_page_open(page_id="tab-1", **open_page)
    assert student_page_close(page_id="tab-1")
    event = RoomEvent.objects.filter(room=room).latest("seq")
    assert (event.type, event.payload["online"], event.payload["member"]) == (
        "member.presence",
        False,
        Member.objects.get(pk=ada.member_id).member_id,
    )
    assert event.payload["session_expires_at_ms"] == 45_000
    # No flip, no event: a page closing twice, or one that was never open, changes nothing.
    assert not student_page_close(page_id="tab-1")
    assert RoomEvent.objects.filter(room=room).latest("seq").seq == event.seq
    assert student_page_open(page_id="tab-2", **open_page)
    reopened = RoomEvent.objects.filter(room=room).latest("seq")
    assert (reopened.type, reopened.payload["online"]) == ("member.presence", True)


@pytest.mark.django_db
def test_closing_one_of_two_tabs_keeps_the_student_online_whichever_process_holds_them():
    from messaging.services.student_consumers import student_page_close, student_page_open

    room = classroom(partitions=1)
    ada, _ = student_in(room, "Ada")
    for page_id, owner in (("tab-on-a", "process-a"), ("tab-on-b", "process-b")):
        student_page_open(
            room_pk=room.pk, session_key=ada.session_key, page_id=page_id, owner=owner
        )
    seq = room_seq(room)
    assert not student_page_close(page_id="tab-on-a")
    assert Member.objects.get(pk=ada.member_id).online
    assert room_seq(room) == seq  # nothing to redraw
    assert student_page_close(page_id="tab-on-b")
    assert not Member.objects.get(pk=ada.member_id).online


@pytest.mark.django_db
def test_the_pages_of_a_process_that_died_go_offline_once_their_rows_are_stale():
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import StudentPage
    from messaging.services.student_consumers import (
        student_page_open,
        student_pages_refresh,
        student_pages_sweep,
    )

    room = classroom(partitions=1)
    ada, _ = student_in(room, "Ada")
    bob, _ = student_in(room, "Bob")
    student_page_open(room_pk=room.pk, session_key=ada.session_key, page_id="dead", owner="died")
    student_page_open(room_pk=room.pk, session_key=bob.session_key, page_id="alive", owner="lives")
    # The process that held Ada's page died 40 s ago: nobody refreshed her row since.
    long_ago = timezone.now() - timedelta(seconds=40)
    StudentPage.objects.filter(page_id="dead").update(seen_at=long_ago)
    Student.objects.filter(pk=ada.pk).update(last_seen_at=long_ago)
    assert student_pages_refresh(page_ids=["alive", "swept"], owner="lives") == {"swept"}
    assert student_pages_sweep() == 1
    assert not StudentPage.objects.filter(page_id="dead").exists()
    assert not Member.objects.get(pk=ada.member_id).online
    assert Member.objects.get(pk=bob.member_id).online
    event = RoomEvent.objects.filter(room=room).latest("seq")
    assert (event.type, event.payload["online"]) == ("member.presence", False)


def room_seq(room: Room) -> int:
    room.refresh_from_db()
    return room.last_seq
