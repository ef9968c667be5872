"""Progress: in the session for anonymous learners, on the account for logged-in ones, carried
over at login; exported as JSON and imported back, with every bad file refused and said why."""

from __future__ import annotations

import html
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from messaging.models import LessonProgress
from tests.lessons.test_views import add_consumer, make_lesson, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def lesson():
    return make_lesson()


@pytest.fixture
def user():
    return get_user_model().objects.create_user("ada", password="long enough password")


def complete(client, lesson) -> None:
    room = start(client, lesson)
    add_consumer(client, room)
    add_consumer(client, room)
    client.get(reverse("lesson_panel", args=[room.code]))  # the panel sees the goal met


def upload(client, content: bytes, name: str = "progress.json"):
    return client.post(
        reverse("lesson_progress_import"), {"file": SimpleUploadedFile(name, content)}
    )


def exported(**lessons) -> bytes:
    return json.dumps(
        {"format": "loglab-lesson-progress", "version": 1, "lessons": lessons}
    ).encode()


def test_an_anonymous_learners_progress_lives_in_their_session(client, lesson):
    complete(client, lesson)
    assert client.session["lessons"]["idle-test"] == {
        "goals_met": [0],
        "completed": True,
        "quiz_correct": 0,
        "quiz_total": 0,
    }
    assert not LessonProgress.objects.exists()


def test_a_logged_in_learners_progress_lives_on_their_account(client, lesson, user):
    client.force_login(user)
    complete(client, lesson)
    row = LessonProgress.objects.get(user=user, lesson_slug="idle-test")
    assert row.goals_met == [0] and row.completed_at is not None
    assert "lessons" not in client.session


def test_what_was_done_before_logging_in_moves_onto_the_account(client, lesson, user):
    complete(client, lesson)
    client.force_login(user)
    page = client.get(reverse("lesson_list")).content.decode()
    assert "1</b> of 1 lesson done" in page
    assert LessonProgress.objects.get(user=user).completed_at is not None
    assert "lessons" not in client.session


def test_progress_never_goes_backwards_after_undo(client, lesson):
    complete(client, lesson)
    room = start(client, lesson)
    client.post(reverse("lesson_undo", args=[room.code]))
    client.get(reverse("lesson_panel", args=[room.code]))
    assert client.session["lessons"]["idle-test"]["completed"] is True


def test_export_then_import_into_another_browser_keeps_the_progress(client, lesson, user):
    complete(client, lesson)
    response = client.get(reverse("lesson_progress_export"))
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["lessons"]["idle-test"]["completed"] is True

    other = type(client)()
    other.force_login(user)
    assert upload(other, response.content).status_code == 302
    assert LessonProgress.objects.get(user=user, lesson_slug="idle-test").completed_at


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "not a JSON file"),
        (b"\xff\xfe", "not a JSON file"),
        (b"[]", "not a LogLab lesson progress file"),
        (
            json.dumps({"format": "loglab-lesson-progress", "version": 2, "lessons": {}}).encode(),
            "version",
        ),
        (exported(nope={"completed": True}), "no lesson 'nope'"),
        (exported(**{"idle-test": {"goals_met": [5]}}), "a goal number of 'idle-test'"),
        (exported(**{"idle-test": {"completed": "yes"}}), "true or false"),
        (exported(**{"idle-test": {"quiz_correct": 0, "quiz_total": 5}}), "'quiz_total'"),
        (exported(**{"idle-test": {"quiz_correct": 2, "quiz_total": 1}}), "'quiz_correct'"),
        (exported(**{"idle-test": {"stars": 3}}), "unknown field 'stars'"),
        (b" " * (64 * 1024 + 1), "larger than 64 KB"),
    ],
)
def test_a_bad_progress_file_is_refused_with_the_reason(client, lesson, content, reason):
    response = upload(client, content)
    assert response.status_code == 400
    assert reason in html.unescape(response.content.decode())
    assert "lessons" not in client.session or not client.session["lessons"]


def test_an_import_without_a_file_says_so(client, lesson):
    response = client.post(reverse("lesson_progress_import"))
    assert response.status_code == 400
    assert "Choose a progress file" in response.content.decode()
