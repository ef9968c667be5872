"""Presence across two real server processes sharing one database and one Redis.

A student with a tab on each process stays online when one tab closes; the pages of a process
that is killed (no close frames, nothing written) go offline once their rows are stale; the
roster, read through the other process, counts the truth all along.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import urllib.request

import pytest
import websockets

from tests.live.processes import Browserless, manage, server_env, servers, setup_script

pytestmark = pytest.mark.redis

SETUP = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from messaging.services.classroom import classroom_create
from messaging.services.groups import group_create
from messaging.services.topics import topic_create
owner = get_user_model().objects.create_user("teacher", password="long enough password")
room = classroom_create(owner=owner, title="two processes")
topic_create(room=room, name="payments", partitions=4)
group_create(room=room, group_id="fraud", topics=["payments"])
session = SessionStore()
session[SESSION_KEY] = str(owner.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = owner.get_session_auth_hash()
session.create()
print(room.code, session.session_key)
"""

# Rows refreshed every second and stale after three: a killed process's pages go offline
# within about four seconds instead of forty.
REFRESH_S, WINDOW_S = 1, 3


def roster(base: str, code: str, owner_session: str) -> tuple[int, dict[str, str]]:
    """The presenter's roster as the instructor's browser fetches it: online count, and each
    student's row class (is-online / is-offline)."""
    request = urllib.request.Request(
        f"{base}/r/{code}/present/students/",
        headers={"Cookie": f"sessionid={owner_session}", "HX-Request": "true"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    online = int(re.search(r'class="online-count">(\d+)<', page).group(1))
    rows = dict(
        (name, state)
        for state, name in re.findall(
            r'class="(is-online|is-offline)">.*?class="roster-name">([^<]+)<', page, re.S
        )
    )
    return online, rows


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_two_processes_share_one_roster_and_a_killed_process_pages_go_offline(redis_url, tmp_path):
    env = server_env(
        SQLITE_PATH=str(tmp_path / "shared.sqlite3"),
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"loglab-presence-{secrets.token_hex(4)}",
        LOGLAB_STUDENT_SEEN_REFRESH_S=str(REFRESH_S),
        LOGLAB_STUDENT_SEEN_WINDOW_S=str(WINDOW_S),
    )
    env.pop("DATABASE_URL", None)
    manage("migrate", "--noinput", env=env)
    code, owner_session = setup_script(env, SETUP).split()

    with servers(env, tmp_path, count=2) as [first, second]:
        ada, bob = Browserless(first.base), Browserless(second.base)
        for student, name in ((ada, "Ada"), (bob, "Bob")):
            assert student.post(f"/j/{code}/", f"/j/{code}/", {"display_name": name}) == 200
            status = student.post(
                f"/r/{code}/me/",
                f"/r/{code}/me/consumer/",
                {"action": "join", "group_id": "fraud"},
            )
            assert status == 200

        def seen() -> tuple[int, dict[str, str]]:
            return roster(second.base, code, owner_session)  # the instructor is on the second

        async def page(server, student):
            return await websockets.connect(
                f"{server.ws}/ws/rooms/{code}/",
                origin=server.base,
                additional_headers={"Cookie": student.cookie_header()},
            )

        async def scenario() -> None:
            ada_on_first = await page(first, ada)
            ada_on_second = await page(second, ada)
            bob_on_first = await page(first, bob)  # Bob's only page, on the process that dies
            both = {"Ada": "is-online", "Bob": "is-online"}
            assert await asyncio.to_thread(eventually, lambda: seen() == (2, both))

            # Ada closes one tab: her other tab, on the other process, keeps her online.
            await ada_on_first.close()
            await asyncio.sleep(1)
            assert await asyncio.to_thread(seen) == (2, both)

            # The first process crashes with Bob's page open: no close, nothing written. Its
            # rows go stale and the second process sweeps them: Bob is offline, in bounded time.
            await asyncio.to_thread(first.kill)
            gone = {"Ada": "is-online", "Bob": "is-offline"}
            started = time.monotonic()
            assert await asyncio.to_thread(eventually, lambda: seen() == (1, gone), 15)
            assert time.monotonic() - started < WINDOW_S + REFRESH_S + 3
            assert "page closed" in await asyncio.to_thread(
                lambda: second_roster_row(second.base, code, owner_session, "Bob")
            )
            bob_on_first.transport.abort()

            # Ada's last tab closes: nobody online.
            await ada_on_second.close()
            none = {"Ada": "is-offline", "Bob": "is-offline"}
            assert await asyncio.to_thread(eventually, lambda: seen() == (0, none))

        asyncio.run(scenario())
        assert "Traceback" not in second.log()


def second_roster_row(base: str, code: str, owner_session: str, name: str) -> str:
    request = urllib.request.Request(
        f"{base}/r/{code}/present/students/",
        headers={"Cookie": f"sessionid={owner_session}", "HX-Request": "true"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    return page.split(f'class="roster-name">{name}<')[1].split("</tr>")[0]
