"""Share groups stored in a room: many consumers on one partition, locks, redelivery with a
delivery count, archiving, driven by buttons and by the room's step."""

from __future__ import annotations

import pytest

from messaging import events, selectors
from messaging.engine import share_group as rules
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import RoomEvent, ShareGroup, ShareMember
from messaging.services import share_groups as share
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import room_step
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

SECOND = 1_000


@pytest.fixture
def room():
    room = room_create(title="share")
    topic_create(room=room, name="jobs", partitions=1)
    return room


def produce(room, count, start=0):
    records_produce(
        room=room,
        topic_name="jobs",
        records=[
            RecordIn(key=None, value=f"job {n}", partition=0) for n in range(start, start + count)
        ],
    )


def group(room, consumers=0, **settings) -> ShareGroup:
    return share.share_group_create(
        room=room,
        group_id="workers",
        topic="jobs",
        auto_offset_reset="earliest",
        settings=share.ShareSettings(**settings) if settings else None,
        consumers=consumers,
    )


def members(g) -> list[ShareMember]:
    return list(g.members.order_by("join_order"))


def partition_state(g, index=0) -> rules.SharePartition:
    row = next(r for r in selectors.share_partition_rows(group=g) if r.partition.index == index)
    return selectors.share_state_load(row)


def states(g) -> dict[int, tuple[str, int, str]]:
    names = {m.member_id: str(m) for m in g.members.all()}
    return {
        r.offset: (r.state, r.delivery_count, names.get(r.member_id, r.member_id))
        for r in partition_state(g).in_flight
    }


def test_it_lets_two_consumers_share_one_partition(room):
    produce(room, 6)
    g = group(room, consumers=0)
    one = share.share_member_join(group=g)
    two = share.share_member_join(group=g)
    got_one = share.share_fetch(member=one, max_records=3)
    got_two = share.share_fetch(member=two, max_records=3)
    assert [p.offset for p in got_one] == [0, 1, 2]
    assert [p.offset for p in got_two] == [3, 4, 5]
    assert states(g) == {
        **{o: ("acquired", 1, "consumer-1") for o in range(3)},
        **{o: ("acquired", 1, "consumer-2") for o in range(3, 6)},
    }
    g.refresh_from_db()
    assert g.group_epoch == 2
    event = RoomEvent.objects.filter(room=room).order_by("-seq").first()
    assert event.type == events.SHARE_CHANGED
    assert event.payload["action"] == "acquire"


def test_it_redelivers_a_released_record_to_another_consumer_with_its_count(room):
    produce(room, 1)
    g = group(room)
    one = share.share_member_join(group=g)
    two = share.share_member_join(group=g)
    share.share_fetch(member=one)
    result = share.share_acknowledge(member=one, partition=0, offset=0, kind="release")
    assert (result.state, result.refused) == ("available", "")
    got = share.share_fetch(member=two)
    assert [(p.offset, p.delivery_count) for p in got] == [(0, 2)]
    share.share_acknowledge(member=two, partition=0, offset=0, kind="accept")
    p = partition_state(g)
    assert (p.spso, p.in_flight) == (1, ())
    row = selectors.share_partition_rows(group=g)[0]
    assert row.finished == [[0, "acknowledged", 2]]


def test_it_archives_a_record_released_at_the_delivery_count_limit(room):
    produce(room, 1)
    g = group(room, delivery_count_limit=2)
    one = share.share_member_join(group=g)
    for delivery in (1, 2):
        got = share.share_fetch(member=one)
        assert [(p.offset, p.delivery_count) for p in got] == [(0, delivery)]
        result = share.share_acknowledge(member=one, partition=0, offset=0, kind="release")
    assert result.state == "archived"
    assert share.share_fetch(member=one) == []
    g.refresh_from_db()
    assert g.totals["delivery-limit"] == 1
    assert partition_state(g).spso == 1


