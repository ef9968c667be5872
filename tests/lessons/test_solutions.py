"""Every lesson file can be solved: its reference solution meets every goal, and its wrong
attempt does not. The fixture lesson the lesson core was built against is played too."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging.lessons.catalog import lesson_files
from messaging.lessons.goals import goals_check, lesson_complete
from messaging.lessons.quiz import quiz_grade, quiz_questions
from messaging.lessons.spec import lesson_parse
from messaging.services.lesson_steps import lesson_room_start, step_apply
from messaging.services.rooms import room_create

FIXTURES = Path(__file__).parent / "fixtures"
LESSON_FILES = lesson_files() + lesson_files(FIXTURES)

pytestmark = pytest.mark.django_db


def started(path: Path):
    spec = lesson_parse(path.read_text(encoding="utf-8"), path=str(path))
    room = room_create(title=spec.title, kind="lesson")
    lesson_room_start(room=room, spec=spec)
    return spec, room


def unmet(statuses) -> list[str]:
    return [f"{s.id}: {s.detail}" for s in statuses if not s.met]


def test_it_finds_the_lesson_files():
    assert lesson_files(FIXTURES), "the fixture lesson is missing"


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.name)
def test_it_meets_every_goal_by_playing_the_solution(path):
    spec, room = started(path)
    assert not lesson_complete(goals_check(room=room, spec=spec)), (
        "the lesson is complete before the learner did anything"
    )
    for step in spec.solution:
        step_apply(room=room, step=step)
    statuses = goals_check(room=room, spec=spec)
    assert lesson_complete(statuses), unmet(statuses)


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.name)
def test_it_does_not_meet_every_goal_with_the_wrong_attempt(path):
    spec, room = started(path)
    for step in spec.wrong:
        step_apply(room=room, step=step)
    assert not lesson_complete(goals_check(room=room, spec=spec))


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.name)
def test_it_asks_predictions_before_real_steps_and_grades_its_quiz(path):
    spec = lesson_parse(path.read_text(encoding="utf-8"), path=str(path))
    for prediction in spec.predictions:
        assert 0 <= prediction.before_step < len(spec.solution)
        assert 0 <= prediction.answer < len(prediction.choices)
    questions = quiz_questions(spec)
    assert len(questions) == len(spec.quiz)
    perfect = quiz_grade(spec, {q.id: q.answer for q in questions})
    assert (perfect.correct, perfect.total) == (len(questions), len(questions))
    if questions:
        wrong = quiz_grade(spec, {q.id: (q.answer + 1) % len(q.choices) for q in questions})
        assert wrong.correct == 0
