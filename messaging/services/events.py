from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging.errors import NotFound
from messaging.events import event_type_check
from messaging.infra import checkpointer
from messaging.infra.broadcast import broadcast_event
from messaging.models import Room, RoomEvent


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
    rooms = Room.objects.filter(pk=room.pk)
    rooms.update(last_seq=F("last_seq") + 1, last_active_at=timezone.now())
    room.last_seq = rooms.values_list("last_seq", flat=True).get()
    event = RoomEvent.objects.create(
        room=room, seq=room.last_seq, type=event_type_check(type), payload=payload
    )
    message = event.as_message()
    code = room.code
    transaction.on_commit(lambda: _committed(code, message))
    return event


def _committed(code: str, message: dict) -> None:
    broadcast_event(code, message)
    checkpointer.note_commit()
