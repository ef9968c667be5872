"""A lesson file, parsed and validated: the contract is docs/lessons-format.md.

Validation is strict on purpose. A lesson is read by people who copy it, and played by code
that calls the services: a misspelt key that silently fell back to a default would teach the
wrong thing without a word. Every refusal names the file, the place in it and the reason.

`Lesson.spec` holds `spec_to_dict(spec)`; `spec_from_dict` runs the same validation, so the
admin cannot store a lesson the loader would refuse.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from messaging.engine import classic, offsets, server_assignors
from messaging.models import ConsumerGroup, Producer, ShareGroup, ShareMember, Topic

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FILE_RE = re.compile(r"^\d+-(?P<slug>.+)\.toml$")
POINT_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")

MAX_TEXT = 200  # a name, a key, a value, a goal's text
MAX_PARAGRAPHS = 6000  # intro and takeaway
MAX_STEPS = 60
MAX_GOALS = 12
MAX_HINTS = 10
MAX_PREDICTIONS = 10
MAX_QUIZ = 10
MAX_CHOICES = 6
MAX_START_ITEMS = 20
MAX_COUNT = 300  # repeated produces, joins
MAX_ADVANCE_MS = 30 * 24 * 60 * 60 * 1000
MAX_RETENTION_MS = 365 * 24 * 60 * 60 * 1000
MAX_PARTITIONS = 128
MAX_QUIZ_SIZE = 1000
BIG = 1_000_000_000

VIEWS = ("board", "queues", "share")
# What the services accept, taken from where it is defined: a lesson that validates here
# must not be refused when it plays.
ASSIGNORS = tuple(ConsumerGroup.Assignor.values)
PROTOCOLS = tuple(ConsumerGroup.Protocol.values)
# group.protocol (KIP-848, #15) and the coordinator's assignors a consumer group may name.
GROUP_PROTOCOLS = tuple(ConsumerGroup.GroupProtocol.values)
REMOTE_ASSIGNORS = server_assignors.ASSIGNORS
DELIVERIES = tuple(ConsumerGroup.Delivery.values)
OFFSET_RESETS = tuple(ConsumerGroup.OffsetReset.values)
CLEANUP_POLICIES = tuple(Topic.CleanupPolicy.values)
KEY_MODES = tuple(Producer.KeyMode.values)
RESET_OPTIONS = offsets.RESET_OPTIONS
ACKS = ("0", "1", "all")
MAX_BROKERS = 5
BROKER_ACTIONS = ("stop", "start", "slow", "normal")
FAULTS = ("none", "lose_request", "lose_ack", "leader_failover")
EXCHANGE_TYPES = classic.EXCHANGE_TYPES
GROUP_STATES = tuple(s for s in ConsumerGroup.State.values if s != "Dead")
SHARE_ON_FAILURE = tuple(ShareMember.OnFailure.values)
SHARE_OFFSET_RESETS = tuple(ShareGroup.OffsetReset.values)
# What a share group counts (ShareGroup.totals): its acknowledgements, its locks that ran out,
# its records archived at the delivery count limit, its redeliveries, its refused acks.
SHARE_TOTALS = (
    "accept",
    "release",
    "reject",
    "lock-expired",
    "delivery-limit",
    "redelivered",
    "refused",
)


class LessonFormatError(ValueError):
    """A lesson file that cannot be played: where it is wrong, and why, in plain words."""

    def __init__(self, path: str, location: str, reason: str) -> None:
        self.path = path
        self.location = location
        self.reason = reason
        where = ": ".join(part for part in (path or "lesson", location) if part)
        super().__init__(f"{where}: {reason}")


# --- the parsed lesson -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    do: str
    args: dict[str, Any] = field(default_factory=dict)
    say: str = ""


@dataclass(frozen=True)
class Goal:
    id: str
    text: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    id: str
    before_step: int
    question: str
    choices: tuple[str, ...]
    answer: int
    explain: str = ""


@dataclass(frozen=True)
class QuizItem:
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Start:
    topics: tuple[dict[str, Any], ...] = ()
    groups: tuple[dict[str, Any], ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    producers: tuple[dict[str, Any], ...] = ()
    sqs_queues: tuple[dict[str, Any], ...] = ()
    clock_speed: float | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class LessonSpec:
    slug: str
    title: str
    order: int
    summary: str
    points: tuple[str, ...]
    intro: str
    view: str
    start: Start
    goals: tuple[Goal, ...]
    hints: tuple[str, ...]
    solution: tuple[Step, ...]
    wrong: tuple[Step, ...]
    predictions: tuple[Prediction, ...]
    quiz: tuple[QuizItem, ...]
    takeaway: str
    path: str = field(default="", compare=False)


# --- argument schemas ------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One argument: its type ("str", "int", "float", "bool", "strs", "ints", "consumer"),
    whether it must be given, and its bounds or allowed values."""

    type: str
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    empty_ok: bool = False
    max_len: int = MAX_TEXT


