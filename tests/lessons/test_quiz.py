"""The quiz: generated answers come from the engine, and grading is by the learner's choice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from messaging.engine.partitioner import partition_for_key
from messaging.lessons.quiz import quiz_grade, quiz_questions
from messaging.lessons.spec import QuizItem, lesson_parse

FIXTURE = Path(__file__).parent / "fixtures" / "01-idle-consumers.toml"
SPEC = lesson_parse(FIXTURE.read_text(), path=str(FIXTURE))


def only(kind: str, **args):
    (question,) = quiz_questions(replace(SPEC, quiz=(QuizItem(kind, args),)))
    return question


def test_it_answers_where_a_key_goes_with_kafkas_partitioner():
    question = only("partition_for_key", key="bob", partitions=6)
    expected = partition_for_key(b"bob", 6)
    assert question.choices[question.answer] == f"partition {expected}"
    assert len(question.choices) == len(set(question.choices)) == 4
    assert "murmur2('bob')" in question.explain


def test_it_still_offers_four_choices_with_two_partitions():
    question = only("partition_for_key", key="alice", partitions=2)
    assert len(set(question.choices)) == 4
    assert question.choices[question.answer] == f"partition {partition_for_key(b'alice', 2)}"


def test_it_counts_idle_consumers():
    assert only("idle_consumers", partitions=100, consumers=150).choices == ("0", "50", "51", "75")
    question = only("idle_consumers", partitions=100, consumers=150)
    assert question.choices[question.answer] == "50"
    few = only("idle_consumers", partitions=100, consumers=2)
    assert few.choices[few.answer] == "0"
    assert "50" in few.explain


def test_it_computes_the_range_share_with_the_range_assignor():
    question = only("range_share", partitions=7, consumers=3)
    assert question.choices[question.answer] == "3"
    even = only("range_share", partitions=100, consumers=2)
    assert even.choices[even.answer] == "50"


def test_it_makes_the_same_questions_every_time():
    assert quiz_questions(SPEC) == quiz_questions(SPEC)
    assert [q.id for q in quiz_questions(SPEC)] == ["q1", "q2", "q3", "q4"]


def test_it_grades_the_answers_and_counts_missing_ones_wrong():
    questions = quiz_questions(SPEC)
    answers = {q.id: q.answer for q in questions[:3]}
    answers["q1"] = (questions[0].answer + 1) % 4
    answers["q2"] = True  # not an index
    result = quiz_grade(SPEC, answers)
    assert (result.correct, result.total) == (1, 4)
    assert [r.correct for r in result.per_question] == [False, False, True, False]
    assert result.per_question[3].chosen is None
