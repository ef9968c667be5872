"""Classroom pages: an instructor's classrooms, the presenter view, and joining as a student.

The presenter view is what goes on the projector: the join code, the join URL and its QR code
(drawn here, as inline SVG), and who has joined. Students join from their phones at /j/<code>/
with a display name; their browser session is who they are.
"""

from __future__ import annotations

import qrcode
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from qrcode.image.svg import SvgPathImage

from messaging import selectors
from messaging.errors import Invalid
from messaging.models import Room, Student
from messaging.services import classroom as classroom_services
from messaging.views import handles_errors


def join_qr_svg(url: str) -> str:
    """The QR code of `url` as an SVG element (qrcode's defaults: error correction M)."""
    return qrcode.make(url, image_factory=SvgPathImage).to_string(encoding="unicode")


def join_url(request: HttpRequest, room: Room) -> str:
    return request.build_absolute_uri(reverse("student_join", args=[room.code]))


def _forbidden(request: HttpRequest, room: Room) -> HttpResponse:
    if request.htmx:
        reason = "Only this classroom's instructor can see who joined."
        return render(request, "messaging/partials.html#form-result", {"error": reason}, status=403)
    return render(request, "messaging/classroom_forbidden.html", {"room": room}, status=403)


def _owned_classroom(request: HttpRequest, code: str) -> tuple[Room, bool]:
    """The room, and whether the person asking owns it (anonymous people own nothing)."""
    room = selectors.room_get(code=code)
    if not request.user.is_authenticated or room.owner_id != request.user.pk:
        return room, False
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid("This room is a sandbox: only classrooms have a presenter view.")
    return room, True


def _students(room: Room) -> list[Student]:
    return list(Student.objects.filter(room=room).order_by("created_at", "pk"))


@require_GET
@login_required
def classroom_list(request: HttpRequest) -> HttpResponse:
    rooms = (
        Room.objects.filter(owner=request.user, kind=Room.Kind.CLASSROOM)
        .annotate(student_count=Count("students"))
        .order_by("-created_at")
    )
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
    return render(
        request,
        "messaging/classroom_present.html",
        {"room": room, "join_url": url, "qr_svg": join_qr_svg(url), "students": _students(room)},
    )


@require_GET
@handles_errors
def classroom_present_students(request: HttpRequest, code: str) -> HttpResponse:
    """The joined students: the presenter view polls this fragment."""
    room, owned = _owned_classroom(request, code)
    if not owned:
        return _forbidden(request, room)
    return render(
        request,
        "messaging/classroom_present.html#students",
        {"room": room, "students": _students(room)},
    )


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
        if classroom_services.student_for_session(room=room, session_key=session_key):
            return redirect("student_me", code=room.code)
        return render(request, "messaging/classroom_join.html", {"room": room})

    name = request.POST.get("display_name", "")
    if not session_key:
        # A first visit has no session yet: store something, so the cookie goes out too.
        request.session["loglab_student"] = True
        request.session.save()
        session_key = request.session.session_key
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


@require_GET
@handles_errors
def student_me(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    student = classroom_services.student_for_session(
        room=room, session_key=request.session.session_key
    )
    if student is None:
        # Another browser, or one that never joined: the name belongs to its session.
        return redirect("student_join", code=room.code)
    template = "messaging/classroom_me.html"
    if request.htmx:
        template += "#me"
    return render(request, template, _me_context(room, student))


def _me_context(room: Room, student) -> dict:
    from messaging.models import Assignment, ConsumerGroup

    member = student.member
    assigned = []
    if member is not None:
        assigned = [
            f"{a.partition.topic.name}-{a.partition.index}"
            for a in Assignment.objects.filter(member=member)
            .select_related("partition__topic")
            .order_by("partition__topic__name", "partition__index")
        ]
    return {
        "room": room,
        "student": student,
        "member": member,
        "assigned": assigned,
        "groups": ConsumerGroup.objects.filter(room=room).order_by("group_id"),
    }


@require_POST
@handles_errors
def student_consumer(request: HttpRequest, code: str) -> HttpResponse:
    """Join a group as a consumer, or leave it: the student's own member only."""
    room = selectors.room_get(code=code)
    student = classroom_services.student_for_session(
        room=room, session_key=request.session.session_key
    )
    if student is None:
        raise Invalid("Join the room with your name first.")
    if request.POST.get("action") == "leave":
        classroom_services.student_consumer_leave(student=student)
    else:
        classroom_services.student_consumer_join(
            student=student, group_id=request.POST.get("group_id", "")
        )
    student.refresh_from_db()
    if request.htmx:
        return render(request, "messaging/classroom_me.html#me", _me_context(room, student))
    return redirect("student_me", code=room.code)
