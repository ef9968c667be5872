"""A room's timeline: what its board showed after each step, kept within a fixed budget.

After every transaction that recorded events in a room commits, the board's rows are captured
(`board_capture`): every topic, partition, group, member, assignment, committed offset,
producer, SQS queue and the classic broker, but only the records the board draws (the newest
BOARD_CELLS_PER_PARTITION of each partition) and the ledger lines it lists. A capture is a frame
tagged with the room's `last_seq`: the board as it was once that event had been recorded.

Frames are stored as a whole capture (a keyframe) followed by the difference from the frame
before (rows set, rows gone), so that a tick that moved three offsets costs a few hundred bytes.
A keyframe starts a segment; a frame is rebuilt from its segment's keyframe and the
differences after it. The bound (`TIMELINE_MAX_BYTES`, `TIMELINE_MAX_FRAMES` per room) drops
whole segments, oldest first, so a kept frame can always be rebuilt. A segment ends after
KEYFRAME_EVERY frames or half the byte budget, and one capture is at most CAPTURE_MAX_BYTES
(a bigger board is not captured: the timeline shows a gap), so the newest segment always fits.

A recording is the same frames kept in a scope of their own while it runs, under its own
budget; it outlives the rolling window, so a class's session can be replayed later.

A past frame is shown by loading it into a scratch room inside a transaction that is rolled back
(`frame_render`): the board's own selectors and templates draw it, and the live room is never
touched. A fork loads it into a new sandbox for good (`timeline_fork`).
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from messaging import events
from messaging.errors import Conflict, Invalid, NotFound
from messaging.infra.consistent_reads import read_snapshot
from messaging.models import (
    Assignment,
    ClassicBroker,
    Cluster,
    CommittedOffset,
    ConsumerGroup,
    LostRecord,
    Member,
    Partition,
    PartitionReplicas,
    ProcessedRecord,
    Producer,
    Record,
    RestConsumerInstance,
    Room,
    ShareGroup,
    ShareMember,
    SharePartitionState,
    SqsQueue,
    TimelineFrame,
    TimelineRecording,
    Topic,
)
from messaging.selectors import BOARD_CELLS_PER_PARTITION, LEDGER_SHOWN
from messaging.services.events import event_record, room_lock
from messaging.services.rooms import room_create
from messaging.services.text import name_validate

log = logging.getLogger(__name__)

FRAME_VERSION = 1
# The rolling window of one room: at most this many frames and bytes of frame data.
TIMELINE_MAX_FRAMES = 3_000
TIMELINE_MAX_BYTES = 4 * 1024 * 1024
# A segment (a keyframe and the differences after it) ends after this many frames.
KEYFRAME_EVERY = 50
# One capture at most: a room whose board is bigger is not captured (a gap in its timeline).
CAPTURE_MAX_BYTES = 256 * 1024
# A record's text kept in a frame (what the board's cell shows is far shorter).
VALUE_CHARS_KEPT = 512
# A room's commits are captured at most once a second per server process; the newest commit
# of a burst is captured at the room driver's next tick after that. A capture of a sandbox
# costs about 12 ms of queries: at every commit, a running clock's ten steps a second cost
# twice as much, and a Kafka client producing flat out lost a third of its records per second
# to them (docs/benchmarks.md). Scrubbing still steps event by event: events between two
# captures show the capture before them.
CAPTURE_MIN_INTERVAL_S = 1.0

RECORDINGS_PER_ROOM = 10
RECORDING_MAX_BYTES = 16 * 1024 * 1024
RECORDING_MAX_FRAMES = 40_000
MAX_RECORDING_TITLE = 80

# Rows of a room's board, in the order they are recreated: every row after the rows it
# points at. The foreign keys inside the room that a loaded row must be given its new pk for.
_TABLES: list[tuple[type[models.Model], str, dict[str, type[models.Model]]]] = [
    (Topic, "room", {}),
    (Partition, "topic__room", {"topic_id": Topic}),
    (Record, "partition__topic__room", {"partition_id": Partition}),
    (ConsumerGroup, "room", {}),
    (Member, "group__room", {"group_id": ConsumerGroup}),
    (RestConsumerInstance, "member__group__room", {"member_id": Member}),
    (
        Assignment,
        "group__room",
        {"group_id": ConsumerGroup, "member_id": Member, "partition_id": Partition},
    ),
    (CommittedOffset, "group__room", {"group_id": ConsumerGroup, "partition_id": Partition}),
    (ProcessedRecord, "group__room", {"group_id": ConsumerGroup, "partition_id": Partition}),
    (Producer, "room", {"topic_id": Topic}),
    (SqsQueue, "room", {}),
    (ClassicBroker, "room", {}),
    (Cluster, "room", {}),
    (PartitionReplicas, "partition__topic__room", {"partition_id": Partition}),
    (LostRecord, "room", {}),
    (ShareGroup, "room", {"topic_id": Topic}),
    (ShareMember, "group__room", {"group_id": ShareGroup}),
    (
        SharePartitionState,
        "group__room",
        {"group_id": ShareGroup, "partition_id": Partition},
    ),
]
_GROUP_TOPICS = "group_topics"
_ROOM_FIELDS = ("sim_time_ms", "clock_running", "clock_speed", "mirror_topic_id")

State = dict[str, Any]  # {"room": {...}, "rows": {table: {pk: {field: value}}}}


def _table(model: type[models.Model]) -> str:
    return model._meta.model_name


# --- capturing --------------------------------------------------------------------------------


def _json_ready(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


def _trimmed_record(fields: dict[str, Any]) -> dict[str, Any]:
    """A record as a frame keeps it: text cut to VALUE_CHARS_KEPT, raw bytes only if small."""
    for text, raw in (("key", "key_bytes"), ("value", "value_bytes")):
        value = fields.get(text)
        if isinstance(value, str) and len(value) > VALUE_CHARS_KEPT:
            fields[text] = value[:VALUE_CHARS_KEPT] + "…"
        stored = fields.get(raw)
        if stored is not None and len(stored) > VALUE_CHARS_KEPT:
            fields[raw] = None
    if fields.get("headers") and len(json.dumps(fields["headers"])) > VALUE_CHARS_KEPT:
        fields["headers"] = None
    return fields


def _rows(queryset: models.QuerySet, *, record: bool = False) -> dict[str, dict[str, Any]]:
    rows = {}
    for values in queryset.values():
        pk = values.pop("id")
        fields = {name: _json_ready(value) for name, value in values.items()}
        rows[str(pk)] = _trimmed_record(fields) if record else fields
    return rows


def board_capture(*, room: Room) -> State:
    """What the room's board draws, as JSON-ready rows (the caller holds the room's lock)."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for model, lookup, _ in _TABLES:
        queryset = model.objects.filter(**{lookup: room}).order_by("pk")
        if model is Record:
            window = Q(pk__in=[])
            for p in Partition.objects.filter(topic__room=room):
                first = max(p.log_start_offset, p.log_end_offset - BOARD_CELLS_PER_PARTITION)
                window |= Q(partition_id=p.pk, offset__gte=first)
            queryset = queryset.filter(window)
        elif model is ProcessedRecord:
            kept = Q(pk__in=[])
            for group_pk in ConsumerGroup.objects.filter(room=room).values_list("pk", flat=True):
                newest = ProcessedRecord.objects.filter(group_id=group_pk).order_by("-id")
                kept |= Q(pk__in=list(newest.values_list("pk", flat=True)[:LEDGER_SHOWN]))
            queryset = queryset.filter(kept)
        rows[_table(model)] = _rows(queryset, record=model is Record)
    links = ConsumerGroup.topics.through.objects.filter(consumergroup__room=room)
    rows[_GROUP_TOPICS] = {
        f"{g}-{t}": {"group_id": g, "topic_id": t}
        for g, t in links.values_list("consumergroup_id", "topic_id")
    }
    return {"room": {name: getattr(room, name) for name in _ROOM_FIELDS}, "rows": rows}


