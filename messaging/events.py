"""The room event types, declared once.

Each constant below is the type's name (an `EventType` is a `str`, so it compares, stores and
serialises as its name) carrying the payload keys it holds and what it means. Every
`RoomEvent` a service records has one of these types; `services.events.event_record` refuses
any other. The browser reads the same list (the `event_types` template tag puts it in every
page as JSON), so a page's code names `EVENT.RECORDS_PRODUCED`, never a string of its own.

Events are hints, numbered per room: a browser that misses one fetches the state from the
database. A payload therefore carries what a page needs to animate the change, not the state.
"""

from __future__ import annotations


class EventType(str):
    """A room event type: its name, the payload keys it carries (documentation the browser
    code and tests read), and what it means."""

    payload: dict[str, str]
    about: str

    def __new__(cls, name: str, payload: dict[str, str], about: str) -> EventType:
        declared = super().__new__(cls, name)
        declared.payload = payload
        declared.about = about
        return declared


RESYNC = EventType(
    "resync",
    {
        "reason": "why the whole state changed (undo, lesson.start, lesson.reset)",
        "label": "the undone step, after an undo",
    },
    "the state changed wholesale: every page fetches it again",
)
STEP = EventType(
    "step",
    {
        "clock": "the room clock (now_ms, display, running, speed)",
        "produced": "records.produced payloads of the autoplay producers",
        "groups": "each group's moves: positions, commits, ledger lines",
        "student": "the student whose button made the step (a student's step has no clock)",
        "replication": "replicated partitions that changed: leader, epoch, ISR, HW, LEOs",
    },
    "one coalesced tick of the simulation, or one student's processed record",
)
RECORDS_PRODUCED = EventType(
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
)
RECORDS_DELETED = EventType(
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
)
TOPIC_CREATED = EventType(
    "topic.created",
    {"topic": "topic name", "partitions": "partition count"},
    "a topic was created",
)
TOPIC_PARTITIONS_ADDED = EventType(
    "topic.partitions_added",
    {"topic": "topic name", "before": "count before", "partitions": "count after"},
    "partitions were added to a topic",
)
TOPIC_CONFIGURED = EventType(
    "topic.configured",
    {"topic": "topic name", "...": "each changed setting and its new value"},
    "a topic's retention or cleanup settings changed",
)
PRODUCER_CHANGED = EventType(
    "producer.changed",
    {"producer": "producer name", "action": "add, set or remove"},
    "an autoplay producer was added, changed or removed",
)
GROUP_CREATED = EventType(
    "group.created",
    {
        "group": "group id",
        "topics": "subscribed topics",
        "assignor": "assignor name",
        "protocol": "eager or cooperative",
        "delivery": "delivery semantics",
    },
    "a consumer group was created",
)
GROUP_CHANGED = EventType(
    "group.changed",
    {
        "group": "group id",
        "state": "the coordinator's state",
        "generation": "generation id",
        "narration": "what happened, in words",
        "removed": "members removed",
        "plan": "the rebalance plan, step by step, or null",
        "at_ms": "the room time it happened at (what the board stamps its narration with)",
    },
    "the group coordinator moved: joins, leaves, rebalances",
)
MEMBER_CHANGED = EventType(
    "member.changed",
    {"group": "group id", "member": "member id", "speed": "records per second"},
    "a simulated consumer's speed changed",
)
MEMBER_CRASHED = EventType(
    "member.crashed",
    {
        "group": "group id",
        "member": "member id",
        "session_expires_at_ms": "room time when the coordinator removes it",
    },
    "a consumer crashed: it stops heartbeating",
)
MEMBER_PRESENCE = EventType(
    "member.presence",
    {
        "group": "group id",
        "member": "member id",
        "online": "whether its page is open",
        "session_expires_at_ms": "room time when the coordinator removes it",
    },
    "a student's page opened or closed",
)
OFFSET_COMMITTED = EventType(
    "offset.committed",
    {
        "group": "group id",
        "topic": "topic name",
        "partition": "partition index",
        "offset": "the committed offset",
        "lag": "log end minus committed",
    },
    "a group committed an offset",
)
OFFSETS_RESET = EventType(
    "offsets.reset",
    {
        "group": "group id",
        "option": "the --reset-offsets option",
        "value": "its value",
        "offsets": "the new offset per partition",
    },
    "kafka-consumer-groups --reset-offsets ran",
)
CLOCK_CHANGED = EventType(
    "clock.changed",
    {
        "now_ms": "room time",
        "display": "room time in words",
        "running": "running or paused",
        "speed": "room seconds per real second",
    },
    "the room clock was paused, resumed or sped up",
)
SQS_CHANGED = EventType(
    "sqs.changed",
    {
        "queue": "queue name",
        "action": "what happened (create, send, receive, tick, mirror…)",
        "...": "details of the action",
    },
    "an SQS queue changed",
)
CLASSIC_CHANGED = EventType(
    "classic.changed",
    {"action": "what happened (publish, consume, ack, nack…)", "...": "details of the action"},
    "the classic broker changed",
)
REST_CONSUMER_CREATED = EventType(
    "rest.consumer.created",
    {"group": "group id", "...": "the instance's configuration"},
    "a REST Proxy consumer instance was created",
)
REST_CONSUMER_SUBSCRIBED = EventType(
    "rest.consumer.subscribed",
    {
        "group": "group id",
        "instance": "instance name",
        "member": "member id",
        "topics": "subscribed topics",
    },
    "a REST Proxy consumer instance subscribed",
)
REST_RECORDS_FETCHED = EventType(
    "rest.records.fetched",
    {
        "group": "group id",
        "instance": "instance name",
        "member": "member id",
        "records": "how many",
        "positions": "new position per partition",
    },
    "a REST Proxy consumer instance fetched records",
)
REST_CONSUMER_DELETED = EventType(
    "rest.consumer.deleted",
    {"group": "group id", "instance": "instance name", "member": "member id"},
    "a REST Proxy consumer instance was deleted",
)
REST_CONSUMER_EXPIRED = EventType(
    "rest.consumer.expired",
    {
        "group": "group id",
        "instance": "instance name",
        "member": "member id",
        "timeout_ms": "the instance timeout",
    },
    "a REST Proxy consumer instance timed out",
)
ROOM_PERMISSIONS = EventType(
    "room.permissions",
    {"permissions": "what students may do, by action"},
    "the instructor changed the classroom's locks",
)
ROOM_FOLLOW = EventType(
    "room.follow",
    {"path": "the page students are sent to, or empty"},
    "the instructor's follow-me changed",
)
ROOM_RESET = EventType("room.reset", {}, "the instructor reset the room")
STUDENT_REMOVED = EventType(
    "student.removed",
    {"student": "student id", "name": "display name"},
    "the instructor removed a student",
)
LESSON_STARTED = EventType(
    "lesson.started",
    {"lesson": "lesson slug"},
    "a lesson's start state was played into the room",
)
LESSON_STAGE = EventType(
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
)
LESSON_PREDICTED = EventType(
    "lesson.predicted",
    {"question": "prediction id", "count": "answers so far"},
    "a student answered a lesson's prediction",
)
SHARE_CHANGED = EventType(
    "share.changed",
    {
        "group": "share group id, or null for a step's pass over every share group",
        "action": "what happened (create, join, leave, crash, acquire, ack, tick, settings…)",
        "member": "the member that acted",
        "records": "offsets it concerned: [partition, offset, state, delivery count]",
        "...": "details of the action",
    },
    "a share group (KIP-932) changed: records acquired, acknowledged, released, archived",
)

