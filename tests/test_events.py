"""Room event types are declared once, in messaging/events.py, and only declared ones are
recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.template import Context, Template

from messaging import events

ROOT = Path(__file__).resolve().parent.parent


def test_it_names_each_type_once_by_a_constant_that_spells_it():
    constants = {
        name: value for name, value in vars(events).items() if isinstance(value, events.EventType)
    }
    assert set(constants.values()) == set(events.EVENT_TYPES)
    for name, value in constants.items():
        assert name == value.upper().replace(".", "_")
        assert value.about and isinstance(value.payload, dict)


def test_it_refuses_an_undeclared_type():
    with pytest.raises(ValueError, match="undeclared room event type 'record.produced'"):
        events.event_type_check("record.produced")
    assert events.event_type_check(events.STEP) == "step"


def test_it_gives_the_browser_every_type_with_its_constant_name():
    html = Template("{% load loglab %}{% event_types_json %}").render(Context())
    found = re.search(
        r'<script id="loglab-event-types" type="application/json">(.*)</script>', html
    )
    assert found, html[:200]
    listed = json.loads(found.group(1))
    assert set(listed) == set(events.EVENT_TYPES)
    assert listed["records.produced"]["constant"] == "RECORDS_PRODUCED"


def test_it_leaves_no_event_type_written_as_a_string_in_the_services():
    literal = re.compile(r'type="[a-z]+\.[a-z_.]+"|type="(resync|step)"')
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "messaging").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


@pytest.mark.django_db
def test_it_records_no_undeclared_type():
    from messaging.services.events import event_record
    from messaging.services.rooms import room_create

    room = room_create(title="events")
    with pytest.raises(ValueError):
        event_record(room=room, type="nonsense", payload={})
