"""Classroom pages: an instructor's classrooms, the presenter view, and joining as a student.

The presenter view is what goes on the projector: the join code, the join URL and its QR code
(drawn here, as inline SVG), and who has joined. Students join from their phones at /j/<code>/
with a display name; their browser session is who they are.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import qrcode
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from qrcode.image.svg import SvgPathImage

from messaging import selectors
from messaging.errors import Invalid, LogLabError
from messaging.infra.addresses import is_loopback_host
from messaging.models import Room
from messaging.permissions import STUDENT_ACTIONS, Forbidden, actor_for_request, student_permissions
from messaging.services import classroom as classroom_services
from messaging.views._htmx import handles_errors
from messaging.views.board import kafka_login
from messaging.views.controls import clock_apply


def join_qr_svg(url: str) -> str:
    """The QR code of `url` as an SVG element (qrcode's defaults: error correction M)."""
    return qrcode.make(url, image_factory=SvgPathImage).to_string(encoding="unicode")


def join_url(request: HttpRequest, room: Room) -> str:
    """The join URL as a phone can reach it: LOGLAB_PUBLIC_URL behind a proxy; this machine's
    LAN address when the instructor opened the page on loopback (127.0.0.1 on a phone is the
    phone); otherwise the address the instructor used, which the students can use too."""
    path = reverse("student_join", args=[room.code])
    if settings.LOGLAB_PUBLIC_URL:
        return settings.LOGLAB_PUBLIC_URL + path
    host, port = split_domain_port(request.get_host())
    if is_loopback_host(host) and settings.LOGLAB_MACHINE_ADDRESSES:
        netloc = settings.LOGLAB_MACHINE_ADDRESSES[0] + (f":{port}" if port else "")
        return f"{request.scheme}://{netloc}{path}"
    return request.build_absolute_uri(path)


def reach_warning() -> str | None:
    """Why phones cannot reach this server, if they cannot: shown above the join URL."""
    if settings.LOGLAB_PUBLIC_URL:
        return None
    if not settings.LOGLAB_MACHINE_ADDRESSES:
        return (
            "This machine has only a loopback address (127.0.0.1): phones cannot reach it. "
            "Connect it to the classroom's network (Wi-Fi or cable) and start LogLab again "
            "with `make classroom`, or set LOGLAB_PUBLIC_URL to the address students use."
        )
    if settings.LOGLAB_BIND_HOST and is_loopback_host(settings.LOGLAB_BIND_HOST):
        return (
            f"LogLab listens on {settings.LOGLAB_BIND_HOST} only: phones cannot open the join "
            "URL. Stop it and start it with `make classroom`, which listens on every interface."
        )
    return None


def _forbidden(request: HttpRequest, room: Room) -> HttpResponse:
    if request.htmx:
        reason = "Only this classroom's instructor can see who joined."
        return render(request, "messaging/partials.html#form-result", {"error": reason}, status=403)
    return render(request, "messaging/classroom_forbidden.html", {"room": room}, status=403)


def _removed(request: HttpRequest, room: Room) -> HttpResponse:
    """What a student the instructor removed sees, instead of the join form."""
    return render(request, "messaging/classroom_removed.html", {"room": room}, status=403)


def _owned_classroom(request: HttpRequest, code: str) -> tuple[Room, bool]:
    """The room, and whether the person asking owns it (anonymous people own nothing)."""
    room = selectors.room_get(code=code)
    if not actor_for_request(request, room).is_owner:  # the one rule, as every write uses
        return room, False
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid("This room is a sandbox: only classrooms have a presenter view.")
    return room, True


@require_GET
@login_required
def classroom_list(request: HttpRequest) -> HttpResponse:
    rooms = selectors.classrooms_owned(owner=request.user)
    return render(request, "messaging/classroom_list.html", {"rooms": rooms})


@require_POST
@login_required
@handles_errors
def classroom_new(request: HttpRequest) -> HttpResponse:
    room = classroom_services.classroom_create(
        owner=request.user, title=request.POST.get("title", "")
    )
    return redirect("classroom_present", code=room.code)


@require_GET
@handles_errors
def classroom_present(request: HttpRequest, code: str) -> HttpResponse:
    room, owned = _owned_classroom(request, code)
    if not owned:
        return _forbidden(request, room)
    if room.code != code:
        return redirect("classroom_present", code=room.code)
    url = join_url(request, room)
    context = {
        **_controls_context(request, room),
        **_roster(room),
        "join_url": url,
        "qr_svg": join_qr_svg(url),
        "reach_warning": reach_warning(),
    }
    return render(request, "messaging/classroom_present.html", context)


@require_GET
@handles_errors
def classroom_present_students(request: HttpRequest, code: str) -> HttpResponse:
    """The joined students: the presenter view polls this fragment."""
    room, owned = _owned_classroom(request, code)
    if not owned:
        return _forbidden(request, room)
    return render(
        request, "messaging/classroom_present.html#students", {"room": room, **_roster(room)}
    )


# --- the instructor's controls ---------------------------------------------------------------

SPEEDS = [0.25, 0.5, 1, 2, 5, 10, 20]


def follow_choices(room: Room) -> list[tuple[str, str]]:
    """The pages the instructor can send every student's screen to: (path, label)."""
    base = f"/r/{room.code}/"
    return [("", "Off: students move freely")] + [
        (base + page, label)
        for page, label in classroom_services.FOLLOW_PAGES
        if page != "lesson/" or room.lesson_id
    ]


def _roster(room: Room) -> dict:
    lines = selectors.classroom_roster(room=room)
    return {
        "roster": lines,
        "online_count": sum(1 for line in lines if line.online),
        "consumer_count": sum(1 for line in lines if line.group),
    }


def _controls_context(request: HttpRequest, room: Room) -> dict:
    """What the #controls partial shows: not the roster, which redraws on its own poll."""
    allowed = student_permissions(room)
    return {
        # The room's own Kafka login, for the instructor's code (students have their own).
        "kafka": kafka_login(request, room),
        "room": room,
        "locks": [(action, words, allowed[action]) for action, words in STUDENT_ACTIONS.items()],
        "follow_choices": follow_choices(room),
        "speeds": SPEEDS,
        "group_ids": list(room.groups.order_by("group_id").values_list("group_id", flat=True)),
    }


def _instructor_room(request: HttpRequest, code: str) -> Room:
    """The classroom, if the person asking is its instructor; Forbidden (403) otherwise."""
    room = selectors.room_get(code=code)
    if not actor_for_request(request, room).is_owner:
        raise Forbidden("Only this classroom's instructor can do that.")
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid("Only a classroom has students, locks and follow-me.")
    return room


def _controls_done(request: HttpRequest, room: Room, text: str) -> HttpResponse:
    if request.htmx:
        room.refresh_from_db()
        context = {**_controls_context(request, room), "ok_text": text}
        return render(request, "messaging/classroom_present.html#controls", context)
    return redirect("classroom_present", code=room.code)


def instructor_control(view: Callable[[HttpRequest, Room], HttpResponse]):
    """One of the presenter's controls: for the classroom's instructor only (403 otherwise).
    A change that is refused redraws the controls with the reason, not a bare message in
    their place."""

    @wraps(view)
    def wrapper(request: HttpRequest, code: str) -> HttpResponse:
        room = _instructor_room(request, code)
        try:
            return view(request, room)
        except LogLabError as error:
            if not request.htmx:
                raise
            context = {
                **_controls_context(request, room),
                "error": error.message,
                "ok_text": None,
            }
            return render(
                request,
                "messaging/classroom_present.html#controls",
                context,
                status=error.status,
            )

    return wrapper


@require_POST
@handles_errors
@instructor_control
def classroom_clock(request: HttpRequest, room: Room) -> HttpResponse:
    """Pause, resume or change the speed of the room's clock."""
    return _controls_done(request, room, clock_apply(room, request.POST))


@require_POST
@handles_errors
@instructor_control
def classroom_locks(request: HttpRequest, room: Room) -> HttpResponse:
    """What students may do: every action's checkbox, ticked = allowed."""
    ticked = set(request.POST.getlist("allow"))
    allowed = classroom_services.classroom_permissions_set(
        room=room, permissions={action: action in ticked for action in STUDENT_ACTIONS}
    )
    locked = [STUDENT_ACTIONS[a] for a, ok in allowed.items() if not ok]
    text = (
        "Students may do everything."
        if not locked
        else ("Locked: students cannot " + "; ".join(locked) + ".")
    )
    return _controls_done(request, room, text)


@require_POST
@handles_errors
@instructor_control
def classroom_enlist(request: HttpRequest, room: Room) -> HttpResponse:
    """ "Everyone join group G": the students not consuming yet join it, in one rebalance."""
    group_id = request.POST.get("group_id", "")
    members = classroom_services.classroom_students_enlist(room=room, group_id=group_id)
    count = len(members)
    text = f"{count} student{'s' if count != 1 else ''} joined {group_id}, in one rebalance."
    return _controls_done(request, room, text)


@require_POST
@handles_errors
@instructor_control
def classroom_follow(request: HttpRequest, room: Room) -> HttpResponse:
    """Follow me: every student's screen goes to the chosen page of the room."""
    room = classroom_services.room_follow_set(room=room, path=request.POST.get("path", ""))
    text = (
        f"Every student's screen now shows {room.follow_path}."
        if room.follow_path
        else "Follow-me is off: students move freely."
    )
    return _controls_done(request, room, text)


@require_POST
@handles_errors
@instructor_control
def classroom_reset(request: HttpRequest, room: Room) -> HttpResponse:
    classroom_services.classroom_reset(room=room)
    return _controls_done(
        request, room, "The room starts again: fresh topics and groups, the students stay."
    )


@require_POST
@handles_errors
def classroom_student_remove(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = _instructor_room(request, code)
    try:
        student = classroom_services.student_remove(room=room, student_id=pk)
    except LogLabError as error:
        if not request.htmx:
            raise
        # The roster stays (with its poll), the reason above it: a double click on Remove
        # must not leave a bare message where the class list was.
        context = {"room": room, **_roster(room), "error": error.message, "ok_text": None}
        return render(
            request, "messaging/classroom_present.html#students", context, status=error.status
        )
    if request.htmx:
        context = {
            "room": room,
            **_roster(room),
            "ok_text": f"{student.display_name} was removed.",
            "error": None,
        }
        return render(request, "messaging/classroom_present.html#students", context)
    return redirect("classroom_present", code=room.code)


@require_http_methods(["GET", "POST"])
@handles_errors
def student_join(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid(
            f"Room {room.code} is a sandbox: only classrooms take students. "
            "Open its board from the home page with the code instead."
        )
    session_key = request.session.session_key
    if request.method == "GET":
        if room.code != code:
            return redirect("student_join", code=room.code)
        if selectors.student_for_session(room=room, session_key=session_key):
            return redirect("student_me", code=room.code)
        if selectors.student_removed(room=room, session_key=session_key):
            return _removed(request, room)
        return render(request, "messaging/classroom_join.html", {"room": room})

    name = request.POST.get("display_name", "")
    if not session_key:
        # A first visit has no session yet: store something, so the cookie goes out too.
        request.session["loglab_student"] = True
        request.session.save()
        session_key = request.session.session_key
    if selectors.student_removed(room=room, session_key=session_key):
        return _removed(request, room)
    try:
        classroom_services.student_join(room=room, display_name=name, session_key=session_key)
    except Invalid as error:
        template = "messaging/classroom_join.html"
        if request.htmx:
            template += "#join-form"
        context = {"room": room, "error": error.message, "display_name": name}
        return render(request, template, context, status=400)
    me = reverse("student_me", args=[room.code])
    if request.htmx:
        return HttpResponseClientRedirect(me)
    return redirect(me)
