"""The room timeline: frames after each step, the bound on them, the past rebuilt and forked."""

from __future__ import annotations

import pytest

from messaging.errors import Conflict
from messaging.models import Assignment, Partition, Record, Room, TimelineFrame
from messaging.services import timeline
from messaging.services.groups import member_crash, member_join
from messaging.services.seeds import sandbox_create
from messaging.services.simulation import room_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = sandbox_create(title="timeline")
    timeline.timeline_capture(room=room)
    return room


def assigned(room: Room) -> dict[str, list[int]]:
    """Each billing member's partitions, by client and join order."""
    rows = Assignment.objects.filter(group__room=room, group__group_id="billing")
    owners: dict[str, list[int]] = {}
    for a in rows.select_related("member", "partition").order_by("member__join_order"):
        owners.setdefault(a.member.display_name or str(a.member.join_order), []).append(
            a.partition.index
        )
    return {k: sorted(v) for k, v in owners.items()}


def step_and_capture(room: Room, times: int, step_ms: int = 100) -> None:
    for _ in range(times):
        room_step(room=room, step_ms=step_ms)
        timeline.timeline_capture(room=room)


def test_it_captures_one_frame_per_committed_step_and_none_for_nothing_new(room):
    room.refresh_from_db()
    before = TimelineFrame.objects.filter(room=room).count()
    assert timeline.timeline_capture(room=room) is None
    step_and_capture(room, 3)
    frames = list(TimelineFrame.objects.filter(room=room).order_by("seq"))
    assert len(frames) == before + 3
    room.refresh_from_db()
    assert frames[-1].seq == room.last_seq
    assert frames[0].keyframe and not frames[-1].keyframe


def test_it_rebuilds_the_board_of_any_kept_frame_exactly(room):
    step_and_capture(room, 30, step_ms=500)
    room.refresh_from_db()
    middle = room.last_seq - 10
    frame = timeline.frame_at(room=room, seq=middle)
    # What the frame holds is what was captured at its seq: compare with a capture now of a
    # fresh room rolled forward to the same point is not possible, so compare the newest frame
    # with the live board instead, and the middle frame's records with the log.
    newest = timeline.frame_at(room=room, seq=room.last_seq)
    assert timeline.frame_state(frame=newest) == timeline.board_capture(room=room)
    rows = timeline.frame_state(frame=frame)["rows"]
    for fields in rows["record"].values():
        assert fields["offset"] < Partition.objects.get(pk=fields["partition_id"]).log_end_offset
    assert frame.seq <= middle


def test_scrubbing_back_shows_the_assignment_before_a_rebalance(room):
    step_and_capture(room, 5)
    before = assigned(room)
    room.refresh_from_db()
    seq_before = room.last_seq
    billing = room.groups.get(group_id="billing")
    member_join(group=billing, client_id="billing")
    timeline.timeline_capture(room=room)
    step_and_capture(room, 12, step_ms=1000)
    assert assigned(room) != before

    def draw(scratch: Room) -> dict[str, list[int]]:
        return assigned(scratch)

    frame = timeline.frame_at(room=room, seq=seq_before)
    assert timeline.frame_render(room=room, frame=frame, render=draw) == before
    # The scratch room the past was drawn in is gone with its rows.
    assert not Room.objects.filter(code__startswith="~").exists()


def test_a_fork_is_a_new_paused_sandbox_in_that_state(room):
    room_step(room=room, step_ms=3000)
    timeline.timeline_capture(room=room)
    before = assigned(room)
    room.refresh_from_db()
    seq = room.last_seq
    member_crash(member=room.groups.get(group_id="billing").members.order_by("join_order")[0])
    step_and_capture(room, 5, step_ms=5000)

    fork = timeline.timeline_fork(room=room, seq=seq)
    assert fork.pk != room.pk and fork.kind == Room.Kind.SANDBOX
    assert not fork.clock_running
    assert assigned(fork) == before
    kept = timeline.frame_state(frame=timeline.frame_at(room=room, seq=seq))
    assert Record.objects.filter(partition__topic__room=fork).count() == len(kept["rows"]["record"])
    assert fork.groups.get(group_id="billing").topics.get().name == "orders"
    # The fork goes on by itself: a step works and its timeline starts.
    room_step(room=fork, step_ms=1000)
    assert timeline.timeline_capture(room=fork) is not None


