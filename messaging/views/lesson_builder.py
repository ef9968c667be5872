"""The lesson builder: an instructor's lessons (list, new from a room, import), the builder page
of one lesson and its forms, export, and the share link anyone may open.

Thin views over `services.lesson_authoring`. Every form posts to `/lessons/mine/<pk>/<action>/`
and comes back to the builder page (a redirect), or to the page again with the refusal shown
and its 4xx status; htmx only refreshes the parts that follow the board (the goals' met / not
met, the changes waiting to be recorded) and swaps a goal kind's fields.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from messaging import selectors
from messaging.errors import Invalid, LogLabError
from messaging.infra.rates import buckets, client_ip, retry_seconds
from messaging.lessons.spec import GOAL_ARGS, Step
from messaging.models import AuthoredLesson, Room
from messaging.permissions import Forbidden, TooManyRequests, actor_for_request
from messaging.services import lesson_authoring as authoring
from messaging.services.lesson_recording import steps_since
from messaging.services.lesson_steps import step_describe
from messaging.services.lessons import spec_of
from messaging.views._htmx import handles_errors

PAGE = "messaging/lesson_builder.html"
LIST = "messaging/lesson_builder_list.html"
# Opening a share link builds a room: as many as a class opening it at once, then one every
# few seconds per address.
SHARE_BURST = 30
SHARE_RATE = 0.5
DEFAULT_GOAL_KIND = "records"
START_WORDS = {
    "topics": "topic",
    "groups": "group",
    "records": "run of records",
    "producers": "producer",
    "sqs_queues": "SQS queue",
}


def _counted(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} " + ("runs of records" if word.startswith("run ") else f"{word}s")


# --- the list: new, import ---------------------------------------------------------------------


def _list_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "authored": authoring.authored_list(owner=request.user),
        "room_code": request.GET.get("room", "")[:12],
        "max_lessons": authoring.MAX_LESSONS_PER_OWNER,
        "max_kb": authoring.MAX_TOML_BYTES // 1024,
        **extra,
    }


def _list_error(request: HttpRequest, error: LogLabError, **extra: Any) -> HttpResponse:
    context = _list_context(request, error=error.message, **extra)
    return render(request, LIST, context, status=error.status)


@login_required
@require_GET
def builder_list(request: HttpRequest) -> HttpResponse:
    return render(request, LIST, _list_context(request))


def _buildable_room(request: HttpRequest, code: str) -> Room:
    room = selectors.room_get(code=code)
    if room.kind == Room.Kind.CLASSROOM and not actor_for_request(request, room).is_owner:
        raise Forbidden("Only this classroom's instructor can build a lesson from its board.")
    return room


@login_required
@require_POST
def builder_new(request: HttpRequest) -> HttpResponse:
    try:
        room = _buildable_room(request, request.POST.get("room", ""))
        authored = authoring.authored_create(
            owner=request.user, room=room, title=request.POST.get("title", "")
        )
    except LogLabError as error:
        return _list_error(request, error)
    return redirect("builder", pk=authored.pk)


def _uploaded_text(request: HttpRequest) -> str:
    upload = request.FILES.get("file")
    if upload is None:
        return request.POST.get("toml", "")
    if upload.size > authoring.MAX_TOML_BYTES:
        raise Invalid(
            f"A lesson file has at most {authoring.MAX_TOML_BYTES // 1024} KB.", field="file"
        )
    try:
        return upload.read(authoring.MAX_TOML_BYTES + 1).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("A lesson file is UTF-8 text (a .toml file).", field="file") from None


@login_required
@require_POST
def builder_import(request: HttpRequest) -> HttpResponse:
    pasted = request.POST.get("toml", "")
    try:
        text = _uploaded_text(request)
        room = None
        if request.POST.get("room"):
            room = _buildable_room(request, request.POST["room"])
        authored = authoring.authored_import(owner=request.user, text=text, room=room)
    except LogLabError as error:
        return _list_error(request, error, pasted=pasted[: authoring.MAX_TOML_BYTES])
    return redirect("builder", pk=authored.pk)


# --- the builder page ------------------------------------------------------------------------


def _arg_fields(kind: str) -> list[dict[str, Any]]:
    fields = []
    for name, arg in GOAL_ARGS.get(kind, {}).items():
        hint = {
            "strs": "comma-separated",
            "ints": "numbers, comma-separated",
            "int": "a whole number",
            "float": "a number",
        }.get(arg.type, "")
        fields.append(
            {
                "name": name,
                "type": arg.type,
                "required": arg.required,
                "choices": arg.choices,
                "hint": hint,
            }
        )
    return fields


def _goal_kind(request: HttpRequest) -> str:
    kind = request.GET.get("kind") or request.POST.get("kind") or DEFAULT_GOAL_KIND
    return kind if kind in GOAL_ARGS else DEFAULT_GOAL_KIND


def _step_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for index, raw in enumerate(data.get("solution", [])):
        args = {k: v for k, v in raw.items() if k not in ("do", "say")}
        try:
            plain = step_describe(Step(do=str(raw.get("do")), args=args))
        except (AssertionError, KeyError, TypeError, ValueError):
            plain = str(raw.get("do"))
        rows.append(
            {
                "index": index,
                "number": index + 1,
                "do": raw.get("do"),
                "args": args,
                "plain": plain,
                "say": raw.get("say", ""),
            }
        )
    return rows


def _share_url(request: HttpRequest, authored: AuthoredLesson) -> str:
    return request.build_absolute_uri(reverse("lesson_shared", args=[authored.token]))


def _builder_context(request: HttpRequest, authored: AuthoredLesson, **extra) -> dict[str, Any]:
    data = authoring.draft_data(authored)
    start = data.get("start", {})
    kind = _goal_kind(request)
    return {
        "authored": authored,
        "data": data,
        "start_counts": [
            _counted(len(start[name]), word)
            for name, word in START_WORDS.items()
            if start.get(name)
        ],
        "steps": _step_rows(data),
        "hints_text": "\n".join(data.get("hints", [])),
        "goals": authoring.goal_previews(authored),
        "goal_kinds": list(GOAL_ARGS),
        "goal_kind": kind,
        "goal_fields": _arg_fields(kind),
        "predictions": data.get("predictions", []),
        "quiz": data.get("quiz", []),
        "visibilities": AuthoredLesson.Visibility.choices,
        "share_url": _share_url(request, authored)
        if authored.visibility == AuthoredLesson.Visibility.PUBLIC
        else "",
        "toml_text": extra.pop("toml_text", authored.toml),
        **_pending(authored),
        **extra,
    }


def _page(request: HttpRequest, authored: AuthoredLesson, *, status: int = 200, **extra):
    return render(request, PAGE, _builder_context(request, authored, **extra), status=status)


@login_required
@require_GET
@handles_errors
def builder(request: HttpRequest, pk: int) -> HttpResponse:
    authored = authoring.authored_get(pk=pk, user=request.user)
    return _page(request, authored, saved=request.GET.get("saved", ""))


@login_required
@require_GET
@handles_errors
def builder_goals(request: HttpRequest, pk: int) -> HttpResponse:
    """The goals with their met / not met on the board now (the page polls it)."""
    authored = authoring.authored_get(pk=pk, user=request.user)
    return render(
        request,
        "messaging/lesson_builder_parts.html#goals",
        {"authored": authored, "goals": authoring.goal_previews(authored)},
    )


def _pending(authored: AuthoredLesson) -> dict[str, Any]:
    """What "Record" would add now: the board's changes since the last step."""
    pending: list[dict[str, Any]] = []
    error = ""
    if authored.room is not None:
        try:
            pending = steps_since(authored.room, authored.mark or {})
        except LogLabError as refusal:
            error = refusal.message
    return {"pending": pending, "pending_error": error}