def _difference(before: State, after: State) -> dict[str, Any]:
    """Rows new since `before` (whole), rows changed (only their changed fields), rows gone."""
    new: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    gone: dict[str, list[str]] = {}
    for table, rows in after["rows"].items():
        old = before["rows"].get(table, {})
        for pk, fields in rows.items():
            was = old.get(pk)
            if was is None:
                new.setdefault(table, {})[pk] = fields
            elif was != fields:
                moved = {name: v for name, v in fields.items() if was.get(name, v) != v}
                changed.setdefault(table, {})[pk] = moved
        removed = [pk for pk in old if pk not in rows]
        if removed:
            gone[table] = removed
    return {"room": after["room"], "new": new, "set": changed, "del": gone}


def _applied(state: State, diff: dict[str, Any]) -> State:
    rows = {table: dict(table_rows) for table, table_rows in state["rows"].items()}
    for table, new_rows in diff.get("new", {}).items():
        rows.setdefault(table, {}).update(new_rows)
    for table, changes in diff.get("set", {}).items():
        for pk, moved in changes.items():
            rows[table][pk] = {**rows[table][pk], **moved}
    for table, removed in diff.get("del", {}).items():
        for pk in removed:
            rows.get(table, {}).pop(pk, None)
    return {"room": diff["room"], "rows": rows}


