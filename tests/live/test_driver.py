"""The room driver: the server steps the simulation, one process per room, only when watched."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from messaging.models import Record, Room
from messaging.services.clock import room_clock_set
from messaging.services.driving import drivers
from messaging.services.rooms import room_create
from messaging.services.simulation import producer_create, room_drive, room_release
from messaging.services.topics import topic_create

ORIGIN = [(b"origin", b"http://127.0.0.1")]


@database_sync_to_async
def autoplay_room(running: bool = True) -> Room:
    room = room_create(title="driver")
    topic_create(room=room, name="orders", partitions=3)
    producer_create(
        room=room,
        name="checkout",
        topic_name="orders",
        key_mode="set",
        keys=["alice", "bob"],
        records_per_second=20,
    )
    return room_clock_set(room=room, running=running, speed=1)


async def next_of_type(client: WebsocketCommunicator, type_: str, timeout: float = 3) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        message = await client.receive_json_from(timeout=max(left, 0.01))
        if message.get("type") == type_:
            return message


@pytest.mark.django_db(transaction=True)
async def test_it_steps_a_watched_room_and_sends_one_event_per_step():
    room = await autoplay_room()
    client = WebsocketCommunicator(application, f"/ws/rooms/{room.code}/", headers=ORIGIN)
    assert (await client.connect())[0]
    steps = [await next_of_type(client, "step") for _ in range(5)]
    seqs = [s["seq"] for s in steps]
    assert seqs == sorted(seqs)
    produced = sum(len(p["records"]) for s in steps for p in s["payload"]["produced"])
    assert produced >= 5  # 20 records/s, ~0.5 s of steps
    assert steps[-1]["payload"]["clock"]["now_ms"] > 0
    await client.disconnect()
    assert room.pk not in drivers.tasks


@pytest.mark.django_db(transaction=True)
async def test_it_does_not_step_a_paused_room():
    room = await autoplay_room(running=False)
    client = WebsocketCommunicator(application, f"/ws/rooms/{room.code}/", headers=ORIGIN)
    assert (await client.connect())[0]
    assert await client.receive_nothing(timeout=0.5)
    await client.disconnect()
    assert await database_sync_to_async(Record.objects.count)() == 0


@pytest.mark.django_db(transaction=True)
async def test_a_room_nobody_watches_is_not_stepped():
    room = await autoplay_room()
    await asyncio.sleep(0.4)
    assert room.pk not in drivers.tasks
    assert await database_sync_to_async(Record.objects.count)() == 0


@pytest.mark.django_db
def test_exactly_one_process_drives_a_room():
    room = room_create(title="lease")
    room_clock_set(room=room, running=True)
    assert room_drive(room=room, owner="process-a", wall_ms=100)
    assert not room_drive(room=room, owner="process-b", wall_ms=100)
    assert Room.objects.get(pk=room.pk).sim_time_ms == 100
    room_release(room=room, owner="process-a")
    assert room_drive(room=room, owner="process-b", wall_ms=100)
    assert not room_drive(room=room, owner="process-a", wall_ms=100)
    assert Room.objects.get(pk=room.pk).sim_time_ms == 200


@pytest.mark.django_db
def test_a_driver_takes_over_when_the_lease_runs_out():
    from datetime import timedelta

    from django.utils import timezone

    room = room_create(title="lease")
    assert room_drive(room=room, owner="crashed-process", wall_ms=100)
    Room.objects.filter(pk=room.pk).update(driver_lease_until=timezone.now() - timedelta(seconds=1))
    assert room_drive(room=room, owner="process-b", wall_ms=100)
    assert Room.objects.get(pk=room.pk).driver_owner == "process-b"


@pytest.mark.django_db
def test_it_advances_by_wall_time_times_speed_capped_after_a_stall():
    room = room_create(title="speed")
    room_clock_set(room=room, running=True, speed=4)
    room_drive(room=room, owner="p", wall_ms=100)
    assert Room.objects.get(pk=room.pk).sim_time_ms == 400
    room_drive(room=room, owner="p", wall_ms=60_000)  # the process stalled for a minute
    assert Room.objects.get(pk=room.pk).sim_time_ms == 400 + 4_000