def test_the_window_stays_within_its_bound_over_ten_minutes_of_autoplay(room, monkeypatch):
    # The bound scaled down (the real one is 4 MiB and 3000 frames) so that ten minutes of room
    # time overflow it many times over in a few seconds of test.
    monkeypatch.setattr(timeline, "TIMELINE_MAX_BYTES", 160 * 1024)
    monkeypatch.setattr(timeline, "TIMELINE_MAX_FRAMES", 30)
    monkeypatch.setattr(timeline, "KEYFRAME_EVERY", 8)
    sizes = []
    for _ in range(60):  # ten minutes of room time, ten seconds a step
        room_step(room=room, step_ms=10_000)
        timeline.timeline_capture(room=room)
        sizes.append(timeline.room_timeline_bytes(room=room))
    assert max(sizes) <= 160 * 1024
    assert sizes[-1] > 80 * 1024  # the bound was reached, and kept
    assert TimelineFrame.objects.filter(room=room).count() <= 30
    room.refresh_from_db()
    assert room.sim_time_ms >= 600_000
    oldest = TimelineFrame.objects.filter(room=room).order_by("seq").first()
    assert oldest.keyframe  # whole segments go: every kept frame can be rebuilt
    newest = timeline.frame_at(room=room, seq=room.last_seq)
    assert timeline.frame_state(frame=newest) == timeline.board_capture(room=room)


def test_a_recording_keeps_its_frames_past_the_window_and_ends_when_full(room, monkeypatch):
    recording = timeline.recording_start(room=room, title="Rebalance demo")
    with pytest.raises(Conflict):
        timeline.recording_start(room=room, title="Another")
    step_and_capture(room, 4)
    timeline.recording_stop(room=room)
    step_and_capture(room, 2)
    recording.refresh_from_db()
    assert not recording.running and recording.frames.count() == 5
    TimelineFrame.objects.filter(room=room, recording=None).delete()
    last = timeline.frame_at(room=room, seq=recording.last_seq, recording=recording)
    assert timeline.frame_state(frame=last)["rows"]["topic"]

    monkeypatch.setattr(timeline, "RECORDING_MAX_FRAMES", 3)
    full = timeline.recording_start(room=room, title="Short")
    step_and_capture(room, 5)
    full.refresh_from_db()
    assert not full.running and full.frames.count() == 3


@pytest.fixture
def captures(monkeypatch):
    """The timeline's per-process marks, fresh; the room driven here; a step's commit hook run."""
    monkeypatch.setattr(timeline, "_last_capture", {})
    monkeypatch.setattr(timeline, "_dirty", {})
    monkeypatch.setattr(timeline, "_driven", set())


def driven_step(room: Room, on_commit) -> None:
    timeline.timeline_driven(room.pk, True)
    with on_commit(execute=True):
        room_step(room=room, step_ms=100)  # commits: the hook only marks the room


def test_a_driven_rooms_capture_waits_for_the_drivers_tick_once_the_commit_settled(
    room, monkeypatch, captures, django_capture_on_commit_callbacks
):
    clock = {"now": 1000.0}
    monkeypatch.setattr(timeline.time, "monotonic", lambda: clock["now"])
    frames = TimelineFrame.objects.filter(room=room)
    before = frames.count()
    driven_step(room, django_capture_on_commit_callbacks)
    assert frames.count() == before
    clock["now"] += timeline.SETTLE_S / 2
    timeline.timeline_flush(room.pk)  # the commit has not settled yet
    assert frames.count() == before
    clock["now"] += timeline.SETTLE_S
    timeline.timeline_flush(room.pk)
    assert frames.count() == before + 1


def test_a_room_nobody_watches_any_more_is_captured_at_once(
    room, captures, django_capture_on_commit_callbacks
):
    frames = TimelineFrame.objects.filter(room=room)
    before = frames.count()
    driven_step(room, django_capture_on_commit_callbacks)
    assert frames.count() == before
    timeline.timeline_driven(room.pk, False)
    timeline.timeline_unwatched(room.pk)
    assert frames.count() == before + 1
