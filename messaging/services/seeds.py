"""What new rooms start with: a sandbox's topic, producer and groups, and the demo room."""

from __future__ import annotations

from django.db import transaction

from messaging.models import Room
from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.replication import SANDBOX_BROKERS, cluster_create
from messaging.services.rooms import DEMO_ROOM_CODE, room_create
from messaging.services.simulation import producer_create
from messaging.services.topics import topic_create

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
    # Three brokers (#16): `orders` keeps one replica, on broker 1, as before; a topic
    # created with replication.factor 3 spreads over all three.
    cluster_create(room=room, brokers=SANDBOX_BROKERS)
    topic_create(room=room, name="orders", partitions=3)
    producer_create(
        room=room,
        name="checkout-svc",
        topic_name="orders",
        key_mode="set",
        keys=["alice", "bob", "carol", "dave"],
        records_per_second=2,
    )
    billing = group_create(
        room=room, group_id="billing", topics=["orders"], auto_offset_reset="earliest"
    )
    for _ in range(2):
        member_join(group=billing, client_id="billing")
    analytics = group_create(
        room=room,
        group_id="analytics",
        topics=["orders"],
        assignor="cooperative-sticky",
        protocol="cooperative",
        auto_offset_reset="earliest",
    )
    member_join(group=analytics, client_id="etl")
    return room


@transaction.atomic
def room_seed_demo() -> tuple[Room, bool]:
    """The demo room `make run` opens on: a sandbox with a few keyed records already in it.

    Idempotent: a second call finds the room and changes nothing.
    """
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


@transaction.atomic
def sandbox_create(*, title: str = "") -> Room:
    """A new sandbox room with its starting topic, producer and groups, whole or not at all."""
    room = room_create(title=title)
    return room_seed_sandbox(room=room)
