"""Names and keys with control and text-direction characters (issue #12).

A name other people read (a student, a room's title, a group.id, a client.id, a
group.instance.id, a producer, a classic queue or consumer tag, an SQS consumer label) is
refused with the reason: "Ana\\u202eevil" would show as "Analive". A record key is data, as in
Kafka, and is kept, except NUL (PostgreSQL cannot store it); pages show its control and
text-direction characters as \\uXXXX. No page ever carries a NUL.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.errors import Invalid
from messaging.models import ConsumerGroup, Producer, Record, Room, Student
from messaging.services.classic import classic_consume, classic_queue_declare
from messaging.services.classroom import classroom_create
from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.simulation import producer_create
from messaging.services.sqs import sqs_queue_create, sqs_receive
from messaging.services.text import name_validate, visible
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Ana\u202eevil" shows as "Analive"
HIDDEN = [RLO, "\u2066", "\u200f", "\x07", "\x1b", "\u2028", "\x00"]


@pytest.fixture
def room():
    room = room_create(title="names")
    topic_create(room=room, name="orders", partitions=2)
    group_create(room=room, group_id="billing", topics=["orders"])
    return room


def test_it_writes_control_and_direction_characters_of_data_as_escapes():
    assert visible(f"Ana{RLO}evil") == "Ana\\u202eevil"
    assert visible("tab\there\x7f") == "tab\\u0009here\\u007f"
    assert visible("émile 😀 名前 عربي") == "émile 😀 名前 عربي"  # every script, untouched
    assert visible(None) is None


@pytest.mark.parametrize("ch", HIDDEN)
def test_it_refuses_a_name_with_a_control_or_direction_character_saying_which(ch):
    with pytest.raises(Invalid) as refused:
        name_validate(f"Ana{ch}evil", field="display_name", what="A name")
    assert refused.value.field == "display_name"
    assert (
        "NUL" in refused.value.message
        if ch == "\x00"
        else f"U+{ord(ch):04X}" in (refused.value.message)
    )


def test_it_keeps_names_in_any_script_with_emoji_and_joiners():
    for name in ["Zoë", "محمد", "李小龍", "👩‍💻 Ada", "José María"]:
        assert name_validate(name, field="display_name", what="A name") == name


def test_every_kind_of_name_refuses_a_direction_override(room):
    group = ConsumerGroup.objects.get(room=room, group_id="billing")
    owner = get_user_model().objects.create_user("ada", password="a long password")
    attempts = {
        "room title": lambda: room_create(title=f"Week{RLO}3"),
        "classroom title": lambda: classroom_create(owner=owner, title=f"Week{RLO}3"),
        "group.id": lambda: group_create(room=room, group_id=f"bil{RLO}ling", topics=["orders"]),
        "client.id": lambda: member_join(group=group, client_id=f"c{RLO}1"),
        "group.instance.id": lambda: member_join(
            group=group, client_id="c1", group_instance_id=f"pod{RLO}1"
        ),
        "consumer name": lambda: member_join(group=group, client_id="c1", display_name=f"A{RLO}"),
        "producer": lambda: producer_create(
            room=room,
            name=f"check{RLO}out",
            topic_name="orders",
            key_mode="set",
            keys=["a"],
            records_per_second=1,
        ),
        "classic queue": lambda: classic_queue_declare(room=room, name=f"work{RLO}"),
        "classic consumer tag": lambda: classic_consume(
            room=room, queue="work", consumer_tag=f"w{RLO}"
        ),
        "sqs consumer label": lambda: sqs_receive(
            queue=sqs_queue_create(room=room, name="jobs"), consumer=f"w{RLO}"
        ),
    }
    classic_queue_declare(room=room, name="work")
    before = (Room.objects.count(), ConsumerGroup.objects.count(), Producer.objects.count())
    for what, attempt in attempts.items():
        with pytest.raises(Invalid, match="text-direction") as refused:
            attempt()
        assert "U+202E" in refused.value.message, what
    assert (Room.objects.count(), ConsumerGroup.objects.count(), Producer.objects.count()) == (
        before
    )
    assert not group.members.exists()


def test_it_keeps_a_key_as_data_and_shows_its_hidden_characters_as_escapes(room):
    key = f"ali{RLO}ce\x07"
    records_produce(room=room, topic_name="orders", records=[RecordIn(key=key, value="v")])
    assert Record.objects.get().key == key  # the bytes the producer sent, hashed as sent
    page = Client().get(f"/r/{room.code}/").content.decode()
    assert 'data-teach="key">ali\\u202ece\\u0007</span>' in page
    # Only data-key keeps the key as it is: the colour is the hash of the real key, and an
    # attribute is never drawn.
    drawn = re.sub(r' data-key="[^"]*"', "", page)
    assert RLO not in drawn and "\x07" not in drawn


def test_it_refuses_a_nul_in_a_key_and_never_writes_one_into_a_page(room):
    with pytest.raises(Invalid, match="NUL"):
        records_produce(room=room, topic_name="orders", records=[RecordIn(key="a\x00b", value="")])
    with pytest.raises(Invalid, match="NUL"):
        producer_create(
            room=room,
            name="checkout",
            topic_name="orders",
            key_mode="set",
            keys=["a\x00b"],
            records_per_second=1,
        )
    answer = Client().post(f"/r/{room.code}/produce/", {"topic": "orders", "key": "a\x00b"})
    assert answer.status_code == 400
    assert "\x00" not in answer.content.decode()
    assert not Record.objects.exists()


def test_a_refused_student_name_is_shown_back_escaped_with_the_reason():
    owner = get_user_model().objects.create_user("ada", password="a long password")
    classroom = classroom_create(owner=owner, title="Week 3")
    for typed in [f"Ana{RLO}evil", "Ana\x00evil"]:
        answer = Client().post(f"/j/{classroom.code}/", {"display_name": typed})
        page = answer.content.decode()
        assert answer.status_code == 400
        assert "\x00" not in page and RLO not in page
        assert "text-direction" in page or "NUL" in page
    assert not Student.objects.exists()