def _s(required=False, choices=(), empty_ok=False, max_len=MAX_TEXT) -> Arg:
    return Arg("str", required, choices=tuple(choices), empty_ok=empty_ok, max_len=max_len)


def _i(low, high, required=False) -> Arg:
    return Arg("int", required, low, high)


def _f(low, high, required=False) -> Arg:
    return Arg("float", required, low, high)


BOOL = Arg("bool")
CONSUMER = Arg("consumer")
TOPIC = _s(required=True)
GROUP = _s(required=True)
QUEUE = _s(required=True)
KEY = _s(empty_ok=True, max_len=256)
COUNT = _i(0, BIG)

STEP_ARGS: dict[str, dict[str, Arg]] = {
    "produce": {
        "topic": TOPIC,
        "key": KEY,
        "value": _s(empty_ok=True),
        "tombstone": BOOL,
        "partition": _i(0, MAX_PARTITIONS - 1),
        "count": _i(1, MAX_COUNT),
        "acks": _s(choices=ACKS),
    },
    "create_topic": {
        "name": _s(required=True),
        "partitions": _i(1, MAX_PARTITIONS, True),
        "replication_factor": _i(1, MAX_BROKERS),
        "min_insync_replicas": _i(1, MAX_BROKERS),
        "unclean_leader_election_enable": BOOL,
    },
    "add_partitions": {"topic": TOPIC, "partitions": _i(2, MAX_PARTITIONS, True)},
    "configure_topic": {
        "topic": TOPIC,
        "retention_ms": _i(-1, MAX_RETENTION_MS),
        "cleanup_policy": _s(choices=CLEANUP_POLICIES),
        "segment_records": _i(1, 10_000),
        "min_insync_replicas": _i(1, MAX_BROKERS),
        "unclean_leader_election_enable": BOOL,
    },
    # Brokers (#16): how many the room has, and one stopped, started, slowed or back to normal.
    "brokers": {"count": _i(1, MAX_BROKERS, True)},
    "broker": {
        "broker": _i(1, MAX_BROKERS, True),
        "state": _s(required=True, choices=BROKER_ACTIONS),
    },
    "elect_preferred": {},
    "create_group": {
        "group": GROUP,
        "topics": Arg("strs", True),
        "assignor": _s(choices=ASSIGNORS),
        "protocol": _s(choices=PROTOCOLS),
        "delivery": _s(choices=DELIVERIES),
        "auto_offset_reset": _s(choices=OFFSET_RESETS),
        "session_timeout_ms": _i(6_000, 1_800_000),
        "group_protocol": _s(choices=GROUP_PROTOCOLS),
        "remote_assignor": _s(choices=REMOTE_ASSIGNORS),
    },
    "join": {
        "group": GROUP,
        "client_id": _s(max_len=64),
        "count": _i(1, MAX_COUNT),
        "instance_id": _s(max_len=64),
        "rate": _f(0, 100),
    },
    "leave": {"group": GROUP, "consumer": CONSUMER},
    "crash": {"group": GROUP, "consumer": CONSUMER},
    "speed": {"group": GROUP, "consumer": CONSUMER, "rate": _f(0, 100, True)},
    "advance": {"ms": _i(1, MAX_ADVANCE_MS, True)},
    "reset_offsets": {
        "group": GROUP,
        "option": _s(required=True, choices=RESET_OPTIONS),
        "value": _i(-BIG, BIG),
    },
    "produce_with_fault": {
        "topic": TOPIC,
        "key": KEY,
        "value": _s(empty_ok=True),
        "acks": _s(required=True, choices=ACKS),
        "idempotence": BOOL,
        "fault": _s(required=True, choices=FAULTS),
    },
    "producer": {"name": _s(required=True), "running": BOOL, "rate": _f(0, 200)},
    "sqs_send": {
        "queue": QUEUE,
        "group_id": _s(required=True, max_len=128),
        "body": _s(required=True, empty_ok=False),
        "dedup_id": _s(max_len=128),
        "count": _i(1, 100),
    },
    "sqs_receive": {"queue": QUEUE, "max": _i(1, 10)},
    "sqs_delete": {"queue": QUEUE, "group_id": _s(required=True, max_len=128)},
    "classic_declare": {"queue": QUEUE},
    "classic_exchange": {
        "exchange": _s(required=True),
        "type": _s(required=True, choices=EXCHANGE_TYPES),
    },
    "classic_bind": {
        "queue": QUEUE,
        "exchange": _s(required=True),
        "routing_key": _s(empty_ok=True),
    },
    "classic_publish": {
        "exchange": _s(required=True, empty_ok=True),
        "routing_key": _s(empty_ok=True),
        "body": _s(required=True),
        "count": _i(1, 100),
    },
    "classic_consume": {"queue": QUEUE, "count": _i(1, 100)},
    # Share groups (KIP-932): `consumer` counts from 1 in join order, or "last".
    "share_group": {
        "group": GROUP,
        "topic": TOPIC,
        "consumers": _i(0, 20),
        "rate": _f(0.001, 100),
        "failure_rate": _f(0, 1),
        "on_failure": _s(choices=SHARE_ON_FAILURE),
        "auto_offset_reset": _s(choices=SHARE_OFFSET_RESETS),
        "lock_ms": _i(1_000, 3_600_000),
        "delivery_limit": _i(2, 10),
        "max_locks": _i(1, 10_000),
    },
    "share_crash": {"group": GROUP, "consumer": CONSUMER},
    "share_speed": {
        "group": GROUP,
        "consumer": CONSUMER,
        "rate": _f(0.001, 100),
        "failure_rate": _f(0, 1),
        "on_failure": _s(choices=SHARE_ON_FAILURE),
    },
}