def test_it_hands_a_crashed_consumers_records_back_when_their_locks_run_out(room):
    produce(room, 3)
    g = group(room, record_lock_duration_ms=5_000)
    crashing, other = share.share_member_join(group=g), share.share_member_join(group=g)
    share.share_fetch(member=crashing)
    share.share_member_crash(member=crashing)
    with pytest.raises(Conflict):
        share.share_fetch(member=crashing)
    share.share_member_update(
        member=other, records_per_second=0.01, failure_rate=0, on_failure="release"
    )
    room_step(room=room, step_ms=4 * SECOND)
    assert {s for s, _, _ in states(g).values()} == {"acquired"}
    room_step(room=room, step_ms=2 * SECOND)
    # The locks ran out; the other consumer fetched them again, delivery 2.
    assert states(g) == {o: ("acquired", 2, "consumer-2") for o in range(3)}
    room_step(room=room, step_ms=45 * SECOND)
    assert [str(m) for m in members(g)] == ["consumer-2"]


def test_it_refuses_a_slow_consumers_acknowledgement_once_its_lock_ran_out(room):
    produce(room, 1)
    g = group(room, record_lock_duration_ms=1_000)
    slow = share.share_member_join(group=g, records_per_second=0.001)
    share.share_fetch(member=slow)
    room_step(room=room, step_ms=1_500)  # the lock runs out long before it is processed
    assert states(g) == {0: ("available", 1, "")}
    third = share.share_member_join(group=g, records_per_second=0.001)
    got = share.share_fetch(member=third)
    assert [(p.offset, p.delivery_count) for p in got] == [(0, 2)]
    result = share.share_acknowledge(member=slow, partition=0, offset=0, kind="accept")
    assert result.state is None
    assert result.refused.startswith("INVALID_RECORD_STATE")
    slow.refresh_from_db()
    assert slow.counts["refused"] == 1 and slow.polled == []
    assert states(g) == {0: ("acquired", 2, "consumer-2")}


def test_it_releases_what_a_leaving_member_held(room):
    produce(room, 2)
    g = group(room)
    one = share.share_member_join(group=g)
    share.share_fetch(member=one)
    share.share_member_leave(member=one)
    assert states(g) == {0: ("available", 1, ""), 1: ("available", 1, "")}
    with pytest.raises(NotFound):
        share.share_fetch(member=one)


def test_it_processes_with_simulated_consumers_on_the_room_step(room):
    produce(room, 10)
    g = group(room, consumers=2)
    for _ in range(12):
        room_step(room=room, step_ms=SECOND)
    g.refresh_from_db()
    assert g.totals["accept"] == 10
    p = partition_state(g)
    assert (p.spso, p.in_flight) == (10, ())
    counts = [m.counts.get("accept", 0) for m in members(g)]
    assert sum(counts) == 10 and all(counts)  # both consumers worked the one partition


def test_it_rejects_poison_records_by_the_failure_rate(room):
    produce(room, 4)
    g = group(room)
    share.share_member_join(group=g, records_per_second=10, failure_rate=1, on_failure="reject")
    for _ in range(3):
        room_step(room=room, step_ms=SECOND)
    g.refresh_from_db()
    assert g.totals["reject"] == 4
    assert selectors.share_partition_rows(group=g)[0].finished[-1][1] == "archived"


def test_it_starts_at_the_log_end_by_default(room):
    produce(room, 3)
    g = share.share_group_create(room=room, group_id="late", topic="jobs", consumers=1)
    assert partition_state(g).spso == 3
    assert share.share_fetch(member=members(g)[0]) == []
    produce(room, 1, start=3)
    assert [p.offset for p in share.share_fetch(member=members(g)[0])] == [3]


def test_it_validates_what_people_type(room):
    with pytest.raises(Invalid, match="group.share.delivery.count.limit"):
        share.ShareSettings.parse(30_000, 1, 200)
    with pytest.raises(NotFound):
        share.share_group_create(room=room, group_id="x", topic="nope")
    g = group(room)
    with pytest.raises(Conflict):
        group(room)
    with pytest.raises(Invalid):
        share.share_member_join(group=g, failure_rate="150%")
    member = share.share_member_join(group=g, failure_rate="25%")
    assert member.failure_rate == 0.25
    with pytest.raises(NotFound):
        share.share_acknowledge(member=member, partition=0, offset=9, kind="accept")
    with pytest.raises(Invalid):
        share.share_acknowledge(member=member, partition=0, offset=0, kind="renew")