BROKER_CHANGED = EventType(
    "broker.changed",
    {
        "broker": "the broker (null: a preferred leader election)",
        "state": "up, stopped, slow or preferred",
        "was": "its state before",
        "partitions": "replicated partitions that changed (as the step's replication)",
        "lost": "records the leader changes took away (named in the durability ledger)",
        "brokers": "the room's number of brokers, when it changed",
    },
    "a broker stopped, started or slowed down, or leaders moved (#16)",
)
GROUP_RECONCILED = EventType(
    "group.reconciled",
    {
        "group": "group id",
        "state": "Empty, Assigning, Reconciling or Stable (KIP-848's group states)",
        "group_epoch": "the group epoch",
        "assignment_epoch": "the target assignment's epoch",
        "narration": "what happened, in words",
        "moves": "what moved: group_epoch, target, joined, left, assigned, revoking, revoked, "
        "member_epoch (engine/consumer_group.moves)",
        "refused": "true when a client was refused (the narration says why)",
        "at_ms": "the room time it happened at",
    },
    "a group.protocol=consumer (KIP-848) group moved: epochs, targets, revocations, assignments",
)

# Every constant above, by name; the Python name is the one the browser uses too.
_CONSTANTS: dict[str, EventType] = {
    constant: value for constant, value in globals().items() if isinstance(value, EventType)
}
EVENT_TYPES: dict[str, EventType] = {str(value): value for value in _CONSTANTS.values()}

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
    return str(name)


def event_types_for_browser() -> dict[str, dict[str, str]]:
    """What pages read: each type's name and the constant that names it."""
    return _BROWSER


_BROWSER = {str(value): {"constant": constant} for constant, value in _CONSTANTS.items()}
