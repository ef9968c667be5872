"""Lesson rooms, a learner's progress, and lessons run for a classroom.

A learner's lesson runs in a room of its own (`Room.Kind.LESSON`), built from the lesson's
start by `messaging.lessons.steps.lesson_room_start`. Progress is kept in the browser session
for anonymous learners and in `LessonProgress` for logged-in ones; it only ever records what
the server saw (goals checked against the stored state, quiz answers graded here).

In a classroom the instructor runs a lesson for the whole room: the room goes back to the
lesson's start, and `Room.lesson_stage` walks through its "moments" (the introduction, each
prediction, each solution step played on the board, each answer revealed, the takeaway), which
every student's page shows as the instructor advances.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from messaging import events, selectors
from messaging.errors import Conflict, Invalid
from messaging.lessons.spec import lesson_spec
from messaging.models import (
    Lesson,
    LessonPrediction,
    LessonProgress,
    Room,
    RoomEvent,
    RoomSnapshot,
)
from messaging.permissions import Actor, Forbidden, classroom_lesson_check
from messaging.services.classroom import room_follow_set
from messaging.services.events import event_record, room_lock
from messaging.services.lesson_steps import lesson_room_start, step_apply
from messaging.services.rooms import room_create
from messaging.services.snapshots import SnapshotTooLarge, room_rows_clear, room_snapshot_take

# --- lessons and their rooms ------------------------------------------------------------------


def spec_of(lesson: Lesson):

    return lesson_spec(lesson)


def _room_start(room: Room, lesson: Lesson) -> None:
    """Empty the room and build the lesson's start in it (the caller holds the room's lock)."""
    room_rows_clear(room=room)
    # The lesson's story starts at time zero, paused: "advance 7 days" means the same in every
    # run of it. Its events go too, so a goal counting rebalances counts only this run's.
    Room.objects.filter(pk=room.pk).update(
        sim_time_ms=0, clock_running=False, clock_speed=1.0, lesson=lesson
    )
    RoomEvent.objects.filter(room=room).delete()
    RoomSnapshot.objects.filter(room=room).delete()
    room.refresh_from_db()
    lesson_room_start(room=room, spec=spec_of(lesson))


@transaction.atomic
def lesson_room_create(*, lesson: Lesson) -> Room:
    """A new room for one learner's run of `lesson`, at the lesson's start."""
    room = room_create(title=lesson.title[:80], kind=Room.Kind.LESSON)
    room = room_lock(room=room)
    _room_start(room, lesson)
    room.refresh_from_db()
    return room


def _lesson_room(room: Room) -> Lesson:
    if room.kind != Room.Kind.LESSON or room.lesson_id is None:
        raise Invalid("This room is not a lesson room: only lesson rooms can do that.")
    return room.lesson


@transaction.atomic
def lesson_room_reset(*, room: Room) -> Room:
    """Back to the lesson's start: every step and every undo step forgotten."""
    room = room_lock(room=room)
    lesson = _lesson_room(room)
    _room_start(room, lesson)
    event_record(room=room, type=events.RESYNC, payload={"reason": "lesson.reset"})
    return room


# --- moments: a lesson as the classroom walks through it ----------------------------------------


@dataclass(frozen=True)
class Moment:
    kind: str  # intro, predict, step, reveal, done
    step: int | None = None  # the solution step (0-based) played at a "step" moment
    prediction: Any = None  # the Prediction asked ("predict") or answered ("reveal")

    @property
    def prediction_id(self) -> str | None:
        return self.prediction.id if self.prediction is not None else None


def lesson_moments(spec) -> list[Moment]:
    """Introduction; then for each solution step: its predictions asked, the step played, their
    answers revealed (predict, then observe); then the takeaway."""
    moments = [Moment("intro")]
    for index, _ in enumerate(spec.solution):
        asked = [p for p in spec.predictions if p.before_step == index]
        moments += [Moment("predict", step=index, prediction=p) for p in asked]
        moments.append(Moment("step", step=index))
        moments += [Moment("reveal", step=index, prediction=p) for p in asked]
    moments.append(Moment("done"))
    return moments


