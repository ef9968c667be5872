"""A room's board as a lesson: its current state as a lesson's `start`, and what changed on it
since a mark as the lesson's steps.

Steps are recorded by comparing the room's state now with its state at the mark (the last
recorded step), not by reading its events: a change made by any means (the board's forms,
the REST API, a real Kafka client, the clock) shows in the state, and the comparison says
what a step must do to get there. What a diff cannot tell apart is written in a fixed order
(topics, groups, producers, consumers, records, then the clock), so an instructor records a
step after each action when order matters. Only what the lesson format can replay is
recorded: committed offsets, a student's consumer or a real client are left out (said on
the builder page).
"""

from __future__ import annotations

import re
from typing import Any

from messaging.errors import Invalid
from messaging.lessons.spec import MAX_COUNT, MAX_START_ITEMS, MAX_STEPS, MAX_TEXT, Step
from messaging.models import (
    DEFAULT_RETENTION_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    ConsumerGroup,
    Member,
    Partition,
    Producer,
    Record,
    Room,
    SqsQueue,
    Topic,
)
from messaging.services.lesson_steps import group_defaults, step_describe

# Replaying a lesson's record runs numbers their values ("order #1", "order #2"): a run read
# back from the board drops that number again, so a replayed start records the same way twice.
NUMBERED = re.compile(r" #\d+$")
MAX_START_RECORDS = MAX_START_ITEMS * MAX_COUNT
TOPIC_DEFAULTS = {
    "retention_ms": DEFAULT_RETENTION_MS,
    "cleanup_policy": "delete",
    "segment_records": 10,
}
GROUP_DEFAULTS = group_defaults({})


