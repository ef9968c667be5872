"""A lesson run for a classroom: only its instructor runs it; the room goes back to the
lesson's start and the students follow; each student predicts once and the answers pool."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from messaging.models import LessonPrediction, Member, Room, RoomEvent
from messaging.services.classroom import classroom_create, student_join
from tests.lessons.test_views import make_lesson

pytestmark = pytest.mark.django_db


@pytest.fixture
def lesson():
    return make_lesson()


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("teacher", password="long enough password")


@pytest.fixture
def room(owner):
    return classroom_create(owner=owner, title="Week 4")


@pytest.fixture
def teacher(owner):
    client = Client()
    client.force_login(owner)
    return client


def student_client(room: Room, name: str) -> Client:
    client = Client()
    session = client.session
    session["joined"] = True
    session.save()
    student_join(room=room, display_name=name, session_key=session.session_key)
    return client


def run(client, room, lesson):
    return client.post(
        reverse("lesson_run", args=[room.code]), {"lesson": lesson.slug}, HTTP_HX_REQUEST="true"
    )


def advance(client, room):
    return client.post(reverse("lesson_next_stage", args=[room.code]), HTTP_HX_REQUEST="true")


def test_the_instructor_runs_a_lesson_and_the_students_follow_it(teacher, room, lesson):
    response = run(teacher, room, lesson)
    assert response.status_code == 200
    room.refresh_from_db()
    assert room.lesson == lesson and room.lesson_stage == 0
    assert room.follow_path == f"/r/{room.code}/lesson/"
    assert Member.objects.filter(group__room=room).count() == 2  # the lesson's start
    types = list(RoomEvent.objects.filter(room=room).values_list("type", flat=True))
    assert "lesson.stage" in types and "room.follow" in types


@pytest.mark.parametrize("who", ["student", "visitor", "other instructor"])
def test_nobody_but_the_instructor_runs_or_moves_a_lesson(room, lesson, who):
    if who == "student":
        client = student_client(room, "Ada")
    elif who == "visitor":
        client = Client()
    else:
        client = Client()
        client.force_login(get_user_model().objects.create_user("other", password="x" * 12))
    assert run(client, room, lesson).status_code == 403
    room.refresh_from_db()
    assert room.lesson is None and room.follow_path == ""
    assert advance(client, room).status_code == 403
    assert client.post(reverse("lesson_stop", args=[room.code])).status_code == 403


def test_next_walks_through_predictions_steps_and_reveals(teacher, room, lesson):
    run(teacher, room, lesson)
    kinds = []
    while True:
        response = advance(teacher, room)
        if response.status_code != 200:
            assert response.status_code == 409  # the end of the lesson
            break
        room.refresh_from_db()
        stage = RoomEvent.objects.filter(room=room, type="lesson.stage").last()
        kinds.append(stage.payload["kind"])
    assert kinds == ["predict", "step", "reveal", "step", "done"]
    # The steps were played on the board, for everyone to watch.
    assert Member.objects.filter(group__room=room).count() == 4


def test_each_student_answers_once_and_the_presenter_sees_the_pooled_answers(teacher, room, lesson):
    run(teacher, room, lesson)
    ada, bob, cy = (student_client(room, name) for name in ("Ada", "Bob", "Cy"))
    predict = reverse("lesson_predict", args=[room.code])
    early = ada.post(predict, {"question": "who-idles", "choice": "1"}, HTTP_HX_REQUEST="true")
    assert early.status_code == 409  # no question is open yet
    advance(teacher, room)  # the question opens
    for client, choice in ((ada, "1"), (bob, "1"), (cy, "0")):
        answer = client.post(
            predict, {"question": "who-idles", "choice": choice}, HTTP_HX_REQUEST="true"
        )
        assert answer.status_code == 200
        assert "your answer" in answer.content.decode()
    again = ada.post(predict, {"question": "who-idles", "choice": "2"}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    visitor = Client().post(
        predict, {"question": "who-idles", "choice": "2"}, HTTP_HX_REQUEST="true"
    )
    assert visitor.status_code == 403
    assert LessonPrediction.objects.filter(room=room).count() == 3

    present = teacher.get(reverse("lesson_present", args=[room.code])).content.decode()
    assert "3 answers" in present
    counts = [c.split("<")[0] for c in present.split('class="tally-count">')[1:]]
    assert counts == ["1", "2", "0"]
    assert "✓ right" not in present  # not revealed yet
    advance(teacher, room)  # the step: answers close
    late = student_client(room, "Dee").post(predict, {"question": "who-idles", "choice": "1"})
    assert late.status_code == 409
    advance(teacher, room)  # the reveal
    present = teacher.get(reverse("lesson_present", args=[room.code])).content.decode()
    assert "✓ right" in present and "the fourth consumer waits" in present


def test_the_students_page_shows_the_current_moment(teacher, room, lesson):
    ada = student_client(room, "Ada")
    run(teacher, room, lesson)
    page = ada.get(reverse("lesson_follow", args=[room.code])).content.decode()
    assert "moment-intro" in page and lesson.title in page
    assert "Group <code>billing</code> reads topic <code>orders</code>." in page
    advance(teacher, room)
    page = ada.get(reverse("lesson_room", args=[room.code])).content.decode()
    assert "With 4 consumers on 3 partitions, how many are idle?" in page
    assert 'id="board"' in page and "choice-btn" in page


def test_stopping_the_lesson_sends_the_students_back_to_their_page(teacher, room, lesson):
    run(teacher, room, lesson)
    teacher.post(reverse("lesson_stop", args=[room.code]))
    room.refresh_from_db()
    assert room.lesson is None and room.follow_path == f"/r/{room.code}/me/"
