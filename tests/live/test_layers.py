from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from messaging.infra.layers import LayerFailed, RoomChannelLayer, RoomRedisLayer


async def test_it_still_delivers_and_expires_messages_with_a_throttled_sweep():
    layer = RoomChannelLayer(expiry=0.05)
    await layer.group_add("room.X", "a.inmemory!1")
    await layer.group_send("room.X", {"type": "room.event", "text": "{}"})
    assert await layer.receive("a.inmemory!1") == {"type": "room.event", "text": "{}"}
    await layer.send("b.inmemory!2", {"type": "old"})
    time.sleep(0.06)
    layer._next_sweep = 0.0  # the next sweep is due
    layer._clean_expired()
    assert "b.inmemory!2" not in layer.channels


async def test_it_sweeps_at_most_once_per_interval():
    layer = RoomChannelLayer()
    layer._clean_expired()
    first = layer._next_sweep
    layer._clean_expired()
    assert layer._next_sweep == first


async def test_it_hands_a_room_event_to_a_direct_socket_and_queues_it_for_the_others():
    layer = RoomChannelLayer()
    got: list[str] = []
    await layer.group_add("room.X", "direct.inmemory!1")
    await layer.group_add("room.X", "queued.inmemory!2")
    layer.direct_add("direct.inmemory!1", got.append)
    await layer.group_send("room.X", {"type": "room.event", "text": '{"seq":1}'})
    await layer.group_send("room.X", {"type": "live.other"})
    assert got == ['{"seq":1}']
    assert await layer.receive("queued.inmemory!2") == {"type": "room.event", "text": '{"seq":1}'}
    # Anything but a room event goes through the queue, for every socket.
    assert await layer.receive("direct.inmemory!1") == {"type": "live.other"}
    layer.direct_discard("direct.inmemory!1")
    await layer.group_send("room.X", {"type": "room.event", "text": '{"seq":2}'})
    assert got == ['{"seq":1}']
    assert await layer.receive("direct.inmemory!1") == {"type": "room.event", "text": '{"seq":2}'}


# --- RoomRedisLayer: Redis pub/sub between processes (two layers stand for two processes) ---


def _two_processes(url: str) -> tuple[RoomRedisLayer, RoomRedisLayer]:
    prefix = f"loglab-test-{secrets.token_hex(4)}"
    return RoomRedisLayer(hosts=[url], prefix=prefix), RoomRedisLayer(hosts=[url], prefix=prefix)


@pytest.mark.redis
async def test_it_publishes_a_group_message_once_and_every_process_delivers_it(redis_url):
    first, second = _two_processes(redis_url)
    try:
        mine = [await first.new_channel() for _ in range(3)]
        theirs = await second.new_channel()
        for channel in mine:
            await first.group_add("room.ABC", channel)
        await second.group_add("room.ABC", theirs)
        event = {"type": "room.event", "text": '{"seq":1}'}
        await first.group_send("room.ABC", event)
        async with asyncio.timeout(5):
            for channel in mine:
                assert await first.receive(channel) == event
            assert await second.receive(theirs) == event
    finally:
        await first.flush()
        await second.flush()


@pytest.mark.redis
async def test_it_tells_every_socket_when_its_subscription_fails(redis_url):
    layer, _other = _two_processes(redis_url)
    try:
        channel = await layer.new_channel()
        await layer.group_add("room.ABC", channel)
        # The connection under the subscription dies (as when Redis restarts).
        subscription = layer._subscription()
        await subscription.pubsub.connection.disconnect()
        with pytest.raises(LayerFailed):
            async with asyncio.timeout(5):
                await layer.receive(channel)
        # The next socket's group_add subscribes afresh, and its messages arrive.
        again = await layer.new_channel()
        await layer.group_add("room.ABC", again)
        await layer.group_send("room.ABC", {"type": "room.event", "text": "{}"})
        async with asyncio.timeout(5):
            assert await layer.receive(again) == {"type": "room.event", "text": "{}"}
    finally:
        await layer.flush()


async def test_a_socket_gets_an_event_sent_from_another_thread_on_its_own_loop():
    from messaging.live.consumers import RoomConsumer

    consumer = RoomConsumer()
    consumer.loop = asyncio.get_running_loop()
    consumer.closed = False
    consumer.direct_pending = 0
    consumer.direct_tasks = set()
    consumer.send_lock = asyncio.Lock()
    consumer.channel_layer = RoomChannelLayer()
    sent: list[tuple[str, asyncio.AbstractEventLoop]] = []

    async def send(text_data=None, **_):
        sent.append((text_data, asyncio.get_running_loop()))

    consumer.send = send
    await asyncio.to_thread(consumer._direct, '{"seq":7}')  # a thread with no loop of its own
    for _ in range(50):
        if sent:
            break
        await asyncio.sleep(0.01)
    assert sent == [('{"seq":7}', consumer.loop)]
