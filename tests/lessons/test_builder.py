"""The lesson builder's services: a room's state as a lesson's start, steps recorded from the
board, goals checked on it, validation with the lesson files' errors, bounds, and the text
written back in the lesson file format."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from messaging.errors import Conflict, Invalid, NotFound
from messaging.lessons.catalog import lesson_files_parse, lessons_load
from messaging.lessons.spec import lesson_parse, spec_to_dict
from messaging.lessons.toml_text import lesson_toml
from messaging.models import AuthoredLesson, Lesson, Room
from messaging.selectors import group_get, lesson_get, lessons_all
from messaging.services import lesson_authoring as authoring
from messaging.services.groups import member_crash, member_join
from messaging.services.lesson_steps import step_apply
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher():
    return get_user_model().objects.create_user("ada", password="a long password here")


@pytest.fixture
def board():
    """A paused sandbox with a topic, two keyed records and a group of one consumer."""
    from messaging.services.groups import group_create

    room = room_create(title="builder board")
    topic_create(room=room, name="orders", partitions=2)
    records_produce(
        room=room,
        topic_name="orders",
        records=[RecordIn(key="alice", value="paid"), RecordIn(key="alice", value="paid")],
        producer="you",
    )
    group = group_create(
        room=room, group_id="billing", topics=["orders"], auto_offset_reset="earliest"
    )
    member_join(group=group, client_id="billing")
    return room


def a_valid_lesson(teacher, board) -> AuthoredLesson:
    authored = authoring.authored_create(owner=teacher, room=board, title="Grow a group")
    authored = authoring.authored_goal_add(
        authored=authored,
        kind="group_members",
        text="Give billing 3 consumers",
        args={"group": "billing", "min": "3"},
    )
    member_join(group=group_get(room=board, group_id="billing"), client_id="billing")
    member_join(group=group_get(room=board, group_id="billing"), client_id="billing")
    authoring.authored_steps_record(authored=authored)
    return AuthoredLesson.objects.get(pk=authored.pk)


def test_it_writes_every_lesson_file_back_as_text_that_parses_to_the_same_lesson():
    for spec in lesson_files_parse():
        assert lesson_parse(lesson_toml(spec_to_dict(spec)), path="") == spec


def test_it_turns_a_rooms_state_into_a_start_that_rebuilds_the_same_board(teacher, board):
    authored = authoring.authored_create(owner=teacher, room=board, title="From a board")
    start = authoring.draft_data(authored)["start"]
    assert start["topics"] == [{"name": "orders", "partitions": 2}]
    assert start["groups"] == [
        {"group": "billing", "topics": ["orders"], "auto_offset_reset": "earliest", "consumers": 1}
    ]
    (run,) = start["records"]
    assert run["key"] == "alice" and run["count"] == 2
    # A draft with no goal and no step is kept, with the validator's own words.
    assert authored.lesson is None
    assert "goals" in authored.error or "solution" in authored.error


def test_it_records_the_boards_changes_as_steps_in_a_fixed_order(teacher, board):
    authored = authoring.authored_create(owner=teacher, room=board, title="Steps")
    group = group_get(room=board, group_id="billing")
    member_join(group=group, client_id="billing")
    records_produce(
        room=board, topic_name="orders", records=[RecordIn(key="bob", value="x")], producer="you"
    )
    steps = authoring.authored_steps_record(authored=authored)
    assert [s["do"] for s in steps] == ["join", "produce"]
    assert steps[1]["key"] == "bob" and steps[1]["say"]
    with pytest.raises(Conflict, match="Nothing changed"):
        authoring.authored_steps_record(authored=authored)
    member_crash(member=group.members.order_by("join_order").first())
    (crash,) = authoring.authored_steps_record(authored=authored)
    assert crash == {**crash, "do": "crash", "group": "billing", "consumer": 1}


def test_a_built_lesson_plays_in_a_fresh_room_and_its_goal_is_checked_there(teacher, board):
    authored = a_valid_lesson(teacher, board)
    assert authored.error == "" and authored.lesson is not None
    (preview,) = authoring.goal_previews(authored)
    assert preview["status"].met  # the board is where the steps left it
    room = authoring.authored_preview(authored=authored)
    assert room.kind == Room.Kind.LESSON and room.lesson_id == authored.lesson_id
    spec = lesson_parse(authored.toml, path="")
    for step in spec.solution:
        step_apply(room=room, step=step)
    assert group_get(room=room, group_id="billing").members.filter(crashed=False).count() == 3


def test_a_goal_form_is_refused_with_the_validators_reason(teacher, board):
    authored = authoring.authored_create(owner=teacher, room=board, title="Goals")
    with pytest.raises(Invalid, match="needs 'min' or 'max'"):
        authoring.authored_goal_add(
            authored=authored, kind="group_members", text="x", args={"group": "billing"}
        )
    with pytest.raises(Invalid, match="Choose a goal kind"):
        authoring.authored_goal_add(authored=authored, kind="nope", text="x", args={})
    status = authoring.goal_preview(
        room=board, kind="records", args={"topic": "orders", "min": "2"}
    )
    assert status.met and "2 records" in status.detail


def test_an_import_that_does_not_validate_is_refused_with_the_place_and_reason(teacher):
    with pytest.raises(Invalid, match=r"goals\[0\]\.check.*unknown goal kind 'nope'"):
        authoring.authored_import(
            owner=teacher,
            text=(
                'slug = "x"\ntitle = "x"\norder = 1\nsummary = "x"\nintro = "x"\n'
                '[start]\n[[goals]]\nid = "g"\ntext = "t"\ncheck = { kind = "nope" }\n'
                '[[solution]]\ndo = "advance"\nms = 1\n[[wrong]]\ndo = "advance"\nms = 1\n'
            ),
        )
    with pytest.raises(Invalid, match="not valid TOML"):
        authoring.authored_import(owner=teacher, text="slug = ")
    with pytest.raises(Invalid, match="at most 64 KB"):
        authoring.authored_import(owner=teacher, text="#" * (65 * 1024))
    assert not AuthoredLesson.objects.exists()


def test_import_and_export_round_trip_the_text_exactly(teacher, board):
    text = a_valid_lesson(teacher, board).toml
    AuthoredLesson.objects.all().delete()
    again = authoring.authored_import(owner=teacher, text=text)
    assert again.toml == text and again.error == "" and again.lesson is not None
    with pytest.raises(Conflict, match="already have a lesson"):
        authoring.authored_import(owner=teacher, text=text)


def test_an_instructor_keeps_a_bounded_number_of_lessons(teacher, board, monkeypatch):
    monkeypatch.setattr(authoring, "MAX_LESSONS_PER_OWNER", 1)
    authoring.authored_create(owner=teacher, room=board, title="One")
    with pytest.raises(Conflict, match="delete one first"):
        authoring.authored_create(owner=teacher, room=board, title="Two")


def test_built_lessons_stay_out_of_the_list_and_survive_loading_the_files(teacher, board):
    authored = a_valid_lesson(teacher, board)
    lessons_load()
    assert Lesson.objects.filter(pk=authored.lesson_id).exists()
    assert authored.lesson_id not in {lesson.pk for lesson in lessons_all()}
    with pytest.raises(NotFound):
        lesson_get(slug=authored.lesson.slug)


def test_only_a_public_lesson_opens_by_its_link(teacher, board):
    authored = a_valid_lesson(teacher, board)
    with pytest.raises(NotFound):
        authoring.authored_shared(token=authored.token)
    authoring.authored_visibility_set(authored=authored, visibility="public")
    room = authoring.shared_room_create(token=authored.token)
    assert room.lesson_id == authored.lesson_id
    renewed = authoring.authored_link_renew(authored=authored)
    with pytest.raises(NotFound):
        authoring.authored_shared(token=authored.token)
    assert authoring.authored_shared(token=renewed.token).pk == authored.pk
    # A room playing it keeps its board when the lesson is deleted.
    authoring.authored_delete(authored=renewed)
    room.refresh_from_db()
    assert room.lesson_id is None and not Lesson.objects.filter(pk=authored.lesson_id).exists()


def test_predictions_quiz_questions_and_step_texts_land_in_the_lesson_file(teacher, board):
    authored = a_valid_lesson(teacher, board)
    authored = authoring.authored_prediction_add(
        authored=authored,
        before_step="1",
        question="How many consumers after this step?",
        choices="1\n3\n",
        answer="2",
        explain="Two more join.",
    )
    authored = authoring.authored_quiz_add(
        authored=authored,
        question="One group, 2 partitions, 3 consumers: idle?",
        choices="0\n1",
        answer="2",
        explain="",
    )
    authored = authoring.authored_step_say(authored=authored, index=0, say="Two more join.")
    spec = lesson_parse(authored.toml, path="")
    assert spec.predictions[0].before_step == 0 and spec.predictions[0].answer == 1
    assert spec.quiz[0].args["answer"] == 1 and spec.solution[0].say == "Two more join."
    with pytest.raises(Invalid, match="from 1 to 2"):
        authoring.authored_quiz_add(
            authored=authored, question="q", choices="a\nb", answer="3", explain=""
        )
    with pytest.raises(Invalid, match="no such step"):
        authoring.authored_prediction_add(
            authored=authored,
            before_step="9",
            question="q",
            choices="a\nb",
            answer="1",
            explain="",
        )
    # Deleting the only step takes the question asked before it along.
    authored = authoring.authored_step_delete(authored=authored, index=0)
    data = authoring.draft_data(authored)
    assert data["solution"] == [] and data["predictions"] == []
    assert "solution: needs at least one step" in authored.error
