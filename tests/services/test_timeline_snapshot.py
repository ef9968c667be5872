"""The timeline's capture outside any transaction, as the room driver and the commit hook make
it: the board read from a snapshot, without the room's lock (PostgreSQL and SQLite alike)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from messaging.models import TimelineFrame
from messaging.services import events, timeline
from messaging.services.records import RecordIn, records_produce
from messaging.services.seeds import sandbox_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_capture_on_commit(monkeypatch):
    """Only the test's own calls capture (the commit hook would capture what they expect)."""
    monkeypatch.setattr(events, "committed_hooks", [])


def test_it_captures_a_new_seq_once_and_rebuilds_it_exactly() -> None:
    room = sandbox_create(title="snapshot")
    first = timeline.timeline_capture(room=room.pk)
    assert first is not None and first.keyframe
    assert timeline.timeline_capture(room=room.pk) is None  # nothing new
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value="v")])
    room.refresh_from_db()
    frame = timeline.timeline_capture(room=room)
    assert frame is not None and frame.seq == room.last_seq
    assert list(TimelineFrame.objects.filter(room=room).values_list("seq", flat=True)) == [
        first.seq,
        frame.seq,
    ]


def test_a_write_of_the_room_does_not_wait_for_a_capture(monkeypatch) -> None:
    room = sandbox_create(title="snapshot")
    reading, written = threading.Event(), threading.Event()
    board_capture = timeline.board_capture

    def slow_board(*, room):
        reading.set()
        assert written.wait(10), "the produce waited for the capture's lock"
        return board_capture(room=room)

    monkeypatch.setattr(timeline, "board_capture", slow_board)

    def produce() -> None:
        try:
            assert reading.wait(10)
            records_produce(room=room, topic_name="orders", records=[RecordIn(key="k", value="v")])
            written.set()
        finally:
            connection.close()

    writer = threading.Thread(target=produce)
    writer.start()
    frame = timeline.timeline_capture(room=room.pk)
    writer.join(10)
    assert written.is_set() and frame is not None
    room.refresh_from_db()
    # The frame is the board as the snapshot saw it: before the produce.
    assert frame.seq == room.last_seq - 1
