"""Lessons instructors build in the browser, import and share (`AuthoredLesson`).

The lesson's text, in the lessons/*.toml format, is its source of truth: every change the
builder makes reads it, changes the data and writes it back (`lessons.toml_text`), and every
save runs the same validator as the lesson files (`spec.lesson_parse`). A draft that does not
validate yet is kept, with the validator's reason in `error`; one that does gets a `Lesson`
row (`catalog.lesson_row_store`), which the lesson runner plays as it plays the files: a
learner's own sandbox, a preview, a share link, a classroom run.

Who sees what: the owner alone edits, previews and exports; "classes" puts the lesson in the
owner's classroom lesson picker; "public" adds a share link that opens it in a fresh sandbox
for anyone, and lets any instructor with the link run it for a classroom. Anything else is a
404, so a private lesson's existence is not told.
"""

from __future__ import annotations

import secrets
import tomllib
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from messaging.errors import Conflict, Invalid, NotFound
from messaging.lessons import spec as lesson_spec_module
from messaging.lessons.catalog import lesson_row_store
from messaging.lessons.goals import GoalStatus, goal_check
from messaging.lessons.spec import GOAL_ARGS, Arg, Goal, LessonFormatError, lesson_parse
from messaging.lessons.toml_text import lesson_toml
from messaging.models import AuthoredLesson, Lesson, Room
from messaging.services.lesson_recording import room_mark, start_from_room, steps_since
from messaging.services.lessons import lesson_room_create

MAX_LESSONS_PER_OWNER = 50
MAX_TOML_BYTES = 64 * 1024
DEFAULT_ORDER = 100
PLACEHOLDER_SUMMARY = "A lesson built on the LogLab board."
PLACEHOLDER_INTRO = "Say what this lesson shows, and what the learner will do on the board."
# A path that does not reach the goals, so the lesson files' check that a "wrong" path fails
# has something to play: waiting a second without doing the steps.
DEFAULT_WRONG = [{"do": "advance", "ms": 1000}]
Visibility = AuthoredLesson.Visibility


# --- reads ------------------------------------------------------------------------------------


def authored_list(*, owner) -> list[AuthoredLesson]:
    return list(AuthoredLesson.objects.filter(owner=owner).select_related("lesson", "room"))


def authored_get(*, pk: object, user) -> AuthoredLesson:
    """The user's own lesson; anyone else's (or none) is the same 404."""
    try:
        number = int(str(pk))
    except ValueError:
        number = 0
    found = (
        AuthoredLesson.objects.filter(pk=number, owner_id=getattr(user, "pk", None))
        .select_related("lesson", "room")
        .first()
    )
    if found is None or not getattr(user, "is_authenticated", False):
        raise NotFound("There is no such lesson among yours.")
    return found


def authored_shared(*, token: str) -> AuthoredLesson:
    """A lesson shared by link: public and playable, or a 404."""
    found = (
        AuthoredLesson.objects.filter(
            token=str(token)[:32], visibility=Visibility.PUBLIC, lesson__isnull=False
        )
        .select_related("lesson", "owner")
        .first()
    )
    if found is None:
        raise NotFound("This link does not open a lesson (any more): ask for a new one.")
    return found


