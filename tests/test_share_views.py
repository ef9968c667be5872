"""The share groups page, its side by side with SQS FIFO and a consumer group, and their forms:
with htmx and without, good input and bad."""

from __future__ import annotations

import pytest

from messaging import selectors
from messaging.models import ConsumerGroup, ShareGroup, SqsQueue
from messaging.services import share_groups as share
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import room_step
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def room():
    room = room_create(title="share views")
    topic_create(room=room, name="jobs", partitions=2)
    return room


def url(room, path: str = "") -> str:
    return f"/r/{room.code}/share/{path}"


def post(client, room, path, data, htmx=True):
    return client.post(url(room, path), data, headers=HTMX if htmx else {})


def produce(room, keys):
    records_produce(
        room=room,
        topic_name="jobs",
        records=[RecordIn(key=k, value=f"job {k}", partition=0) for k in keys],
    )


def test_it_creates_a_group_and_draws_each_records_share_state(client, room):
    answer = post(
        client,
        room,
        "new/",
        {
            "group_id": "workers",
            "topic": "jobs",
            "auto_offset_reset": "earliest",
            "record_lock_duration_ms": "5000",
            "delivery_count_limit": "3",
            "max_record_locks": "200",
            "consumers": "2",
            "records_per_second": "1",
            "failure_rate": "0",
            "on_failure": "release",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["HX-Trigger"] == "loglab:queues-changed"
    group = ShareGroup.objects.get(room=room, group_id="workers")
    assert (group.record_lock_duration_ms, group.delivery_count_limit) == (5000, 3)
    produce(room, ["a", "b", "c"])
    member = group.members.order_by("join_order").first()
    assert (
        post(
            client,
            room,
            "member/",
            {"group": "workers", "member": member.member_id, "action": "fetch"},
        ).status_code
        == 200
    )
    page = client.get(url(room))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-share-group="workers"' in html
    assert html.count('class="cell shcell is-acquired') >= 3
    assert "acquired by consumer-1" in html
    assert "SPSO" in html and 'data-events="SHARE_CHANGED"' in html
    fragment = client.get(url(room, "live/"), headers=HTMX)
    assert fragment.status_code == 200 and 'id="queues-live"' in fragment.content.decode()
    answer = post(
        client,
        room,
        "ack/",
        {
            "group": "workers",
            "member": member.member_id,
            "partition": "0",
            "offset": "0",
            "kind": "release",
        },
    )
    assert answer.status_code == 200 and "RELEASE P0@0" in answer.content.decode()


def test_it_refuses_bad_input_with_the_reason(client, room):
    answer = post(
        client, room, "new/", {"group_id": "w", "topic": "jobs", "delivery_count_limit": "11"}
    )
    assert answer.status_code == 400
    assert "group.share.delivery.count.limit" in answer.content.decode()
    assert post(client, room, "new/", {"group_id": "w", "topic": "nope"}).status_code == 404
    assert (
        post(client, room, "member/", {"group": "w", "member": "x", "action": "dance"}).status_code
        == 400
    )
    assert (
        post(
            client, room, "member/", {"group": "nope", "member": "x", "action": "fetch"}
        ).status_code
        == 404
    )
    assert client.get(url(room, "member/")).status_code == 405


def test_it_answers_a_plain_post_with_a_redirect(client, room):
    answer = post(
        client, room, "new/", {"group_id": "plain", "topic": "jobs", "consumers": "1"}, htmx=False
    )
    assert answer.status_code == 302 and answer.url == url(room)


def test_it_sets_up_the_comparison_and_drives_all_three(client, room):
    answer = post(client, room, "compare/setup/", {"topic": "jobs", "back": "compare"})
    assert answer.status_code == 200
    share_group = ShareGroup.objects.get(room=room, group_id="jobs-share")
    assert share_group.compare["queue"] == "jobs.fifo"
    assert ConsumerGroup.objects.get(room=room, group_id="jobs-group").members.count() == 2
    records_produce(
        room=room,
        topic_name="jobs",
        records=[RecordIn(key=k, value=f"v{n}", partition=None) for n, k in enumerate("aabbc")],
    )
    queue = SqsQueue.objects.get(room=room, name="jobs.fifo")
    assert len(selectors.sqs_state_load(queue).messages) == 5
    for _ in range(8):
        room_step(room=room, step_ms=1_000)
    share_group.refresh_from_db()
    queue.refresh_from_db()
    assert share_group.totals["accept"] == 5
    assert selectors.sqs_state_load(queue).totals.deleted == 5
    group = ConsumerGroup.objects.get(room=room, group_id="jobs-group")
    assert group.processed_total == 5
    page = client.get(url(room, "compare/"))
    html = page.content.decode()
    assert page.status_code == 200
    for column in ("share", "sqs", "group"):
        assert f'data-column="{column}"' in html
    assert client.get(url(room, "compare/live/"), headers=HTMX).status_code == 200


def test_it_serves_an_empty_page_and_comparison(client, room):
    assert "No share group yet" in client.get(url(room)).content.decode()
    assert "start comparing" in client.get(url(room, "compare/")).content.decode()
    share.share_group_create(room=room, group_id="g", topic="jobs")
    assert "No share-partition yet" in client.get(url(room)).content.decode()


def test_it_says_on_about_what_share_groups_do_and_which_clients_have_them(client):
    page = client.get("/about/").content.decode()
    assert "group.share.delivery.count.limit" in page and "SPSO" in page
    assert "ShareConsumer" in page and "kafka-python 3.0.12 and aiokafka 0.14.0" in page


def test_it_runs_the_share_groups_lesson_on_the_share_page(client):
    from pathlib import Path

    from django.urls import reverse

    from messaging.lessons.spec import lesson_parse, spec_to_dict
    from messaging.models import Lesson, Room

    path = Path(__file__).resolve().parent.parent / "lessons" / "13-share-groups.toml"
    spec = lesson_parse(path.read_text(encoding="utf-8"), path=str(path))
    lesson = Lesson.objects.create(
        slug=spec.slug, title=spec.title, order=spec.order, spec=spec_to_dict(spec)
    )
    answer = client.get(reverse("lesson_start", args=[lesson.slug]))
    assert answer.status_code == 302
    room = Room.objects.get(code=answer.url.split("/")[2])
    page = client.get(answer.url).content.decode()
    assert 'data-share-group="workers"' in page and "lesson-layout" in page
    assert ShareGroup.objects.get(room=room, group_id="workers").members.count() == 2


def test_it_undoes_a_share_group_step_in_a_lesson_room(room):
    from messaging.services.snapshots import room_snapshot_restore, room_snapshot_take

    group = share.share_group_create(
        room=room, group_id="g", topic="jobs", auto_offset_reset="earliest", consumers=1
    )
    produce(room, ["a", "b"])
    snapshot = room_snapshot_take(room=room, label="before the fetch")
    member = group.members.get()
    share.share_fetch(member=member)
    assert selectors.share_state_load(selectors.share_partition_rows(group=group)[0]).in_flight
    room_snapshot_restore(room=room, snapshot=snapshot)
    restored = ShareGroup.objects.get(room=room, group_id="g")
    assert restored.members.count() == 1
    state = selectors.share_state_load(selectors.share_partition_rows(group=restored)[0])
    assert state.in_flight == () and state.spso == 0
