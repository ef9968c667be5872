"""The room event types, declared once.

Every `RoomEvent` a service records has one of these types; `services.events.event_record`
refuses any other. The browser reads the same list (the `event_types` template tag puts it in
every page as JSON), so a page's code names `EVENT.RECORDS_PRODUCED`, never a string of its own.

Events are hints, numbered per room: a browser that misses one fetches the state from the
database. A payload therefore carries what a page needs to animate the change, not the state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    # Payload keys, each with what it holds: documentation the browser code and tests read.
    payload: dict[str, str]
    about: str

    @property
    def constant(self) -> str:
        return self.name.upper().replace(".", "_")


_DECLARED = (
    EventType(
        "resync",
        {
            "reason": "why the whole state changed (undo, lesson.start, lesson.reset)",
            "label": "the undone step, after an undo",
        },
        "the state changed wholesale: every page fetches it again",
    ),
    EventType(
        "step",
        {
            "clock": "the room clock (now_ms, display, running, speed)",
            "produced": "records.produced payloads of the autoplay producers",
            "groups": "each group's moves: positions, commits, ledger lines",
            "student": "the student whose button made the step (a student's step has no clock)",
        },
        "one coalesced tick of the simulation, or one student's processed record",
    ),
    EventType(
        "records.produced",
        {
            "topic": "topic name",
            "producer": "who produced",
            "partitions": "partition count",
            "records": "each record: partition, offset, key, value preview, reason",
            "more": "records produced but not listed",
            "explain": "why a lone keyed record went where it went, in the partitioner's words",
        },
        "records appended to a topic's partitions",
    ),
    EventType(
        "records.deleted",
        {
            "topic": "topic name",
            "partition": "partition index",
            "log_start_offset": "the new log start offset",
            "offsets": "deleted offsets (capped)",
            "count": "how many were deleted",
            "reasons": "count per reason (retention, compaction)",
            "segments_deleted": "base offsets of deleted segments",
        },
        "the log cleaner deleted records",
    ),
    EventType(
        "topic.created",
        {"topic": "topic name", "partitions": "partition count"},
        "a topic was created",
    ),
    EventType(
        "topic.partitions_added",
        {"topic": "topic name", "before": "count before", "partitions": "count after"},
        "partitions were added to a topic",
    ),
    EventType(
        "topic.configured",
        {"topic": "topic name", "...": "each changed setting and its new value"},
        "a topic's retention or cleanup settings changed",
    ),
    EventType(
        "producer.changed",
        {"producer": "producer name", "action": "add, set or remove"},
        "an autoplay producer was added, changed or removed",
    ),
    EventType(
        "group.created",
        {
            "group": "group id",
            "topics": "subscribed topics",
            "assignor": "assignor name",
            "protocol": "eager or cooperative",
            "delivery": "delivery semantics",
        },
        "a consumer group was created",
    ),
    EventType(
        "group.changed",
        {
            "group": "group id",
            "state": "the coordinator's state",
            "generation": "generation id",
            "narration": "what happened, in words",
            "removed": "members removed",
            "plan": "the rebalance plan, step by step, or null",
        },
        "the group coordinator moved: joins, leaves, rebalances",
    ),
    EventType(
        "member.changed",
        {"group": "group id", "member": "member id", "speed": "records per second"},
        "a simulated consumer's speed changed",
    ),
    EventType(
        "member.crashed",
        {
            "group": "group id",
            "member": "member id",
            "session_expires_at_ms": "room time when the coordinator removes it",
        },
        "a consumer crashed: it stops heartbeating",
    ),
    EventType(
        "member.presence",
        {
            "group": "group id",
            "member": "member id",
            "online": "whether its page is open",
            "session_expires_at_ms": "room time when the coordinator removes it",
        },
        "a student's page opened or closed",
    ),
    EventType(
        "offset.committed",
        {
            "group": "group id",
            "topic": "topic name",
            "partition": "partition index",
            "offset": "the committed offset",
            "lag": "log end minus committed",
        },
        "a group committed an offset",
    ),
    EventType(
        "offsets.reset",
        {
            "group": "group id",
            "option": "the --reset-offsets option",
            "value": "its value",
            "offsets": "the new offset per partition",
        },
        "kafka-consumer-groups --reset-offsets ran",
    ),
    EventType(
        "clock.changed",
        {
            "now_ms": "room time",
            "display": "room time in words",
            "running": "running or paused",
            "speed": "room seconds per real second",
        },
        "the room clock was paused, resumed or sped up",
    ),
    EventType(
        "sqs.changed",
        {
            "queue": "queue name",
            "action": "what happened (create, send, receive, tick, mirror…)",
            "...": "details of the action",
        },
        "an SQS queue changed",
    ),
    EventType(
        "classic.changed",
        {"action": "what happened (publish, consume, ack, nack…)", "...": "details of the action"},
        "the classic broker changed",
    ),
    EventType(
        "rest.consumer.created",
        {"group": "group id", "...": "the instance's configuration"},
        "a REST Proxy consumer instance was created",
    ),
    EventType(
        "rest.consumer.subscribed",
        {
            "group": "group id",
            "instance": "instance name",
            "member": "member id",
            "topics": "subscribed topics",
        },
        "a REST Proxy consumer instance subscribed",
    ),
    EventType(
        "rest.records.fetched",
        {
            "group": "group id",
            "instance": "instance name",
            "member": "member id",
            "records": "how many",
            "positions": "new position per partition",
        },
        "a REST Proxy consumer instance fetched records",
    ),
    EventType(
        "rest.consumer.deleted",
        {"group": "group id", "instance": "instance name", "member": "member id"},
        "a REST Proxy consumer instance was deleted",
    ),
    EventType(
        "rest.consumer.expired",
        {
            "group": "group id",
            "instance": "instance name",
            "member": "member id",
            "timeout_ms": "the instance timeout",
        },
        "a REST Proxy consumer instance timed out",
    ),
    EventType(
        "room.permissions",
        {"permissions": "what students may do, by action"},
        "the instructor changed the classroom's locks",
    ),
    EventType(
        "room.follow",
        {"path": "the page students are sent to, or empty"},
        "the instructor's follow-me changed",
    ),
    EventType("room.reset", {}, "the instructor reset the room"),
    EventType(
        "student.removed",
        {"student": "student id", "name": "display name"},
        "the instructor removed a student",
    ),
    EventType(
        "lesson.started",
        {"lesson": "lesson slug"},
        "a lesson's start state was played into the room",
    ),
    EventType(
        "lesson.stage",
        {
            "lesson": "lesson slug, or null when the class lesson stopped",
            "stage": "stage index",
            "stages": "stage count",
            "kind": "step, prediction or text",
            "step": "solution step",
            "prediction": "prediction id",
        },
        "a lesson run for a classroom moved to its next stage",
    ),
    EventType(
        "lesson.predicted",
        {"question": "prediction id", "count": "answers so far"},
        "a student answered a lesson's prediction",
    ),
)

EVENT_TYPES: dict[str, EventType] = {event.name: event for event in _DECLARED}

RESYNC = "resync"
STEP = "step"
RECORDS_PRODUCED = "records.produced"
RECORDS_DELETED = "records.deleted"
TOPIC_CREATED = "topic.created"
TOPIC_PARTITIONS_ADDED = "topic.partitions_added"
TOPIC_CONFIGURED = "topic.configured"
PRODUCER_CHANGED = "producer.changed"
GROUP_CREATED = "group.created"
GROUP_CHANGED = "group.changed"
MEMBER_CHANGED = "member.changed"
MEMBER_CRASHED = "member.crashed"
MEMBER_PRESENCE = "member.presence"
OFFSET_COMMITTED = "offset.committed"
OFFSETS_RESET = "offsets.reset"
CLOCK_CHANGED = "clock.changed"
SQS_CHANGED = "sqs.changed"
CLASSIC_CHANGED = "classic.changed"
REST_CONSUMER_CREATED = "rest.consumer.created"
REST_CONSUMER_SUBSCRIBED = "rest.consumer.subscribed"
REST_RECORDS_FETCHED = "rest.records.fetched"
REST_CONSUMER_DELETED = "rest.consumer.deleted"
REST_CONSUMER_EXPIRED = "rest.consumer.expired"
ROOM_PERMISSIONS = "room.permissions"
ROOM_FOLLOW = "room.follow"
ROOM_RESET = "room.reset"
STUDENT_REMOVED = "student.removed"
LESSON_STARTED = "lesson.started"
LESSON_STAGE = "lesson.stage"
LESSON_PREDICTED = "lesson.predicted"

REST_CONSUMER_LIFECYCLE = (
    REST_CONSUMER_CREATED,
    REST_CONSUMER_SUBSCRIBED,
    REST_CONSUMER_DELETED,
    REST_CONSUMER_EXPIRED,
)


def event_type_check(name: str) -> str:
    """A service recording an undeclared type is a programming error, not a user's."""
    if name not in EVENT_TYPES:
        raise ValueError(f"undeclared room event type {name!r}: declare it in messaging/events.py")
    return name


def event_types_for_browser() -> dict[str, dict]:
    """What pages read: each type's constant name and payload keys."""
    return {
        event.name: {"constant": event.constant, "payload": sorted(event.payload)}
        for event in _DECLARED
    }
