"""A room's timeline: the board as it was at any kept event, read-only; forking a sandbox from
there; instructors' recordings and their replay links (services/timeline.py keeps the frames)."""

from __future__ import annotations

from bisect import bisect_right

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine.clock import format_time
from messaging.errors import Invalid, NotFound
from messaging.models import Room, TimelineRecording
from messaging.permissions import DRIVE, Forbidden, request_act
from messaging.services import timeline
from messaging.views._htmx import form_int, handles_errors
from messaging.views.board import board_context

# The speeds "Play" steps through frames at, in frames a second.
PLAY_SPEEDS = [1, 2, 5, 10, 20]
JUMP_EVENTS = 10


class PastViewer:
    """The `viewer` of a past board: nobody may act on it, so its controls are not drawn."""

    kind = "visitor"
    is_classroom = False
    follows = False
    follow_path = ""
    member_pk = None
    can: dict[str, bool] = {}
    lock_note = "a past moment: read-only"


def _seq(request: HttpRequest, default: int) -> int:
    seq = form_int(request.GET.get("seq") or request.POST.get("seq"), "seq", default=default)
    return max(0, seq)


def _past(
    request: HttpRequest, room: Room, recording: TimelineRecording | None, *, page_url: str
) -> HttpResponse:
    if recording is None:
        timeline.timeline_capture(room=room)  # the newest moment, if its capture was put off
    marks = timeline.timeline_marks(room=room, recording=recording)
    if not marks:
        raise NotFound(
            "Nothing was recorded here yet."
            if recording
            else "This room's timeline is empty: nothing has happened in it yet."
        )
    seqs = [mark.seq for mark in marks]
    frame = timeline.frame_at(room=room, seq=_seq(request, seqs[-1]), recording=recording)
    index = seqs.index(frame.seq)

    def at_or_before(seq: int) -> int:
        return seqs[max(0, bisect_right(seqs, seq) - 1)]

    def draw(scratch: Room) -> str:
        context = board_context(scratch)
        context.update(viewer=PastViewer(), past=True)
        return render_to_string("messaging/timeline.html#past-board", context, request)

    context = {
        "room": room,
        "recording": recording,
        "frame": frame,
        "when": format_time(frame.sim_time_ms),
        "index": index,
        "last_index": len(seqs) - 1,
        "marks": [[m.seq, m.sim_time_ms] for m in marks],
        "back": at_or_before(frame.seq - JUMP_EVENTS),
        "previous": seqs[max(0, index - 1)],
        "next": seqs[min(len(seqs) - 1, index + 1)],
        "forward": at_or_before(frame.seq + JUMP_EVENTS),
        "is_newest": index == len(seqs) - 1,
        "page_url": page_url,
        "speeds": PLAY_SPEEDS,
        "board_html": timeline.frame_render(room=room, frame=frame, render=draw),
        "recordings": None if recording else list(TimelineRecording.objects.filter(room=room)),
        "may_record": recording is None and _may_record(request, room),
        "stored_bytes": None if recording else timeline.room_timeline_bytes(room=room),
        "max_bytes": timeline.TIMELINE_MAX_BYTES,
    }
    if request.htmx:
        return render(request, "messaging/timeline.html#past", context)
    return render(request, "messaging/timeline.html", context)


def _may_record(request: HttpRequest, room: Room) -> bool:
    try:
        request_act(request, room, DRIVE)
    except Forbidden:
        return False
    return True


@require_GET
@handles_errors
def room_timeline(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.code != code:
        return redirect("room_timeline", code=room.code)
    return _past(request, room, None, page_url=reverse("room_timeline", args=[room.code]))


def _recording(token: str) -> TimelineRecording:
    recording = TimelineRecording.objects.filter(token=token[:32]).select_related("room").first()
    if recording is None:
        raise NotFound("No such recording (it may have been deleted, or its room expired).")
    return recording


@require_GET
@handles_errors
def recording_replay(request: HttpRequest, token: str) -> HttpResponse:
    """A recording, at a link anyone who has it may open (the link is the permission)."""
    recording = _recording(token)
    return _past(
        request,
        recording.room,
        recording,
        page_url=reverse("recording_replay", args=[recording.token]),
    )


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_POST
@handles_errors
def timeline_fork(request: HttpRequest, code: str) -> HttpResponse:
    """A new sandbox from the frame shown: anyone who may see the board may fork it (the fork
    is theirs; the room it came from is not touched)."""
    room = selectors.room_get(code=code)
    token = request.POST.get("recording", "")
    recording = _recording(token) if token else None
    if recording is not None and recording.room_id != room.pk:
        raise NotFound("That recording belongs to another room.")
    fork = timeline.timeline_fork(room=room, seq=_seq(request, room.last_seq), recording=recording)
    return _redirect(request, fork.get_absolute_url())


@require_POST
@handles_errors
def timeline_record(request: HttpRequest, code: str) -> HttpResponse:
    """Start or stop recording: whoever drives the room (a classroom's instructor)."""
    room = selectors.room_get(code=code)
    request_act(request, room, DRIVE)
    action = request.POST.get("action", "")
    if action == "start":
        timeline.recording_start(room=room, title=request.POST.get("title", ""), user=request.user)
    elif action == "stop":
        timeline.recording_stop(room=room)
    elif action == "delete":
        recording = _recording(request.POST.get("recording", ""))
        if recording.room_id != room.pk:
            raise NotFound("That recording belongs to another room.")
        timeline.recording_delete(recording=recording)
    else:
        raise Invalid("Unknown recording action: start, stop or delete.", field="action")
    return _redirect(request, reverse("room_timeline", args=[room.code]))
