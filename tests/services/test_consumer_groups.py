"""Groups with group.protocol=consumer (KIP-848) on the board: the coordinator's state stored,
mirrored in the rows the board and the simulation read, moved by the room's step.

The members here live in the server: they heartbeat every group.consumer.heartbeat.interval.ms
(5 s of room time) and at once after an answer changed their assignment. The steps below are
the room's own, so what is asserted is what a class watching the board sees.
"""

from __future__ import annotations

import pytest

from messaging.engine import consumer_group as kip848
from messaging.engine import joining
from messaging.errors import Conflict, Invalid
from messaging.models import Assignment, ConsumerGroup, RoomEvent
from messaging.services import consumer_groups, live_groups
from messaging.services.clock import room_clock_step
from messaging.services.groups import group_create, member_crash, member_join, member_leave
from messaging.services.live_groups import ClientInfo
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = room_create(title="kip-848")
    topic_create(room=room, name="orders", partitions=6)
    return room


def owned(group: ConsumerGroup) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {m.member_id: [] for m in group.members.all()}
    for a in Assignment.objects.filter(group=group).select_related("member", "partition"):
        result[a.member.member_id].append(a.partition.index)
    return {k: sorted(v) for k, v in result.items()}


def kip_group(room, **extra) -> ConsumerGroup:
    return group_create(
        room=room,
        group_id="app",
        topics=["orders"],
        group_protocol="consumer",
        remote_assignor="range",
        auto_offset_reset="earliest",
        **extra,
    )


def step(room, ms: int) -> None:
    """One step of the room's simulation (the driver's ticks, folded into one)."""
    room_clock_step(room=room, step_ms=ms)


def test_it_takes_the_brokers_heartbeat_and_session_times(room):
    group = kip_group(room)
    assert (group.heartbeat_interval_ms, group.session_timeout_ms) == (5_000, 45_000)
    with pytest.raises(Invalid, match="uniform or range"):
        group_create(
            room=room,
            group_id="x",
            topics=["orders"],
            group_protocol="consumer",
            remote_assignor="sticky",
        )
    with pytest.raises(Invalid, match="between 45000 and 60000"):
        kip_group(room, session_timeout_ms=10_000)


def test_it_reconciles_a_join_while_the_first_member_keeps_consuming(room):
    group = kip_group(room)
    first, _ = member_join(group=group, client_id="a")
    group.refresh_from_db()
    assert owned(group) == {first.member_id: [0, 1, 2, 3, 4, 5]}
    assert (group.state, group.kip848_state().group_epoch) == ("Stable", 1)

    records_produce(
        room=room, topic_name="orders", records=[RecordIn(f"k{i}", "v", i % 6) for i in range(60)]
    )
    second, _ = member_join(group=group, client_id="b")
    group.refresh_from_db()
    # The new member is at the new epoch with nothing: the first still owns all six.
    assert group.state == "Reconciling"
    assert owned(group) == {first.member_id: [0, 1, 2, 3, 4, 5], second.member_id: []}

    processed_before = group.processed_total
    # The first member learns at its next heartbeat (5 s after it joined) to revoke 3-5; the
    # second, heartbeating right after, still finds them owned.
    step(room, 5_000)
    group.refresh_from_db()
    assert owned(group) == {first.member_id: [0, 1, 2], second.member_id: []}
    assert group.kip848_state().member(first.member_id).pending_revocation
    # Its client revokes and acknowledges at once: the partitions are free...
    step(room, 100)
    group.refresh_from_db()
    assert group.kip848_state().member(first.member_id).member_epoch == 2
    assert not group.kip848_state().member(first.member_id).pending_revocation
    # ...and the second member gets them at its own next heartbeat.
    step(room, 4_900)
    group.refresh_from_db()
    assert owned(group) == {first.member_id: [0, 1, 2], second.member_id: [3, 4, 5]}
    assert group.state == "Stable"
    # Nobody stopped: the first member processed records all along.
    assert group.processed_total > processed_before
    told = [e.payload for e in RoomEvent.objects.filter(room=room, type="group.reconciled")]
    text = " ".join(p["narration"] for p in told)
    assert "must revoke orders-3, orders-4, orders-5 first" in text
    assert "gets orders-3, orders-4, orders-5" in text
    kinds = [m["kind"] for p in told for m in p["moves"]]
    assert kinds.index("revoking") < kinds.index("revoked") < len(kinds) - 1


def test_it_fences_a_crashed_member_when_its_session_runs_out(room):
    group = kip_group(room)
    first, _ = member_join(group=group, client_id="a")
    second, _ = member_join(group=group, client_id="b")
    step(room, 5_000)
    step(room, 100)
    member_crash(member=second)
    step(room, 39_000)
    group.refresh_from_db()
    assert second.member_id in owned(group)
    step(room, 6_000)
    group.refresh_from_db()
    assert owned(group) == {first.member_id: [0, 1, 2, 3, 4, 5]}
    narration = " ".join(
        e.payload["narration"] for e in RoomEvent.objects.filter(type="group.reconciled")
    )
    assert "session timed out" in narration


