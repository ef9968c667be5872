"""The room's simulation step, told as the lessons tell it: producers, consumers, crashes."""

from __future__ import annotations

import pytest

from messaging.engine.partitioner import partition_for_key
from messaging.errors import Invalid
from messaging.models import (
    Assignment,
    CommittedOffset,
    ConsumerGroup,
    Member,
    Partition,
    ProcessedRecord,
    Record,
    RoomEvent,
)
from messaging.services.groups import group_create, member_crash, member_join, member_leave
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import member_set_speed, producer_create, room_step
from messaging.services.topics import topic_configure, topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = room_create(title="simulation")
    topic_create(room=room, name="orders", partitions=1)
    return room


def produce(room, count, key="k"):
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key=key, value=str(i)) for i in range(count)],
    )


def group_with(room, delivery, speeds):
    group = group_create(
        room=room,
        group_id="billing",
        topics=["orders"],
        delivery=delivery,
        auto_offset_reset="earliest",
    )
    members = []
    for speed in speeds:
        member, _ = member_join(group=group, client_id="c")
        members.append(member_set_speed(member=member, records_per_second=speed))
    return group, members


def ledger(group):
    return [
        (r.offset, r.status) for r in ProcessedRecord.objects.filter(group=group).order_by("id")
    ]


def test_it_runs_autoplay_producers_with_their_keys_and_rate(room):
    topic_create(room=room, name="clicks", partitions=3)
    producer_create(
        room=room,
        name="checkout-svc",
        topic_name="clicks",
        key_mode="set",
        keys=["alice", "bob"],
        records_per_second=10,
    )
    payload = room_step(room=room, step_ms=1000)
    records = payload["produced"][0]["records"]
    assert len(records) == 10
    assert [r["key"] for r in records[:4]] == ["alice", "bob", "alice", "bob"]
    for r in records:
        assert r["partition"] == partition_for_key(r["key"].encode(), 3)
    assert RoomEvent.objects.filter(room=room, type="step").count() == 1
    assert RoomEvent.objects.filter(room=room, type="records.produced").count() == 0


def test_it_carries_fractions_of_a_rate_over_steps(room):
    producer_create(
        room=room,
        name="slow",
        topic_name="orders",
        key_mode="null",
        keys=[],
        records_per_second=0.5,
    )
    room_step(room=room, step_ms=1000)
    assert Record.objects.count() == 0
    room_step(room=room, step_ms=1000)
    assert Record.objects.count() == 1


def test_it_refuses_a_producer_faster_than_the_bound(room):
    with pytest.raises(Invalid, match="between 0 and 200"):
        producer_create(
            room=room,
            name="p",
            topic_name="orders",
            key_mode="fixed",
            keys=["a"],
            records_per_second=500,
        )


def test_a_member_processes_at_its_speed_and_auto_commits_on_the_interval(room):
    produce(room, 10)
    group, _ = group_with(room, "at-least-once", [2])
    room_step(room=room, step_ms=1000)
    assert ledger(group) == [(0, "first"), (1, "first")]
    assert not CommittedOffset.objects.filter(group=group).exists()
    for _ in range(4):
        room_step(room=room, step_ms=1000)
    assert CommittedOffset.objects.get(group=group).offset == 10


def test_at_least_once_reprocesses_after_a_crash_before_the_commit(room):
    produce(room, 10)
    group, (doomed, survivor) = group_with(room, "at-least-once", [3, 3])
    # One partition: the range assignor gives it to c-1; c-2 is idle.
    room_step(room=room, step_ms=1000)
    assert ledger(group) == [(0, "first"), (1, "first"), (2, "first")]
    member_crash(member=doomed)
    for _ in range(46):  # session.timeout.ms = 45 s: then c-2 takes over from offset 0
        room_step(room=room, step_ms=1000)
    assert not Member.objects.filter(pk=doomed.pk).exists()
    assert ledger(group)[3:6] == [(0, "duplicate"), (1, "duplicate"), (2, "duplicate")]
    assert ConsumerGroup.objects.get(pk=group.pk).duplicates_total == 3


def test_at_most_once_loses_the_rest_of_a_batch_after_a_crash(room):
    produce(room, 10)
    group, (doomed, survivor) = group_with(room, "at-most-once", [1, 1])
    room_step(room=room, step_ms=1000)  # polls 0..4, commits 5, processes 0
    assert CommittedOffset.objects.get(group=group).offset == 5
    member_crash(member=doomed)
    for _ in range(46):
        room_step(room=room, step_ms=1000)
    lost = [o for o, s in ledger(group) if s == "skipped"]
    assert lost == [1, 2, 3, 4]
    assert ConsumerGroup.objects.get(pk=group.pk).skipped_total == 4
    assert ConsumerGroup.objects.get(pk=group.pk).duplicates_total == 0


def test_exactly_once_neither_loses_nor_repeats_across_a_crash(room):
    produce(room, 10)
    group, (doomed, survivor) = group_with(room, "exactly-once", [3, 3])
    room_step(room=room, step_ms=1000)
    member_crash(member=doomed)
    for _ in range(50):
        room_step(room=room, step_ms=1000)
    statuses = [s for _, s in ledger(group)]
    assert statuses == ["first"] * 10
    assert [o for o, _ in ledger(group)] == list(range(10))


def test_a_clean_rebalance_repeats_nothing(room):
    produce(room, 10)
    group, _ = group_with(room, "at-least-once", [3])
    room_step(room=room, step_ms=1000)
    member_join(group=group, client_id="c")  # a rebalance, no crash
    for _ in range(10):
        room_step(room=room, step_ms=1000)
    assert ConsumerGroup.objects.get(pk=group.pk).duplicates_total == 0


