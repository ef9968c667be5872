"""Lesson pages: the lesson list, a learner's lesson (the real board with the goal panel beside
it), progress export and import, and a lesson run by an instructor for a classroom.

Thin views, as in `messaging.views`: writes go through `messaging.services.lessons` and
`messaging.services.snapshots`; htmx requests get the fragment they swap in, plain posts a
redirect, so every control works without JavaScript. What only this browser's panel needs
(hints shown, the solution open, its own predictions and quiz answers) lives in the session.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.errors import Conflict, Invalid, LogLabError
from messaging.models import Lesson, Room
from messaging.permissions import actor_for_request
from messaging.services import lessons as services
from messaging.services.snapshots import (
    SnapshotTooLarge,
    room_snapshot_newest,
    room_snapshot_take,
    room_undo,
)
from messaging.views import _board_context, handles_errors

SESSION_ROOMS = "lesson_rooms"  # lesson slug -> the code of this browser's room for it
SESSION_UI = "lesson_ui"  # room code -> what this browser's panel shows
MAX_UI_ROOMS = 40
PANEL = "messaging/lesson_panel.html#panel"
PRESENT = "messaging/lesson_present.html#present"
FOLLOW = "messaging/lesson_follow.html#follow"
# Simulated time the board's "Step" button can take in one press (room_step's own bound).
MAX_CLOCK_STEP_MS = 24 * 60 * 60 * 1000


# --- the lesson files' small markup, as data the templates escape ------------------------------


def inline_parts(text: str) -> list[dict[str, Any]]:
    """`code` spans and plain text, in order."""
    return [
        {"text": part, "code": index % 2 == 1}
        for index, part in enumerate(str(text).split("`"))
        if part
    ]


def text_blocks(text: str) -> list[dict[str, Any]]:
    """Paragraphs (blank lines between), and small diagrams: paragraphs whose every line is
    indented by four spaces, shown preformatted."""
    blocks = []
    for paragraph in str(text).strip("\n").split("\n\n"):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if not lines:
            continue
        if all(line.startswith("    ") for line in lines):
            blocks.append({"pre": True, "text": "\n".join(line[4:] for line in lines)})
        else:
            blocks.append({"pre": False, "parts": inline_parts(" ".join(x.strip() for x in lines))})
    return blocks


# --- "fill in": which board form a solution step is done with ---------------------------------


def step_fill(step, view: str) -> dict[str, Any] | None:
    """The board (or queues page) form that does `step`, and what goes in it; None when the
    page has no control for it (the panel then offers to play it)."""
    a, do = step.args, step.do
    times = int(a.get("count", 1) or 1)
    if view == "queues":
        forms = {
            "sqs_send": lambda: {"form": "sqs_send", "fields": {
                "queue": a["queue"], "body": a.get("body", ""),
                "message_group_id": a.get("group_id", ""),
                "deduplication_id": a.get("dedup_id", "")}, "times": times},
            "sqs_receive": lambda: {"form": "sqs_receive", "fields": {
                "queue": a["queue"], "max_messages": a.get("max", 1)}},
            "sqs_delete": lambda: {"form": "sqs_delete", "queue": a["queue"],
                                   "group": a["group_id"]},
            "classic_declare": lambda: {"form": "classic_queue_new",
                                        "fields": {"name": a["queue"]}},
            "classic_exchange": lambda: {"form": "classic_exchange_new",
                                         "fields": {"name": a["exchange"], "type": a["type"]}},
            "classic_bind": lambda: {"form": "classic_bind", "fields": {
                "queue": a["queue"], "exchange": a["exchange"],
                "routing_key": a.get("routing_key", "")}},
            "classic_publish": lambda: {"form": "classic_publish", "fields": {
                "exchange": a.get("exchange", ""), "routing_key": a.get("routing_key", ""),
                "body": a.get("body", "")}, "times": times},
            # Two presses on the page: basic.consume with a prefetch of `count`, then an Ack
            # for each delivery (the page's script picks whichever comes next).
            "classic_consume": lambda: {"form": "classic_consume", "queue": a["queue"],
                                        "fields": {"queue": a["queue"],
                                                   "consumer_tag": f"{a['queue']}-reader"[:64],
                                                   "prefetch_count": times},
                                        "times": times},
            "advance": lambda: (
                {"form": "queues_clock", "button": str(a["ms"])}
                if str(a["ms"]) in ("1000", "10000", "30000", "300000") else None
            ),
        }
        make = forms.get(do)
        return make() if make else None
    if do == "produce" and not a.get("tombstone"):
        fields = {"topic": a["topic"], "key": a.get("key", ""), "value": a.get("value", ""),
                  "partition": a.get("partition", "")}
        return {"form": "produce", "fields": fields, "times": times}
    if do == "create_topic":
        return {"form": "topic_new", "fields": {"name": a["name"],
                                                "partitions": a["partitions"]}}
    if do == "add_partitions":
        return {"form": "partitions_add", "topic": a["topic"],
                "fields": {"partitions": a["partitions"]}}
    if do == "configure_topic":
        fields = {}
        if "retention_ms" in a:
            ms = a["retention_ms"]
            fields["retention_s"] = -1 if ms < 0 else ms // 1000
        for name in ("cleanup_policy", "segment_records"):
            if name in a:
                fields[name] = a[name]
        return {"form": "topic_config", "topic": a["topic"], "fields": fields}
    if do == "create_group":
        from messaging.lessons.steps import group_defaults

        settings = group_defaults(a)
        if "session_timeout_ms" in settings:
            return None  # the board's form has no session.timeout.ms
        return {"form": "group_new", "fields": {
            "group_id": a["group"], "topics": list(a["topics"]),
            "assignor": settings["assignor"], "protocol": settings["protocol"],
            "delivery": settings["delivery"], "auto_offset_reset": settings["auto_offset_reset"],
        }}
    if do == "join" and a.get("rate", 1.0) == 1.0:
        fields = {"client_id": a.get("client_id") or a["group"]}
        if a.get("instance_id"):
            fields["group_instance_id"] = a["instance_id"]
        return {"form": "member_new", "group": a["group"], "fields": fields, "times": times}
    if do in ("leave", "crash", "speed"):
        fill = {"form": "member", "group": a["group"], "consumer": a.get("consumer", "last"),
                "button": do}
        if do == "speed":
            fill["fields"] = {"rate": a["rate"]}
        return fill
    if do == "advance" and a["ms"] <= MAX_CLOCK_STEP_MS:
        return {"form": "clock", "button": "step", "fields": {"step_ms": a["ms"]}}
    if do == "reset_offsets":
        value = a.get("value", "")
        if a["option"] == "by-duration" and value != "":
            value = int(value) // 1000  # the form asks for seconds
        return {"form": "offsets_reset", "group": a["group"],
                "fields": {"option": a["option"], "value": value, "execute": "1"}}
    return None


# --- the session's share of the panel ---------------------------------------------------------


def _ui(request: HttpRequest, room: Room) -> dict[str, Any]:
    every = request.session.get(SESSION_UI) or {}
    return every.get(room.code) or {"hints": 0, "solution": False, "predictions": {}}


def _ui_store(request: HttpRequest, room: Room, ui: dict[str, Any]) -> None:
    every = dict(request.session.get(SESSION_UI) or {})
    every.pop(room.code, None)
    every[room.code] = ui
    while len(every) > MAX_UI_ROOMS:  # the oldest rooms' panels are forgotten first
        every.pop(next(iter(every)))
    request.session[SESSION_UI] = every


def _ui_forget(request: HttpRequest, room: Room) -> None:
    every = dict(request.session.get(SESSION_UI) or {})
    if every.pop(room.code, None) is not None:
        request.session[SESSION_UI] = every


# --- the lesson list --------------------------------------------------------------------------


def _lessons() -> list[Lesson]:
    return list(Lesson.objects.order_by("order", "slug"))


def _list_context(request: HttpRequest) -> dict[str, Any]:
    progress = services.progress_all(user=request.user, session=request.session)
    rooms = request.session.get(SESSION_ROOMS) or {}
    items = []
    for number, lesson in enumerate(_lessons(), start=1):
        mine = progress.get(lesson.slug, services.Progress())
        state = "done" if mine.completed else (
            "started" if mine.started or lesson.slug in rooms else "new"
        )
        items.append({
            "number": number,
            "lesson": lesson,
            "summary": lesson.spec.get("summary", ""),
            "state": state,
            "progress": mine,
            "goals": len(lesson.spec.get("goals", [])),
            "goals_met": len(mine.goals_met),
        })
    done = sum(1 for item in items if item["state"] == "done")
    return {
        "items": items,
        "done": done,
        "total": len(items),
        "percent": round(100 * done / len(items)) if items else 0,
        "import_ok": request.session.pop("lesson_import_ok", None),
    }


@require_GET
@handles_errors
def lesson_list(request: HttpRequest) -> HttpResponse:
    return render(request, "messaging/lesson_list.html", _list_context(request))


def _room_for(request: HttpRequest, lesson: Lesson) -> Room | None:
    code = (request.session.get(SESSION_ROOMS) or {}).get(lesson.slug)
    if not code:
        return None
    return Room.objects.filter(code=code, kind=Room.Kind.LESSON, lesson=lesson).first()


@require_GET
@handles_errors
def lesson_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Continue this browser's run of the lesson, or start one."""
    lesson = services.lesson_get(slug=slug)
    room = _room_for(request, lesson)
    if room is None:
        room = services.lesson_room_create(lesson=lesson)
        rooms = dict(request.session.get(SESSION_ROOMS) or {})
        rooms[lesson.slug] = room.code
        request.session[SESSION_ROOMS] = rooms
    return redirect("lesson_room", code=room.code)


