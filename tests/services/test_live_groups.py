"""Groups with a real Kafka client in them (services/live_groups.py): Kafka's join and sync
phases in real time, mirrored in the rows the board reads, mixed with simulated members."""

from __future__ import annotations

import pytest

from messaging.engine import consumer_protocol, joining
from messaging.models import Assignment, ConsumerGroup, Member, Room
from messaging.services import live_groups
from messaging.services.clock import room_clock_step
from messaging.services.groups import group_create, member_join, member_leave
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


def subscription(*topics: str) -> bytes:
    return consumer_protocol.encode_subscription(consumer_protocol.Subscription(topics=topics))


def wire_join(room: Room, group_id: str, member_id: str = "", name: str = "app") -> joining.Outcome:
    return live_groups.client_group_join(
        room=room,
        group_id=group_id,
        request=joining.JoinRequest(
            member_id=member_id,
            new_member_id=f"{name}-1",
            group_instance_id=None,
            client_id=name,
            protocol_type="consumer",
            protocols=(("range", subscription("orders")),),
            session_timeout_ms=6000,
            rebalance_timeout_ms=10_000,
            requires_known_member_id=False,
        ),
        client=live_groups.ClientInfo(name, software="kafka-python 3.0.12"),
    )


@pytest.fixture
def room() -> Room:
    room = room_create(title="wire")
    topic_create(room=room, name="orders", partitions=4)
    return room


def fresh(room: Room) -> Room:
    return Room.objects.get(pk=room.pk)


def test_it_holds_a_new_groups_first_join_for_the_initial_rebalance_delay(room):
    outcome = wire_join(room, "app")
    assert outcome.parked
    group = ConsumerGroup.objects.get(room=room, group_id="app")
    assert group.state == "PreparingRebalance"
    assert live_groups.client_join_poll(room=room, group_id="app", member_id="app-1") is None
    room_clock_step(room=room, step_ms=3000)  # group.initial.rebalance.delay.ms
    answer = live_groups.client_join_poll(room=fresh(room), group_id="app", member_id="app-1")
    assert answer is not None and answer.error is None
    assert (answer.generation, answer.leader_id) == (1, "app-1")
    # The leader gets every member's subscription, to run its own assignor.
    assert [m[0] for m in answer.members] == ["app-1"]


def test_it_applies_a_real_leaders_assignment_and_mirrors_it_for_the_board(room):
    wire_join(room, "app")
    room_clock_step(room=room, step_ms=3000)
    live_groups.client_join_poll(room=fresh(room), group_id="app", member_id="app-1")
    chosen = consumer_protocol.assignment_of([("orders", 0), ("orders", 3)])
    outcome = live_groups.client_group_sync(
        room=fresh(room),
        group_id="app",
        member_id="app-1",
        generation=1,
        group_instance_id=None,
        protocol_type=None,
        protocol_name=None,
        assignments={"app-1": chosen},
    )
    assert (outcome.error, outcome.assignment) == (None, chosen)
    group = ConsumerGroup.objects.get(room=room, group_id="app")
    assert group.state == "Stable"
    member = Member.objects.get(group=group)
    assert (member.kind, member.software) == ("client", "kafka-python 3.0.12")
    # The leader's choice, not LogLab's range: two partitions, as the client said.
    assert sorted(
        Assignment.objects.filter(group=group).values_list("partition__index", flat=True)
    ) == [0, 3]


def test_it_mixes_a_real_client_into_a_group_of_simulated_consumers(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    member_join(group=group, client_id="billing")
    outcome = wire_join(room, "billing")
    # Every other member lives in the server and rejoined at once; its leader assigned with
    # LogLab's range assignor: the join is answered without waiting.
    answer = outcome.answer or live_groups.client_join_poll(
        room=fresh(room), group_id="billing", member_id=outcome.member_id
    )
    assert answer is not None and answer.error is None
    group.refresh_from_db()
    assert group.state == "Stable" and group.live
    sync = live_groups.client_sync_poll(
        room=fresh(room),
        group_id="billing",
        member_id=outcome.member_id,
        generation=answer.generation,
    )
    # RangeAssignor orders members by id: "app-1" before "billing-…", so it takes the first
    # range, and the one partition left over (4 over 3 members).
    assert consumer_protocol.decode_assignment(sync.assignment).partitions() == (
        ("orders", 0),
        ("orders", 1),
    )
    owners = dict(
        Assignment.objects.filter(group=group).values_list("partition__index", "member__kind")
    )
    assert owners == {0: "client", 1: "client", 2: "simulated", 3: "simulated"}


def test_it_waits_for_a_real_member_to_rejoin_when_a_simulated_one_joins(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    outcome = wire_join(room, "billing")
    answer = outcome.answer or live_groups.client_join_poll(
        room=fresh(room), group_id="billing", member_id=outcome.member_id
    )
    assert answer is not None
    member_join(group=ConsumerGroup.objects.get(pk=group.pk), client_id="billing")
    group.refresh_from_db()
    # The real client has not rejoined yet: the rebalance waits for it, as Kafka's does.
    assert group.state == "PreparingRebalance"
    beat = live_groups.client_heartbeat(
        room=fresh(room),
        group_id="billing",
        member_id=outcome.member_id,
        generation=answer.generation,
        group_instance_id=None,
    )
    assert beat == "REBALANCE_IN_PROGRESS"
    rejoin = wire_join(room, "billing", member_id=outcome.member_id)
    again = rejoin.answer or live_groups.client_join_poll(
        room=fresh(room), group_id="billing", member_id=outcome.member_id
    )
    assert again is not None and again.generation == answer.generation + 1
    group.refresh_from_db()
    assert group.state == "Stable" and group.members.count() == 3


def test_it_gives_the_group_back_to_the_board_when_the_last_client_leaves(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    outcome = wire_join(room, "billing")
    live_groups.client_group_leave(
        room=fresh(room), group_id="billing", members=[(outcome.member_id, None)]
    )
    group.refresh_from_db()
    assert (group.state, group.live) == ("Stable", {})
    assert Assignment.objects.filter(group=group).count() == 4
    # And the board's own coordinator takes it from there.
    member_leave(member=group.members.get())
    group.refresh_from_db()
    assert group.state == "Empty"


def test_it_refuses_a_commit_from_a_stale_generation(room):
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    outcome = wire_join(room, "billing")
    error, _ = live_groups.client_offsets_commit(
        room=fresh(room),
        group_id="billing",
        generation=0,
        member_id=outcome.member_id,
        group_instance_id=None,
        offsets=[("orders", 3, 0, "")],
    )
    assert error == "ILLEGAL_GENERATION"
    # A standalone consumer (no generation, no member id) may not commit into a live group.
    error, _ = live_groups.client_offsets_commit(
        room=fresh(room),
        group_id="billing",
        generation=-1,
        member_id="",
        group_instance_id=None,
        offsets=[("orders", 3, 0, "")],
    )
    assert error == "UNKNOWN_MEMBER_ID"
