"""A student's phone on another host (run inside a network namespace by test_lan_classroom.py).

It opens the join URL the presenter view shows, posts the join form with its CSRF token and
cookie, then opens the room's websocket with the session cookie and the LAN Origin, as a
phone's browser would. It reports on stdout, one line per step, and waits for two of the
room's `clock.changed` events (the test triggers them) with a ping in between: the socket stays
live. Standard library plus `websockets`, nothing of Django.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import urllib.parse
import urllib.request

from websockets.sync.client import connect

TIMEOUT_S = 30


def say(line: str) -> None:
    print(line, flush=True)


def main(join_url: str, code: str, name: str) -> int:
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(join_url))
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(join_url, timeout=TIMEOUT_S) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if token is None:
        say(f"FAIL no join form at {join_url}")
        return 1
    say(f"JOIN-PAGE {response.status}")
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "display_name": name}
    ).encode()
    request = urllib.request.Request(
        join_url, data=form, headers={"Origin": origin, "Referer": join_url}
    )
    with opener.open(request, timeout=TIMEOUT_S) as response:  # follows the redirect to me/
        say(f"JOINED {response.status} {urllib.parse.urlsplit(response.url).path}")
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    socket_url = origin.replace("http", "ws", 1) + f"/ws/rooms/{code}/"
    with connect(
        socket_url, origin=origin, additional_headers={"Cookie": cookies}, open_timeout=TIMEOUT_S
    ) as socket:
        say("CONNECTED")
        for round_ in (1, 2):
            while True:
                event = json.loads(socket.recv(timeout=TIMEOUT_S))
                if event.get("type") == "clock.changed":
                    break
            say(f"EVENT{round_} {json.dumps(event['payload'], sort_keys=True)}")
            if round_ == 1:
                socket.ping().wait(TIMEOUT_S)
                say("ALIVE")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
