"""The room's websocket: numbered events, in order, and a replay for reconnecting browsers."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1")]


@database_sync_to_async
def make_room():
    room = room_create(title="ws")
    topic_create(room=room, name="orders", partitions=3)
    return room


@database_sync_to_async
def produce(room, key: str, value: str = "v"):
    return records_produce(room=room, topic_name="orders", records=[RecordIn(key=key, value=value)])


async def connect(code: str, since: int | None = None) -> WebsocketCommunicator:
    path = f"/ws/rooms/{code}/" + (f"?since={since}" if since is not None else "")
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_it_delivers_produced_records_in_order_with_their_seq():
    room = await make_room()
    client = await connect(room.code)
    for key in ["alice", "bob", "carol"]:
        await produce(room, key)
    events = [await client.receive_json_from(timeout=3) for _ in range(3)]
    assert [e["seq"] for e in events] == [2, 3, 4]
    assert [e["type"] for e in events] == ["records.produced"] * 3
    assert [e["payload"]["records"][0]["key"] for e in events] == ["alice", "bob", "carol"]
    await client.disconnect()


async def test_it_replays_what_a_reconnecting_client_missed():
    room = await make_room()
    client = await connect(room.code)
    await produce(room, "alice")
    first = await client.receive_json_from(timeout=3)
    await client.disconnect()

    await produce(room, "bob")
    await produce(room, "carol")

    again = await connect(room.code, since=first["seq"])
    missed = [await again.receive_json_from(timeout=3) for _ in range(2)]
    assert [e["seq"] for e in missed] == [first["seq"] + 1, first["seq"] + 2]
    assert [e["payload"]["records"][0]["key"] for e in missed] == ["bob", "carol"]
    assert await again.receive_nothing(timeout=0.2)
    await produce(room, "dave")
    live = await again.receive_json_from(timeout=3)
    assert live["seq"] == first["seq"] + 3
    await again.disconnect()


async def test_it_tells_a_client_that_missed_too_much_to_resync(settings):
    settings.LOGLAB_REPLAY_LIMIT = 2
    room = await make_room()
    for key in ["a", "b", "c", "d"]:
        await produce(room, key)
    client = await connect(room.code, since=0)
    message = await client.receive_json_from(timeout=3)
    assert message == {"type": "resync", "seq": 5, "payload": {}}
    await client.disconnect()


async def test_it_accepts_then_closes_the_socket_of_an_unknown_room_with_4404():
    # Accepted first: a refused handshake is an HTTP 403 a browser cannot tell from any other
    # failure; the close code is what tells it the room is gone and to stop retrying.
    communicator = WebsocketCommunicator(application, "/ws/rooms/NOPE99/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    closed = await communicator.receive_output(timeout=3)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4404)


async def test_it_refuses_a_socket_from_a_foreign_origin():
    room = await make_room()
    communicator = WebsocketCommunicator(
        application, f"/ws/rooms/{room.code}/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_it_answers_an_unknown_message_with_an_error():
    room = await make_room()
    client = await connect(room.code)
    await client.send_to(text_data="not json")
    assert (await client.receive_json_from(timeout=3))["type"] == "error"
    await client.send_json_to({"type": "produce", "key": "x"})
    assert (await client.receive_json_from(timeout=3))["type"] == "error"
    await client.disconnect()
