"""Lesson pages: the lesson list and a learner's lesson (the real board with the goal panel
beside it). A classroom's lesson is in lesson_classroom.py, progress files in
lesson_progress.py, the lesson files' markup in lesson_markup.py.

Thin views: writes go through `messaging.services.lessons` and
`messaging.services.snapshots`; htmx requests get the fragment they swap in, plain posts a
redirect, so every control works without JavaScript. What only this browser's panel needs
(hints shown, the solution open, its own predictions and quiz answers) lives in the session.
"""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.errors import Conflict, Invalid, LogLabError
from messaging.lessons.goals import goals_check, lesson_complete
from messaging.lessons.quiz import quiz_grade, quiz_questions
from messaging.models import Lesson, Room
from messaging.services import lessons as services
from messaging.services.lesson_steps import step_describe
from messaging.services.snapshots import room_snapshot_newest, room_undo
from messaging.views._htmx import handles_errors
from messaging.views.board import board_context
from messaging.views.lesson_classroom import classroom_lesson_page, classroom_predict
from messaging.views.lesson_markup import inline_parts, step_fill, text_blocks
from messaging.views.queues import queues_context
from messaging.views.share_groups import share_context

SESSION_ROOMS = "lesson_rooms"  # lesson slug -> the code of this browser's room for it
SESSION_UI = "lesson_ui"  # room code -> what this browser's panel shows
MAX_UI_ROOMS = 40
PANEL = "messaging/lesson_panel.html#panel"


# --- the lesson files' small markup, as data the templates escape ------------------------------


# --- "fill in": which board form a solution step is done with ---------------------------------


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


def lesson_list_context(request: HttpRequest) -> dict[str, Any]:
    progress = services.progress_all(user=request.user, session=request.session)
    rooms = request.session.get(SESSION_ROOMS) or {}
    items = []
    for number, lesson in enumerate(selectors.lessons_all(), start=1):
        mine = progress.get(lesson.slug, services.Progress())
        state = (
            "done"
            if mine.completed
            else ("started" if mine.started or lesson.slug in rooms else "new")
        )
        items.append(
            {
                "number": number,
                "lesson": lesson,
                "summary": lesson.spec.get("summary", ""),
                "state": state,
                "progress": mine,
                "goals": len(lesson.spec.get("goals", [])),
                "goals_met": len(mine.goals_met),
            }
        )
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
    return render(request, "messaging/lesson_list.html", lesson_list_context(request))


def _room_for(request: HttpRequest, lesson: Lesson) -> Room | None:
    code = (request.session.get(SESSION_ROOMS) or {}).get(lesson.slug)
    if not code:
        return None
    return selectors.lesson_room_find(code=code, lesson=lesson)


@require_GET
@handles_errors
def lesson_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Continue this browser's run of the lesson, or start one."""
    lesson = selectors.lesson_get(slug=slug)
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
        user=request.user,
        session=request.session,
        slug=lesson.slug,
        progress=services.Progress(goals_met=met, completed=complete),
    )


def _panel_context(request: HttpRequest, room: Room) -> dict[str, Any]:

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
        predictions.append(
            {
                "p": prediction,
                "question": inline_parts(prediction.question),
                "choices": [
                    {"index": i, "parts": inline_parts(text)}
                    for i, text in enumerate(prediction.choices)
                ],
                "answered": choice,
                "right": choice == prediction.answer,
                "answer": inline_parts(prediction.choices[prediction.answer]),
                "explain": inline_parts(prediction.explain),
            }
        )
    open_question = next((p for p in predictions if p["answered"] is None), None)
    waiting = {p["p"].before_step for p in predictions if p["answered"] is None}
    steps = []
    for index, step in enumerate(spec.solution):
        fill = step_fill(step, spec.view)
        steps.append(
            {
                "index": index,
                "number": index + 1,
                "parts": inline_parts(step_describe(step)),
                "fill": json.dumps(fill) if fill else "",
                "times": (fill or {}).get("times", 1),
                "asks_first": index in waiting,
            }
        )
    hints_shown = min(int(ui.get("hints", 0)), len(spec.hints))
    quiz = _quiz_context(spec, ui) if complete else None
    goals = [
        {"status": status, "number": index + 1, "parts": inline_parts(status.text)}
        for index, status in enumerate(statuses)
    ]
    lessons = selectors.lessons_all()
    position = next((i for i, item in enumerate(lessons) if item.pk == lesson.pk), 0)
    undo = room_snapshot_newest(room=room)
    return {
        "room": room,
        "lesson": lesson,
        "spec": spec,
        "lesson_number": position + 1,
        "lesson_built": lesson.pk not in {item.pk for item in lessons},
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
        "next_lesson": selectors.lesson_next(lesson=lesson),
    }


def _quiz_context(spec, ui: dict[str, Any]) -> dict[str, Any]:

    result = ui.get("quiz")
    graded = (result or {}).get("per_question", {})
    questions = []
    for question in quiz_questions(spec):
        mine = (result or {}).get("answers", {}).get(question.id)
        questions.append(
            {
                "q": question,
                "question": inline_parts(question.question),
                "choices": [
                    {"index": i, "parts": inline_parts(text), "mine": i == mine}
                    for i, text in enumerate(question.choices)
                ],
                "graded": question.id in graded,
                "right": graded.get(question.id, False),
                "answer": inline_parts(question.choices[question.answer]),
                "explain": inline_parts(question.explain),
            }
        )
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

    @wraps(view)
    def wrapper(request: HttpRequest, code: str, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, code, *args, **kwargs)
        except LogLabError as error:
            if not request.htmx:
                raise
            room = selectors.lesson_room_find(code=code)
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
        return classroom_lesson_page(request, room)
    room = _lesson_room(code)
    context = _panel_context(request, room)
    if context["spec"].view == "queues":
        return render(
            request,
            "messaging/lesson_queues.html",
            {
                **queues_context(room),
                **context,
            },
        )
    if context["spec"].view == "share":
        return render(request, "messaging/lesson_share.html", {**share_context(room), **context})
    return render(request, "messaging/lesson_board.html", {**board_context(room), **context})


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
        return classroom_predict(request, room)
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
    room = _lesson_room(code)
    spec = services.spec_of(room.lesson)
    try:
        index = int(request.POST.get("step", ""))
        step = spec.solution[index]
    except (ValueError, IndexError):
        raise Invalid("This lesson has no such step.", field="step") from None
    if index < 0 or step_fill(step, spec.view) is not None:
        raise Invalid("Do this step yourself on the board: press its Fill in button.")
    services.lesson_step_play(room=room, step=step, label=f"Step {index + 1}")
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
        user=request.user,
        session=request.session,
        slug=room.lesson.slug,
        progress=services.Progress(quiz_correct=result.correct, quiz_total=result.total),
    )
    return _after_panel_action(request, room)


# --- progress: export and import ----------------------------------------------------------------


# --- a lesson run for a classroom ---------------------------------------------------------------
