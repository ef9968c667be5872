"""With REDIS_URL, students whose pages are served by different server processes are in one
room: each joins the group through their own process, and both see both rebalances."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
import websockets

from tests.support.server import ROOT, manage, serve, server_env

pytestmark = pytest.mark.redis

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from messaging.services.classroom import classroom_create
from messaging.services.groups import group_create
from messaging.services.topics import topic_create
owner = get_user_model().objects.create_user("teacher", password="long enough password")
room = classroom_create(owner=owner, title="two processes")
topic_create(room=room, name="payments", partitions=4)
group_create(room=room, group_id="fraud", topics=["payments"])
print(room.code)
"""


class Student:
    """A phone: its own cookies (its session), talking to one server process."""

    def __init__(self, base: str, code: str) -> None:
        self.base, self.code = base, code
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def post(self, page: str, action: str, data: dict[str, str]) -> int:
        with self.opener.open(self.base + page, timeout=10) as response:
            token = re.search(
                r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()
            )
        assert token, f"{page} has a CSRF token in its form"
        body = urllib.parse.urlencode(data | {"csrfmiddlewaretoken": token.group(1)}).encode()
        request = urllib.request.Request(
            self.base + action, data=body, headers={"HX-Request": "true"}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status

    def join_room(self, name: str) -> None:
        assert self.post(f"/j/{self.code}/", f"/j/{self.code}/", {"display_name": name}) == 200

    def join_group(self, group: str) -> None:
        status = self.post(
            f"/r/{self.code}/me/",
            f"/r/{self.code}/me/consumer/",
            {"action": "join", "group_id": group},
        )
        assert status == 200

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def test_students_on_different_processes_see_one_room_through_redis(redis_url, tmp_path):
    env = server_env(
        SQLITE_PATH=str(tmp_path / "shared.sqlite3"),
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"loglab-test-{secrets.token_hex(4)}",
    )
    env.pop("DATABASE_URL", None)
    manage("migrate", "--noinput", env=env)
    code = (
        subprocess.run(
            [sys.executable, "-c", SETUP],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    with serve(env) as first, serve(env) as second:
        ada, bob = Student(first, code), Student(second, code)
        ada.join_room("Ada")
        bob.join_room("Bob")

        async def listen(
            student: Student,
            base: str,
            heard: list[dict],
            ready: asyncio.Event,
            done: asyncio.Event,
        ) -> None:
            url = base.replace("http", "ws") + f"/ws/rooms/{code}/"
            async with websockets.connect(
                url,
                origin="http://127.0.0.1",
                additional_headers={"Cookie": student.cookie_header()},
            ) as socket:
                ready.set()
                while not done.is_set():
                    try:
                        message = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                    except TimeoutError:
                        continue
                    if message.get("type") == "group.changed":
                        heard.append(message)

        async def scenario() -> tuple[list[dict], list[dict]]:
            done = asyncio.Event()
            heard_ada: list[dict] = []
            heard_bob: list[dict] = []
            ada_ready, bob_ready = asyncio.Event(), asyncio.Event()
            first_task = asyncio.create_task(listen(ada, first, heard_ada, ada_ready, done))
            second_task = asyncio.create_task(listen(bob, second, heard_bob, bob_ready, done))
            await asyncio.wait_for(asyncio.gather(ada_ready.wait(), bob_ready.wait()), 10)
            await asyncio.sleep(0.3)  # both group_adds reach Redis before the joins
            await asyncio.to_thread(ada.join_group, "fraud")  # through the first process
            await asyncio.to_thread(bob.join_group, "fraud")  # through the second
            for _ in range(100):
                if (
                    len(heard_ada) >= 2
                    and len(heard_bob) >= 2
                    and (heard_ada[-1]["seq"] == heard_bob[-1]["seq"])
                ):
                    break
                await asyncio.sleep(0.1)
            done.set()
            await asyncio.gather(first_task, second_task)
            return heard_ada, heard_bob

        heard_ada, heard_bob = asyncio.run(scenario())

    # Each join is one rebalance, and each student heard both, whichever process served it.
    assert [m["seq"] for m in heard_ada] == [m["seq"] for m in heard_bob]
    assert len(heard_ada) >= 2
    assert heard_ada[-1]["payload"]["generation"] >= 2