def _size(data: Any) -> int:
    return len(json.dumps(data, separators=(",", ":")))


# --- storing frames ---------------------------------------------------------------------------


@dataclass
class _Tail:
    """The newest frame of one scope, as this process wrote it: what the next difference is
    taken from. Trusted only while the scope's newest stored frame is still that seq."""

    seq: int
    state: State
    frames_in_segment: int
    segment_bytes: int


# (room pk, recording pk or 0) -> tail; bounded, the least recently captured room dropped.
_tails: OrderedDict[tuple[int, int], _Tail] = OrderedDict()
_TAILS_KEPT = 256
_tails_lock = threading.Lock()


def _tail_get(key: tuple[int, int]) -> _Tail | None:
    with _tails_lock:
        return _tails.get(key)


def _tail_put(key: tuple[int, int], tail: _Tail) -> None:
    with _tails_lock:
        _tails[key] = tail
        _tails.move_to_end(key)
        while len(_tails) > _TAILS_KEPT:
            _tails.popitem(last=False)


def _scope(room: Room, recording: TimelineRecording | None) -> models.QuerySet:
    return TimelineFrame.objects.filter(room=room, recording=recording)


def _frame_store(
    *,
    room: Room,
    recording: TimelineRecording | None,
    state: State,
    full_bytes: int,
    budget_bytes: int,
) -> TimelineFrame:
    key = (room.pk, recording.pk if recording else 0)
    tail = _tail_get(key)
    newest = _scope(room, recording).order_by("-seq").values_list("seq", flat=True).first()
    data: dict[str, Any] | None = None
    if (
        tail is not None
        and newest == tail.seq
        and tail.frames_in_segment < KEYFRAME_EVERY
        and tail.segment_bytes < budget_bytes // 2
    ):
        data = _difference(tail.state, state)
        size = _size(data)
        if size >= full_bytes:
            data = None
    if data is None:
        data, size, keyframe = {"room": state["room"], "rows": state["rows"]}, full_bytes, True
        tail = _Tail(room.last_seq, state, 0, 0)
    else:
        keyframe = False
    data["v"] = FRAME_VERSION
    frame = TimelineFrame.objects.create(
        room=room,
        recording=recording,
        seq=room.last_seq,
        sim_time_ms=room.sim_time_ms,
        keyframe=keyframe,
        data=data,
        size_bytes=size,
    )
    _tail_put(
        key,
        _Tail(room.last_seq, state, tail.frames_in_segment + 1, tail.segment_bytes + size),
    )
    return frame


