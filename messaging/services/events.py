from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from messaging.errors import NotFound
from messaging.events import event_type_check
from messaging.infra import checkpointer
from messaging.infra.broadcast import broadcast_event
from messaging.models import Room, RoomEvent

# Called with a room's pk after a transaction that recorded events in it commits (the room's
# timeline captures the board then: services/timeline.py, registered in apps.py).
committed_hooks: list[Callable[[int], None]] = []


def room_lock(*, room: Room | int) -> Room:
    """Take the room's row lock: every write in a room is serialised behind it.

    That is what numbers the room's events without a gap, and it orders the partition writes
    of one room. SQLite ignores row locks, but its IMMEDIATE transactions serialise writers.
    """
    room_id = room.pk if isinstance(room, Room) else room
    try:
        return Room.objects.select_for_update().get(pk=room_id)
    except Room.DoesNotExist:
        raise NotFound("That room does not exist (it may have expired).") from None


def event_record(*, room: Room, type: str, payload: dict[str, Any]) -> RoomEvent:
    """Number an event in the room's stream and broadcast it once the transaction commits.

    The caller must hold the room's lock (see `room_lock`) and be inside a transaction.
    """
    # Counted in the database, not on this instance: nested services hold their own copies of
    # the room, and each must see the seq the others took.
    # One statement that counts and reads back (RETURNING: SQLite 3.35+, PostgreSQL): every
    # write of every room passes here.
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ops.quote_name(Room._meta.db_table)} SET last_seq = last_seq + 1, "
            "last_active_at = %s WHERE id = %s RETURNING last_seq",
            [ops.adapt_datetimefield_value(timezone.now()), room.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("That room does not exist (it may have expired).")
    room.last_seq = row[0]
    event = RoomEvent.objects.create(
        room=room, seq=room.last_seq, type=event_type_check(type), payload=payload
    )
    message = event.as_message()
    code, pk = room.code, room.pk
    transaction.on_commit(lambda: _committed(code, message, pk))
    return event


def _committed(code: str, message: dict, pk: int) -> None:
    broadcast_event(code, message)
    checkpointer.note_commit()
    for hook in committed_hooks:
        hook(pk)