def lessons_runnable(*, user) -> list[Lesson]:
    """The lessons `user`'s classroom picker offers: the built ones the user shares with their
    classes (the lesson files come from `selectors.lessons_all`)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return [
        item.lesson
        for item in AuthoredLesson.objects.filter(owner=user, lesson__isnull=False)
        .exclude(visibility=Visibility.PRIVATE)
        .select_related("lesson")
        .order_by("title")
    ]


def authored_lesson_for_run(*, slug: str, user) -> Lesson:
    """A built lesson a classroom may run: the user's own (shared with their classes) or one
    shared by link (whose slug only the link's page shows)."""
    found = (
        AuthoredLesson.objects.filter(lesson__slug=str(slug)[:64])
        .exclude(visibility=Visibility.PRIVATE)
        .select_related("lesson")
        .first()
    )
    if found is None or (
        found.visibility != Visibility.PUBLIC and found.owner_id != getattr(user, "pk", None)
    ):
        raise NotFound(f"There is no lesson called '{str(slug)[:64]}'.")
    return found.lesson


def draft_data(authored: AuthoredLesson) -> dict[str, Any]:
    """The lesson's text as data (it is always valid TOML: every save parses it)."""
    return tomllib.loads(authored.toml)


def goal_previews(authored: AuthoredLesson) -> list[dict[str, Any]]:
    """Each goal of the draft, met or not on the lesson's board right now."""
    room = authored.room
    out = []
    for index, goal in enumerate(draft_data(authored).get("goals", [])):
        check = dict(goal.get("check", {}))
        kind = check.pop("kind", "")
        status = None
        if room is not None and kind in GOAL_ARGS:
            status = goal_check(
                room,
                Goal(
                    id=str(goal.get("id", "")),
                    text=str(goal.get("text", "")),
                    kind=kind,
                    args=check,
                ),
            )
        out.append({"index": index, "goal": goal, "kind": kind, "status": status})
    return out


def goal_preview(*, room: Room | None, kind: str, args: dict[str, str]) -> GoalStatus:
    """A goal not added yet, checked against the board: the form's "check it now"."""
    goal = _goal_from_form(kind=kind, text="(preview)", args=args, goal_id="preview")
    if room is None:
        raise Invalid("This lesson has no board to check goals on: start it from a room.")
    return goal_check(room, Goal(id="preview", text="", kind=kind, args=goal["check_args"]))


# --- saving: the text, validated ------------------------------------------------------------


def _reason(error: LessonFormatError) -> str:
    return f"{error.location}: {error.reason}" if error.location else error.reason


def _check_size(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_TOML_BYTES:
        raise Invalid(
            f"A lesson file has at most {MAX_TOML_BYTES // 1024} KB (this one has "
            f"{(size + 1023) // 1024} KB).",
            field="toml",
        )


def _slug_free(owner, slug: str, *, but: AuthoredLesson | None = None) -> None:
    taken = AuthoredLesson.objects.filter(owner=owner, slug=slug)
    if but is not None:
        taken = taken.exclude(pk=but.pk)
    if taken.exists():
        raise Conflict(
            f"You already have a lesson with the slug '{slug}': change the slug, or delete "
            "the other one first.",
            field="toml",
        )


def _save(authored: AuthoredLesson, text: str, *, strict: bool) -> AuthoredLesson:
    """Store `text`. Valid: its playable row follows. Not valid: refused when `strict` (a
    pasted or imported file), else kept as a draft with the reason."""
    _check_size(text)
    try:
        spec = lesson_parse(text, path="")
    except LessonFormatError as error:
        if strict:
            raise Invalid(
                f"This lesson does not validate: {_reason(error)}", field="toml"
            ) from None
        authored.toml, authored.error = text, _reason(error)
        authored.save()
        return authored
    _slug_free(authored.owner, spec.slug, but=authored if authored.pk else None)
    authored.toml, authored.error = text, ""
    authored.slug, authored.title = spec.slug, spec.title
    row_slug = (
        authored.lesson.slug
        if authored.lesson is not None
        else f"{spec.slug[:40]}--{authored.token[:12]}"
    )
    authored.lesson = lesson_row_store(spec, slug=row_slug, source_path="")
    authored.save()
    return authored


def _save_data(authored: AuthoredLesson, data: dict[str, Any]) -> AuthoredLesson:
    title = data.get("title")
    if isinstance(title, str) and title.strip():
        authored.title = title[:120]
    return _save(authored, lesson_toml(data), strict=False)


def _locked(authored: AuthoredLesson) -> AuthoredLesson:
    """The row again, locked: two of the builder's forms sent at once both count."""
    return (
        # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins.
        AuthoredLesson.objects.select_for_update(of=("self",))
        .select_related("lesson", "room", "owner")
        .get(pk=authored.pk)
    )


def _count_check(owner) -> None:
    if AuthoredLesson.objects.filter(owner=owner).count() >= MAX_LESSONS_PER_OWNER:
        raise Conflict(
            f"You have {MAX_LESSONS_PER_OWNER} lessons, the most one instructor keeps here: "
            "delete one first."
        )


def _text_field(value: object, *, field: str, what: str, limit: int, required: bool) -> str:
    text = str(value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise Invalid(f"{what} must not be empty.", field=field)
    if len(text) > limit:
        raise Invalid(f"{what} has at most {limit} characters.", field=field)
    if "\x00" in text:
        raise Invalid(f"{what} must not contain the NUL character.", field=field)
    return text


# --- creating, importing, deleting ----------------------------------------------------------


def _slug_for(owner, title: str) -> str:
    base = (slugify(title)[:50].strip("-") or "my-lesson").replace("--", "-")
    slug, n = base, 2
    while AuthoredLesson.objects.filter(owner=owner, slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def authored_create(*, owner, room: Room, title: str) -> AuthoredLesson:
    """A new lesson from `room`'s board: its current state is the start, and recording of
    steps begins from it."""
    _count_check(owner)
    title = _text_field(title, field="title", what="A title", limit=120, required=True)
    data = {
        "slug": _slug_for(owner, title),
        "title": title,
        "order": DEFAULT_ORDER,
        "summary": PLACEHOLDER_SUMMARY,
        "intro": PLACEHOLDER_INTRO,
        "view": "board",
        "start": start_from_room(room),
        "goals": [],
        "solution": [],
        "wrong": DEFAULT_WRONG,
    }
    authored = AuthoredLesson(owner=owner, room=room, title=title, slug=data["slug"])
    authored.mark = room_mark(room)
    return _save_data(authored, data)


@transaction.atomic
def authored_import(*, owner, text: str, room: Room | None = None) -> AuthoredLesson:
    """A lesson file (exported here or written by hand), validated as the lesson files are."""
    _count_check(owner)
    text = str(text).replace("\r\n", "\n")
    if not text.strip():
        raise Invalid("Choose a lesson file or paste its text.", field="toml")
    authored = AuthoredLesson(owner=owner, room=room)
    if room is not None:
        authored.mark = room_mark(room)
    return _save(authored, text, strict=True)


@transaction.atomic
def authored_text_save(*, authored: AuthoredLesson, text: str) -> AuthoredLesson:
    """The lesson's text edited as a whole: refused with the validator's reason, or saved."""
    authored = _locked(authored)
    return _save(authored, str(text).replace("\r\n", "\n"), strict=True)


@transaction.atomic
def authored_delete(*, authored: AuthoredLesson) -> None:
    """The lesson and its playable row; rooms playing it keep their board."""
    authored = _locked(authored)
    if authored.lesson is not None:
        authored.lesson.delete()
    authored.delete()


@transaction.atomic
def authored_visibility_set(*, authored: AuthoredLesson, visibility: str) -> AuthoredLesson:
    authored = _locked(authored)
    if visibility not in Visibility.values:
        raise Invalid("Choose who sees this lesson.", field="visibility")
    if visibility != Visibility.PRIVATE and authored.lesson is None:
        raise Conflict(f"Finish the lesson first: {authored.error or 'it does not validate'}.")
    authored.visibility = visibility
    authored.save(update_fields=["visibility", "updated_at"])
    return authored


@transaction.atomic
def authored_link_renew(*, authored: AuthoredLesson) -> AuthoredLesson:
    """A new share link: the old one stops working."""
    authored = _locked(authored)
    authored.token = secrets.token_hex(12)
    authored.save(update_fields=["token", "updated_at"])
    return authored


# --- the builder's edits --------------------------------------------------------------------


@transaction.atomic
def authored_about_set(
    *, authored: AuthoredLesson, title: str, summary: str, intro: str, takeaway: str, hints: str
) -> AuthoredLesson:
    authored = _locked(authored)
    data = draft_data(authored)
    data["title"] = _text_field(title, field="title", what="A title", limit=120, required=True)
    data["summary"] = _text_field(
        summary, field="summary", what="The summary", limit=300, required=True
    )
    data["intro"] = _text_field(
        intro, field="intro", what="The introduction", limit=6000, required=True
    )
    data["takeaway"] = _text_field(
        takeaway, field="takeaway", what="The takeaway", limit=6000, required=False
    )
    lines = [line.strip() for line in str(hints or "").splitlines() if line.strip()]
    if len(lines) > lesson_spec_module.MAX_HINTS:
        raise Invalid(
            f"A lesson has at most {lesson_spec_module.MAX_HINTS} hints (one a line).",
            field="hints",
        )
    data["hints"] = [
        _text_field(h, field="hints", what="A hint", limit=1000, required=True) for h in lines
    ]
    return _save_data(authored, data)


@transaction.atomic
def authored_start_capture(*, authored: AuthoredLesson, room: Room) -> AuthoredLesson:
    """The board as it is now becomes the lesson's start; recording starts again from here."""
    authored = _locked(authored)
    data = draft_data(authored)
    data["start"] = start_from_room(room)
    authored.room, authored.mark = room, room_mark(room)
    return _save_data(authored, data)


def _room_of(authored: AuthoredLesson) -> Room:
    if authored.room is None:
        raise Conflict("This lesson has no board: start it from a room's current state first.")
    return authored.room


@transaction.atomic
def authored_steps_record(*, authored: AuthoredLesson) -> list[dict[str, Any]]:
    """What changed on the board since the last mark, appended as steps; the mark moves on."""
    authored = _locked(authored)
    room = _room_of(authored)
    steps = steps_since(room, authored.mark or {})
    if not steps:
        raise Conflict(
            "Nothing changed on the board since the last step: do something there first."
        )
    data = draft_data(authored)
    solution = list(data.get("solution", [])) + steps
    if len(solution) > lesson_spec_module.MAX_STEPS:
        raise Conflict(f"A lesson has at most {lesson_spec_module.MAX_STEPS} steps.")
    data["solution"] = solution
    authored.mark = room_mark(room)
    _save_data(authored, data)
    return steps


@transaction.atomic
def authored_mark_reset(*, authored: AuthoredLesson) -> AuthoredLesson:
    """Forget what changed on the board since the last step (it will not be recorded)."""
    authored = _locked(authored)
    authored.mark = room_mark(_room_of(authored))
    authored.save(update_fields=["mark", "updated_at"])
    return authored


def _index(value: object, items: list, what: str) -> int:
    try:
        index = int(str(value))
    except ValueError:
        index = -1
    if not 0 <= index < len(items):
        raise Invalid(f"This lesson has no such {what}.", field="index")
    return index


@transaction.atomic
def authored_step_say(*, authored: AuthoredLesson, index: object, say: str) -> AuthoredLesson:
    authored = _locked(authored)
    data = draft_data(authored)
    solution = data.get("solution", [])
    step = solution[_index(index, solution, "step")]
    text = _text_field(say, field="say", what="A step's text", limit=500, required=False)
    if text:
        step["say"] = text
    else:
        step.pop("say", None)
    return _save_data(authored, data)


@transaction.atomic
def authored_step_delete(*, authored: AuthoredLesson, index: object) -> AuthoredLesson:
    """A step out; the questions asked before later steps move along with them."""
    authored = _locked(authored)
    data = draft_data(authored)
    solution = data.get("solution", [])
    at = _index(index, solution, "step")
    del solution[at]
    kept = []
    for prediction in data.get("predictions", []):
        before = prediction.get("before_step", 0)
        if isinstance(before, int) and before > at:
            prediction["before_step"] = before - 1
        if solution and prediction.get("before_step", 0) >= len(solution):
            prediction["before_step"] = len(solution) - 1
        if solution:
            kept.append(prediction)
    data["predictions"] = kept
    return _save_data(authored, data)


# --- goals, predictions, quiz questions -----------------------------------------------------


def _arg_value(arg: Arg, raw: str, field: str) -> Any:
    raw = raw.strip()
    try:
        if arg.type == "int":
            return int(raw)
        if arg.type == "float":
            return float(raw)
        if arg.type == "bool":
            return raw in ("1", "on", "true", "yes")
        if arg.type == "strs":
            return [part.strip() for part in raw.split(",") if part.strip()]
        if arg.type == "ints":
            return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise Invalid(
            f"'{field}' must be a number (or numbers, comma-separated).", field=field
        ) from None
    return raw


def _goal_from_form(*, kind: str, text: str, args: dict[str, str], goal_id: str) -> dict:
    """A goal of `kind` from the builder's form, validated as a lesson file's goal would be."""
    if kind not in GOAL_ARGS:
        raise Invalid(f"Choose a goal kind (one of: {', '.join(GOAL_ARGS)}).", field="kind")
    check: dict[str, Any] = {}
    for name, arg in GOAL_ARGS[kind].items():
        raw = str(args.get(name, ""))
        # An empty box is "not given", except for a required text that may be empty (the
        # empty key of key_partitions): a form cannot tell the two apart otherwise.
        if raw.strip() == "" and not (arg.type == "str" and arg.empty_ok and arg.required):
            continue
        check[name] = _arg_value(arg, raw, name)
    goal = {"id": goal_id, "text": text or "(goal)", "check": {"kind": kind, **check}}
    probe = {
        "slug": "probe",
        "title": "probe",
        "order": 0,
        "summary": "probe",
        "intro": "probe",
        "start": {},
        "goals": [goal],
        "solution": DEFAULT_WRONG,
        "wrong": DEFAULT_WRONG,
    }
    try:
        parsed = lesson_spec_module.spec_from_dict(probe)
    except LessonFormatError as error:
        where = error.location.replace("goals[0].check", "goal").replace("goals[0]", "goal")
        raise Invalid(f"{where}: {error.reason}", field="kind") from None
    return {**goal, "check_args": parsed.goals[0].args}


@transaction.atomic
def authored_goal_add(
    *, authored: AuthoredLesson, kind: str, text: str, args: dict[str, str]
) -> AuthoredLesson:
    authored = _locked(authored)
    data = draft_data(authored)
    goals = list(data.get("goals", []))
    if len(goals) >= lesson_spec_module.MAX_GOALS:
        raise Conflict(f"A lesson has at most {lesson_spec_module.MAX_GOALS} goals.")
    text = _text_field(text, field="text", what="A goal's text", limit=300, required=True)
    taken = {g.get("id") for g in goals}
    number = len(goals) + 1
    while f"goal-{number}" in taken:
        number += 1
    goal = _goal_from_form(kind=kind, text=text, args=args, goal_id=f"goal-{number}")
    goals.append({"id": goal["id"], "text": text, "check": {"kind": kind, **goal["check_args"]}})
    data["goals"] = goals
    return _save_data(authored, data)


def _item_delete(authored: AuthoredLesson, name: str, index: object, what: str) -> AuthoredLesson:
    authored = _locked(authored)
    data = draft_data(authored)
    items = list(data.get(name, []))
    del items[_index(index, items, what)]
    data[name] = items
    return _save_data(authored, data)


@transaction.atomic
def authored_goal_delete(*, authored: AuthoredLesson, index: object) -> AuthoredLesson:
    return _item_delete(authored, "goals", index, "goal")


def _choices(raw: str) -> list[str]:
    choices = [line.strip() for line in str(raw or "").splitlines() if line.strip()]
    if not 2 <= len(choices) <= lesson_spec_module.MAX_CHOICES:
        raise Invalid(
            f"Give 2 to {lesson_spec_module.MAX_CHOICES} answers, one a line.", field="choices"
        )
    return [
        _text_field(c, field="choices", what="An answer", limit=200, required=True) for c in choices
    ]


def _answer(raw: object, choices: list[str]) -> int:
    try:
        answer = int(str(raw)) - 1
    except ValueError:
        answer = -1
    if not 0 <= answer < len(choices):
        raise Invalid(f"The right answer is a number from 1 to {len(choices)}.", field="answer")
    return answer


@transaction.atomic
def authored_prediction_add(
    *,
    authored: AuthoredLesson,
    before_step: object,
    question: str,
    choices: str,
    answer: object,
    explain: str,
) -> AuthoredLesson:
    """A "predict, then observe" question, asked before step number `before_step` (from 1)."""
    authored = _locked(authored)
    data = draft_data(authored)
    solution = data.get("solution", [])
    predictions = list(data.get("predictions", []))
    if len(predictions) >= lesson_spec_module.MAX_PREDICTIONS:
        raise Conflict(f"A lesson has at most {lesson_spec_module.MAX_PREDICTIONS} predictions.")
    try:
        number = int(str(before_step))
    except ValueError:
        number = 0
    step = _index(number - 1, solution, "step")
    listed = _choices(choices)
    taken = {p.get("id") for p in predictions}
    number = len(predictions) + 1
    while f"predict-{number}" in taken:
        number += 1
    predictions.append(
        {
            "id": f"predict-{number}",
            "before_step": step,
            "question": _text_field(
                question, field="question", what="The question", limit=500, required=True
            ),
            "choices": listed,
            "answer": _answer(answer, listed),
            "explain": _text_field(
                explain, field="explain", what="The explanation", limit=1000, required=False
            ),
        }
    )
    data["predictions"] = predictions
    return _save_data(authored, data)


@transaction.atomic
def authored_prediction_delete(*, authored: AuthoredLesson, index: object) -> AuthoredLesson:
    return _item_delete(authored, "predictions", index, "prediction")


@transaction.atomic
def authored_quiz_add(
    *, authored: AuthoredLesson, question: str, choices: str, answer: object, explain: str
) -> AuthoredLesson:
    """A multiple-choice quiz question (the generated kinds are written in the text)."""
    authored = _locked(authored)
    data = draft_data(authored)
    quiz = list(data.get("quiz", []))
    if len(quiz) >= lesson_spec_module.MAX_QUIZ:
        raise Conflict(f"A lesson has at most {lesson_spec_module.MAX_QUIZ} quiz questions.")
    listed = _choices(choices)
    quiz.append(
        {
            "kind": "choice",
            "question": _text_field(
                question, field="question", what="The question", limit=500, required=True
            ),
            "choices": listed,
            "answer": _answer(answer, listed),
            "explain": _text_field(
                explain, field="explain", what="The explanation", limit=1000, required=False
            ),
        }
    )
    data["quiz"] = quiz
    return _save_data(authored, data)


@transaction.atomic
def authored_quiz_delete(*, authored: AuthoredLesson, index: object) -> AuthoredLesson:
    return _item_delete(authored, "quiz", index, "quiz question")


# --- playing it -----------------------------------------------------------------------------


def _playable(authored: AuthoredLesson) -> Lesson:
    if authored.lesson is None:
        raise Conflict(
            f"The lesson cannot be played yet: {authored.error or 'it does not validate'}."
        )
    if authored.error:
        raise Conflict(
            f"The lesson's last change does not validate ({authored.error}): fix it first, "
            "so that what you see is what you wrote."
        )
    return authored.lesson


@transaction.atomic
def authored_preview(*, authored: AuthoredLesson) -> Room:
    """The lesson as a student gets it: a fresh lesson room at its start."""
    return lesson_room_create(lesson=_playable(authored))


@transaction.atomic
def shared_room_create(*, token: str) -> Room:
    """A fresh lesson room for whoever opened the share link: the lesson as it last validated,
    so that the owner's unfinished edit does not break a link the class is using."""
    return lesson_room_create(lesson=authored_shared(token=token).lesson)