def _window_prune(room: Room) -> None:
    """Drop the oldest segments until the rolling window is within its bound."""
    frames = _scope(room, None)
    while True:
        totals = frames.aggregate(count=models.Count("pk"), size=Sum("size_bytes"))
        if totals["count"] <= TIMELINE_MAX_FRAMES and (totals["size"] or 0) <= TIMELINE_MAX_BYTES:
            return
        keyframes = list(
            frames.filter(keyframe=True).order_by("seq").values_list("seq", flat=True)[:2]
        )
        if len(keyframes) < 2:
            # One segment left, still too big: a segment ends at half the budget, so only
            # lowering the budget gets here; starting over keeps the bound.
            frames.delete()
            with _tails_lock:
                _tails.pop((room.pk, 0), None)
            return
        frames.filter(seq__lt=keyframes[1]).delete()


def room_timeline_bytes(*, room: Room) -> int:
    """The bytes of frame data the room's rolling window holds (what its bound counts)."""
    return _scope(room, None).aggregate(size=Sum("size_bytes"))["size"] or 0


def timeline_capture(*, room: Room | int) -> TimelineFrame | None:
    """Capture the room's board as a frame, unless its newest frame is already this seq.

    Returns the rolling window's new frame, or None (nothing new, or a board over
    CAPTURE_MAX_BYTES). A running recording of the room gets the frame too.

    Outside a transaction (the commit hook, the room's driver) the board is read from a
    snapshot (infra/consistent_reads.read_snapshot) without the room's lock, which only storing the
    frame takes: reading a full room's board takes tens of milliseconds, and every write of the
    room (a produce, a student's click) waited behind it, so each capture delayed the next few
    events by as much (docs/benchmarks.md). Inside one (a fork, a recording's start) it reads
    under the room's lock.
    """
    if not connection.in_atomic_block:
        return _capture_from_snapshot(room.pk if isinstance(room, Room) else room)
    return _capture_locked(room=room)


@transaction.atomic
def _capture_locked(*, room: Room | int) -> TimelineFrame | None:
    room = room_lock(room=room)
    if not _news(room):
        return None
    return _capture_keep(room, board_capture(room=room))


def _news(room: Room) -> bool:
    newest = _scope(room, None).order_by("-seq").values_list("seq", flat=True).first()
    return room.last_seq > 0 and (newest is None or newest < room.last_seq)


def _capture_from_snapshot(room_pk: int) -> TimelineFrame | None:
    with read_snapshot():
        seen = Room.objects.filter(pk=room_pk).first()
        if seen is None:
            raise NotFound("That room does not exist (it may have expired).")
        if not _news(seen):
            return None
        state = board_capture(room=seen)
    with transaction.atomic():
        room_lock(room=room_pk)  # one room's frames are stored one at a time, in seq order
        if not _news(seen):
            return None  # another capture stored this seq or a newer one meanwhile
        return _capture_keep(seen, state)


def _capture_keep(room: Room, state: State) -> TimelineFrame | None:
    """Store a board read at `room`'s seq: the window's frame, and a running recording's."""
    full_bytes = _size(state)
    if full_bytes > CAPTURE_MAX_BYTES:
        return None
    frame = _frame_store(
        room=room,
        recording=None,
        state=state,
        full_bytes=full_bytes,
        budget_bytes=TIMELINE_MAX_BYTES,
    )
    _window_prune(room)
    recording = TimelineRecording.objects.filter(room=room, running=True).first()
    if recording is not None:
        _recording_append(room=room, recording=recording, state=state, full_bytes=full_bytes)
    return frame