def lesson_path(room: Room) -> str:

    return reverse("lesson_room", args=[room.code])


def _follow(room: Room, path: str) -> None:

    room.follow_path = room_follow_set(room=room, path=path).follow_path


def _stage_event(room: Room, lesson: Lesson, moments: list[Moment]) -> None:
    moment = moments[room.lesson_stage]
    event_record(
        room=room,
        type=events.LESSON_STAGE,
        payload={
            "lesson": lesson.slug,
            "stage": room.lesson_stage,
            "stages": len(moments),
            "kind": moment.kind,
            "step": moment.step,
            "prediction": moment.prediction_id,
        },
    )


@transaction.atomic
def classroom_lesson_run(*, room: Room, actor: Actor, lesson: Lesson) -> Room:
    """The instructor runs `lesson` for the room: its start on the board, everyone following."""
    room = classroom_lesson_check(room_lock(room=room), actor)
    LessonPrediction.objects.filter(room=room, lesson_slug=lesson.slug).delete()
    _room_start(room, lesson)
    Room.objects.filter(pk=room.pk).update(lesson=lesson, lesson_stage=0)
    room.lesson, room.lesson_stage = lesson, 0
    event_record(room=room, type=events.RESYNC, payload={"reason": "lesson.start"})
    _stage_event(room, lesson, lesson_moments(spec_of(lesson)))
    _follow(room, lesson_path(room))
    return room


@transaction.atomic
def classroom_lesson_advance(*, room: Room, actor: Actor) -> Moment:
    """The next moment of the room's lesson; a solution step is played on the board as the
    room reaches it, so every screen watches it happen."""
    room = classroom_lesson_check(room_lock(room=room), actor)
    if room.lesson_id is None:
        raise Conflict("No lesson is running in this classroom: pick one first.")
    spec = spec_of(room.lesson)
    moments = lesson_moments(spec)
    if room.lesson_stage >= len(moments) - 1:
        raise Conflict("This is the end of the lesson: run another, or stop.")
    stage = room.lesson_stage + 1
    Room.objects.filter(pk=room.pk).update(lesson_stage=stage)
    room.lesson_stage = stage
    moment = moments[stage]
    if moment.kind == "step":
        step_apply(room=room, step=spec.solution[moment.step])
        room.refresh_from_db()
    _stage_event(room, room.lesson, moments)
    return moment


@transaction.atomic
def classroom_lesson_stop(*, room: Room, actor: Actor) -> Room:
    """Back to the free board: the lesson ends, students return to their own page."""
    room = classroom_lesson_check(room_lock(room=room), actor)
    Room.objects.filter(pk=room.pk).update(lesson=None, lesson_stage=0)
    room.lesson, room.lesson_stage = None, 0
    event_record(room=room, type=events.LESSON_STAGE, payload={"lesson": None})
    _follow(room, reverse("student_me", args=[room.code]))
    return room


def classroom_moment(room: Room) -> tuple[Any, list[Moment], Moment] | None:
    """The running lesson's spec, moments and current moment, or None when none runs."""
    if room.lesson_id is None or room.kind != Room.Kind.CLASSROOM:
        return None
    spec = spec_of(room.lesson)
    moments = lesson_moments(spec)
    return spec, moments, moments[min(room.lesson_stage, len(moments) - 1)]


