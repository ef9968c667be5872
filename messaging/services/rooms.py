from __future__ import annotations

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction

from messaging.errors import Invalid
from messaging.models import Room

# Join codes are read off a projector and typed on phones: no 0/O, 1/I/L look-alikes.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6


def join_code_generate() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def join_code_normalise(raw: str) -> str:
    """What a person typed ("k7q-4mx ") as a stored code ("K7Q4MX")."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def room_create(*, title: str = "", kind: str = Room.Kind.SANDBOX, owner=None) -> Room:
    title = title.strip()
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
                return Room.objects.create(
                    code=join_code_generate(), title=title, kind=kind, owner=owner
                )
        except IntegrityError:
            continue  # the code was taken: draw again
    raise RuntimeError("could not draw a free join code")


DEMO_ROOM_CODE = "KAFKA7"
DEMO_RECORDS = [
    ("alice", "order #1001 created"),
    ("bob", "order #1002 created"),
    ("carol", "order #1003 created"),
    ("alice", "order #1001 paid"),
    ("dave", "order #1004 created"),
    ("bob", "order #1002 paid"),
    ("alice", "order #1001 shipped"),
    ("carol", "order #1003 cancelled"),
]


@transaction.atomic
def room_seed_demo() -> tuple[Room, bool]:
    """The demo room `make run` opens on: topic `orders`, 3 partitions, a few keyed records.

    Idempotent: a second call finds the room and changes nothing.
    """
    from messaging.services.records import RecordIn, records_produce
    from messaging.services.topics import topic_create

    room = Room.objects.filter(code=DEMO_ROOM_CODE).first()
    if room is not None:
        return room, False
    room = Room.objects.create(code=DEMO_ROOM_CODE, title="LogLab demo")
    topic_create(room=room, name="orders", partitions=3)
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key=k, value=v) for k, v in DEMO_RECORDS],
        producer="checkout-svc",
    )
    return room, True
