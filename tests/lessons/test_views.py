"""The lesson pages: list, start and continue, the goal panel, hints, the solution's fill-ins,
predictions, undo and reset, and the quiz, through Django's test client."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from messaging.lessons.spec import lesson_parse, spec_to_dict
from messaging.models import ConsumerGroup, Lesson, Member, Record, Room, RoomSnapshot, Topic

pytestmark = pytest.mark.django_db

LESSON = '''
slug = "idle-test"
title = "More consumers than partitions"
order = 1
summary = "A group never shares a partition between two of its consumers."
points = ["kafka.groups.idle"]
intro = """
Group `billing` reads topic `orders`.

    orders-0 -> billing-1
"""
takeaway = "Consumers beyond the partition count wait idle."
hints = ["Each partition goes to one member.", "Add consumers until one has nothing."]

[start]
topics = [{ name = "orders", partitions = 3 }]
groups = [{ group = "billing", topics = ["orders"], consumers = 2, auto_offset_reset = "earliest" }]

[[goals]]
id = "idle"
text = "Give group `billing` a consumer with nothing to do."
check = { kind = "group_idle_members", group = "billing", min = 1 }

[[solution]]
do = "join"
group = "billing"
count = 2

[[solution]]
do = "produce_with_fault"
topic = "orders"
key = "alice"
value = "paid"
acks = "all"
idempotence = true
fault = "lose_ack"

[[wrong]]
do = "join"
group = "billing"

[[predictions]]
id = "who-idles"
before_step = 0
question = "With 4 consumers on 3 partitions, how many are idle?"
choices = ["none", "one", "two"]
answer = 1
explain = "One partition, one owner: the fourth consumer waits."

[[quiz]]
kind = "partition_for_key"
key = "bob"
partitions = 6

[[quiz]]
kind = "choice"
question = "What does an idle consumer do?"
choices = ["Reads every partition", "Waits to take over", "Crashes"]
answer = 1
explain = "It owns nothing until a rebalance gives it a partition."
'''


def make_lesson(text: str = LESSON, **changes) -> Lesson:
    slug = text.split('slug = "')[1].split('"')[0]
    spec = lesson_parse(text, path=f"01-{slug}.toml")
    data = {**spec_to_dict(spec), **changes}
    return Lesson.objects.create(
        slug=data["slug"], title=data["title"], order=data["order"], spec=data
    )


@pytest.fixture
def lesson() -> Lesson:
    return make_lesson()


def start(client, lesson: Lesson) -> Room:
    response = client.get(reverse("lesson_start", args=[lesson.slug]))
    assert response.status_code == 302
    return Room.objects.get(code=response.url.split("/")[2])


def billing(room: Room) -> ConsumerGroup:
    return ConsumerGroup.objects.get(room=room, group_id="billing")


def add_consumer(client, room: Room) -> None:
    url = reverse("member_new", args=[room.code, billing(room).pk])
    assert client.post(url, {"client_id": "billing"}).status_code == 302


def test_it_lists_every_lesson_in_order_with_its_state(client, lesson):
    make_lesson(
        LESSON.replace('"idle-test"', '"second"')
        .replace("order = 1", "order = 2")
        .replace("More consumers", "Second lesson")
    )
    page = client.get(reverse("lesson_list")).content.decode()
    assert page.index("More consumers than partitions") < page.index("Second lesson")
    assert "not started" in page and "0</b> of 2 lessons done" in page


def test_it_starts_a_lesson_room_once_and_continues_it_afterwards(client, lesson):
    room = start(client, lesson)
    assert room.kind == Room.Kind.LESSON and room.lesson == lesson
    assert billing(room).members.count() == 2  # the lesson's start
    assert start(client, lesson) == room
    assert "in progress" in client.get(reverse("lesson_list")).content.decode()


def test_it_shows_the_real_board_beside_the_goal_panel(client, lesson):
    room = start(client, lesson)
    page = client.get(reverse("lesson_room", args=[room.code])).content.decode()
    assert 'id="board"' in page and 'id="lesson-panel"' in page
    assert "Give group <code>billing</code> a consumer with nothing to do." in page
    assert '<pre class="lesson-diagram">orders-0 -&gt; billing-1</pre>' in page


def test_it_ticks_a_goal_when_the_room_reaches_it_and_records_the_progress(client, lesson):
    room = start(client, lesson)
    panel = client.get(reverse("lesson_panel", args=[room.code]))
    assert 'class="goal is-met"' not in panel.content.decode()
    add_consumer(client, room)
    add_consumer(client, room)
    panel = client.get(reverse("lesson_panel", args=[room.code])).content.decode()
    assert 'class="goal is-met"' in panel and "Lesson complete" in panel
    assert client.session["lessons"]["idle-test"]["completed"] is True
    assert "done" in client.get(reverse("lesson_list")).content.decode()


def test_it_shows_hints_one_at_a_time(client, lesson):
    room = start(client, lesson)
    url = reverse("lesson_hint", args=[room.code])
    first = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Each partition goes to one member." in first
    assert "Add consumers until one has nothing." not in first
    second = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Add consumers until one has nothing." in second


def test_the_solution_fills_in_board_forms_and_asks_the_prediction_first(client, lesson):
    room = start(client, lesson)
    page = client.post(
        reverse("lesson_solution", args=[room.code]), {"show": "1"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Add 2 consumers to group billing" in page
    assert "Answer the prediction above first." in page  # step 1 waits for the prediction
    page = client.post(
        reverse("lesson_predict", args=[room.code]),
        {"question": "who-idles", "choice": "2"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "The answer: “one”" in page and "the fourth consumer waits" in page
    fill = json.loads(page.split('data-fill="')[1].split('"')[0].replace("&quot;", '"'))
    assert fill == {
        "form": "member_new",
        "group": "billing",
        "fields": {"client_id": "billing"},
        "times": 2,
    }
    # The lost acknowledgement has no control on the board: the panel offers to play it.
    assert "Do this step" in page


def test_it_takes_one_answer_per_prediction(client, lesson):
    room = start(client, lesson)
    url = reverse("lesson_predict", args=[room.code])
    client.post(url, {"question": "who-idles", "choice": "1"})
    again = client.post(url, {"question": "who-idles", "choice": "0"}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409 and "already answered" in again.content.decode()
    bad = client.post(url, {"question": "nope", "choice": "0"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400


def test_it_plays_only_the_steps_the_page_has_no_control_for(client, lesson):
    room = start(client, lesson)
    url = reverse("lesson_do", args=[room.code])
    assert client.post(url, {"step": "0"}).status_code == 400  # the learner does that one
    assert client.post(url, {"step": "1"}).status_code == 302
    assert Record.objects.filter(partition__topic__room=room, key="alice").count() == 1
    assert RoomSnapshot.objects.filter(room=room).count() == 1  # undoable like any step
    # A step that fails leaves nothing to undo: its snapshot goes with it.
    Topic.objects.filter(room=room).delete()
    assert client.post(url, {"step": "1"}).status_code == 404
    assert RoomSnapshot.objects.filter(room=room).count() == 1


def test_undo_takes_back_the_last_board_action(client, lesson):
    room = start(client, lesson)
    add_consumer(client, room)
    add_consumer(client, room)
    assert Member.objects.filter(group__room=room).count() == 4
    assert RoomSnapshot.objects.filter(room=room).count() == 2
    page = client.post(reverse("lesson_undo", args=[room.code]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert Member.objects.filter(group__room=room).count() == 3
    client.post(reverse("lesson_undo", args=[room.code]))
    assert Member.objects.filter(group__room=room).count() == 2
    nothing = client.post(reverse("lesson_undo", args=[room.code]), HTTP_HX_REQUEST="true")
    assert nothing.status_code == 409 and "Nothing to undo" in nothing.content.decode()


def test_a_refused_action_leaves_nothing_to_undo(client, lesson):
    room = start(client, lesson)
    response = client.post(
        reverse("record_produce", args=[room.code]),
        {"topic": "orders", "key": "a", "partition": "9"},
    )
    assert response.status_code == 400
    assert not RoomSnapshot.objects.filter(room=room).exists()


def test_reset_puts_the_lesson_back_at_its_start(client, lesson):
    room = start(client, lesson)
    add_consumer(client, room)
    client.post(reverse("lesson_hint", args=[room.code]))
    client.post(reverse("lesson_reset", args=[room.code]))
    assert Member.objects.filter(group__room=room).count() == 2
    assert not RoomSnapshot.objects.filter(room=room).exists()
    page = client.get(reverse("lesson_room", args=[room.code])).content.decode()
    assert "Each partition goes to one member." not in page  # the hints start over too


def test_it_grades_the_quiz_at_the_end_and_keeps_the_score(client, lesson):
    from messaging.engine.partitioner import partition_for_key
    from messaging.lessons.quiz import quiz_questions
    from messaging.lessons.spec import lesson_spec

    room = start(client, lesson)
    url = reverse("lesson_quiz", args=[room.code])
    early = client.post(url, {"q-q1": "0", "q-q2": "1"}, HTTP_HX_REQUEST="true")
    assert early.status_code == 409  # the quiz comes once the goals are met
    add_consumer(client, room)
    add_consumer(client, room)
    questions = quiz_questions(lesson_spec(lesson))
    right = str(partition_for_key(b"bob", 6))
    bob = questions[0].choices.index(next(c for c in questions[0].choices if right in c))
    missing = client.post(url, {"q-q1": str(bob)}, HTTP_HX_REQUEST="true")
    assert missing.status_code == 400 and "1 left" in missing.content.decode()
    page = client.post(url, {"q-q1": str(bob), "q-q2": "0"}, HTTP_HX_REQUEST="true")
    assert "1 / 2 right" in page.content.decode()
    assert client.session["lessons"]["idle-test"]["quiz_correct"] == 1


def test_a_lesson_that_does_not_exist_is_a_404(client):
    assert client.get(reverse("lesson_start", args=["nope"])).status_code == 404


def test_a_sandbox_has_no_lesson_page(client):
    from messaging.services.rooms import room_create

    room = room_create()
    assert client.get(reverse("lesson_room", args=[room.code])).status_code == 400