def _recording_append(
    *, room: Room, recording: TimelineRecording, state: State, full_bytes: int
) -> None:
    count = recording.frames.count()
    if count >= RECORDING_MAX_FRAMES or recording.size_bytes + full_bytes > RECORDING_MAX_BYTES:
        # Full: the recording ends here rather than dropping what the class saw first.
        _recording_stop(recording)
        return
    frame = _frame_store(
        room=room,
        recording=recording,
        state=state,
        full_bytes=full_bytes,
        budget_bytes=RECORDING_MAX_BYTES,
    )
    recording.size_bytes += frame.size_bytes
    recording.last_seq = frame.seq
    if count == 0:
        recording.first_seq = frame.seq
    recording.save(update_fields=["size_bytes", "last_seq", "first_seq"])


# Per room, in this process: when its board was last captured, the rooms whose newest commit
# was not captured yet (and since when), and the rooms a driver of this process ticks.
_last_capture: dict[int, float] = {}
_dirty: dict[int, float] = {}
_driven: set[int] = set()
# How long a driven room's capture waits after its commit. A capture of a full classroom takes
# a few hundred milliseconds of Python; made in the committing request, it held up the
# request's answer and, holding the GIL, the event's fan-out to the room's sockets (the
# classroom's "Everyone join" reached its 500th page 0.25 s later with it than without).
SETTLE_S = 1.0


def timeline_driven(room_pk: int, driven: bool) -> None:
    """A driver of this process starts (or stops) ticking the room: its captures can wait for
    the tick (services/driving.py tells)."""
    if driven:
        _driven.add(room_pk)
    else:
        _driven.discard(room_pk)


def timeline_after_commit(room_pk: int) -> None:
    """A transaction that recorded events in the room committed: capture its board (the hook
    services/events.py calls; registered in apps.py).

    Runs after the commit, in its own transaction, so the capture sees the whole step and a
    failure here never undoes (or fails) the write that caused it. A commit too soon after the
    last capture only marks the room, as does any commit of a room this process's driver ticks
    (SETTLE_S): the driver's tick (`timeline_flush`), the next commit, or opening the timeline
    captures it.
    """
    now = time.monotonic()
    if room_pk in _driven or now - _last_capture.get(room_pk, -1e9) < CAPTURE_MIN_INTERVAL_S:
        _dirty.setdefault(room_pk, now)
        return
    _capture(room_pk, now)


def _capture(room_pk: int, now: float) -> None:
    _last_capture[room_pk] = now
    _dirty.pop(room_pk, None)
    if len(_last_capture) > 4 * _TAILS_KEPT:
        _last_capture.clear()
    try:
        timeline_capture(room=room_pk)
    except NotFound:
        pass  # the room went in the meantime
    except Exception:
        log.exception("room %s: timeline capture failed", room_pk)


def timeline_unwatched(room_pk: int) -> None:
    """Nobody here watches the room any more: what its driver had not captured yet is now."""
    if room_pk in _dirty and room_pk not in _driven:
        _capture(room_pk, time.monotonic())


def timeline_flush(room_pk: int) -> None:
    """Capture the room if a commit of it is still uncaptured here, it has settled, and the
    last capture is old enough (the room driver's tick)."""
    marked = _dirty.get(room_pk)
    if marked is None:
        return
    now = time.monotonic()
    if now - marked >= SETTLE_S and now - _last_capture.get(room_pk, -1e9) >= (
        CAPTURE_MIN_INTERVAL_S
    ):
        _capture(room_pk, now)


# --- reading frames ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameMark:
    """One position on a timeline's scrubber."""

    seq: int
    sim_time_ms: int


def timeline_marks(*, room: Room, recording: TimelineRecording | None = None) -> list[FrameMark]:
    return [
        FrameMark(seq, at)
        for seq, at in _scope(room, recording).order_by("seq").values_list("seq", "sim_time_ms")
    ]


