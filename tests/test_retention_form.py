"""The board's topic settings form: unlimited retention (-1) is shown and accepted as such."""

from __future__ import annotations

import pytest

from messaging.models import Topic
from messaging.services.rooms import room_create
from messaging.services.seeds import room_seed_sandbox
from messaging.services.topics import topic_configure

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def room():
    return room_seed_sandbox(room=room_create(title="retention"))


def form_value(client, room) -> str:
    page = client.get(f"/r/{room.code}/").content.decode()
    start = page.index('name="retention_s"')
    return page[start : page.index(">", start)]


def test_a_topic_with_unlimited_retention_can_be_edited_with_its_own_value(client, room):
    topic = topic_configure(topic=room.topics.get(name="orders"), retention_ms=-1)
    shown = form_value(client, room)
    assert 'value="-1"' in shown and "-1 (unlimited)" in shown
    response = client.post(
        f"/r/{room.code}/topics/{topic.pk}/config/",
        {"retention_s": "-1", "retention_bytes": "-1", "segment_records": "5"},
        headers=HTMX,
    )
    assert response.status_code == 200, response.content
    assert Topic.objects.get(pk=topic.pk).retention_ms == -1


def test_seconds_become_milliseconds_and_other_negatives_are_refused(client, room):
    topic = room.topics.get(name="orders")
    path = f"/r/{room.code}/topics/{topic.pk}/config/"
    assert client.post(path, {"retention_s": "60"}, headers=HTMX).status_code == 200
    assert Topic.objects.get(pk=topic.pk).retention_ms == 60_000
    assert 'value="60"' in form_value(client, room)
    refused = client.post(path, {"retention_s": "-5"}, headers=HTMX)
    assert refused.status_code == 400
    assert "-1 (unlimited) or a number of seconds (not -5)" in refused.content.decode()
    assert Topic.objects.get(pk=topic.pk).retention_ms == 60_000