@login_required
@require_GET
@handles_errors
def builder_pending(request: HttpRequest, pk: int) -> HttpResponse:
    authored = authoring.authored_get(pk=pk, user=request.user)
    return render(
        request,
        "messaging/lesson_builder_parts.html#pending",
        {"authored": authored, **_pending(authored)},
    )


@login_required
@require_GET
@handles_errors
def builder_goal_form(request: HttpRequest, pk: int) -> HttpResponse:
    """The fields of one goal kind (the kind select swaps them in)."""
    authored = authoring.authored_get(pk=pk, user=request.user)
    kind = _goal_kind(request)
    return render(
        request,
        "messaging/lesson_builder_parts.html#goal-fields",
        {"authored": authored, "goal_kind": kind, "goal_fields": _arg_fields(kind)},
    )


def _goal_args(request: HttpRequest) -> dict[str, str]:
    return {
        key[4:]: value
        for key, value in request.POST.items()
        if key.startswith("arg-") and len(key) < 40
    }


@login_required
@require_POST
@handles_errors
def builder_goal_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """A goal not added yet, checked on the board: met or not, and the value now."""
    authored = authoring.authored_get(pk=pk, user=request.user)
    status = authoring.goal_preview(
        room=authored.room, kind=_goal_kind(request), args=_goal_args(request)
    )
    return render(request, "messaging/lesson_builder_parts.html#goal-preview", {"status": status})