def frame_at(*, room: Room, seq: int, recording: TimelineRecording | None = None) -> TimelineFrame:
    """The frame showing the board as it was once event `seq` had been recorded: the newest
    frame at or before it (events of one step share its frame); the oldest kept frame for a
    seq from before the window."""
    frames = _scope(room, recording)
    frame = frames.filter(seq__lte=seq).order_by("-seq").first()
    if frame is None:
        frame = frames.order_by("seq").first()
    if frame is None:
        raise NotFound("This room's timeline is empty: nothing has happened in it yet.")
    return frame


def frame_state(*, frame: TimelineFrame) -> State:
    """The whole capture a frame stands for: its segment's keyframe and the differences since."""
    frames = _scope(frame.room, frame.recording)
    keyframe = frames.filter(keyframe=True, seq__lte=frame.seq).order_by("-seq").first()
    if keyframe is None:
        raise NotFound("That moment is no longer kept.")
    state: State = {"room": keyframe.data["room"], "rows": keyframe.data["rows"]}
    diffs = frames.filter(seq__gt=keyframe.seq, seq__lte=frame.seq).order_by("seq")
    for diff in diffs.values_list("data", flat=True):
        state = _applied(state, diff)
    return state


# --- loading a frame into a room --------------------------------------------------------------


def _decoded(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    decoded = {}
    for name, value in fields.items():
        field = model._meta.get_field(name)  # finds a foreign key by its attname too
        if value is not None and isinstance(field, models.BinaryField):
            value = base64.b64decode(value)
        elif value is not None and isinstance(field, models.DateTimeField):
            value = datetime.datetime.fromisoformat(value)
        decoded[name] = value
    return decoded


def _state_load(*, room: Room, state: State, log_starts_at_records: bool) -> None:
    """Create the rows of `state` in `room` (which has none), each with a new pk.

    `log_starts_at_records`: a frame keeps only the records the board drew, so a fork's
    partitions begin where those do, as if retention had deleted the older ones; a past board
    keeps the real log start (it only draws, and its "N older" counts must be right).
    """
    new_pks: dict[type[models.Model], dict[str, int]] = {}
    rows = state["rows"]
    first_kept: dict[str, int] = {}
    for fields in rows.get(_table(Record), {}).values():
        key = str(fields["partition_id"])
        first_kept[key] = min(first_kept.get(key, fields["offset"]), fields["offset"])
    for model, _lookup, links in _TABLES:
        stored = rows.get(_table(model), {})
        old_pks = list(stored)
        objects = []
        for old_pk in old_pks:
            fields = _decoded(model, stored[old_pk])
            if "room_id" in fields:
                fields["room_id"] = room.pk
            for name, target in links.items():
                fields[name] = new_pks[target][str(fields[name])]
            if model is Partition and log_starts_at_records:
                first = first_kept.get(old_pk, fields["log_end_offset"])
                fields["log_start_offset"] = max(fields["log_start_offset"], first)
            objects.append(model(**fields))
        # bulk_create stamps auto_now_add fields with now: the originals go back after, since
        # the board orders some rows by them.
        stamped = [
            f.attname
            for f in model._meta.concrete_fields
            if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False)
        ]
        originals = [{name: getattr(obj, name) for name in stamped} for obj in objects]
        model.objects.bulk_create(objects, batch_size=500)
        if stamped and objects and model is not Record:
            for obj, values in zip(objects, originals, strict=True):
                for name, value in values.items():
                    setattr(obj, name, value)
            model.objects.bulk_update(objects, stamped, batch_size=500)
        new_pks[model] = {old: obj.pk for old, obj in zip(old_pks, objects, strict=True)}
    through = ConsumerGroup.topics.through
    through.objects.bulk_create(
        [
            through(
                consumergroup_id=new_pks[ConsumerGroup][str(link["group_id"])],
                topic_id=new_pks[Topic][str(link["topic_id"])],
            )
            for link in rows.get(_GROUP_TOPICS, {}).values()
        ]
    )
    fields = dict(state["room"])
    mirror = fields.pop("mirror_topic_id", None)
    fields["mirror_topic_id"] = new_pks[Topic].get(str(mirror)) if mirror is not None else None
    Room.objects.filter(pk=room.pk).update(**fields)
    room.refresh_from_db()


