"""The timeline's pages: a read-only past board, forking, and who may record and replay."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from messaging.models import Room, TimelineRecording
from messaging.services import timeline
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox, sandbox_create
from messaging.services.simulation import room_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = sandbox_create(title="pages")
    timeline.timeline_capture(room=room)
    room_step(room=room, step_ms=2000)
    timeline.timeline_capture(room=room)
    return room


def test_it_draws_a_past_board_without_controls(client, room):
    first = timeline.timeline_marks(room=room)[0].seq
    response = client.get(f"/r/{room.code}/timeline/?seq={first}")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'event <b id="timeline-seq" data-seq="{first}">#{first}</b>' in html
    board = html[html.index('class="board past-board"') : html.index("timeline-recordings")]
    assert 'data-group="billing"' in board
    assert "<form" not in board
    # The live room was not touched: no scratch room is left behind.
    assert not Room.objects.filter(code__startswith="~").exists()


def test_it_answers_a_bad_moment_or_an_empty_timeline_with_a_reason(client, room):
    assert client.get(f"/r/{room.code}/timeline/?seq=soon").status_code == 400
    empty = room_create(title="empty")
    response = client.get(f"/r/{empty.code}/timeline/")
    assert response.status_code == 404
    assert "nothing has happened" in response.content.decode()


def test_forking_lands_on_a_new_board(client, room):
    seq = timeline.timeline_marks(room=room)[0].seq
    response = client.post(f"/timeline/{room.code}/fork/", {"seq": seq})
    fork = Room.objects.exclude(pk=room.pk).get(title__contains="fork")
    assert response.status_code == 302 and response["Location"] == f"/r/{fork.code}/"
    assert fork.groups.count() == 2


def test_only_the_instructor_records_a_classroom_and_anyone_with_the_link_replays(client):
    teacher = get_user_model().objects.create_user("teacher", password="x")
    classroom = room_create(title="class", kind=Room.Kind.CLASSROOM, owner=teacher)
    room_seed_sandbox(room=classroom)
    timeline.timeline_capture(room=classroom)
    record = f"/timeline/{classroom.code}/record/"

    assert client.post(record, {"action": "start", "title": "Monday"}).status_code == 403
    client.force_login(teacher)
    assert client.post(record, {"action": "start", "title": "Monday"}).status_code == 302
    room_step(room=classroom, step_ms=1000)
    timeline.timeline_capture(room=classroom)
    assert client.post(record, {"action": "stop"}).status_code == 302
    recording = TimelineRecording.objects.get()
    assert recording.frames.count() == 2 and not recording.running
    client.logout()

    response = client.get(f"/replay/{recording.token}/")
    assert response.status_code == 200
    assert "of the recording “Monday”" in response.content.decode()
    assert client.get("/replay/not-a-token/").status_code == 404
    response = client.post(
        f"/timeline/{classroom.code}/fork/",
        {"seq": recording.first_seq, "recording": recording.token},
    )
    assert response.status_code == 302
    assert Room.objects.get(title__contains="fork").kind == Room.Kind.SANDBOX
