"""With REDIS_URL, two server processes share one room: a record produced through one reaches
a browser connected to the other, through the real Redis."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
import websockets

from tests.support.server import manage, serve, server_env

pytestmark = pytest.mark.redis


def post_form(page_url: str, action_url: str, data: dict[str, str]) -> int:
    """Post a form the way a browser would: the page first, for the CSRF cookie and token."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(page_url, timeout=10) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    assert token, "the board has a CSRF token in its forms"
    body = urllib.parse.urlencode(data | {"csrfmiddlewaretoken": token.group(1)}).encode()
    request = urllib.request.Request(action_url, data=body, headers={"HX-Request": "true"})
    with opener.open(request, timeout=10) as response:
        return response.status


def test_it_reaches_a_client_of_another_process_through_redis(redis_url, tmp_path):
    env = server_env(
        SQLITE_PATH=str(tmp_path / "shared.sqlite3"),
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"loglab-test-{secrets.token_hex(4)}",
    )
    env.pop("DATABASE_URL", None)
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)

    with serve(env) as first, serve(env) as second:
        ws_url = second.replace("http", "ws") + "/ws/rooms/KAFKA7/"

        with urllib.request.urlopen(first + "/r/KAFKA7/state.json", timeout=10) as response:
            seq_before = json.loads(response.read())["seq"]

        async def scenario() -> dict:
            async with websockets.connect(ws_url, origin="http://127.0.0.1") as socket:
                await asyncio.sleep(0.3)  # the group_add reaches Redis before the produce
                status = await asyncio.to_thread(
                    post_form,
                    first + "/r/KAFKA7/",
                    first + "/r/KAFKA7/produce/",
                    {"topic": "orders", "key": "cross-process", "value": "hello"},
                )
                assert status == 200
                return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))

        event = asyncio.run(scenario())
    assert event["type"] == "records.produced"
    assert event["payload"]["records"][0]["key"] == "cross-process"
    assert event["seq"] == seq_before + 1