# --- a learner's lesson: the page and its panel -------------------------------------------------


def _lesson_room(code: str) -> Room:
    room = selectors.room_get(code=code)
    if room.kind != Room.Kind.LESSON or room.lesson_id is None:
        raise Invalid("This room is not a lesson: open a lesson from the lesson list.")
    return room


def _progress_seen(request: HttpRequest, lesson: Lesson, statuses, complete: bool):
    met = [index for index, status in enumerate(statuses) if status.met]
    return services.progress_record(
        user=request.user, session=request.session, slug=lesson.slug,
        progress=services.Progress(goals_met=met, completed=complete),
    )


def _panel_context(request: HttpRequest, room: Room) -> dict[str, Any]:
    from messaging.lessons.goals import goals_check, lesson_complete
    from messaging.lessons.steps import step_describe

    lesson = room.lesson
    spec = services.spec_of(lesson)
    statuses = goals_check(room=room, spec=spec)
    complete = lesson_complete(statuses)
    progress = _progress_seen(request, lesson, statuses, complete)
    ui = _ui(request, room)
    answered = ui.get("predictions", {})
    predictions = []
    for prediction in spec.predictions:
        choice = answered.get(prediction.id)
        predictions.append({
            "p": prediction,
            "question": inline_parts(prediction.question),
            "choices": [{"index": i, "parts": inline_parts(text)}
                        for i, text in enumerate(prediction.choices)],
            "answered": choice,
            "right": choice == prediction.answer,
            "answer": inline_parts(prediction.choices[prediction.answer]),
            "explain": inline_parts(prediction.explain),
        })
    open_question = next((p for p in predictions if p["answered"] is None), None)
    waiting = {p["p"].before_step for p in predictions if p["answered"] is None}
    steps = []
    for index, step in enumerate(spec.solution):
        fill = step_fill(step, spec.view)
        steps.append({
            "index": index,
            "number": index + 1,
            "parts": inline_parts(step_describe(step)),
            "fill": json.dumps(fill) if fill else "",
            "times": (fill or {}).get("times", 1),
            "asks_first": index in waiting,
        })
    hints_shown = min(int(ui.get("hints", 0)), len(spec.hints))
    quiz = _quiz_context(spec, ui) if complete else None
    goals = [
        {"status": status, "number": index + 1, "parts": inline_parts(status.text)}
        for index, status in enumerate(statuses)
    ]
    lessons = _lessons()
    position = next((i for i, item in enumerate(lessons) if item.pk == lesson.pk), 0)
    undo = room_snapshot_newest(room=room)
    return {
        "room": room,
        "lesson": lesson,
        "spec": spec,
        "lesson_number": position + 1,
        "lesson_count": len(lessons),
        "intro": text_blocks(spec.intro),
        "takeaway": inline_parts(spec.takeaway),
        "goals": goals,
        "goals_met": sum(1 for status in statuses if status.met),
        "complete": complete,
        "progress": progress,
        "goals_state": ",".join("1" if s.met else "0" for s in statuses) + f"|{complete}",
        "hints": [inline_parts(hint) for hint in spec.hints[:hints_shown]],
        "hints_left": len(spec.hints) - hints_shown,
        "solution_open": bool(ui.get("solution")),
        "steps": steps,
        "predictions": predictions,
        "open_question": open_question,
        "quiz": quiz,
        "undo": undo,
        "next_lesson": services.lesson_next(lesson),
    }