# Goal arguments; kinds in MIN_MAX need `min` or `max` (or both), kinds in MIN_ONLY need `min`.
MIN_MAX = {"min": COUNT, "max": COUNT}
GOAL_ARGS: dict[str, dict[str, Arg]] = {
    "group_members": {"group": GROUP, **MIN_MAX},
    "group_idle_members": {"group": GROUP, **MIN_MAX},
    "assignment_sizes": {"group": GROUP, "sizes": Arg("ints", True, 0, MAX_PARTITIONS * 20)},
    "group_state": {"group": GROUP, "state": _s(required=True, choices=GROUP_STATES)},
    "group_generation": {"group": GROUP, **MIN_MAX},
    "member_static": {"group": GROUP, "instance_id": _s(required=True, max_len=64)},
    "partition_count": {"topic": TOPIC, **MIN_MAX},
    "key_partitions": {"topic": TOPIC, "key": _s(required=True, empty_ok=True), **MIN_MAX},
    "records": {"topic": TOPIC, "key": KEY, **MIN_MAX},
    "log_start": {"topic": TOPIC, "min": _i(0, BIG, True)},
    "distinct_keys": {"topic": TOPIC},
    "group_lag": {"group": GROUP, **MIN_MAX},
    "committed": {"group": GROUP, **MIN_MAX},
    "consumed": {"group": GROUP, "key": KEY, **MIN_MAX},
    "duplicates": {"group": GROUP, **MIN_MAX},
    "skipped": {"group": GROUP, **MIN_MAX},
    "groups_reading": {"topic": TOPIC, "min": _i(0, BIG, True)},
    "sqs_in_flight": {"queue": QUEUE, "group_id": _s(max_len=128), **MIN_MAX},
    "sqs_groups_in_flight": {"queue": QUEUE, "groups": Arg("strs", True)},
    "sqs_blocked_groups": {"queue": QUEUE, "min": _i(0, BIG, True)},
    "sqs_deduplicated": {"queue": QUEUE, "min": _i(0, BIG, True)},
    "sqs_deleted": {"queue": QUEUE, "min": _i(0, BIG, True)},
    "classic_ready": {"queue": QUEUE, **MIN_MAX},
    "classic_delivered": {"queue": QUEUE, "min": _i(0, BIG, True)},
    "event": {"type": _s(required=True, max_len=48), "min": _i(0, BIG, True)},
    "share_totals": {"group": GROUP, "what": _s(required=True, choices=SHARE_TOTALS), **MIN_MAX},
    "share_partition_consumers": {"group": GROUP, "min": _i(0, BIG, True)},
    # Brokers and replication (#16): the durability ledger, a partition's ISR and leader epoch.
    "lost_records": {"acknowledged": BOOL, "acks": _s(choices=ACKS), **MIN_MAX},
    "isr_size": {"topic": TOPIC, "partition": _i(0, MAX_PARTITIONS - 1), **MIN_MAX},
    "leader_epoch": {"topic": TOPIC, "partition": _i(0, MAX_PARTITIONS - 1), **MIN_MAX},
}
NEEDS_MIN_OR_MAX = {kind for kind, args in GOAL_ARGS.items() if args.get("max") is COUNT}

