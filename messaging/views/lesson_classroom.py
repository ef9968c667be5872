"""A lesson run by an instructor for a whole classroom: the presenter's controls (run, next
stage, stop), each student's view of the current moment, and the pooled predictions."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.errors import NotFound
from messaging.models import Room
from messaging.permissions import actor_for_request, classroom_lesson_check
from messaging.services import lesson_authoring as authoring
from messaging.services import lessons as services
from messaging.services.lesson_steps import step_describe
from messaging.views._htmx import handles_errors
from messaging.views.board import board_context
from messaging.views.lesson_markup import inline_parts, text_blocks

PRESENT = "messaging/lesson_present.html#present"
FOLLOW = "messaging/lesson_follow.html#follow"


def _classroom_context(request: HttpRequest, room: Room) -> dict[str, Any]:
    """What students and the instructor see of the lesson the room is running now."""
    current = services.classroom_moment(room)
    actor = actor_for_request(request, room)
    context: dict[str, Any] = {"room": room, "actor": actor, "running": current is not None}
    if current is None:
        return context

    spec, moments, moment = current
    prediction = moment.prediction
    step = spec.solution[moment.step] if moment.step is not None else None
    context.update(
        {
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
        }
    )
    if prediction is not None:
        mine = selectors.student_prediction(room=room, student=actor.student, prediction=prediction)
        context.update(
            {
                "prediction": prediction,
                "question": inline_parts(prediction.question),
                "choices": [
                    {"index": i, "parts": inline_parts(text), "mine": i == mine}
                    for i, text in enumerate(prediction.choices)
                ],
                "mine": mine,
                "tally": [
                    {**row, "parts": inline_parts(row["text"])}
                    for row in selectors.prediction_tally(room=room, prediction=prediction)
                ],
                "answers": selectors.prediction_answers_count(room=room, prediction=prediction),
                "revealed": moment.kind == "reveal",
                "answer": inline_parts(prediction.choices[prediction.answer]),
                "explain": inline_parts(prediction.explain),
            }
        )
    return context


def classroom_lesson_page(request: HttpRequest, room: Room) -> HttpResponse:
    if room.lesson_id is None:
        actor = actor_for_request(request, room)
        if actor.is_owner:
            return redirect("classroom_present", code=room.code)
        if actor.kind == "student":
            return redirect("student_me", code=room.code)
        return redirect(room)
    context = {**board_context(room), **_classroom_context(request, room)}
    return render(request, "messaging/lesson_board.html", {**context, "classroom": True})


@require_GET
@handles_errors
def lesson_follow(request: HttpRequest, code: str) -> HttpResponse:
    """The current moment of the classroom's lesson, as a student's page shows it."""
    room = selectors.room_get(code=code)
    return render(request, FOLLOW, _classroom_context(request, room))


def _present_context(request: HttpRequest, room: Room) -> dict[str, Any]:
    built = authoring.lessons_runnable(user=request.user)
    return {**_classroom_context(request, room), "lessons": selectors.lessons_all() + built}


@require_GET
@handles_errors
def lesson_present(request: HttpRequest, code: str) -> HttpResponse:
    """The presenter's lesson controls (the presenter page refetches them)."""
    room = selectors.room_get(code=code)
    classroom_lesson_check(room, actor_for_request(request, room))
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
    slug = request.POST.get("lesson", "")
    try:
        lesson = selectors.lesson_get(slug=slug)
    except NotFound:
        lesson = authoring.authored_lesson_for_run(slug=slug, user=request.user)
    services.classroom_lesson_run(room=room, actor=actor_for_request(request, room), lesson=lesson)
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


def classroom_predict(request: HttpRequest, room: Room) -> HttpResponse:
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