def _quiz_context(spec, ui: dict[str, Any]) -> dict[str, Any]:
    from messaging.lessons.quiz import quiz_questions

    result = ui.get("quiz")
    graded = (result or {}).get("per_question", {})
    questions = []
    for question in quiz_questions(spec):
        mine = (result or {}).get("answers", {}).get(question.id)
        questions.append({
            "q": question,
            "question": inline_parts(question.question),
            "choices": [{"index": i, "parts": inline_parts(text), "mine": i == mine}
                        for i, text in enumerate(question.choices)],
            "graded": question.id in graded,
            "right": graded.get(question.id, False),
            "answer": inline_parts(question.choices[question.answer]),
            "explain": inline_parts(question.explain),
        })
    return {"questions": questions, "result": result}


def _panel(request: HttpRequest, room: Room, *, status: int = 200, error: str | None = None):
    context = {**_panel_context(request, room), "panel_error": error}
    return render(request, PANEL, context, status=status)


def _after_panel_action(request: HttpRequest, room: Room) -> HttpResponse:
    if request.htmx:
        return _panel(request, room)
    return redirect("lesson_room", code=room.code)


def _panel_errors(view):
    """Errors of the panel's own buttons show in the panel (htmx) or the error page."""
    from functools import wraps

    @wraps(view)
    def wrapper(request: HttpRequest, code: str, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, code, *args, **kwargs)
        except LogLabError as error:
            if not request.htmx:
                raise
            room = Room.objects.filter(code=code, kind=Room.Kind.LESSON).first()
            if room is None or room.lesson_id is None:
                raise
            return _panel(request, room, status=error.status, error=error.message)

    return handles_errors(wrapper)