@transaction.atomic
def classroom_prediction_answer(
    *, room: Room, actor: Actor, question: str, choice: object
) -> LessonPrediction:
    """A student's answer to the prediction the room is asking now: one per student."""
    room = room_lock(room=room)
    if actor.kind != "student" or actor.student is None:
        raise Forbidden("Only this classroom's students answer its predictions.")
    current = classroom_moment(room)
    if current is None or current[2].kind != "predict":
        raise Conflict("No question is open right now: wait for the instructor's next one.")
    prediction = current[2].prediction
    if question != prediction.id:
        raise Conflict("That question is closed: the class has moved on.")
    try:
        number = int(str(choice))
    except ValueError:
        raise Invalid("Pick one of the answers.", field="choice") from None
    if not 0 <= number < len(prediction.choices):
        raise Invalid("Pick one of the answers.", field="choice")
    answer, created = LessonPrediction.objects.get_or_create(
        room=room,
        lesson_slug=room.lesson.slug,
        question=prediction.id,
        student=actor.student,
        defaults={"choice": number},
    )
    if not created:
        raise Conflict("You already answered this one: one answer each.")
    event_record(
        room=room,
        type=events.LESSON_PREDICTED,
        payload={
            "question": prediction.id,
            "count": selectors.prediction_answers_count(room=room, prediction=prediction),
        },
    )
    return answer


# --- progress -------------------------------------------------------------------------------

SESSION_KEY = "lessons"
EXPORT_FORMAT = "loglab-lesson-progress"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 64 * 1024


@dataclass
class Progress:
    goals_met: list[int] = field(default_factory=list)
    completed: bool = False
    quiz_correct: int = 0
    quiz_total: int = 0

    @property
    def started(self) -> bool:
        return bool(self.goals_met) or self.completed or self.quiz_total > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "goals_met": sorted(set(self.goals_met)),
            "completed": self.completed,
            "quiz_correct": self.quiz_correct,
            "quiz_total": self.quiz_total,
        }

    def merge(self, other: Progress) -> Progress:
        """What both say, kept at its best: a learner never loses a goal they reached."""
        better_quiz = (other.quiz_correct, other.quiz_total) > (self.quiz_correct, self.quiz_total)
        quiz = other if better_quiz and other.quiz_total else self
        return Progress(
            goals_met=sorted(set(self.goals_met) | set(other.goals_met)),
            completed=self.completed or other.completed,
            quiz_correct=quiz.quiz_correct,
            quiz_total=quiz.quiz_total,
        )


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def _session_progress(session) -> dict[str, Progress]:
    stored = session.get(SESSION_KEY) or {}
    result = {}
    for slug, item in stored.items():
        if isinstance(item, dict):
            result[slug] = Progress(
                goals_met=[int(g) for g in item.get("goals_met", [])],
                completed=bool(item.get("completed")),
                quiz_correct=int(item.get("quiz_correct", 0)),
                quiz_total=int(item.get("quiz_total", 0)),
            )
    return result


def _session_store(session, progress: dict[str, Progress]) -> None:
    session[SESSION_KEY] = {slug: p.as_dict() for slug, p in progress.items()}
    session.modified = True


def _row_progress(row: LessonProgress) -> Progress:
    return Progress(
        goals_met=list(row.goals_met or []),
        completed=row.completed_at is not None,
        quiz_correct=row.quiz_correct,
        quiz_total=row.quiz_total,
    )


@transaction.atomic
def _account_store(user, slug: str, progress: Progress) -> Progress:
    """Merge `progress` into the account's row and return the whole; a refresh of the panel
    that learned nothing new writes nothing."""
    row, _ = LessonProgress.objects.select_for_update().get_or_create(user=user, lesson_slug=slug)
    before = _row_progress(row)
    merged = before.merge(progress)
    if merged == before:
        return before
    row.goals_met = merged.goals_met
    if merged.completed and row.completed_at is None:
        row.completed_at = timezone.now()
    row.quiz_correct, row.quiz_total = merged.quiz_correct, merged.quiz_total
    row.save()
    return merged


def progress_all(*, user, session) -> dict[str, Progress]:
    """slug -> Progress of whoever is asking. A learner who signs in keeps what they did before:
    the session's progress moves onto the account the first time it is read signed in."""
    if not _signed_in(user):
        return _session_progress(session)
    carried = _session_progress(session)
    if carried:
        for slug, progress in carried.items():
            _account_store(user, slug, progress)
        session.pop(SESSION_KEY, None)
        session.modified = True
    return {row.lesson_slug: _row_progress(row) for row in user.lesson_progress.all()}