T = TypeVar("T")


class _RolledBack(Exception):
    pass


def frame_render(*, room: Room, frame: TimelineFrame, render: Callable[[Room], T]) -> T:
    """`render(scratch)` with the frame loaded into a scratch room that never commits.

    The board's own selectors and templates draw the past this way, and the live room is not
    touched; the transaction is rolled back whatever `render` does.
    """
    state = frame_state(frame=frame)
    result: list[T] = []
    try:
        with transaction.atomic():
            scratch = Room.objects.create(
                code="~" + secrets.token_hex(5), title=room.title, kind=Room.Kind.SANDBOX
            )
            _state_load(room=scratch, state=state, log_starts_at_records=False)
            result.append(render(scratch))
            raise _RolledBack
    except _RolledBack:
        pass
    return result[0]


@transaction.atomic
def timeline_fork(
    *, room: Room, seq: int, recording: TimelineRecording | None = None, title: str = ""
) -> Room:
    """A new sandbox in the state the room's board showed at event `seq`, its clock paused."""
    frame = frame_at(room=room, seq=seq, recording=recording)
    state = frame_state(frame=frame)
    if not title.strip():
        suffix = f" (fork at #{frame.seq})"
        base = (room.title or "Sandbox").strip()
        title = base[: settings.LOGLAB_MAX_ROOM_TITLE - len(suffix)].strip() + suffix
    fork = room_create(title=title)
    state = {"room": {**state["room"], "clock_running": False}, "rows": state["rows"]}
    _state_load(room=fork, state=state, log_starts_at_records=True)
    event_record(
        room=fork,
        type=events.RESYNC,
        payload={"reason": "fork", "label": f"{room.code} at event #{frame.seq}"},
    )
    return fork


# --- recordings -------------------------------------------------------------------------------


def _recording_stop(recording: TimelineRecording) -> None:
    recording.running = False
    recording.stopped_at = timezone.now()
    recording.save(update_fields=["running", "stopped_at"])


@transaction.atomic
def recording_start(*, room: Room, title: str, user=None) -> TimelineRecording:
    """Start recording the room's timeline; the board as it is now is the first frame."""
    room = room_lock(room=room)
    title = name_validate(title.strip(), field="title", what="A recording's title")
    if not title:
        raise Invalid("Give the recording a title.", field="title")
    if len(title) > MAX_RECORDING_TITLE:
        raise Invalid(
            f"A recording's title has at most {MAX_RECORDING_TITLE} characters.", field="title"
        )
    if TimelineRecording.objects.filter(room=room, running=True).exists():
        raise Conflict("This room is already being recorded: stop that recording first.")
    if TimelineRecording.objects.filter(room=room).count() >= RECORDINGS_PER_ROOM:
        raise Conflict(f"A room keeps at most {RECORDINGS_PER_ROOM} recordings: delete one first.")
    recording = TimelineRecording.objects.create(
        room=room,
        title=title,
        token=secrets.token_urlsafe(12),
        created_by=user if user is not None and user.is_authenticated else None,
        first_seq=room.last_seq,
        last_seq=room.last_seq,
    )
    state = board_capture(room=room)
    full_bytes = _size(state)
    if full_bytes <= CAPTURE_MAX_BYTES:
        _recording_append(room=room, recording=recording, state=state, full_bytes=full_bytes)
    return recording


@transaction.atomic
def recording_stop(*, room: Room) -> TimelineRecording:
    room = room_lock(room=room)
    recording = TimelineRecording.objects.filter(room=room, running=True).first()
    if recording is None:
        raise Conflict("Nothing is being recorded in this room.")
    _recording_stop(recording)
    return recording


@transaction.atomic
def recording_delete(*, recording: TimelineRecording) -> None:
    TimelineRecording.objects.filter(pk=recording.pk).delete()