@require_GET
@handles_errors
def lesson_room(request: HttpRequest, code: str) -> HttpResponse:
    """The lesson page of a room: a learner's lesson, or the lesson a classroom is running."""
    room = selectors.room_get(code=code)
    if room.code != code:
        return redirect("lesson_room", code=room.code)
    if room.kind == Room.Kind.CLASSROOM:
        return _classroom_lesson_page(request, room)
    room = _lesson_room(code)
    context = _panel_context(request, room)
    if context["spec"].view == "queues":
        from messaging.queues_views import _queues_context

        return render(request, "messaging/lesson_queues.html", {
            **_queues_context(room), **context,
        })
    return render(request, "messaging/lesson_board.html", {**_board_context(room), **context})


@require_GET
@handles_errors
def lesson_panel(request: HttpRequest, code: str) -> HttpResponse:
    """The goal panel, checked against the room's state now: the page refetches it after
    every room event, and what it sees met is recorded as the learner's progress."""
    return _panel(request, _lesson_room(code))


@require_POST
@_panel_errors
def lesson_hint(request: HttpRequest, code: str) -> HttpResponse:
    room = _lesson_room(code)
    spec = services.spec_of(room.lesson)
    ui = _ui(request, room)
    ui["hints"] = min(int(ui.get("hints", 0)) + 1, len(spec.hints))
    _ui_store(request, room, ui)
    return _after_panel_action(request, room)


@require_POST
@_panel_errors
def lesson_solution(request: HttpRequest, code: str) -> HttpResponse:
    room = _lesson_room(code)
    ui = _ui(request, room)
    ui["solution"] = request.POST.get("show", "1") == "1"
    _ui_store(request, room, ui)
    return _after_panel_action(request, room)


def _choice(request: HttpRequest, count: int) -> int:
    try:
        choice = int(request.POST.get("choice", ""))
    except ValueError:
        raise Invalid("Pick one of the answers.", field="choice") from None
    if not 0 <= choice < count:
        raise Invalid("Pick one of the answers.", field="choice")
    return choice


