"""The rows every group coordinator writes, the board's one-step one (groups.py) and the
real-time one for groups with a real client (live_groups.py): who owns which partition, and a
committed offset stored and announced, whoever commits it (the board, a student's button, REST
Proxy, a real client over the wire)."""

from __future__ import annotations

from messaging import events
from messaging.engine import offsets as offset_rules
from messaging.models import Assignment, CommittedOffset, ConsumerGroup, Member, Partition, Room
from messaging.services.events import event_record


def offset_store(
    *, room: Room, group: ConsumerGroup, partition: Partition, offset: int, metadata: str = ""
) -> CommittedOffset:
    """Store the group's committed offset for `partition` (the NEXT record it will read) and
    record `offset.committed` with the lag it leaves. The caller holds the room's lock and has
    checked the commit."""
    committed, _ = CommittedOffset.objects.update_or_create(
        group=group,
        partition=partition,
        defaults={"offset": offset, "committed_at_ms": room.sim_time_ms, "metadata": metadata},
    )
    event_record(
        room=room,
        type=events.OFFSET_COMMITTED,
        payload={
            "group": group.group_id,
            "topic": partition.topic.name,
            "partition": partition.index,
            "offset": offset,
            "lag": offset_rules.lag(partition.log_end_offset, offset),
        },
    )
    return committed


def assignments_write(*, group: ConsumerGroup, wanted: dict[int, Member], generation: int) -> None:
    """Make the group's Assignment rows say `wanted` (partition pk -> owner) in `generation`,
    keeping the rows (positions, buffers) of partitions that stay with their owner."""
    current = {a.partition_id: a for a in Assignment.objects.filter(group=group)}
    stale = [
        a.pk for pid, a in current.items() if pid not in wanted or wanted[pid].pk != a.member_id
    ]
    Assignment.objects.filter(pk__in=stale).delete()
    kept_rows = Assignment.objects.filter(group=group).exclude(pk__in=stale)
    if group.protocol == ConsumerGroup.Protocol.EAGER:
        # Eager revokes every partition, kept ones too: the client drops what it had fetched
        # for them and not yet polled (a moved partition's row, buffer and all, is gone above).
        kept_rows.update(generation=generation, fetched_until=None)
    else:
        kept_rows.update(generation=generation)
    kept = {pid for pid, a in current.items() if a.pk not in stale}
    Assignment.objects.bulk_create(
        Assignment(group=group, member=member, partition_id=pid, generation=generation)
        for pid, member in wanted.items()
        if pid not in kept
    )