@login_required
@require_GET
@handles_errors
def builder_export(request: HttpRequest, pk: int) -> HttpResponse:
    authored = authoring.authored_get(pk=pk, user=request.user)
    response = HttpResponse(authored.toml, content_type="application/toml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{authored.slug}.toml"'
    return response


# --- the builder's forms ---------------------------------------------------------------------


def _about(request, authored):
    p = request.POST
    return authoring.authored_about_set(
        authored=authored,
        title=p.get("title", ""),
        summary=p.get("summary", ""),
        intro=p.get("intro", ""),
        takeaway=p.get("takeaway", ""),
        hints=p.get("hints", ""),
    )


def _start(request, authored):
    room = _buildable_room(request, request.POST.get("room") or getattr(authored.room, "code", ""))
    return authoring.authored_start_capture(authored=authored, room=room)


def _record(request, authored):
    return authoring.authored_steps_record(authored=authored)


def _forget(request, authored):
    return authoring.authored_mark_reset(authored=authored)


def _step_say(request, authored):
    return authoring.authored_step_say(
        authored=authored, index=request.POST.get("index"), say=request.POST.get("say", "")
    )


def _step_delete(request, authored):
    return authoring.authored_step_delete(authored=authored, index=request.POST.get("index"))


def _goal_add(request, authored):
    return authoring.authored_goal_add(
        authored=authored,
        kind=_goal_kind(request),
        text=request.POST.get("text", ""),
        args=_goal_args(request),
    )


def _goal_delete(request, authored):
    return authoring.authored_goal_delete(authored=authored, index=request.POST.get("index"))


def _prediction_add(request, authored):
    p = request.POST
    return authoring.authored_prediction_add(
        authored=authored,
        before_step=p.get("before_step", ""),
        question=p.get("question", ""),
        choices=p.get("choices", ""),
        answer=p.get("answer", ""),
        explain=p.get("explain", ""),
    )


def _prediction_delete(request, authored):
    return authoring.authored_prediction_delete(authored=authored, index=request.POST.get("index"))


def _quiz_add(request, authored):
    p = request.POST
    return authoring.authored_quiz_add(
        authored=authored,
        question=p.get("question", ""),
        choices=p.get("choices", ""),
        answer=p.get("answer", ""),
        explain=p.get("explain", ""),
    )


def _quiz_delete(request, authored):
    return authoring.authored_quiz_delete(authored=authored, index=request.POST.get("index"))


def _text(request, authored):
    return authoring.authored_text_save(authored=authored, text=request.POST.get("toml", ""))


def _visibility(request, authored):
    return authoring.authored_visibility_set(
        authored=authored, visibility=request.POST.get("visibility", "")
    )


def _link(request, authored):
    return authoring.authored_link_renew(authored=authored)


ACTIONS = {
    "about": (_about, "about"),
    "start": (_start, "start"),
    "record": (_record, "steps"),
    "forget": (_forget, "steps"),
    "step-say": (_step_say, "steps"),
    "step-delete": (_step_delete, "steps"),
    "goal-add": (_goal_add, "goals"),
    "goal-delete": (_goal_delete, "goals"),
    "prediction-add": (_prediction_add, "predictions"),
    "prediction-delete": (_prediction_delete, "predictions"),
    "quiz-add": (_quiz_add, "quiz"),
    "quiz-delete": (_quiz_delete, "quiz"),
    "text": (_text, "text"),
    "visibility": (_visibility, "share"),
    "link": (_link, "share"),
}


@login_required
@require_POST
@handles_errors
def builder_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One of the builder's forms; a refusal shows in the page, by the form that sent it."""
    authored = authoring.authored_get(pk=pk, user=request.user)
    if action not in ACTIONS:
        raise Invalid("The builder has no such form.")
    handle, section = ACTIONS[action]
    try:
        handle(request, authored)
    except LogLabError as error:
        authored.refresh_from_db()
        extra: dict[str, Any] = {"form_error": error.message, "error_section": section}
        if action == "text":
            extra["toml_text"] = request.POST.get("toml", "")[: authoring.MAX_TOML_BYTES]
        return _page(request, authored, status=error.status, **extra)
    return redirect(reverse("builder", args=[authored.pk]) + f"?saved={section}#{section}")


@login_required
@require_POST
@handles_errors
def builder_delete(request: HttpRequest, pk: int) -> HttpResponse:
    authoring.authored_delete(authored=authoring.authored_get(pk=pk, user=request.user))
    return redirect("builder_list")


@login_required
@require_POST
@handles_errors
def builder_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The lesson as a student gets it, in a fresh lesson room."""
    authored = authoring.authored_get(pk=pk, user=request.user)
    room = authoring.authored_preview(authored=authored)
    return redirect("lesson_room", code=room.code)


# --- the share link ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@handles_errors
def lesson_shared(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the lesson's card (start it; an instructor may run it for a classroom). POST: a
    fresh sandbox on the lesson for whoever asks, at the rate rooms may be made."""
    authored = authoring.authored_shared(token=token)
    if request.method == "POST":
        wait = buckets.take(
            ("lesson-share", client_ip(request)), rate=SHARE_RATE, burst=SHARE_BURST
        )
        if wait:
            error = TooManyRequests(
                f"Too many lessons opened from this address. Try again in {retry_seconds(wait)} s."
            )
            error.retry_after = retry_seconds(wait)
            raise error
        room = authoring.shared_room_create(token=token)
        return redirect("lesson_room", code=room.code)
    classrooms = []
    if request.user.is_authenticated:
        classrooms = list(
            Room.objects.filter(owner=request.user, kind=Room.Kind.CLASSROOM).order_by(
                "-created_at"
            )[:20]
        )
    return render(
        request,
        "messaging/lesson_builder_shared.html",
        {
            "authored": authored,
            "spec": spec_of(authored.lesson),
            "classrooms": classrooms,
        },
    )