def _group_settings(group: ConsumerGroup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, default in GROUP_DEFAULTS.items():
        if getattr(group, name) != default:
            out[name] = getattr(group, name)
    if group.session_timeout_ms != DEFAULT_SESSION_TIMEOUT_MS:
        out["session_timeout_ms"] = group.session_timeout_ms
    if group.group_protocol != ConsumerGroup.GroupProtocol.CLASSIC:
        out["group_protocol"] = group.group_protocol
        if group.remote_assignor:
            out["remote_assignor"] = group.remote_assignor
    return out


def _live(group: ConsumerGroup) -> list[Member]:
    return list(
        group.members.filter(crashed=False, kind=Member.Kind.SIMULATED).order_by("join_order")
    )


def _extends(runs: list[dict[str, Any]], item: dict[str, Any]) -> bool:
    """Count `item` in the last run when it is the same record again (up to MAX_COUNT)."""
    last = runs[-1] if runs else None
    if last is None or last.get("count", 1) >= MAX_COUNT:
        return False
    if {k: v for k, v in last.items() if k != "count"} != item:
        return False
    last["count"] = last.get("count", 1) + 1
    return True


def _record_runs(room: Room) -> list[dict[str, Any]]:
    rows = (
        Record.objects.filter(partition__topic__room=room)
        .order_by("partition__topic__name", "partition__index", "offset")
        .values_list("partition__topic__name", "partition__index", "key", "value")
    )
    runs: list[dict[str, Any]] = []
    for count, (topic, index, key, value) in enumerate(rows[: MAX_START_RECORDS + 1]):
        if count == MAX_START_RECORDS:
            raise Invalid(
                f"This room holds more than {MAX_START_RECORDS} records: too many for a lesson's "
                "start. Start from a room with fewer (a new sandbox, paused)."
            )
        item: dict[str, Any] = {"topic": topic, "partition": index}
        if key is not None:
            item["key"] = key[:256]
        if value is None:
            item["tombstone"] = True
        else:
            item["value"] = NUMBERED.sub("", value)[:MAX_TEXT]
        if _extends(runs, item):
            continue
        runs.append(item)
    if len(runs) > MAX_START_ITEMS:
        raise Invalid(
            f"This room's records make {len(runs)} runs of the same key and value; a lesson's "
            f"start holds at most {MAX_START_ITEMS}. Start from a room with fewer different "
            "records."
        )
    return runs


def start_from_room(room: Room) -> dict[str, Any]:
    """The room's topics, groups (their simulated consumers), records, producers and SQS
    queues as a lesson's `start` section."""
    topics = []
    for topic in Topic.objects.filter(room=room).order_by("created_at", "pk")[:MAX_START_ITEMS]:
        item: dict[str, Any] = {"name": topic.name, "partitions": topic.partition_count}
        for name, default in TOPIC_DEFAULTS.items():
            if getattr(topic, name) != default:
                item[name] = getattr(topic, name)
        topics.append(item)
    groups = []
    for group in ConsumerGroup.objects.filter(room=room).order_by("pk")[:MAX_START_ITEMS]:
        names = sorted(group.topics.values_list("name", flat=True))
        if not names:
            continue  # a lesson's group reads at least one topic
        live = _live(group)
        item = {"group": group.group_id, "topics": names, **_group_settings(group)}
        item["consumers"] = min(len(live), MAX_COUNT)
        if live:
            if live[0].client_id != group.group_id:
                item["client_id"] = live[0].client_id[:64]
            if live[0].records_per_second != 1.0:
                item["rate"] = min(live[0].records_per_second, 100.0)
        groups.append(item)
    producers = []
    for producer in Producer.objects.filter(room=room).select_related("topic")[:MAX_START_ITEMS]:
        item = {"name": producer.name, "topic": producer.topic.name}
        if producer.key_mode != Producer.KeyMode.SET or producer.keys:
            item["key_mode"] = producer.key_mode
            item["keys"] = list(producer.keys)[:MAX_START_ITEMS]
        item["rate"] = min(producer.records_per_second, 200.0)
        item["running"] = producer.running
        producers.append(item)
    queues = [
        {"name": name}
        for name in SqsQueue.objects.filter(room=room)
        .order_by("pk")
        .values_list("name", flat=True)[:MAX_START_ITEMS]
    ]
    start: dict[str, Any] = {}
    for name, items in (
        ("topics", topics),
        ("groups", groups),
        ("records", _record_runs(room)),
        ("producers", producers),
        ("sqs_queues", queues),
    ):
        if items:
            start[name] = items
    return start


# --- recording: the mark, and the steps since it -----------------------------------------------


def room_mark(room: Room) -> dict[str, Any]:
    """What the steps since now are compared with."""
    room.refresh_from_db(fields=["sim_time_ms"])
    topics = {
        t.name: {
            "partitions": t.partition_count,
            **{name: getattr(t, name) for name in TOPIC_DEFAULTS},
        }
        for t in Topic.objects.filter(room=room)
    }
    ends = {
        f"{topic}/{index}": end
        for topic, index, end in Partition.objects.filter(topic__room=room).values_list(
            "topic__name", "index", "log_end_offset"
        )
    }
    groups = {
        g.group_id: {
            "live": [m.member_id for m in _live(g)],
            "crashed": list(g.members.filter(crashed=True).values_list("member_id", flat=True)),
        }
        for g in ConsumerGroup.objects.filter(room=room)
    }
    producers = {
        p.name: {"running": p.running, "rate": p.records_per_second}
        for p in Producer.objects.filter(room=room)
    }
    return {
        "ms": room.sim_time_ms,
        "topics": topics,
        "ends": ends,
        "groups": groups,
        "producers": producers,
    }


def _topic_steps(before: dict, now: dict) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for name, topic in now["topics"].items():
        old = before["topics"].get(name)
        if old is None:
            steps.append({"do": "create_topic", "name": name, "partitions": topic["partitions"]})
            old = {**TOPIC_DEFAULTS, "partitions": topic["partitions"]}
        if topic["partitions"] > old["partitions"]:
            steps.append({"do": "add_partitions", "topic": name, "partitions": topic["partitions"]})
        changed = {k: topic[k] for k in TOPIC_DEFAULTS if topic[k] != old[k]}
        if changed:
            steps.append({"do": "configure_topic", "topic": name, **changed})
    return steps


def _member_steps(group: ConsumerGroup, before: dict | None, clock_moved: bool) -> list[dict]:
    """Consumers that left or crashed since the mark (by their place among the live ones at
    that moment), then the ones that joined."""
    steps: list[dict[str, Any]] = []
    rows = {m.member_id: m for m in group.members.filter(kind=Member.Kind.SIMULATED)}
    live = list((before or {}).get("live", []))
    for member_id in list(live):
        row = rows.get(member_id)
        if row is not None and not row.crashed:
            continue
        place = live.index(member_id) + 1
        # Gone without a trace: it left, or it crashed and its session timed out on the clock.
        gone = "crash" if row is not None or clock_moved else "leave"
        consumer: int | str = "last" if place == len(live) else place
        steps.append({"do": gone, "group": group.group_id, "consumer": consumer})
        live.remove(member_id)
    known = set((before or {}).get("live", [])) | set((before or {}).get("crashed", []))
    joined = sorted(
        (m for m in rows.values() if m.member_id not in known), key=lambda m: m.join_order
    )
    if joined:
        step: dict[str, Any] = {"do": "join", "group": group.group_id}
        if len(joined) > 1:
            step["count"] = min(len(joined), MAX_COUNT)
        if joined[0].client_id != group.group_id:
            step["client_id"] = joined[0].client_id[:64]
        steps.append(step)
        live += [m.member_id for m in joined]
        for member in joined:
            if member.crashed:
                place = live.index(member.member_id) + 1
                consumer = "last" if place == len(live) else place
                steps.append({"do": "crash", "group": group.group_id, "consumer": consumer})
                live.remove(member.member_id)
    return steps


def _record_steps(room: Room, before: dict) -> list[dict[str, Any]]:
    """Records produced since the mark by anyone but the autoplay producers (whose records a
    replay's clock makes again), as produce steps: one per run of the same key and value."""
    autoplay = list(Producer.objects.filter(room=room).values_list("name", flat=True))
    steps: list[dict[str, Any]] = []
    for partition in Partition.objects.filter(topic__room=room).select_related("topic"):
        start = before["ends"].get(f"{partition.topic.name}/{partition.index}", 0)
        if partition.log_end_offset <= start:
            continue
        rows = (
            Record.objects.filter(partition=partition, offset__gte=start)
            .exclude(producer__in=autoplay)
            .order_by("offset")
            .values_list("key", "value")[: MAX_STEPS * MAX_COUNT]
        )
        for key, value in rows:
            item: dict[str, Any] = {"do": "produce", "topic": partition.topic.name}
            if key is not None:
                item["key"] = key[:256]
            if value is None:
                item["tombstone"] = True
            else:
                item["value"] = NUMBERED.sub("", value)[:MAX_TEXT]
            if key is None:
                item["partition"] = partition.index  # a null key's partition is sticky: pin it
            if not _extends(steps, item):
                steps.append(item)
    return steps


def steps_since(room: Room, mark: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps that take the room from its state at `mark` to its state now, each with its
    description as the text the learner reads (`say`), for the instructor to edit."""
    now = room_mark(room)
    before = {"ms": 0, "topics": {}, "ends": {}, "groups": {}, "producers": {}, **mark}
    clock_moved = now["ms"] > before["ms"]
    steps = _topic_steps(before, now)
    groups = list(ConsumerGroup.objects.filter(room=room).order_by("pk"))
    for group in groups:
        if group.group_id not in before["groups"]:
            topics = sorted(group.topics.values_list("name", flat=True))
            if topics:
                steps.append(
                    {
                        "do": "create_group",
                        "group": group.group_id,
                        "topics": topics,
                        **_group_settings(group),
                    }
                )
    for name, producer in now["producers"].items():
        old = before["producers"].get(name)
        if old is None or old == producer:
            continue  # a new autoplay producer is part of a start, not a step
        step: dict[str, Any] = {"do": "producer", "name": name}
        if producer["running"] != old["running"]:
            step["running"] = producer["running"]
        if producer["rate"] != old["rate"]:
            step["rate"] = min(producer["rate"], 200.0)
        steps.append(step)
    for group in groups:
        steps += _member_steps(group, before["groups"].get(group.group_id), clock_moved)
    steps += _record_steps(room, before)
    if clock_moved:
        steps.append({"do": "advance", "ms": min(now["ms"] - before["ms"], 30 * 86_400_000)})
    return [_said(step) for step in steps]


def _said(step: dict[str, Any]) -> dict[str, Any]:
    args = {k: v for k, v in step.items() if k != "do"}
    return {**step, "say": step_describe(Step(do=step["do"], args=args))[:500]}
