from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.errors import Invalid
from messaging.models import Room
from messaging.services.text import name_validate

# Join codes are read off a projector and typed on phones: no 0/O, 1/I/L look-alikes.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6


def join_code_generate() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def room_create(*, title: str = "", kind: str = Room.Kind.SANDBOX, owner=None) -> Room:
    title = name_validate(title.strip(), field="title", what="A room title")
    if len(title) > settings.LOGLAB_MAX_ROOM_TITLE:
        raise Invalid(
            f"A room title has at most {settings.LOGLAB_MAX_ROOM_TITLE} characters.",
            field="title",
        )
    if kind not in Room.Kind.values:
        raise Invalid(f"Unknown room kind {kind!r}.", field="kind")
    for _ in range(10):
        try:
            with transaction.atomic():
                room = Room.objects.create(
                    code=join_code_generate(), title=title, kind=kind, owner=owner
                )
        except IntegrityError:
            continue  # the code was taken: draw again
        # Creating a room is when old ones are swept: once this one is safely in (at once when
        # no transaction is open, else when the caller's commits).
        transaction.on_commit(rooms_expire_maybe)
        return room
    raise RuntimeError("could not draw a free join code")


DEMO_ROOM_CODE = "KAFKA7"


# --- activity and expiry -----------------------------------------------------------------------

log = logging.getLogger(__name__)

# A room's last_active_at moves with every event it records; a page that only watches bumps it
# at most this often, so watching costs a read, not a write per connect.
ROOM_TOUCH_EVERY = timedelta(minutes=5)
# The opportunistic sweep runs at most this often per server process.
EXPIRE_SWEEP_EVERY_S = 600.0
_last_sweep = {"at": None}
_sweep_lock = threading.Lock()


def room_touch(*, room: Room) -> bool:
    """Someone is looking at `room` (a page, a websocket): it is not idle. Writes only when
    the stored activity is older than ROOM_TOUCH_EVERY. Returns whether it wrote."""
    now = timezone.now()
    if room.last_active_at is not None and now - room.last_active_at < ROOM_TOUCH_EVERY:
        return False
    Room.objects.filter(pk=room.pk).update(last_active_at=now)
    room.last_active_at = now
    return True


def room_idle_cutoff():
    return timezone.now() - timedelta(hours=float(settings.LOGLAB_ROOM_IDLE_HOURS))


def rooms_expire(*, before=None) -> list[tuple[str, str]]:
    """Delete every room idle since `before` (default: LOGLAB_ROOM_IDLE_HOURS ago) with all its
    data, except the demo room. Returns the (code, title) of each room deleted."""
    cutoff = before or room_idle_cutoff()
    deleted = []
    idle = Room.objects.filter(last_active_at__lt=cutoff).exclude(code=DEMO_ROOM_CODE)
    for room in idle.only("pk", "code", "title").order_by("last_active_at"):
        with transaction.atomic():
            # Looked at again under the lock: the room may have woken up since the query.
            locked = Room.objects.select_for_update().filter(pk=room.pk).first()
            if locked is None or locked.last_active_at >= cutoff:
                continue
            locked.delete()
        deleted.append((room.code, room.title))
    return deleted


def rooms_expire_maybe(*, now: float | None = None) -> list[tuple[str, str]] | None:
    """`rooms_expire`, at most once every EXPIRE_SWEEP_EVERY_S in this process; None when it
    was not time yet."""
    now = time.monotonic() if now is None else now
    with _sweep_lock:
        last = _last_sweep["at"]
        if last is not None and now - last < EXPIRE_SWEEP_EVERY_S:
            return None
        _last_sweep["at"] = now
    try:
        deleted = rooms_expire()
    except Exception:
        # A failed sweep must never fail the request that happened to trigger it.
        log.exception("expiring idle rooms failed")
        return []
    if deleted:
        log.info("expired %d idle room(s): %s", len(deleted), ", ".join(c for c, _ in deleted))
    return deleted
