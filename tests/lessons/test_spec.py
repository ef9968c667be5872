"""Lesson files: what parses, and a plain reason with the place for everything that does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging.lessons.spec import LessonFormatError, lesson_parse, spec_from_dict, spec_to_dict

FIXTURE = Path(__file__).parent / "fixtures" / "01-idle-consumers.toml"
PATH = "lessons/09-tiny.toml"

TINY = """
slug = "tiny"
title = "Tiny"
order = 9
summary = "One goal."
intro = "Add a consumer."
[start]
topics = [{ name = "orders", partitions = 2 }]
groups = [{ group = "billing", topics = ["orders"] }]

[[goals]]
id = "two"
text = "Two consumers."
check = { kind = "group_members", group = "billing", min = 2 }

[[solution]]
do = "join"
group = "billing"

[[wrong]]
do = "produce"
topic = "orders"
key = "alice"
"""


def parse(text: str = TINY, path: str = PATH):
    return lesson_parse(text, path=path)


def refused(text: str, path: str = PATH) -> str:
    with pytest.raises(LessonFormatError) as caught:
        parse(text, path)
    return str(caught.value)


def test_it_parses_a_lesson_with_its_defaults():
    spec = parse()
    assert (spec.slug, spec.title, spec.order, spec.view) == ("tiny", "Tiny", 9, "board")
    assert spec.start.topics == ({"name": "orders", "partitions": 2},)
    assert spec.goals[0].kind == "group_members"
    assert spec.goals[0].args == {"group": "billing", "min": 2}
    assert spec.solution[0].do == "join" and spec.solution[0].args == {"group": "billing"}
    assert spec.predictions == () and spec.quiz == () and spec.hints == ()


def test_it_round_trips_through_the_stored_json():
    spec = parse(FIXTURE.read_text(), str(FIXTURE))
    assert spec_from_dict(spec_to_dict(spec), path="x") == spec
    assert spec.predictions[0].choices == ("none", "one", "two")
    assert [q.kind for q in spec.quiz] == [
        "partition_for_key",
        "idle_consumers",
        "range_share",
        "choice",
    ]


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (("order = 9", "order = 9\ncolour = 'red'"), "", "unknown key 'colour'"),
        (('slug = "tiny"', 'slug = "Tiny Lesson"'), "slug", "lowercase letters"),
        (('slug = "tiny"', 'slug = "other"'), "slug", "the file is named for 'tiny'"),
        (('title = "Tiny"\n', ""), "", "a lesson needs 'title'"),
        (("order = 9", "order = 'nine'"), "order", "expected a whole number, found a string"),
        (
            ('intro = "Add a consumer."', 'intro = "Add a consumer."\nview = "terminal"'),
            "view",
            "must be one of 'board', 'queues'",
        ),
        (('do = "join"', 'do = "teleport"'), "solution[0].do", "unknown step 'teleport'"),
        (
            ('group = "billing"\n\n[[wrong]]', 'grup = "billing"\n\n[[wrong]]'),
            "solution[0] (do = 'join')",
            "unknown key 'grup' for step 'join'",
        ),
        (
            ('key = "alice"', "key = 7"),
            "wrong[0] (do = 'produce').key",
            "expected a string, found a whole number",
        ),
        (
            ('kind = "group_members"', 'kind = "group_size"'),
            "goals[0].check.kind",
            "unknown goal kind 'group_size'",
        ),
        (
            ('group = "billing", min = 2 }', 'group = "billing" }'),
            "goals[0].check (kind = 'group_members')",
            "needs 'min' or 'max'",
        ),
        (
            ("min = 2 }", "min = 3, max = 1 }"),
            "goals[0].check (kind = 'group_members')",
            "'min' (3) is more than 'max' (1)",
        ),
        (
            ("partitions = 2 }", "partitions = 500 }"),
            "start.topics[0].partitions",
            "must be at most 128 (found 500)",
        ),
        (
            ("[[wrong]]", 'hints = ["x"]\n[[wrong]]'),
            "solution[0] (do = 'join')",
            "'hints' is a top-level key",
        ),
        (
            ('[[wrong]]\ndo = "produce"\ntopic = "orders"\nkey = "alice"\n', ""),
            "",
            "a lesson needs 'wrong'",
        ),
        (("[start]", "[start]\nclock_speed = 50"), "start.clock_speed", "at most 20"),
    ],
)
def test_it_refuses_a_broken_file_saying_where_and_why(change, where, reason):
    old, new = change
    assert old in TINY
    text = TINY.replace(old, new, 1)
    message = refused(text)
    assert message.startswith(f"{PATH}: {where}: " if where else f"{PATH}: "), message
    assert reason in message


def test_it_refuses_what_is_not_toml():
    assert "not valid TOML" in refused("slug = ")


def test_it_wants_files_named_for_their_order_and_slug():
    assert "NN-slug.toml" in refused(TINY, "lessons/tiny.toml")


def test_it_refuses_a_prediction_after_the_last_solution_step():
    text = (
        TINY
        + """
[[predictions]]
id = "p"
before_step = 1
question = "?"
choices = ["a", "b"]
answer = 0
"""
    )
    assert "before_step must be at most 0 (found 1)" in refused(text)


def test_it_refuses_an_answer_that_is_not_a_choice():
    text = (
        TINY
        + """
[[quiz]]
kind = "choice"
question = "?"
choices = ["a", "b"]
answer = 2
"""
    )
    assert "quiz[0] (kind = 'choice').answer: must be between 0 and 1 (found 2)" in refused(text)


def test_it_refuses_an_unknown_quiz_kind_and_missing_arguments():
    assert "unknown quiz kind 'trivia'" in refused(TINY + '[[quiz]]\nkind = "trivia"\n')
    message = refused(TINY + '[[quiz]]\nkind = "partition_for_key"\nkey = "bob"\n')
    assert "quiz kind 'partition_for_key' needs 'partitions'" in message


def test_it_refuses_duplicate_goal_ids():
    goal = (
        '\n[[goals]]\nid = "two"\ntext = "again"\ncheck = { kind = "group_members", '
        'group = "billing", max = 9 }\n'
    )
    assert "two goals have the id 'two'" in refused(TINY + goal)


def test_it_refuses_what_kafka_refuses():
    step = (
        '\n[[solution]]\ndo = "produce_with_fault"\ntopic = "orders"\nacks = "1"\n'
        'idempotence = true\nfault = "lose_ack"\n'
    )
    assert 'idempotence = true needs acks = "all"' in refused(TINY + step)
    join = '\n[[solution]]\ndo = "join"\ngroup = "billing"\ncount = 2\ninstance_id = "a"\n'
    assert "use count = 1 with instance_id" in refused(TINY + join)


def test_it_refuses_a_consumer_that_is_not_a_place_in_the_group():
    step = '\n[[solution]]\ndo = "crash"\ngroup = "billing"\nconsumer = 0\n'
    assert "1-based place" in refused(TINY + step)


def test_it_validates_a_stored_spec_like_a_file():
    data = spec_to_dict(parse())
    data["goals"][0]["check"]["kind"] = "nonsense"
    with pytest.raises(LessonFormatError, match="unknown goal kind 'nonsense'"):
        spec_from_dict(data, path="admin")


def test_it_refuses_what_the_services_would_refuse_when_the_lesson_plays():
    # The broker models the default, direct and fanout exchanges: a topic exchange would pass
    # a looser list here and then fail in front of the learner.
    step = '\n[[solution]]\ndo = "classic_exchange"\nexchange = "logs"\ntype = "topic"\n'
    assert "type" in refused(TINY + step) and "fanout" in refused(TINY + step)
