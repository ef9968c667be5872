"""Snapshots of a room's whole state: what a lesson's "undo" goes back to.

A snapshot is every row of the room (topics, partitions, records, groups and their members,
assignments, committed offsets and ledger, producers, SQS queues, the classic broker) and the
room's clock, serialised with Django's serialisers, primary keys included. Restoring deletes
the room's rows and recreates them with the same keys: ids are never reused by the database
(SQLite's AUTOINCREMENT, PostgreSQL's sequences), so no other row can hold them, and every form
on an open page (`/r/<code>/members/<pk>/`) still points at the same thing afterwards.

The room's event stream is part of its state (a lesson goal can count rebalances), so the
events recorded after the snapshot go too; `Room.last_seq` keeps increasing, and the `resync`
event recorded last makes every open board redraw from the restored rows.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.core import serializers
from django.db import models, transaction

from messaging import events
from messaging.errors import Conflict
from messaging.models import (
    Assignment,
    ClassicBroker,
    Cluster,
    CommittedOffset,
    ConsumerGroup,
    LostRecord,
    Member,
    Partition,
    PartitionReplicas,
    ProcessedRecord,
    Producer,
    Record,
    RestConsumerInstance,
    Room,
    RoomEvent,
    RoomSnapshot,
    ShareGroup,
    ShareMember,
    SharePartitionState,
    SqsQueue,
    Topic,
)
from messaging.services.events import event_record, room_lock

SNAPSHOT_VERSION = 1
# Undo goes back this many steps; older snapshots are dropped.
SNAPSHOTS_KEPT = 50
# A room bigger than this is not snapshotted (a lesson room is far smaller): undo then stops
# at the step that made it so, rather than storing megabytes per click.
SNAPSHOT_MAX_ROWS = 20_000
MAX_LABEL_CHARS = 120

# In the order they are recreated: every row after the rows it points at.
_ROOM_FILTERS: list[tuple[type[models.Model], str]] = [
    (Topic, "room"),
    (Partition, "topic__room"),
    (Record, "partition__topic__room"),
    (ConsumerGroup, "room"),
    (Member, "group__room"),
    (RestConsumerInstance, "member__group__room"),
    (Assignment, "group__room"),
    (CommittedOffset, "group__room"),
    (ProcessedRecord, "group__room"),
    (Producer, "room"),
    (SqsQueue, "room"),
    (ClassicBroker, "room"),
    (Cluster, "room"),
    (PartitionReplicas, "partition__topic__room"),
    (LostRecord, "room"),
    (ShareGroup, "room"),
    (ShareMember, "group__room"),
    (SharePartitionState, "group__room"),
]
# Rows so many that only their content matters, not when they were written.
_BULK_ONLY = {Record, ProcessedRecord}
_ROOM_FIELDS = ("sim_time_ms", "clock_running", "clock_speed", "mirror_topic_id")


class SnapshotTooLarge(Conflict):
    pass


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _json_ready(value: Any) -> Any:
    """A field value as JSON keeps it exactly.

    Django's JSON serialiser cuts datetimes to milliseconds, so a restored row would differ
    from the original (and `.000` would come back as a whole second): full ISO text instead.
    """
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def _rows_serialize(queryset: models.QuerySet) -> list[dict[str, Any]]:
    rows = serializers.serialize("python", queryset)
    for row in rows:
        row["fields"] = {name: _json_ready(value) for name, value in row["fields"].items()}
    return rows


def room_state_dump(*, room: Room) -> dict[str, Any]:
    """Every row of the room as JSON-ready data (the caller holds the room's lock)."""
    querysets = [
        (model, model.objects.filter(**{lookup: room}).order_by("pk"))
        for model, lookup in _ROOM_FILTERS
    ]
    # Only the records and the ledger grow with what a learner does; the other tables hold a
    # handful of rows a room, so counting them would cost a query each for nothing.
    total = sum(queryset.count() for model, queryset in querysets if model in _BULK_ONLY)
    if total > SNAPSHOT_MAX_ROWS:
        raise SnapshotTooLarge(
            f"This room holds {total} records and ledger lines, more than the "
            f"{SNAPSHOT_MAX_ROWS} a snapshot keeps."
        )
    rows = {_label(model): _rows_serialize(queryset) for model, queryset in querysets}
    return {
        "version": SNAPSHOT_VERSION,
        "last_seq": room.last_seq,
        "room": {name: getattr(room, name) for name in _ROOM_FIELDS},
        "rows": rows,
    }


def room_rows_clear(*, room: Room) -> None:
    """Delete every row of the room's state; the room itself, its students and events stay.

    The caller holds the room's lock. A student's member goes with its group (their Student row
    keeps them in the classroom, with no consumer).
    """
    Producer.objects.filter(room=room).delete()
    Room.objects.filter(pk=room.pk).update(mirror_topic=None)
    ConsumerGroup.objects.filter(room=room).delete()
    Topic.objects.filter(room=room).delete()
    SqsQueue.objects.filter(room=room).delete()
    ClassicBroker.objects.filter(room=room).delete()
    Cluster.objects.filter(room=room).delete()
    LostRecord.objects.filter(room=room).delete()


def _rows_load(data: dict[str, Any]) -> None:
    for model, _ in _ROOM_FILTERS:
        stored = data["rows"].get(_label(model), [])
        if not stored:
            continue
        loaded = list(serializers.deserialize("python", stored))
        objects = [item.object for item in loaded]
        # bulk_create stamps auto_now_add fields with the time of the restore; the originals
        # come back after it, since some orders go by them (producers, queues).
        stamped = [
            field.attname
            for field in model._meta.concrete_fields
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)
        ]
        originals = [{name: getattr(obj, name) for name in stamped} for obj in objects]
        model.objects.bulk_create(objects, batch_size=500)
        if stamped and model not in _BULK_ONLY:
            for obj, values in zip(objects, originals, strict=True):
                for name, value in values.items():
                    setattr(obj, name, value)
            model.objects.bulk_update(objects, stamped, batch_size=500)
        for item in loaded:
            for name, pks in (item.m2m_data or {}).items():
                getattr(item.object, name).set(pks)


