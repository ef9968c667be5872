"""`X-LogLab-Clock` on every answer of the room APIs (REST Proxy, SQS).

A learner's script lives in real time: a visibility timeout or a session timeout it waits for
passes on the room's clock. When that clock is paused or faster than real time, the script
would see something no AWS region or Kafka cluster does, so every answer says so: "running 1x",
"running 4x", "paused at 00:02:10".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from messaging.engine import clock as clocks
from messaging.selectors import room_find

HEADER = "X-LogLab-Clock"
_ROOM_API = re.compile(r"^/api/(?:kafka|sqs)/([A-Za-z0-9-]{1,16})(?:/|$)")


def clock_words(clock: clocks.VirtualClock) -> str:
    if not clock.running:
        return f"paused at {clocks.format_time(clock.now_ms)}"
    speed = f"{clock.speed:g}"
    return f"running {speed}x"


class ClockHeaderMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = _ROOM_API.match(request.path)
        if match is not None:
            try:
                room = room_find(code=match.group(1))
            except DatabaseError:
                return response  # the answer already says what went wrong
            if room is not None:
                response[HEADER] = clock_words(room.clock())
        return response
