"""Websocket handshakes on a real uvicorn, with a real websocket client.

An unknown room is accepted, then closed with 4404 (a browser can tell it from any failure and
stops retrying); a path nobody serves is an HTTP 404 with no traceback in the server's log; a
foreign origin is still refused.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live.processes import manage, server_env, servers, setup_script

CREATE_ROOM = """
from messaging.services.rooms import room_create
print(room_create(title="handshakes").code)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handshakes")
    env = server_env(SQLITE_PATH=str(tmp / "db.sqlite3"))
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    manage("migrate", "--noinput", env=env)
    code = setup_script(env, CREATE_ROOM)
    with servers(env, tmp) as [running]:
        running.room_code = code
        yield running


async def close_code(url: str, origin: str) -> int:
    async with websockets.connect(url, origin=origin) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    return closed.value.rcvd.code


def test_it_accepts_a_socket_for_an_unknown_room_then_closes_it_with_4404(server):
    origin = server.base
    code = asyncio.run(close_code(f"{server.ws}/ws/rooms/NOPE99/", origin))
    assert code == 4404
    assert "Traceback" not in server.log()


def test_a_known_room_still_connects(server):
    async def first_silence() -> bool:
        url = f"{server.ws}/ws/rooms/{server.room_code}/"
        async with websockets.connect(url, origin=server.base) as socket:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(socket.recv(), 0.5)  # open, and nothing to say yet
            return True

    assert asyncio.run(first_silence())


@pytest.mark.parametrize(
    "path",
    [
        "/ws/rooms/../x/",
        "/ws/rooms/%00/",
        "/ws/rooms/ABCDEFGHIJKLMNOPQ/",  # 17 characters: longer than any join code
        "/ws/rooms/ABC",
        "/ws/elsewhere/",
    ],
)
def test_a_path_nobody_serves_is_a_404_without_a_traceback(server, path):
    async def handshake() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(server.ws + path, origin=server.base):
                pass
        return refused.value.response.status_code

    assert asyncio.run(handshake()) == 404
    log = server.log()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log


def test_a_foreign_origin_is_still_refused(server):
    async def handshake(path: str) -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(server.ws + path, origin="http://evil.example"):
                pass
        return refused.value.response.status_code

    assert asyncio.run(handshake(f"/ws/rooms/{server.room_code}/")) == 403
    assert asyncio.run(handshake("/ws/rooms/%00/")) == 403