QUIZ_ARGS: dict[str, dict[str, Arg]] = {
    "partition_for_key": {"key": _s(required=True, max_len=256), "partitions": _i(2, 1000, True)},
    "idle_consumers": {
        "partitions": _i(1, MAX_QUIZ_SIZE, True),
        "consumers": _i(1, MAX_QUIZ_SIZE, True),
    },
    "range_share": {
        "partitions": _i(1, MAX_QUIZ_SIZE, True),
        "consumers": _i(1, MAX_QUIZ_SIZE, True),
    },
    "choice": {
        "id": _s(max_len=64),
        "question": _s(required=True, max_len=500),
        "choices": Arg("strs", True),
        "answer": _i(0, MAX_CHOICES - 1, True),
        "explain": _s(empty_ok=True, max_len=1000),
    },
}

START_ARGS: dict[str, dict[str, Arg]] = {
    "topics": {
        "name": _s(required=True),
        "partitions": _i(1, MAX_PARTITIONS),
        "retention_ms": _i(-1, MAX_RETENTION_MS),
        "cleanup_policy": _s(choices=CLEANUP_POLICIES),
        "segment_records": _i(1, 10_000),
    },
    "groups": {
        "group": GROUP,
        "topics": Arg("strs", True),
        "assignor": _s(choices=ASSIGNORS),
        "protocol": _s(choices=PROTOCOLS),
        "delivery": _s(choices=DELIVERIES),
        "auto_offset_reset": _s(choices=OFFSET_RESETS),
        "consumers": _i(0, MAX_COUNT),
        "client_id": _s(max_len=64),
        "rate": _f(0, 100),
        "session_timeout_ms": _i(6_000, 1_800_000),
        "group_protocol": _s(choices=GROUP_PROTOCOLS),
        "remote_assignor": _s(choices=REMOTE_ASSIGNORS),
    },
    "records": {
        "topic": TOPIC,
        "key": KEY,
        "value": _s(empty_ok=True),
        "tombstone": BOOL,
        "partition": _i(0, MAX_PARTITIONS - 1),
        "count": _i(1, MAX_COUNT),
    },
    "producers": {
        "name": _s(required=True, max_len=40),
        "topic": TOPIC,
        "key_mode": _s(choices=KEY_MODES),
        "keys": Arg("strs"),
        "rate": _f(0, 200),
        "running": BOOL,
    },
    "sqs_queues": {
        "name": _s(required=True, max_len=80),
        "visibility_timeout": _i(0, 43_200),
        "content_based_deduplication": BOOL,
    },
}

TOP_LEVEL = {
    "slug",
    "title",
    "order",
    "summary",
    "points",
    "intro",
    "view",
    "start",
    "goals",
    "hints",
    "solution",
    "wrong",
    "predictions",
    "quiz",
    "takeaway",
}


# --- validation ------------------------------------------------------------------------------


