"""Each kind of goal, checked against a small room's stored state."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.lessons.goals import GoalStatus, goal_check, goals_check, lesson_complete
from messaging.lessons.spec import GOAL_ARGS, Goal, Step
from messaging.services.events import event_record
from messaging.services.lesson_steps import step_apply
from messaging.services.rooms import room_create

pytestmark = pytest.mark.django_db


def play(room, do, **args) -> None:
    step_apply(room=room, step=Step(do, args))


def check(room, kind, **args) -> GoalStatus:
    return goal_check(room, Goal(id=kind, text=kind, kind=kind, args=args))


@pytest.fixture
def room():
    room = room_create(title="goals", kind="lesson")
    play(room, "create_topic", name="orders", partitions=3)
    play(room, "create_group", group="billing", topics=["orders"], auto_offset_reset="earliest")
    play(room, "join", group="billing", count=2, rate=50)
    return room


def test_it_counts_live_and_idle_members_and_their_partitions(room):
    assert check(room, "group_members", group="billing", min=2, max=2).met
    idle = check(room, "group_idle_members", group="billing", min=1)
    assert (idle.met, idle.detail) == (False, "0 idle now, need at least 1")
    assert check(room, "assignment_sizes", group="billing", sizes=[1, 2]).met
    play(room, "join", group="billing", count=2)
    assert check(room, "group_idle_members", group="billing", min=1, max=1).met
    assert check(room, "assignment_sizes", group="billing", sizes=[1, 1, 1, 0]).met
    play(room, "crash", group="billing")
    assert check(room, "group_members", group="billing", max=3).met


def test_it_counts_groups_subscribed_with_a_live_consumer_before_any_record_is_processed(room):
    # Lesson 7's third goal: billing subscribes with two consumers and the clock has not run.
    status = check(room, "groups_reading", topic="orders", min=2)
    assert (status.met, status.detail) == (
        False,
        "1 group with a live consumer subscribed to orders now, need at least 2",
    )
    play(room, "create_group", group="audit", topics=["orders"], auto_offset_reset="earliest")
    assert not check(room, "groups_reading", topic="orders", min=2).met  # no consumer yet
    play(room, "join", group="audit", count=1)
    assert check(room, "groups_reading", topic="orders", min=2).met
    play(room, "crash", group="audit")
    assert not check(room, "groups_reading", topic="orders", min=2).met


def test_it_reads_the_group_state_generation_and_static_members(room):
    assert check(room, "group_state", group="billing", state="Stable").met
    # The two consumers were started together: one join window, one rebalance, generation 1.
    assert check(room, "group_generation", group="billing", min=1, max=1).met
    assert not check(room, "group_generation", group="billing", min=2).met
    assert not check(room, "member_static", group="billing", instance_id="b-1").met
    play(room, "join", group="billing", instance_id="b-1")
    assert check(room, "member_static", group="billing", instance_id="b-1").met


def test_it_reads_partitions_keys_records_and_distinct_keys(room):
    play(room, "produce", topic="orders", key="bob", count=2)
    assert check(room, "partition_count", topic="orders", min=3, max=3).met
    assert check(room, "key_partitions", topic="orders", key="bob", max=1).met
    play(room, "add_partitions", topic="orders", partitions=12)
    play(room, "produce", topic="orders", key="bob", count=1)
    # bob hashes elsewhere with 12 partitions: its records now sit in two partitions.
    spread = check(room, "key_partitions", topic="orders", key="bob", min=2)
    assert spread.met, spread.detail
    assert check(room, "records", topic="orders", key="bob", min=3, max=3).met
    assert check(room, "records", topic="orders", min=3).met
    assert not check(room, "distinct_keys", topic="orders").met


def test_it_sees_retention_move_the_log_start(room):
    play(room, "configure_topic", topic="orders", retention_ms=60_000, segment_records=1)
    play(room, "produce", topic="orders", key="bob", count=3)
    assert not check(room, "log_start", topic="orders", min=1).met
    play(room, "advance", ms=120_000)
    status = check(room, "log_start", topic="orders", min=1)
    assert status.met, status.detail


def test_it_reads_lag_commits_and_what_was_consumed(room):
    play(room, "produce", topic="orders", key="bob", count=4)
    play(room, "produce", topic="orders", key="amy", count=2)
    lag = check(room, "group_lag", group="billing", min=6)
    assert lag.met and lag.detail == "6 records of lag now, need at least 6"
    play(room, "advance", ms=8_000)
    assert check(room, "group_lag", group="billing", max=0).met
    assert check(room, "committed", group="billing", min=6, max=6).met
    assert check(room, "consumed", group="billing", min=6, max=6).met
    assert check(room, "consumed", group="billing", key="bob", min=4, max=4).met
    assert check(room, "duplicates", group="billing", max=0).met
    assert check(room, "skipped", group="billing", max=0).met
    assert check(room, "groups_reading", topic="orders", min=1).met
    assert not check(room, "groups_reading", topic="orders", min=2).met


def test_it_reads_sqs_queues():
    room = room_create(title="sqs", kind="lesson")
    from messaging.services.sqs import sqs_queue_create

    sqs_queue_create(
        room=room,
        name="jobs.fifo",
        attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    play(room, "sqs_send", queue="jobs.fifo", group_id="a", body="x", count=2)
    play(room, "sqs_send", queue="jobs.fifo", group_id="a", body="x #1")
    assert check(room, "sqs_deduplicated", queue="jobs.fifo", min=1).met
    play(room, "sqs_receive", queue="jobs.fifo")
    assert check(room, "sqs_in_flight", queue="jobs.fifo", group_id="a", min=1, max=1).met
    assert check(room, "sqs_blocked_groups", queue="jobs.fifo", min=1).met
    play(room, "sqs_delete", queue="jobs.fifo", group_id="a")
    assert check(room, "sqs_deleted", queue="jobs.fifo", min=1).met
    assert not check(room, "sqs_blocked_groups", queue="jobs.fifo", min=1).met


def test_it_wants_message_groups_in_flight_at_the_same_moment_not_in_turn():
    room = room_create(title="sqs", kind="lesson")
    from messaging.services.sqs import sqs_queue_create

    sqs_queue_create(
        room=room,
        name="jobs.fifo",
        attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    for i, group in enumerate("aab"):
        play(room, "sqs_send", queue="jobs.fifo", group_id=group, body=f"{group} #{i}")
    both = {"queue": "jobs.fifo", "groups": ["a", "b"]}
    play(room, "sqs_receive", queue="jobs.fifo", max=1)  # a's first
    assert check(room, "sqs_groups_in_flight", **both).detail == "in flight now: a yes, b no"
    play(room, "sqs_delete", queue="jobs.fifo", group_id="a")
    play(room, "sqs_receive", queue="jobs.fifo", max=1)  # a's second: a is free again
    assert not check(room, "sqs_groups_in_flight", **both).met
    play(room, "sqs_receive", queue="jobs.fifo", max=1)  # a is blocked: b's
    status = check(room, "sqs_groups_in_flight", **both)
    assert status.met and status.detail == "in flight now: a yes, b yes"


def test_it_reads_classic_queues(room):
    assert check(room, "classic_ready", queue="jobs", max=0).detail == (
        "the broker has no queues yet"
    )
    play(room, "classic_declare", queue="jobs")
    play(room, "classic_publish", exchange="", routing_key="jobs", body="x", count=3)
    assert check(room, "classic_ready", queue="jobs", min=3, max=3).met
    play(room, "classic_consume", queue="jobs", count=2)
    assert check(room, "classic_ready", queue="jobs", max=1).met
    delivered = check(room, "classic_delivered", queue="jobs", min=2)
    assert delivered.met and delivered.detail.startswith("2 consumed")


def test_it_counts_events_since_the_lesson_started(room):
    from django.db import transaction

    from messaging.services.events import room_lock

    with transaction.atomic():
        event_record(room=room_lock(room=room), type="lesson.started", payload={})
    assert not check(room, "event", type="group.changed", min=1).met
    play(room, "join", group="billing")
    assert check(room, "event", type="group.changed", min=1).met


def test_it_says_what_does_not_exist_yet(room):
    status = check(room, "group_members", group="ghosts", min=1)
    assert (status.met, status.detail) == (False, "group ghosts does not exist yet")
    assert check(room, "records", topic="nope", max=0).detail == "topic nope does not exist yet"
    assert not check(room, "sqs_deleted", queue="nope", min=0).met


def test_it_checks_every_goal_kind_in_a_handful_of_queries(room):
    examples = {
        "group_members": {"group": "billing", "min": 1},
        "group_idle_members": {"group": "billing", "min": 1},
        "assignment_sizes": {"group": "billing", "sizes": [1]},
        "group_state": {"group": "billing", "state": "Stable"},
        "group_generation": {"group": "billing", "min": 1},
        "member_static": {"group": "billing", "instance_id": "x"},
        "partition_count": {"topic": "orders", "min": 1},
        "key_partitions": {"topic": "orders", "key": "k", "min": 1},
        "records": {"topic": "orders", "min": 1},
        "log_start": {"topic": "orders", "min": 1},
        "distinct_keys": {"topic": "orders"},
        "group_lag": {"group": "billing", "max": 0},
        "committed": {"group": "billing", "min": 1},
        "consumed": {"group": "billing", "key": "k", "min": 1},
        "duplicates": {"group": "billing", "min": 1},
        "skipped": {"group": "billing", "min": 1},
        "groups_reading": {"topic": "orders", "min": 1},
        "sqs_in_flight": {"queue": "q", "min": 1},
        "sqs_groups_in_flight": {"queue": "q", "groups": ["a", "b"]},
        "sqs_blocked_groups": {"queue": "q", "min": 1},
        "sqs_deduplicated": {"queue": "q", "min": 1},
        "sqs_deleted": {"queue": "q", "min": 1},
        "classic_ready": {"queue": "q", "min": 1},
        "classic_delivered": {"queue": "q", "min": 1},
        "event": {"type": "step", "min": 1},
        "share_totals": {"group": "workers", "what": "accept", "min": 1},
        "share_partition_consumers": {"group": "workers", "min": 2},
        "lost_records": {"acknowledged": True, "acks": "1", "min": 1},
        "isr_size": {"topic": "orders", "partition": 0, "min": 3},
        "leader_epoch": {"topic": "orders", "partition": 0, "min": 1},
    }
    assert set(examples) == set(GOAL_ARGS)
    play(room, "produce", topic="orders", key="k", count=20)
    goals = tuple(Goal(id=k, text=k, kind=k, args=a) for k, a in examples.items())

    class Spec:  # goals_check reads only `goals`
        pass

    spec = Spec()
    spec.goals = goals
    with CaptureQueriesContext(connection) as queries:
        statuses = goals_check(room=room, spec=spec)
    assert len(statuses) == len(examples)
    # One or two queries per goal, whatever the number of records or members.
    assert len(queries) <= 2 * len(examples), len(queries)
    assert not lesson_complete(statuses)
    assert not lesson_complete([])