def progress_record(*, user, session, slug: str, progress: Progress) -> Progress:
    """Add what the server just saw (goals met, a completion, a quiz result) to the learner's
    progress in `slug`, and return the whole of it."""
    if _signed_in(user):
        return _account_store(user, slug, progress)
    everything = _session_progress(session)
    merged = everything.get(slug, Progress()).merge(progress)
    if merged != everything.get(slug):
        everything[slug] = merged
        _session_store(session, everything)
    return merged


def progress_export(*, user, session) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "lessons": {
            slug: p.as_dict()
            for slug, p in sorted(progress_all(user=user, session=session).items())
        },
    }


def _import_error(reason: str) -> Invalid:
    return Invalid(f"That file cannot be imported: {reason}", field="file")


def _whole(value: object, where: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _import_error(f"{where} must be a whole number from {low} to {high}.")
    return value


def progress_parse(raw: bytes) -> dict[str, Progress]:
    """A progress file, checked field by field against the lessons that exist here."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise _import_error(f"it is larger than {MAX_IMPORT_BYTES // 1024} KB.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _import_error("it is not a JSON file (export one from the lesson list).") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise _import_error("it is not a LogLab lesson progress file.")
    if data.get("version") != EXPORT_VERSION:
        raise _import_error(f"its version is {data.get('version')!r}; this LogLab reads 1.")
    unknown = set(data) - {"format", "version", "exported_at", "lessons"}
    if unknown:
        raise _import_error(f"unknown field '{sorted(unknown)[0][:40]}'.")
    lessons = data.get("lessons")
    if not isinstance(lessons, dict):
        raise _import_error("'lessons' must be an object of lesson slug -> progress.")
    known = {lesson.slug: lesson for lesson in Lesson.objects.filter(slug__in=list(lessons)[:500])}
    result: dict[str, Progress] = {}
    for slug, item in lessons.items():
        if slug not in known:
            raise _import_error(f"there is no lesson '{str(slug)[:64]}' here.")
        if not isinstance(item, dict):
            raise _import_error(f"the progress of '{slug}' must be an object.")
        extra = set(item) - {"goals_met", "completed", "quiz_correct", "quiz_total"}
        if extra:
            raise _import_error(f"unknown field '{sorted(extra)[0][:40]}' in '{slug}'.")
        spec = spec_of(known[slug])
        goals = item.get("goals_met", [])
        if not isinstance(goals, list) or len(goals) > len(spec.goals):
            raise _import_error(f"'goals_met' of '{slug}' must be a list of goal numbers.")
        met = [
            _whole(g, f"a goal number of '{slug}'", low=0, high=len(spec.goals) - 1) for g in goals
        ]
        completed = item.get("completed", False)
        if not isinstance(completed, bool):
            raise _import_error(f"'completed' of '{slug}' must be true or false.")
        quiz_size = len(spec.quiz)
        total = _whole(
            item.get("quiz_total", 0), f"'quiz_total' of '{slug}'", low=0, high=quiz_size
        )
        correct = _whole(
            item.get("quiz_correct", 0), f"'quiz_correct' of '{slug}'", low=0, high=total
        )
        result[slug] = Progress(
            goals_met=sorted(set(met)),
            completed=completed,
            quiz_correct=correct,
            quiz_total=total,
        )
    return result


def progress_import(*, user, session, raw: bytes) -> int:
    """Merge a progress file into the learner's own; returns how many lessons it named."""
    parsed = progress_parse(raw)
    for slug, progress in parsed.items():
        progress_record(user=user, session=session, slug=slug, progress=progress)
    return len(parsed)


@transaction.atomic
def lesson_step_play(*, room: Room, step, label: str) -> None:
    """Play one solution step for the learner, undoable like any step: a step that fails takes
    its undo snapshot with it. As for the board's own forms, a room too big to snapshot runs the
    step without undo."""
    with contextlib.suppress(SnapshotTooLarge):
        room_snapshot_take(room=room, label=label)
    step_apply(room=room, step=step)
