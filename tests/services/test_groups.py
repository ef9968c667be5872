"""Groups stored in the database behave as the engine's coordinator says, step for step."""

from __future__ import annotations

import pytest

from messaging.errors import Invalid, NotFound
from messaging.models import Assignment, ConsumerGroup, Member, RoomEvent
from messaging.selectors import group_state_load
from messaging.services.clock import room_clock_set, room_clock_step
from messaging.services.groups import (
    group_create,
    member_crash,
    member_join,
    member_leave,
    members_join,
)
from messaging.services.rooms import room_create
from messaging.services.topics import topic_add_partitions, topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = room_create(title="groups")
    topic_create(room=room, name="orders", partitions=3)
    return room


def owned(group: ConsumerGroup) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {m.member_id: [] for m in group.members.all()}
    for a in Assignment.objects.filter(group=group).select_related("member", "partition"):
        result[a.member.member_id].append(a.partition.index)
    return {k: sorted(v) for k, v in result.items()}


def test_it_deals_partitions_with_the_range_assignor_as_members_join(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="c")
    member_join(group=group, client_id="c")
    group.refresh_from_db()
    assert owned(group) == {"c-1": [0, 1], "c-2": [2]}
    assert (group.state, group.generation) == ("Stable", 2)


def test_it_deals_consumers_started_together_in_one_rebalance(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    members, result = members_join(group=group, client_id="c", count=3)
    group.refresh_from_db()
    assert [m.member_id for m in members] == ["c-1", "c-2", "c-3"]
    assert owned(group) == {"c-1": [0], "c-2": [1], "c-3": [2]}
    # group.initial.rebalance.delay.ms holds the empty group's join window open: generation 1.
    assert (group.state, group.generation) == ("Stable", 1)
    assert RoomEvent.objects.filter(room=room, type="group.changed").count() == 1
    with pytest.raises(Invalid, match="at most"):
        members_join(group=group, client_id="c", count=10_000)


def test_it_leaves_the_fourth_consumer_of_three_partitions_idle(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    for _ in range(4):
        member, result = member_join(group=group, client_id="c")
    assert owned(group)["c-4"] == []
    assert "c-4" in result.plan.idle
    assert sorted(len(v) for v in owned(group).values()) == [0, 1, 1, 1]


def test_it_records_each_rebalance_plan_for_the_board(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="c")
    event = RoomEvent.objects.filter(room=room, type="group.changed").last()
    plan = event.payload["plan"]
    assert plan["protocol"] == "eager"
    assert [s["state"] for s in plan["steps"]][-1] == "Stable"
    assert event.payload["generation"] == 1
    # What every phone receives: the steps the board animates, not the engine's bookkeeping
    # (the last step's owned is the final assignment).
    assert "final_assignment" not in plan and "idle" not in plan
    assert plan["steps"][-1]["owned"] == {
        m.member_id: [["orders", 0], ["orders", 1], ["orders", 2]] for m in group.members.all()
    }


def test_it_moves_only_what_must_move_in_a_cooperative_rebalance(room):
    group = group_create(
        room=room,
        group_id="analytics",
        topics=["orders"],
        assignor="cooperative-sticky",
        protocol="cooperative",
    )
    member_join(group=group, client_id="c")
    member_join(group=group, client_id="c")
    before = owned(group)
    generation = ConsumerGroup.objects.get(pk=group.pk).generation
    _, result = member_join(group=group, client_id="c")
    after = owned(group)
    assert result.plan.rounds == 2
    moved = [p for m in before for p in before[m] if p not in after.get(m, [])]
    assert len(moved) == 1 and after["c-3"] == moved
    # two rounds: two generations
    assert ConsumerGroup.objects.get(pk=group.pk).generation == generation + 2


def test_it_refuses_a_cooperative_protocol_with_an_eager_assignor(room):
    with pytest.raises(Invalid, match="cooperative"):
        group_create(
            room=room, group_id="g", topics=["orders"], assignor="range", protocol="cooperative"
        )
    assert not ConsumerGroup.objects.exists()


def test_it_rebalances_when_a_member_leaves(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    first, _ = member_join(group=group, client_id="c")
    member_join(group=group, client_id="c")
    member_leave(member=first)
    assert owned(group) == {"c-2": [0, 1, 2]}
    with pytest.raises(NotFound):
        member_leave(member=first)


def test_it_removes_a_crashed_member_only_after_the_session_timeout(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    doomed, _ = member_join(group=group, client_id="c")
    member_join(group=group, client_id="c")
    member_crash(member=doomed)
    room_clock_step(room=room, step_ms=44_900)
    assert Member.objects.filter(member_id="c-1").exists()
    room_clock_step(room=room, step_ms=100)
    assert not Member.objects.filter(member_id="c-1").exists()
    assert owned(group) == {"c-2": [0, 1, 2]}
    event = RoomEvent.objects.filter(room=room, type="group.changed").last()
    assert event.payload["removed"] == ["c-1"]


def test_it_keeps_a_static_members_partitions_across_a_quick_restart(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    pod_a, _ = member_join(group=group, client_id="a", group_instance_id="pod-a")
    member_join(group=group, client_id="b", group_instance_id="pod-b")
    kept = owned(group)[pod_a.member_id]
    generation = ConsumerGroup.objects.get(pk=group.pk).generation
    member_leave(member=pod_a)  # close() of a static member: no LeaveGroup
    back, result = member_join(group=group, client_id="a", group_instance_id="pod-a")
    assert result.plan is None
    assert owned(group)[back.member_id] == kept
    assert ConsumerGroup.objects.get(pk=group.pk).generation == generation


def test_it_rebalances_when_partitions_are_added_and_never_removes_them(room):
    topic = room.topics.get(name="orders")
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="c")
    member_join(group=group, client_id="c")
    topic_add_partitions(topic=topic, partitions=4)
    assert owned(group) == {"c-1": [0, 1], "c-2": [2, 3]}
    with pytest.raises(Invalid, match="only add"):
        topic_add_partitions(topic=topic, partitions=2)
    assert room.topics.get(name="orders").partition_count == 4


def test_it_round_trips_the_engine_state_through_the_rows(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="c", group_instance_id="pod-1")
    member_join(group=group, client_id="c")
    state = group_state_load(ConsumerGroup.objects.get(pk=group.pk))
    assert state.generation == 2
    assert [m.member_id for m in state.members] == ["c-1", "c-2"]
    assert state.member("c-1").group_instance_id == "pod-1"
    assert state.leader_id == "c-1"


def test_it_refuses_a_clock_speed_outside_the_range(room):
    with pytest.raises(Invalid):
        room_clock_set(room=room, speed=50)
    room = room_clock_set(room=room, speed=2, running=True)
    assert (room.clock_speed, room.clock_running) == (2, True)
