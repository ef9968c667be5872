"""The end-of-lesson quiz: generated questions answered by the engine itself, and grading.

A generated question's answer is computed with the code the board runs (Kafka's murmur2
partitioner, the range assignor), so the quiz cannot disagree with what the learner watched.
Its wrong choices are near misses, chosen deterministically from the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.engine.assignors import assign
from messaging.engine.partitioner import explain_key, partition_for_key
from messaging.lessons.spec import LessonSpec, QuizItem

CHOICES = 4


@dataclass(frozen=True)
class QuizQuestion:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    explain: str


@dataclass(frozen=True)
class QuestionResult:
    id: str
    chosen: int | None
    answer: int
    correct: bool
    explain: str


@dataclass(frozen=True)
class QuizResult:
    correct: int
    total: int
    per_question: tuple[QuestionResult, ...]


def _numbers(answer: int, candidates: list[int]) -> tuple[list[int], int]:
    """The answer and the first distinct plausible wrong numbers, in ascending order."""
    picked = [answer]
    for candidate in candidates:
        if candidate >= 0 and candidate not in picked:
            picked.append(candidate)
        if len(picked) == CHOICES:
            break
    picked.sort()
    return picked, picked.index(answer)


def _partition_for_key(item: QuizItem) -> tuple[str, tuple[str, ...], int, str]:
    key, count = item.args["key"], item.args["partitions"]
    answer = partition_for_key(key.encode("utf-8"), count)
    numbers, index = _numbers(
        answer, [(answer + 1) % count, (answer - 1) % count, (answer + 2) % count]
    )
    choices = [f"partition {n}" for n in numbers]
    # Fewer partitions than choices: the other choices are the classic misconceptions.
    for extra in ("a partition picked at random", "the least loaded partition"):
        if len(choices) < CHOICES:
            choices.append(extra)
    explained = explain_key(key, count)["text"]
    return (
        f"A topic has {count} partitions. Which partition does a record with key `{key}` go to?",
        tuple(choices),
        index,
        f"{explained}. The same key always lands in the same partition, as long as the "
        "partition count does not change.",
    )


def _idle_consumers(item: QuizItem) -> tuple[str, tuple[str, ...], int, str]:
    partitions, consumers = item.args["partitions"], item.args["consumers"]
    members = [f"c{i:04d}" for i in range(consumers)]
    dealt = assign("range", {m: ["t"] for m in members}, {"t": partitions})
    answer = sum(1 for m in members if not dealt[m])  # the assignor's answer, not arithmetic
    numbers, index = _numbers(
        answer,
        [
            0,
            abs(consumers - partitions),
            consumers // 2,
            partitions // 2,
            answer + 1,
            answer + 2,
            answer + 3,
        ],
    )
    if answer:
        explain = (
            f"Each partition goes to exactly one member of the group, so only "
            f"{partitions} of the {consumers} consumers get one; the other {answer} "
            "stay idle, ready to take over when a member leaves."
        )
    else:
        per, extra = divmod(partitions, consumers)
        share = f"{per} or {per + 1}" if extra else f"{per}"
        explain = (
            f"There are at least as many partitions as consumers, so every consumer "
            f"gets {share} partition(s) and none is idle."
        )
    return (
        f"One consumer group with {consumers} consumers reads a topic with {partitions} "
        "partitions. How many consumers are idle?",
        tuple(str(n) for n in numbers),
        index,
        explain,
    )


def _range_share(item: QuizItem) -> tuple[str, tuple[str, ...], int, str]:
    partitions, consumers = item.args["partitions"], item.args["consumers"]
    members = [f"consumer-{i:04d}" for i in range(1, consumers + 1)]
    assignment = assign("range", {m: ["t"] for m in members}, {"t": partitions})
    answer = len(assignment[members[0]])
    per, extra = divmod(partitions, consumers)
    numbers, index = _numbers(
        answer, [per, per + 1, max(per - 1, 0), partitions, answer + 2, answer + 3]
    )
    explain = (
        f"range sorts the members and gives each {partitions} // {consumers} = {per} "
        f"contiguous partition(s); the first {partitions} % {consumers} = {extra} "
        "member(s) get one more."
    )
    return (
        f"The range assignor deals a topic of {partitions} partitions to {consumers} "
        "consumers. How many partitions does the first consumer get?",
        tuple(str(n) for n in numbers),
        index,
        explain,
    )


GENERATORS = {
    "partition_for_key": _partition_for_key,
    "idle_consumers": _idle_consumers,
    "range_share": _range_share,
}


def quiz_questions(spec: LessonSpec) -> list[QuizQuestion]:
    """The lesson's quiz, questions numbered q1, q2... unless a choice question names itself."""
    questions = []
    for number, item in enumerate(spec.quiz, start=1):
        if item.kind == "choice":
            a = item.args
            questions.append(
                QuizQuestion(
                    id=a.get("id") or f"q{number}",
                    question=a["question"],
                    choices=tuple(a["choices"]),
                    answer=a["answer"],
                    explain=a.get("explain", ""),
                )
            )
            continue
        question, choices, answer, explain = GENERATORS[item.kind](item)
        questions.append(
            QuizQuestion(
                id=f"q{number}", question=question, choices=choices, answer=answer, explain=explain
            )
        )
    return questions


def quiz_grade(spec: LessonSpec, answers: dict[str, int]) -> QuizResult:
    """Grade the learner's answers (question id -> chosen index); a missing or malformed
    answer is wrong."""
    results = []
    for question in quiz_questions(spec):
        chosen = answers.get(question.id)
        if isinstance(chosen, bool) or not isinstance(chosen, int):
            chosen = None
        results.append(
            QuestionResult(
                id=question.id,
                chosen=chosen,
                answer=question.answer,
                correct=chosen == question.answer,
                explain=question.explain,
            )
        )
    return QuizResult(
        correct=sum(r.correct for r in results),
        total=len(results),
        per_question=tuple(results),
    )
