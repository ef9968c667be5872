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


def room_seed_sandbox(*, room: Room) -> Room:
    """What a new room starts with, so there is something to watch at the first Play.

    Topic `orders` (3 partitions), a producer cycling through four customer keys, and two
    groups reading the topic: `billing` (range, eager, at-least-once) with two consumers and
    `analytics` (cooperative-sticky) with one.
    """
    from messaging.services.groups import group_create, member_join
    from messaging.services.simulation import producer_create
    from messaging.services.topics import topic_create

    topic_create(room=room, name="orders", partitions=3)
    producer_create(
        room=room, name="checkout-svc", topic_name="orders", key_mode="set",
        keys=["alice", "bob", "carol", "dave"], records_per_second=2,
    )
    billing = group_create(
        room=room, group_id="billing", topics=["orders"], auto_offset_reset="earliest"
    )
    for _ in range(2):
        member_join(group=billing, client_id="billing")
    analytics = group_create(
        room=room, group_id="analytics", topics=["orders"], assignor="cooperative-sticky",
        protocol="cooperative", auto_offset_reset="earliest",
    )
    member_join(group=analytics, client_id="etl")
    return room


@transaction.atomic
def room_seed_demo() -> tuple[Room, bool]:
    """The demo room `make run` opens on: a sandbox with a few keyed records already in it.

    Idempotent: a second call finds the room and changes nothing.
    """
    from messaging.services.records import RecordIn, records_produce

    room = Room.objects.filter(code=DEMO_ROOM_CODE).first()
    if room is not None:
        return room, False
    room = Room.objects.create(code=DEMO_ROOM_CODE, title="LogLab demo")
    room_seed_sandbox(room=room)
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key=k, value=v) for k, v in DEMO_RECORDS],
        producer="checkout-svc",
    )
    return room, True
