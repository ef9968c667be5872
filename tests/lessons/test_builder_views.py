"""The lesson builder's pages through Django's test client: who may see and edit what, errors
shown in the page, export, the share link and its rate, and a classroom running a built lesson."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from messaging.models import AuthoredLesson, Room
from messaging.services import lesson_authoring as authoring
from messaging.services.classroom import classroom_create
from messaging.services.groups import group_create, member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


def signed_in(name: str) -> tuple[Client, object]:
    user = get_user_model().objects.create_user(name, password="a long password here")
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def board():
    room = room_create(title="board")
    topic_create(room=room, name="orders", partitions=2)
    group_create(room=room, group_id="billing", topics=["orders"])
    return room


@pytest.fixture
def ada():
    return signed_in("ada")


def built(user, board) -> AuthoredLesson:
    authored = authoring.authored_create(owner=user, room=board, title="Grow a group")
    authored = authoring.authored_goal_add(
        authored=authored,
        kind="group_members",
        text="One consumer in billing",
        args={"group": "billing", "min": "1"},
    )
    member_join(group=board.groups.get(group_id="billing"), client_id="billing")
    authoring.authored_steps_record(authored=authored)
    authored.refresh_from_db()
    return authored


def test_an_instructor_builds_from_a_room_and_sees_the_goal_met_on_the_board(ada, board):
    client, user = ada
    response = client.post(reverse("builder_new"), {"room": board.code, "title": "Mine"})
    authored = AuthoredLesson.objects.get(owner=user)
    assert response.url == reverse("builder", args=[authored.pk])
    url = reverse("builder_action", args=[authored.pk, "goal-add"])
    client.post(
        url, {"kind": "partition_count", "text": "Two", "arg-topic": "orders", "arg-min": "2"}
    )
    goals = client.get(reverse("builder_goals", args=[authored.pk]))
    assert "met on the board" in goals.content.decode()
    assert "not met" not in goals.content.decode()
    page = client.get(reverse("builder", args=[authored.pk]))
    assert page.status_code == 200 and "Record the changes as a step" in page.content.decode()


def test_a_refused_form_shows_its_reason_in_the_page_with_a_4xx(ada, board):
    client, user = ada
    authored = built(user, board)
    bad = client.post(
        reverse("builder_action", args=[authored.pk, "text"]), {"toml": 'slug = "Bad Slug"'}
    )
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "This lesson does not validate" in body and "Bad Slug" in body  # the text is kept
    preview = client.post(
        reverse("builder_goal_preview", args=[authored.pk]),
        {"kind": "group_members", "arg-group": "billing"},
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code == 400 and "needs &#x27;min&#x27; or &#x27;max&#x27;" in (
        preview.content.decode()
    )
    authored.refresh_from_db()
    assert authored.error == ""  # nothing half-written


def test_only_the_owner_sees_or_edits_a_lesson_and_anyone_else_gets_a_404(ada, board):
    _, user = ada
    authored = built(user, board)
    other, _ = signed_in("grace")
    for url in (
        reverse("builder", args=[authored.pk]),
        reverse("builder_export", args=[authored.pk]),
        reverse("builder_goals", args=[authored.pk]),
    ):
        assert other.get(url).status_code == 404
    edit = other.post(reverse("builder_action", args=[authored.pk, "about"]), {"title": "Mine"})
    assert edit.status_code == 404
    assert other.post(reverse("builder_delete", args=[authored.pk])).status_code == 404
    assert Client().get(reverse("builder", args=[authored.pk])).status_code == 302  # log in
    # Private: no share link, no lesson list entry, no lesson page by its row's slug.
    assert Client().get(reverse("lesson_shared", args=[authored.token])).status_code == 404
    assert Client().get(reverse("lesson_start", args=[authored.lesson.slug])).status_code == 404


def test_export_then_import_gives_the_same_file(ada, board):
    client, user = ada
    authored = built(user, board)
    exported = client.get(reverse("builder_export", args=[authored.pk]))
    assert exported["Content-Disposition"] == 'attachment; filename="grow-a-group.toml"'
    client.post(reverse("builder_delete", args=[authored.pk]))
    upload = SimpleUploadedFile("grow-a-group.toml", exported.content)
    response = client.post(reverse("builder_import"), {"file": upload})
    again = AuthoredLesson.objects.get(owner=user)
    assert response.url == reverse("builder", args=[again.pk])
    assert client.get(reverse("builder_export", args=[again.pk])).content == exported.content
    refused = client.post(reverse("builder_import"), {"toml": "title = 3"})
    assert (
        refused.status_code == 400 and "This lesson does not validate" in refused.content.decode()
    )


def test_a_share_link_opens_a_fresh_sandbox_for_anyone_at_a_bounded_rate(
    ada, board, rate_clock_stopped, monkeypatch
):
    from messaging.views import lesson_builder

    _, user = ada
    authored = authoring.authored_visibility_set(authored=built(user, board), visibility="public")
    anyone = Client()
    url = reverse("lesson_shared", args=[authored.token])
    assert "Start the lesson" in anyone.get(url).content.decode()
    monkeypatch.setattr(lesson_builder, "SHARE_BURST", 2)
    codes = [anyone.post(url) for _ in range(3)]
    assert [r.status_code for r in codes] == [302, 302, 429]
    assert codes[2]["Retry-After"]
    first, second = (r.url.split("/")[2] for r in codes[:2])
    assert first != second
    assert Room.objects.get(code=first).lesson_id == authored.lesson_id


def test_a_classroom_runs_a_built_lesson_for_everyone(ada, board):
    client, user = ada
    authored = authoring.authored_visibility_set(authored=built(user, board), visibility="classes")
    room = classroom_create(owner=user, title="Week 5")
    picker = client.get(reverse("lesson_present", args=[room.code]))
    assert authored.lesson.slug in picker.content.decode()
    client.post(reverse("lesson_run", args=[room.code]), {"lesson": authored.lesson.slug})
    room.refresh_from_db()
    assert room.lesson_id == authored.lesson_id
    # Someone else's lesson, shared with their classes only, is not theirs to run.
    other, grace = signed_in("grace")
    theirs = classroom_create(owner=grace, title="Other")
    refused = other.post(
        reverse("lesson_run", args=[theirs.code]), {"lesson": authored.lesson.slug}
    )
    assert refused.status_code == 404