@require_POST
@_panel_errors
def lesson_predict(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.kind == Room.Kind.CLASSROOM:
        return _classroom_predict(request, room)
    room = _lesson_room(code)
    spec = services.spec_of(room.lesson)
    question = request.POST.get("question", "")
    prediction = next((p for p in spec.predictions if p.id == question), None)
    if prediction is None:
        raise Invalid("This lesson has no such question.", field="question")
    ui = _ui(request, room)
    answers = dict(ui.get("predictions", {}))
    if question in answers:
        raise Conflict("You already answered this one: the answer is shown below it.")
    answers[question] = _choice(request, len(prediction.choices))
    ui["predictions"] = answers
    _ui_store(request, room, ui)
    return _after_panel_action(request, room)


@require_POST
@_panel_errors
def lesson_do(request: HttpRequest, code: str) -> HttpResponse:
    """Play one solution step for the learner: only for steps the page has no control for
    (a producer's lost acknowledgement, a tombstone), and undoable like any step."""
    from messaging.lessons.steps import step_apply

    room = _lesson_room(code)
    spec = services.spec_of(room.lesson)
    try:
        index = int(request.POST.get("step", ""))
        step = spec.solution[index]
    except (ValueError, IndexError):
        raise Invalid("This lesson has no such step.", field="step") from None
    if index < 0 or step_fill(step, spec.view) is not None:
        raise Invalid("Do this step yourself on the board: press its Fill in button.")
    with transaction.atomic():  # a step that fails takes its undo snapshot with it
        # As for the board's own forms: a room too big to snapshot runs the step without undo.
        with contextlib.suppress(SnapshotTooLarge):
            room_snapshot_take(room=room, label=f"Step {index + 1}")
        step_apply(room=room, step=step)
    return _after_panel_action(request, room)


@require_POST
@_panel_errors
def lesson_undo(request: HttpRequest, code: str) -> HttpResponse:
    room = _lesson_room(code)
    room_undo(room=room)
    return _after_panel_action(request, room)


@require_POST
@_panel_errors
def lesson_reset(request: HttpRequest, code: str) -> HttpResponse:
    room = _lesson_room(code)
    services.lesson_room_reset(room=room)
    _ui_forget(request, room)
    room.refresh_from_db()
    return _after_panel_action(request, room)


@require_POST
@_panel_errors
def lesson_quiz(request: HttpRequest, code: str) -> HttpResponse:
    from messaging.lessons.goals import goals_check, lesson_complete
    from messaging.lessons.quiz import quiz_grade, quiz_questions

    room = _lesson_room(code)
    spec = services.spec_of(room.lesson)
    if not lesson_complete(goals_check(room=room, spec=spec)):
        raise Conflict("Reach every goal first: the quiz comes at the end of the lesson.")
    answers: dict[str, int] = {}
    missing = 0
    for question in quiz_questions(spec):
        raw = request.POST.get(f"q-{question.id}", "")
        if raw == "":
            missing += 1
            continue
        try:
            answers[question.id] = int(raw)
        except ValueError:
            raise Invalid("Pick one of the answers for each question.") from None
        if not 0 <= answers[question.id] < len(question.choices):
            raise Invalid("Pick one of the answers for each question.")
    if missing:
        raise Invalid(f"Answer every question first ({missing} left).")
    result = quiz_grade(spec, answers)
    ui = _ui(request, room)
    ui["quiz"] = {
        "answers": answers,
        "correct": result.correct,
        "total": result.total,
        "per_question": {item.id: item.correct for item in result.per_question},
    }
    _ui_store(request, room, ui)
    services.progress_record(
        user=request.user, session=request.session, slug=room.lesson.slug,
        progress=services.Progress(quiz_correct=result.correct, quiz_total=result.total),
    )
    return _after_panel_action(request, room)


# --- progress: export and import ----------------------------------------------------------------


@require_GET
def progress_export(request: HttpRequest) -> HttpResponse:
    data = services.progress_export(user=request.user, session=request.session)
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="loglab-progress.json"'
    return response


@require_POST
def progress_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise Invalid("Choose a progress file to import (one exported from this page).")
        if upload.size > services.MAX_IMPORT_BYTES:
            raise Invalid(
                f"That file cannot be imported: it is larger than "
                f"{services.MAX_IMPORT_BYTES // 1024} KB."
            )
        count = services.progress_import(
            user=request.user, session=request.session, raw=upload.read()
        )
    except LogLabError as error:
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"error": error.code, "message": error.message}, status=400)
        context = {**_list_context(request), "import_error": error.message}
        return render(request, "messaging/lesson_list.html", context, status=400)
    request.session["lesson_import_ok"] = f"Imported the progress of {count} lesson(s)."
    return redirect("lesson_list")


# --- a lesson run for a classroom ---------------------------------------------------------------