def test_it_commits_what_a_member_processed_before_its_partitions_move(room):
    group = kip_group(room)
    # No auto-commit in the window: the commits below are the revocation's.
    ConsumerGroup.objects.filter(pk=group.pk).update(auto_commit_interval_ms=600_000)
    first, _ = member_join(group=group, client_id="a")
    first.__class__.objects.filter(pk=first.pk).update(records_per_second=40)
    records_produce(
        room=room, topic_name="orders", records=[RecordIn(f"k{i}", "v", i % 6) for i in range(60)]
    )
    # Its first answer gave it partitions: it acknowledged at once (at 3 s here), so its next
    # heartbeat, the one that tells it to revoke, comes 5 s later.
    step(room, 3_000)
    member_join(group=group, client_id="b")
    step(room, 5_000)
    group.refresh_from_db()
    committed = {c.partition.index: c.offset for c in group.offsets.select_related("partition")}
    assert set(committed) == {3, 4, 5}, committed
    assert all(offset == 10 for offset in committed.values()), committed


def test_it_leaves_with_epoch_minus_one_and_hands_everything_on(room):
    group = kip_group(room)
    first, _ = member_join(group=group, client_id="a")
    second, _ = member_join(group=group, client_id="b")
    step(room, 5_000)
    step(room, 100)
    member_leave(member=second)
    group.refresh_from_db()
    assert group.state == "Assigning"
    step(room, 5_000)
    group.refresh_from_db()
    assert owned(group) == {first.member_id: [0, 1, 2, 3, 4, 5]}


def test_it_refuses_a_classic_client_in_a_consumer_group_and_says_why(room):
    kip_group(room)
    outcome = live_groups.client_group_join(
        room=room,
        group_id="app",
        request=joining.JoinRequest(
            member_id="",
            new_member_id="py-1",
            group_instance_id=None,
            client_id="py",
            protocol_type="consumer",
            protocols=(("range", b""),),
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            requires_known_member_id=False,
        ),
        client=ClientInfo("py", "kafka-python 3.0.12", "py"),
    )
    assert outcome.error == "INCONSISTENT_GROUP_PROTOCOL"
    told = RoomEvent.objects.filter(type="group.reconciled").last().payload
    assert told["refused"] and "group.protocol=consumer" in told["narration"]


def wire_heartbeat(room, group_id: str, epoch: int = 0, member_id: str = "m-1"):
    return consumer_groups.client_heartbeat(
        room=room,
        group_id=group_id,
        request=kip848.Heartbeat(
            member_id=member_id if epoch else "",
            member_epoch=epoch,
            rebalance_timeout_ms=300_000,
            subscribed=("orders",),
            server_assignor="range",
            owned=(),
            new_member_id=member_id,
        ),
        client=ClientInfo("rdkafka", "librdkafka 2.16.0", "rdkafka"),
    )


def test_it_answers_a_real_clients_first_heartbeat_with_its_partitions(room):
    answer = wire_heartbeat(room, "fresh")
    assert answer.error is None and answer.member_epoch == 1
    assert answer.assignment == (("orders", (0, 1, 2, 3, 4, 5)),)
    group = ConsumerGroup.objects.get(room=room, group_id="fresh")
    assert group.group_protocol == "consumer"
    assert group.members.get().kind == "client"


def test_it_turns_an_empty_classic_group_into_a_consumer_group(room):
    group_create(room=room, group_id="old", topics=["orders"])
    answer = wire_heartbeat(room, "old")
    assert answer.error is None
    assert ConsumerGroup.objects.get(room=room, group_id="old").group_protocol == "consumer"


def test_it_refuses_a_heartbeat_for_a_classic_group_with_members(room):
    group = group_create(room=room, group_id="busy", topics=["orders"])
    member_join(group=group, client_id="c")
    answer = wire_heartbeat(room, "busy")
    assert answer.error == "GROUP_ID_NOT_FOUND"
    assert answer.error_message == "Group busy is not a consumer group"
    told = RoomEvent.objects.filter(type="group.reconciled").last().payload
    assert told["refused"]


def test_it_refuses_an_offset_commit_at_a_stale_member_epoch(room):
    wire_heartbeat(room, "app2", member_id="m-1")
    offsets = [("orders", 0, 1, "")]
    stale, _ = live_groups.client_offsets_commit(
        room=room,
        group_id="app2",
        generation=0,
        member_id="m-1",
        group_instance_id=None,
        offsets=offsets,
        api_version=9,
    )
    assert stale == "STALE_MEMBER_EPOCH"
    ok, results = live_groups.client_offsets_commit(
        room=room,
        group_id="app2",
        generation=1,
        member_id="m-1",
        group_instance_id=None,
        offsets=offsets,
        api_version=9,
    )
    assert ok is None and results == {("orders", 0): None}


def test_it_refuses_a_join_with_an_unreleased_static_instance(room):
    group = kip_group(room)
    member_join(group=group, client_id="a", group_instance_id="pod-1")
    with pytest.raises(Conflict, match="instance id"):
        member_join(group=group, client_id="b", group_instance_id="pod-1")