class _Checker:
    """Validates one lesson; `fail` raises with the file and the location."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, location: str, reason: str) -> None:
        raise LessonFormatError(self.path, location, reason)

    def table(self, value: object, location: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(location, f"expected a table, found {_type_name(value)}")
        return value  # type: ignore[return-value]

    def array(self, value: object, location: str, *, limit: int) -> list:
        if not isinstance(value, list):
            self.fail(location, f"expected an array, found {_type_name(value)}")
        if len(value) > limit:  # type: ignore[arg-type]
            self.fail(location, f"at most {limit} entries (found {len(value)})")  # type: ignore[arg-type]
        return value  # type: ignore[return-value]

    def text(self, value: object, location: str, *, limit: int = MAX_TEXT, empty_ok=False) -> str:
        if not isinstance(value, str):
            self.fail(location, f"expected a string, found {_type_name(value)}")
        if not empty_ok and not value.strip():  # type: ignore[union-attr]
            self.fail(location, "must not be empty")
        if len(value) > limit:  # type: ignore[arg-type]
            self.fail(location, f"at most {limit} characters (found {len(value)})")  # type: ignore[arg-type]
        if "\x00" in value:  # type: ignore[operator]
            self.fail(location, "must not contain the NUL character")
        return value  # type: ignore[return-value]

    def value(self, arg: Arg, value: object, location: str) -> Any:
        if arg.type == "str":
            text = self.text(value, location, limit=arg.max_len, empty_ok=arg.empty_ok)
            if arg.choices and text not in arg.choices:
                self.fail(
                    location, f"must be one of {', '.join(map(repr, arg.choices))} (found {text!r})"
                )
            return text
        if arg.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(location, f"expected a whole number, found {_type_name(value)}")
            self.bounds(arg, value, location)  # type: ignore[arg-type]
            return value
        if arg.type == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(location, f"expected a number, found {_type_name(value)}")
            if math.isnan(value) or math.isinf(value):  # type: ignore[arg-type]
                self.fail(location, "expected a finite number")
            self.bounds(arg, value, location)  # type: ignore[arg-type]
            return value
        if arg.type == "bool":
            if not isinstance(value, bool):
                self.fail(location, f"expected true or false, found {_type_name(value)}")
            return value
        if arg.type == "consumer":
            if value == "last":
                return value
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.fail(
                    location,
                    "a consumer is its 1-based place in the group's live "
                    f'members in join order, or "last" (found {value!r})',
                )
            return value
        if arg.type == "strs":
            items = self.array(value, location, limit=MAX_START_ITEMS)
            if arg.required and not items:
                self.fail(location, "must not be empty")
            return [self.text(v, f"{location}[{i}]", limit=256) for i, v in enumerate(items)]
        if arg.type == "ints":
            items = self.array(value, location, limit=MAX_COUNT)
            if arg.required and not items:
                self.fail(location, "must not be empty")
            return [
                self.value(Arg("int", low=arg.low, high=arg.high), v, f"{location}[{i}]")
                for i, v in enumerate(items)
            ]
        raise AssertionError(arg.type)

    def bounds(self, arg: Arg, value: float, location: str) -> None:
        if arg.low is not None and value < arg.low:
            self.fail(location, f"must be at least {_num(arg.low)} (found {_num(value)})")
        if arg.high is not None and value > arg.high:
            self.fail(location, f"must be at most {_num(arg.high)} (found {_num(value)})")

    def args(
        self,
        given: dict[str, Any],
        schema: dict[str, Arg],
        location: str,
        *,
        what: str,
        ignore: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        unknown = sorted(set(given) - set(schema) - set(ignore))
        if unknown:
            allowed = ", ".join(sorted(schema)) or "nothing else"
            self.fail(
                location,
                f"unknown key {unknown[0]!r} for {what} (it takes: {allowed})"
                f"{_misplaced(unknown[0])}",
            )
        out: dict[str, Any] = {}
        for name, arg in schema.items():
            if name not in given:
                if arg.required:
                    self.fail(location, f"{what} needs {name!r}")
                continue
            out[name] = self.value(arg, given[name], f"{location}.{name}")
        return out

    def min_max(self, args: dict[str, Any], location: str, *, what: str) -> None:
        if "min" not in args and "max" not in args:
            self.fail(location, f"{what} needs 'min' or 'max' (or both)")
        if "min" in args and "max" in args and args["min"] > args["max"]:
            self.fail(location, f"'min' ({args['min']}) is more than 'max' ({args['max']})")

    # --- parts of a lesson ---

    def step(self, value: object, location: str) -> Step:
        given = dict(self.table(value, location))
        if "do" not in given:
            self.fail(location, "a step needs 'do' (what it does)")
        do = self.text(given.pop("do"), f"{location}.do")
        if do not in STEP_ARGS:
            self.fail(f"{location}.do", f"unknown step {do!r} (steps: {', '.join(STEP_ARGS)})")
        where = f"{location} (do = {do!r})"
        say = self.text(given.pop("say"), f"{where}.say", limit=500) if "say" in given else ""
        args = self.args(given, STEP_ARGS[do], where, what=f"step {do!r}")
        self.step_rules(do, args, where)
        return Step(do=do, args=args, say=say)

    def step_rules(self, do: str, args: dict[str, Any], where: str) -> None:
        if do == "configure_topic" and not (set(args) - {"topic"}):
            self.fail(
                where,
                "configure_topic needs at least one of retention_ms, "
                "cleanup_policy, segment_records",
            )
        if do == "join" and args.get("instance_id") and args.get("count", 1) > 1:
            self.fail(
                where, "a group.instance.id names one consumer: use count = 1 with instance_id"
            )
        if do == "produce_with_fault" and args.get("idempotence") and args["acks"] != "all":
            # Kafka's own ConfigException for this combination.
            self.fail(
                where,
                'idempotence = true needs acks = "all" (Kafka refuses it: '
                '"Must set acks to all in order to use the idempotent producer")',
            )
        if do in ("produce", "produce_with_fault") and args.get("tombstone") and "value" in args:
            self.fail(where, "a tombstone has no value: give 'value' or 'tombstone', not both")
        if (
            do == "reset_offsets"
            and args["option"] in ("to-offset", "shift-by", "by-duration", "to-datetime")
            and "value" not in args
        ):
            self.fail(where, f"--{args['option']} needs a 'value'")
        if do == "producer" and set(args) == {"name"}:
            self.fail(where, "producer needs 'running' or 'rate'")

    def steps(self, value: object, location: str, *, required: bool) -> tuple[Step, ...]:
        items = self.array(value, location, limit=MAX_STEPS)
        if required and not items:
            self.fail(location, "needs at least one step")
        return tuple(self.step(item, f"{location}[{i}]") for i, item in enumerate(items))

    def goal(self, value: object, location: str) -> Goal:
        given = self.table(value, location)
        unknown = sorted(set(given) - {"id", "text", "check"})
        if unknown:
            self.fail(
                location,
                f"unknown key {unknown[0]!r} for a goal (it takes: check, id, "
                f"text){_misplaced(unknown[0])}",
            )
        for name in ("id", "text", "check"):
            if name not in given:
                self.fail(location, f"a goal needs {name!r}")
        goal_id = self.text(given["id"], f"{location}.id", limit=64)
        text = self.text(given["text"], f"{location}.text", limit=300)
        check = dict(self.table(given["check"], f"{location}.check"))
        where = f"{location}.check"
        if "kind" not in check:
            self.fail(where, "a check needs 'kind'")
        kind = self.text(check.pop("kind"), f"{where}.kind")
        if kind not in GOAL_ARGS:
            self.fail(
                f"{where}.kind", f"unknown goal kind {kind!r} (kinds: {', '.join(GOAL_ARGS)})"
            )
        args = self.args(
            check, GOAL_ARGS[kind], f"{where} (kind = {kind!r})", what=f"goal kind {kind!r}"
        )
        if kind in NEEDS_MIN_OR_MAX:
            self.min_max(args, f"{where} (kind = {kind!r})", what=f"goal kind {kind!r}")
        return Goal(id=goal_id, text=text, kind=kind, args=args)

    def choices(self, given: dict, location: str) -> tuple[tuple[str, ...], int]:
        choices = self.array(given.get("choices"), f"{location}.choices", limit=MAX_CHOICES)
        if len(choices) < 2:
            self.fail(f"{location}.choices", "at least 2 choices")
        texts = tuple(
            self.text(c, f"{location}.choices[{i}]", limit=300) for i, c in enumerate(choices)
        )
        if len(set(texts)) != len(texts):
            self.fail(f"{location}.choices", "two choices read the same")
        answer = given.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int):
            self.fail(
                f"{location}.answer",
                f"the answer is the 0-based index of the right choice (found {_type_name(answer)})",
            )
        if not 0 <= answer < len(texts):  # type: ignore[operator]
            self.fail(
                f"{location}.answer", f"must be between 0 and {len(texts) - 1} (found {answer})"
            )
        return texts, answer  # type: ignore[return-value]

    def prediction(self, value: object, location: str, *, steps: int) -> Prediction:
        given = self.table(value, location)
        schema = {
            "id": _s(True, max_len=64),
            "before_step": _i(0, MAX_STEPS, True),
            "question": _s(True, max_len=500),
            "choices": Arg("strs", True),
            "answer": _i(0, MAX_CHOICES - 1, True),
            "explain": _s(empty_ok=True, max_len=1000),
        }
        args = self.args(given, schema, location, what="a prediction")
        choices, answer = self.choices(given, location)
        if args["before_step"] >= steps:
            self.fail(
                f"{location}.before_step",
                f"the solution has {steps} step(s), numbered from 0: before_step must "
                f"be at most {steps - 1} (found {args['before_step']})",
            )
        return Prediction(
            id=args["id"],
            before_step=args["before_step"],
            question=args["question"],
            choices=choices,
            answer=answer,
            explain=args.get("explain", ""),
        )

    def quiz_item(self, value: object, location: str) -> QuizItem:
        given = dict(self.table(value, location))
        if "kind" not in given:
            self.fail(location, "a quiz item needs 'kind'")
        kind = self.text(given.pop("kind"), f"{location}.kind")
        if kind not in QUIZ_ARGS:
            self.fail(
                f"{location}.kind", f"unknown quiz kind {kind!r} (kinds: {', '.join(QUIZ_ARGS)})"
            )
        where = f"{location} (kind = {kind!r})"
        args = self.args(given, QUIZ_ARGS[kind], where, what=f"quiz kind {kind!r}")
        if kind == "choice":
            choices, answer = self.choices(given, where)
            args["choices"] = list(choices)
            args["answer"] = answer
        return QuizItem(kind=kind, args=args)

    def start(self, value: object) -> Start:
        given = self.table(value, "start")
        known = set(START_ARGS) | {"clock_speed", "steps"}
        unknown = sorted(set(given) - known)
        if unknown:
            self.fail(
                "start", f"unknown key {unknown[0]!r} (start takes: {', '.join(sorted(known))})"
            )
        parts: dict[str, tuple[dict[str, Any], ...]] = {}
        for name, schema in START_ARGS.items():
            items = self.array(given.get(name, []), f"start.{name}", limit=MAX_START_ITEMS * 5)
            parts[name] = tuple(
                self.args(
                    self.table(item, f"start.{name}[{i}]"),
                    schema,
                    f"start.{name}[{i}]",
                    what=f"start.{name}",
                )
                for i, item in enumerate(items)
            )
        for i, producer in enumerate(parts["producers"]):
            if producer.get("key_mode", "set") != "null" and not producer.get("keys"):
                self.fail(
                    f"start.producers[{i}]",
                    f"a producer with key_mode {producer.get('key_mode', 'set')!r} needs 'keys'",
                )
        for i, record in enumerate(parts["records"]):
            if record.get("tombstone") and "value" in record:
                self.fail(
                    f"start.records[{i}]",
                    "a tombstone has no value: give 'value' or 'tombstone', not both",
                )
        speed = None
        if "clock_speed" in given:
            speed = self.value(_f(0.25, 20), given["clock_speed"], "start.clock_speed")
        steps = self.steps(given.get("steps", []), "start.steps", required=False)
        return Start(clock_speed=speed, steps=steps, **parts)

    def unique(self, ids: list[str], location: str, what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(ids):
            if item in seen:
                self.fail(f"{location}[{i}].id", f"two {what} have the id {item!r}")
            seen.add(item)


def _misplaced(key: str) -> str:
    if key not in TOP_LEVEL:
        return ""
    # The usual TOML slip: a top-level key written after a [[goals]] or [[solution]] header
    # belongs to that header's last table.
    return (
        f"; {key!r} is a top-level key: in TOML every key after a [[...]] header belongs "
        "to that table, so move it above the first [[...]] header"
    )


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _validate(data: object, path: str) -> LessonSpec:
    check = _Checker(path)
    given = check.table(data, "")
    unknown = sorted(set(given) - TOP_LEVEL)
    if unknown:
        check.fail("", f"unknown key {unknown[0]!r} (a lesson has: {', '.join(sorted(TOP_LEVEL))})")
    for name in (
        "slug",
        "title",
        "order",
        "summary",
        "intro",
        "start",
        "goals",
        "solution",
        "wrong",
    ):
        if name not in given:
            check.fail("", f"a lesson needs {name!r}")
    slug = check.text(given["slug"], "slug", limit=64)
    if not SLUG_RE.match(slug):
        check.fail("slug", f"use lowercase letters, digits and dashes (found {slug!r})")
    match = FILE_RE.match(PurePath(path).name) if path else None
    if path and path.endswith(".toml"):
        if match is None:
            check.fail("", "a lesson file is named NN-slug.toml (for example 01-the-log.toml)")
        elif match["slug"] != slug:
            check.fail(
                "slug",
                f"the file is named for {match['slug']!r} but the slug is "
                f"{slug!r}: they must be the same",
            )
    order = check.value(_i(0, 10_000), given["order"], "order")
    solution = check.steps(given["solution"], "solution", required=True)
    goals_raw = check.array(given["goals"], "goals", limit=MAX_GOALS)
    if not goals_raw:
        check.fail("goals", "a lesson needs at least one goal")
    goals = tuple(check.goal(g, f"goals[{i}]") for i, g in enumerate(goals_raw))
    check.unique([g.id for g in goals], "goals", "goals")
    predictions = tuple(
        check.prediction(p, f"predictions[{i}]", steps=len(solution))
        for i, p in enumerate(
            check.array(given.get("predictions", []), "predictions", limit=MAX_PREDICTIONS)
        )
    )
    check.unique([p.id for p in predictions], "predictions", "predictions")
    view = check.value(_s(choices=VIEWS), given.get("view", "board"), "view")
    points = tuple(
        check.text(p, f"points[{i}]", limit=64)
        for i, p in enumerate(check.array(given.get("points", []), "points", limit=30))
    )
    for i, point in enumerate(points):
        if not POINT_RE.match(point):
            check.fail(
                f"points[{i}]",
                f"a point id uses lowercase letters, digits, dots and dashes (found {point!r})",
            )
    hints = tuple(
        check.text(h, f"hints[{i}]", limit=1000)
        for i, h in enumerate(check.array(given.get("hints", []), "hints", limit=MAX_HINTS))
    )
    quiz = tuple(
        check.quiz_item(q, f"quiz[{i}]")
        for i, q in enumerate(check.array(given.get("quiz", []), "quiz", limit=MAX_QUIZ))
    )
    return LessonSpec(
        slug=slug,
        title=check.text(given["title"], "title", limit=120),
        order=order,
        summary=check.text(given["summary"], "summary", limit=300),
        points=points,
        intro=check.text(given["intro"], "intro", limit=MAX_PARAGRAPHS),
        view=view,
        start=check.start(given["start"]),
        goals=goals,
        hints=hints,
        solution=solution,
        wrong=check.steps(given["wrong"], "wrong", required=True),
        predictions=predictions,
        quiz=quiz,
        takeaway=check.text(
            given.get("takeaway", ""), "takeaway", limit=MAX_PARAGRAPHS, empty_ok=True
        ),
        path=path,
    )


# --- public API ------------------------------------------------------------------------------


def lesson_parse(text: str, *, path: str) -> LessonSpec:
    """Parse and validate a lesson file's text; `path` names it in every error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LessonFormatError(path, "", f"not valid TOML: {error}") from None
    return _validate(data, path)


