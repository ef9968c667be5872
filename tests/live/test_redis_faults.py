"""Redis restarted under a server with REDIS_URL: no 500, close codes, recovery.

The test runs its own redis-server on a spare port and kills it under a live uvicorn: open
sockets are closed with 1011 (the browser reconnects and resyncs), a socket opened during the
outage is accepted and closed the same way (never an HTTP 500), the log says so once rather
than once per broadcast, and once Redis is back the first new socket works and the room's
broadcasts arrive again.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.live.processes import Redis, manage, server_env, servers, setup_script

pytestmark = pytest.mark.redis

RUNNING_ROOM = """
from messaging.services.clock import room_clock_set
from messaging.services.rooms import room_create
room = room_create(title="redis faults")
room_clock_set(room=room, running=True, speed=1)
print(room.code)
"""


async def next_step(socket, timeout: float = 10) -> dict:
    """The next `step` event: the room's driver broadcasts one per tick while the clock runs."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if message.get("type") == "step":
                return message


async def closed_with(socket, timeout: float = 15) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


def test_a_redis_restart_closes_sockets_with_a_code_and_the_server_recovers(tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        env = server_env(
            SQLITE_PATH=str(tmp_path / "db.sqlite3"),
            REDIS_URL=redis.url,
            CHANNELS_PREFIX=f"loglab-faults-{secrets.token_hex(4)}",
            LOGLAB_RATE_BACKEND="memory",  # this test is about the channel layer
        )
        env.pop("DATABASE_URL", None)
        manage("migrate", "--noinput", env=env)
        code = setup_script(env, RUNNING_ROOM)
        with servers(env, tmp_path) as [server]:
            url = f"{server.ws}/ws/rooms/{code}/"

            async def scenario() -> tuple[int, int]:
                async with websockets.connect(url, origin=server.base) as before:
                    await next_step(before)  # live: the broadcasts reach it through Redis
                    redis.kill()
                    dropped = await closed_with(before)
                # A socket opened during the outage: accepted, then closed with a code.
                async with websockets.connect(url, origin=server.base) as during:
                    refused = await closed_with(during)
                redis.start()
                # The first socket after Redis is back works, and so do the broadcasts.
                async with websockets.connect(url, origin=server.base) as after:
                    await next_step(after)
                    await next_step(after)
                return dropped, refused

            dropped, refused = asyncio.run(scenario())
            assert dropped == 1011
            assert refused == 1011
            log = server.log()
            assert "Exception in ASGI application" not in log
            assert " 500" not in log
            # One line when the outage starts, one when it ends: not one per broadcast.
            assert log.count("channel layer failed") == 1, log[-3000:]
            assert log.count("channel layer is back") >= 1, log[-3000:]
    finally:
        redis.kill()
