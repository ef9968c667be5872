"""The rows every group coordinator writes, the board's one-step one (groups.py), the
real-time one for groups with a real client (live_groups.py) and KIP-848's
(consumer_groups.py): who owns which partition, and a committed offset stored and announced,
whoever commits it (the board, a student's button, REST Proxy, a real client over the wire);
where a member stands on its partitions, and the commits it makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from messaging import events
from messaging.engine import consumption
from messaging.engine import offsets as offset_rules
from messaging.models import (
    BOARD_RECORD_BYTES,
    Assignment,
    CommittedOffset,
    ConsumerGroup,
    Member,
    Partition,
    Room,
)
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
    eager = (
        group.protocol == ConsumerGroup.Protocol.EAGER
        and group.group_protocol == ConsumerGroup.GroupProtocol.CLASSIC
    )
    if eager:
        # Eager revokes every partition, kept ones too: the client drops what it had fetched
        # for them and not yet polled (a moved partition's row, buffer and all, is gone above).
        # KIP-848, like cooperative, only ever takes away the partitions that move.
        kept_rows.update(generation=generation, fetched_until=None)
    else:
        kept_rows.update(generation=generation)
    kept = {pid for pid, a in current.items() if a.pk not in stale}
    Assignment.objects.bulk_create(
        Assignment(group=group, member=member, partition_id=pid, generation=generation)
        for pid, member in wanted.items()
        if pid not in kept
    )


def member_cursors(owned: list[Assignment], committed: dict[int, int]) -> list[consumption.Cursor]:
    """Where a member stands on each partition it owns, as the engine reads it."""
    return [
        consumption.Cursor(
            partition=str(a.partition),
            log_start_offset=a.partition.log_start_offset,
            # Consumers read up to the high watermark (the log end of one replica's partition).
            log_end_offset=a.partition.consumable_end,
            committed=committed.get(a.partition_id),
            position=a.position,
            polled_until=a.polled_until,
            fetched_until=a.fetched_until,
            record_bytes=BOARD_RECORD_BYTES,
        )
        for a in owned
    ]


def commits_store(*, group: ConsumerGroup, commits: dict[int, int], now_ms: int) -> None:
    for partition_id, offset in commits.items():
        CommittedOffset.objects.update_or_create(
            group=group,
            partition_id=partition_id,
            defaults={"offset": offset, "committed_at_ms": now_ms},
        )


@dataclass(frozen=True)
class MemberRow:
    """A member as a real-time coordinator's state has it: the values its row keeps up to date,
    and those a new row also needs (client id, kind, names)."""

    member_id: str
    values: dict[str, Any]
    new: dict[str, Any]


def members_mirror(*, group: ConsumerGroup, members: list[MemberRow]) -> dict[str, Member]:
    """The group's Member rows made to match the coordinator's members, in their order: rows
    of members gone are deleted, new ones created, changed fields saved. Returns the rows by
    member id (those just deleted included, unsaved)."""
    rows = {row.member_id: row for row in group.members.all()}
    wanted = {m.member_id for m in members}
    Member.objects.filter(pk__in=[r.pk for mid, r in rows.items() if mid not in wanted]).delete()
    for member in members:
        row = rows.get(member.member_id)
        if row is None:
            row = Member(group=group, member_id=member.member_id, **member.new, **member.values)
            row.save()
            rows[member.member_id] = row
            continue
        changed = [name for name, value in member.values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, member.values[name])
        if changed:
            row.save(update_fields=changed)
    return rows


def reconciled_record(
    *,
    room: Room,
    group: ConsumerGroup,
    narration: str,
    group_epoch: int | None = None,
    assignment_epoch: int | None = None,
    moves: list | None = None,
    refused: bool = False,
) -> None:
    """A KIP-848 group's `group.reconciled` event, for whoever changed it (the coordinator,
    a refused classic join, new topic metadata); the epochs default to the stored state's."""
    if group_epoch is None or assignment_epoch is None:
        state = group.kip848_state()
        group_epoch, assignment_epoch = state.group_epoch, state.assignment_epoch
    payload: dict[str, Any] = {
        "group": group.group_id,
        "state": group.state,
        "group_epoch": group_epoch,
        "assignment_epoch": assignment_epoch,
        "narration": narration,
        "moves": moves or [],
    }
    if refused:
        payload["refused"] = True
    payload["at_ms"] = room.sim_time_ms
    event_record(room=room, type=events.GROUP_RECONCILED, payload=payload)