def spec_from_dict(data: object, *, path: str = "") -> LessonSpec:
    """A stored `Lesson.spec` (or any dict shaped like the file), validated like a file."""
    return _validate(data, path)


def _step_to_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"do": step.do, **step.args}
    if step.say:
        out["say"] = step.say
    return out


def spec_to_dict(spec: LessonSpec) -> dict[str, Any]:
    """The lesson as JSON-ready data, shaped like its file: `spec_from_dict` reads it back."""
    start: dict[str, Any] = {
        name: [dict(item) for item in getattr(spec.start, name)]
        for name in START_ARGS
        if getattr(spec.start, name)
    }
    if spec.start.clock_speed is not None:
        start["clock_speed"] = spec.start.clock_speed
    if spec.start.steps:
        start["steps"] = [_step_to_dict(s) for s in spec.start.steps]
    return {
        "slug": spec.slug,
        "title": spec.title,
        "order": spec.order,
        "summary": spec.summary,
        "points": list(spec.points),
        "intro": spec.intro,
        "view": spec.view,
        "start": start,
        "goals": [
            {"id": g.id, "text": g.text, "check": {"kind": g.kind, **g.args}} for g in spec.goals
        ],
        "hints": list(spec.hints),
        "solution": [_step_to_dict(s) for s in spec.solution],
        "wrong": [_step_to_dict(s) for s in spec.wrong],
        "predictions": [
            {
                "id": p.id,
                "before_step": p.before_step,
                "question": p.question,
                "choices": list(p.choices),
                "answer": p.answer,
                "explain": p.explain,
            }
            for p in spec.predictions
        ],
        "quiz": [{"kind": q.kind, **q.args} for q in spec.quiz],
        "takeaway": spec.takeaway,
    }


def lesson_spec(lesson) -> LessonSpec:
    """The validated spec of a `Lesson` row."""
    return spec_from_dict(lesson.spec, path=lesson.source_path or f"lesson {lesson.slug}")
