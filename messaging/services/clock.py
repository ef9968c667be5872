"""The room's virtual clock: simulated time that session timeouts and retention run on."""

from __future__ import annotations

from django.db import transaction

from messaging import events
from messaging.engine import clock as clocks
from messaging.errors import Invalid
from messaging.models import Room
from messaging.services.events import event_record, room_lock
from messaging.services.simulation import room_step


@transaction.atomic
def room_clock_set(*, room: Room, running: bool | None = None, speed: float | None = None):
    room = room_lock(room=room)
    clock = room.clock()
    try:
        if speed is not None:
            clock = clocks.set_speed(clock, float(speed))
    except (TypeError, ValueError) as error:
        raise Invalid(str(error), field="speed") from None
    if running is True and not clock.running:
        clock = clocks.play(clock)
    elif running is False and clock.running:
        clock = clocks.pause(clock)
    room.clock_running, room.clock_speed = clock.running, clock.speed
    room.save(update_fields=["clock_running", "clock_speed"])
    event_record(room=room, type=events.CLOCK_CHANGED, payload=clocks.clock_payload(clock))
    return room


def room_clock_step(*, room: Room, step_ms: int = clocks.DEFAULT_STEP_MS) -> Room:
    """Move simulated time forward by `step_ms` with everything that happens meanwhile: the
    room's simulation step (producers, session timeouts, consumers, the log cleaner)."""
    room_step(room=room, step_ms=step_ms)
    return Room.objects.get(pk=room.pk)