def test_a_clean_leave_commits_what_was_processed_so_the_next_owner_repeats_nothing(room):
    produce(room, 10)
    group, (leaver, successor) = group_with(room, "at-least-once", [3, 3])
    room_step(room=room, step_ms=1000)  # c-1 processes 0..2; the auto-commit is not due yet
    assert not CommittedOffset.objects.filter(group=group).exists()
    member_leave(member=leaver)  # close(): at-least-once commits before giving partitions up
    assert CommittedOffset.objects.get(group=group).offset == 3
    for _ in range(3):
        room_step(room=room, step_ms=1000)
    assert [s for _, s in ledger(group)] == ["first"] * 10
    assert ConsumerGroup.objects.get(pk=group.pk).duplicates_total == 0


def test_retention_deletes_whole_segments_as_simulated_time_passes(room):
    topic = room.topics.get(name="orders")
    topic_configure(topic=topic, retention_ms=10_000, segment_records=2)
    produce(room, 5)  # segments [0,1] [2,3] [4 active], all at t=0
    room_step(room=room, step_ms=10_000)
    assert Record.objects.count() == 5  # not older than retention.ms yet (strictly)
    room_step(room=room, step_ms=1)
    partition = Partition.objects.get(topic=topic)
    assert Record.objects.count() == 0
    assert (partition.log_start_offset, partition.log_end_offset) == (5, 5)
    event = RoomEvent.objects.filter(room=room, type="records.deleted").get()
    assert event.payload["reasons"] == {"retention.ms": 5}


def test_a_consumer_behind_the_log_start_is_reset_by_auto_offset_reset(room):
    topic = room.topics.get(name="orders")
    topic_configure(topic=topic, retention_ms=10_000, segment_records=2)
    group, (member,) = group_with(room, "at-least-once", [0])
    produce(room, 4)
    CommittedOffset.objects.create(
        group=group, partition=Partition.objects.get(topic=topic), offset=1
    )
    room_step(room=room, step_ms=5_000)
    produce(room, 2)  # offsets 4, 5 at t=5s
    room_step(room=room, step_ms=5_001)  # 0..3 expire
    member_set_speed(member=member, records_per_second=10)
    payload = room_step(room=room, step_ms=1000)
    start = payload["groups"][0]["starts"][0]
    assert start["offset"] == 4
    assert "fell off the log" in start["reason"]


def three_partitions(room):
    topic_create(room=room, name="clicks", partitions=3)
    group = group_create(room=room, group_id="web", topics=["clicks"], auto_offset_reset="earliest")
    member, _ = member_join(group=group, client_id="web")
    return group, member_set_speed(member=member, records_per_second=2)


def test_a_slow_consumer_reads_its_three_partitions_alike_as_a_producer_outruns_it(room):
    """Issue #12: P0 166/346 and P1 165/173 but P2 15/173. With Kafka's fetch buffer and
    fetch session, a consumer slower than its producer keeps every partition moving."""
    group, _ = three_partitions(room)
    for step in range(60):
        # 10 records/s over the three partitions, 2 records/s processed.
        records_produce(
            room=room,
            topic_name="clicks",
            records=[
                RecordIn(key=None, value=str(i), partition=(5 * step + i) % 3) for i in range(5)
            ],
        )
        room_step(room=room, step_ms=500)
    positions = [
        a.position for a in Assignment.objects.filter(group=group).order_by("partition__index")
    ]
    assert sum(positions) >= 55  # 2 records/s for 30 s
    # One fetch brings at most 10 records of a partition (max.partition.fetch.bytes on the
    # board's scale): a partition is never more than two fetches behind another.
    assert max(positions) - min(positions) <= 20, positions


def test_the_board_step_reports_what_each_consumer_fetched_and_did_not_process(room):
    group, member = three_partitions(room)
    records_produce(
        room=room,
        topic_name="clicks",
        records=[RecordIn(key=None, value=str(i), partition=i % 3) for i in range(30)],
    )
    payload = room_step(room=room, step_ms=1_000)
    [part] = payload["groups"]
    # One fetch buffered 10 of each partition; the poll took 5 of clicks-0; 2 are processed.
    assert part["positions"] == {"clicks-0": 2, "clicks-1": 0, "clicks-2": 0}
    assert part["fetched"] == {"clicks-0": 10, "clicks-1": 10, "clicks-2": 10}
    member.refresh_from_db()
    assert member.fetch_state["buffered"] == ["clicks-0", "clicks-1", "clicks-2"]


def test_a_rebalance_drops_what_the_revoked_partitions_had_buffered(room):
    group, _ = three_partitions(room)
    records_produce(
        room=room,
        topic_name="clicks",
        records=[RecordIn(key=None, value=str(i), partition=i % 3) for i in range(30)],
    )
    room_step(room=room, step_ms=1_000)
    assert Assignment.objects.filter(group=group, fetched_until__isnull=False).count() == 3
    member_join(group=group, client_id="web")  # eager: every partition is revoked
    assert not Assignment.objects.filter(group=group, fetched_until__isnull=False).exists()
    # The moved partitions start again from the committed offset (at-least-once committed
    # what was processed before the revoke), so nothing is processed twice.
    room_step(room=room, step_ms=5_000)
    group.refresh_from_db()
    assert group.duplicates_total == 0 and group.processed_total > 2