def room_snapshot_take(*, room: Room, label: str) -> RoomSnapshot:
    """Store the room's state as it is now, before a step; keep the newest SNAPSHOTS_KEPT.

    Raises SnapshotTooLarge (and drops the older snapshots: undo cannot skip a step) when the
    room has outgrown what a snapshot keeps.
    """
    try:
        return _snapshot_take(room=room, label=label)
    except SnapshotTooLarge:
        # Outside the snapshot's own transaction, which the error rolls back.
        RoomSnapshot.objects.filter(room=room).delete()
        raise


@transaction.atomic
def _snapshot_take(*, room: Room, label: str) -> RoomSnapshot:
    room = room_lock(room=room)
    data = room_state_dump(room=room)
    snapshot = RoomSnapshot.objects.create(
        room=room, label=label.strip()[:MAX_LABEL_CHARS], data=data
    )
    stale = RoomSnapshot.objects.filter(room=room).order_by("-pk")[SNAPSHOTS_KEPT:]
    RoomSnapshot.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return snapshot


def room_snapshot_newest(*, room: Room) -> RoomSnapshot | None:
    return RoomSnapshot.objects.filter(room=room).order_by("-pk").first()


@transaction.atomic
def room_snapshot_restore(*, room: Room, snapshot: RoomSnapshot) -> Room:
    """Put the room back as it was when `snapshot` was taken, and tell every open page."""
    room = room_lock(room=room)
    if snapshot.room_id != room.pk:
        raise Conflict("That snapshot belongs to another room.")
    data = snapshot.data
    if data.get("version") != SNAPSHOT_VERSION:
        raise Conflict("That snapshot was taken by an older LogLab and cannot be restored.")
    room_rows_clear(room=room)
    _rows_load(data)
    Room.objects.filter(pk=room.pk).update(**data["room"])
    RoomEvent.objects.filter(room=room, seq__gt=data["last_seq"]).delete()
    room.refresh_from_db()
    event_record(room=room, type=events.RESYNC, payload={"reason": "undo", "label": snapshot.label})
    return room


@transaction.atomic
def room_undo(*, room: Room) -> RoomSnapshot:
    """Restore the newest snapshot and forget it: the learner's last step is undone."""
    room = room_lock(room=room)
    snapshot = room_snapshot_newest(room=room)
    if snapshot is None:
        raise Conflict("Nothing to undo: this is where the lesson started (or undo ran out).")
    room_snapshot_restore(room=room, snapshot=snapshot)
    snapshot.delete()
    return snapshot


def room_snapshot_discard(*, snapshot: RoomSnapshot) -> None:
    """A step that failed changed nothing: its undo point goes with it."""
    RoomSnapshot.objects.filter(pk=snapshot.pk).delete()
