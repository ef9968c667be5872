"""Undo for lesson rooms: the room's state is snapshotted before each of the learner's actions.

Every control of the board and the queues page is a POST under `/r/<code>/`, so one middleware
covers them all, present and future, without touching their views. The lesson panel's own
endpoints (`/r/<code>/lesson/...`: undo itself, reset, hints) are not steps of the lesson and
take no snapshot. A refused action (any 4xx or 5xx) changed nothing, so its snapshot is dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from messaging import selectors
from messaging.models import join_code_normalise
from messaging.services.snapshots import (
    SnapshotTooLarge,
    room_snapshot_discard,
    room_snapshot_take,
)

log = logging.getLogger(__name__)

_ROOM_POST = re.compile(r"^/r/(?P<code>[^/]+)/(?P<rest>.*)$")
# What the panel says undo will take back, by the view that handled the step.
_STEP_WORDS = {
    "record_produce": "Produce a record",
    "topic_new": "Create a topic",
    "clock_control": "Clock",
    "producer_new": "Add a producer",
    "producer_control": "Change a producer",
    "group_new": "Create a consumer group",
    "member_new": "Add a consumer",
    "member_control": "Consumer",
    "offsets_reset": "Reset offsets",
    "partitions_add": "Add partitions",
    "topic_config": "Configure a topic",
}


def _label(request: HttpRequest, view_name: str) -> str:
    words = _STEP_WORDS.get(view_name) or view_name.replace("_", " ").capitalize()
    action = request.POST.get("action", "")
    if action and len(action) <= 20:
        words = f"{words}: {action}"
    return words


class LessonUndoMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        snapshot = getattr(request, "_lesson_snapshot", None)
        if snapshot is not None and response.status_code >= 400:
            room_snapshot_discard(snapshot=snapshot)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        if request.method != "POST":
            return None
        match = _ROOM_POST.match(request.path_info)
        if match is None or match["rest"].startswith("lesson/"):
            return None

        code = join_code_normalise(str(view_kwargs.get("code", "")))
        room = selectors.lesson_room_find(code=code)
        if room is None:
            return None

        resolved = getattr(request, "resolver_match", None)
        name = resolved.url_name if resolved and resolved.url_name else "step"
        try:
            request._lesson_snapshot = room_snapshot_take(room=room, label=_label(request, name))
        except SnapshotTooLarge as error:
            log.info("no undo for a step in %s: %s", room.code, error.message)
        return None