def _classroom_context(request: HttpRequest, room: Room) -> dict[str, Any]:
    """What students and the instructor see of the lesson the room is running now."""
    current = services.classroom_moment(room)
    actor = actor_for_request(request, room)
    context: dict[str, Any] = {"room": room, "actor": actor, "running": current is not None}
    if current is None:
        return context
    from messaging.lessons.steps import step_describe

    spec, moments, moment = current
    prediction = moment.prediction
    step = spec.solution[moment.step] if moment.step is not None else None
    context.update({
        "lesson": room.lesson,
        "spec": spec,
        "moment": moment,
        "stage": room.lesson_stage,
        "stages": len(moments),
        "at_end": room.lesson_stage >= len(moments) - 1,
        "next_kind": moments[min(room.lesson_stage + 1, len(moments) - 1)].kind,
        "intro": text_blocks(spec.intro),
        "takeaway": inline_parts(spec.takeaway),
        "step_parts": inline_parts(step_describe(step)) if step is not None else None,
        "step_number": (moment.step or 0) + 1,
        "step_count": len(spec.solution),
    })
    if prediction is not None:
        mine = services.student_prediction(room, actor.student, prediction)
        context.update({
            "prediction": prediction,
            "question": inline_parts(prediction.question),
            "choices": [{"index": i, "parts": inline_parts(text), "mine": i == mine}
                        for i, text in enumerate(prediction.choices)],
            "mine": mine,
            "tally": [
                {**row, "parts": inline_parts(row["text"])}
                for row in services.prediction_tally(room, prediction)
            ],
            "answers": services.prediction_answers_count(room, prediction),
            "revealed": moment.kind == "reveal",
            "answer": inline_parts(prediction.choices[prediction.answer]),
            "explain": inline_parts(prediction.explain),
        })
    return context


def _classroom_lesson_page(request: HttpRequest, room: Room) -> HttpResponse:
    if room.lesson_id is None:
        actor = actor_for_request(request, room)
        if actor.is_owner:
            return redirect("classroom_present", code=room.code)
        if actor.kind == "student":
            return redirect("student_me", code=room.code)
        return redirect(room)
    context = {**_board_context(room), **_classroom_context(request, room)}
    return render(request, "messaging/lesson_board.html", {**context, "classroom": True})


@require_GET
@handles_errors
def lesson_follow(request: HttpRequest, code: str) -> HttpResponse:
    """The current moment of the classroom's lesson, as a student's page shows it."""
    room = selectors.room_get(code=code)
    return render(request, FOLLOW, _classroom_context(request, room))


def _present_context(request: HttpRequest, room: Room) -> dict[str, Any]:
    return {**_classroom_context(request, room), "lessons": _lessons()}


@require_GET
@handles_errors
def lesson_present(request: HttpRequest, code: str) -> HttpResponse:
    """The presenter's lesson controls (the presenter page refetches them)."""
    room = selectors.room_get(code=code)
    services._classroom(room, actor_for_request(request, room))
    return render(request, PRESENT, _present_context(request, room))


def _presented(request: HttpRequest, room: Room) -> HttpResponse:
    room.refresh_from_db()
    if request.htmx:
        return render(request, PRESENT, _present_context(request, room))
    return redirect("classroom_present", code=room.code)


@require_POST
@handles_errors
def lesson_run(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    lesson = services.lesson_get(slug=request.POST.get("lesson", ""))
    services.classroom_lesson_run(room=room, actor=actor_for_request(request, room),
                                  lesson=lesson)
    return _presented(request, room)


@require_POST
@handles_errors
def lesson_next_stage(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    services.classroom_lesson_advance(room=room, actor=actor_for_request(request, room))
    return _presented(request, room)


@require_POST
@handles_errors
def lesson_stop(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    services.classroom_lesson_stop(room=room, actor=actor_for_request(request, room))
    return _presented(request, room)


def _classroom_predict(request: HttpRequest, room: Room) -> HttpResponse:
    services.classroom_prediction_answer(
        room=room,
        actor=actor_for_request(request, room),
        question=request.POST.get("question", ""),
        choice=request.POST.get("choice", ""),
    )
    room.refresh_from_db()
    if request.htmx:
        return render(request, FOLLOW, _classroom_context(request, room))
    back = "student_me" if request.POST.get("back") == "me" else "lesson_room"
    return redirect(reverse(back, args=[room.code]))
