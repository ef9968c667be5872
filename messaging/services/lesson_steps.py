"""Playing a lesson: its start state and its steps, through the same services the board uses.

A step does exactly what the learner's click would do, so a solution played here is proof that
the lesson can be solved on the board. Each `step_apply` returns what happened, in plain words.
"""

from __future__ import annotations

import math
from itertools import groupby

from django.db import transaction

from messaging import events, selectors
from messaging.engine import delivery
from messaging.engine.clock import DEFAULT_STEP_MS, format_duration
from messaging.errors import Invalid, NotFound
from messaging.lessons.spec import LessonSpec, Step
from messaging.models import ConsumerGroup, Member, Producer, Room, SqsQueue, Topic
from messaging.services import classic as classic_services
from messaging.services import replication
from messaging.services import share_groups as share_services
from messaging.services import sqs as sqs_services
from messaging.services.clock import room_clock_set
from messaging.services.events import event_record, room_lock
from messaging.services.groups import (
    group_create,
    group_offsets_reset,
    member_crash,
    member_join,
    member_leave,
    members_join,
)
from messaging.services.records import RecordIn, records_produce
from messaging.services.simulation import (
    member_set_speed,
    producer_create,
    producer_update,
    room_step,
)
from messaging.services.topics import topic_add_partitions, topic_configure, topic_create

# The board's "Step 1 s" button. A long advance takes bigger steps, so that a lesson can jump
# a week (retention) in a bounded number of room steps; live members heartbeat through each
# big step (group_tick), so only crashed ones time out, as on the board.
ADVANCE_STEP_MS = max(DEFAULT_STEP_MS, 1_000)
MAX_ADVANCE_STEPS = 24
LESSON_CONSUMER = "lesson"
ACKS = {"0": 0, "1": 1, "all": "all"}
FAULT_FATES: dict[str, tuple[delivery.AttemptFate, ...]] = {
    "none": (),
    "lose_request": ("request-lost",),
    "lose_ack": ("ack-lost",),
    "leader_failover": ("leader-lost-before-replication",),
}


# --- lookups ---------------------------------------------------------------------------------


def _topic(room: Room, name: str) -> Topic:
    return selectors.topic_get(room=room, name=name)


def _group(room: Room, group_id: str) -> ConsumerGroup:
    return selectors.group_get(room=room, group_id=group_id)


def _queue(room: Room, name: str) -> SqsQueue:
    try:
        return SqsQueue.objects.get(room=room, name=name)
    except SqsQueue.DoesNotExist:
        raise NotFound(f"SQS queue '{name}' does not exist in this room.") from None


def consumer_resolve(group: ConsumerGroup, consumer: int | str = "last") -> Member:
    """A lesson's consumer: its 1-based place among the group's live members in join order,
    or "last" (the one that joined last)."""
    live = list(group.members.filter(crashed=False).order_by("join_order"))
    if not live:
        raise Invalid(f"Group '{group.group_id}' has no live consumer.")
    if consumer == "last":
        return live[-1]
    if not isinstance(consumer, int) or not 1 <= consumer <= len(live):
        raise Invalid(
            f"Group '{group.group_id}' has {len(live)} live consumer(s): there is no "
            f"consumer {consumer}."
        )
    return live[consumer - 1]


def _numbered(value: str, count: int, index: int) -> str:
    return value if count == 1 else f"{value} #{index + 1}"


def _records(args: dict) -> list[RecordIn]:
    count = args.get("count", 1)
    key = args.get("key")
    value = None if args.get("tombstone") else args.get("value", "event")
    return [
        RecordIn(
            key=key,
            value=None if value is None else _numbered(value, count, i),
            partition=args.get("partition"),
        )
        for i in range(count)
    ]


def _who(key: str | None) -> str:
    return "a record with no key" if key is None else f"'{key}'"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _consumer_words(consumer: int | str) -> str:
    return "the last consumer" if consumer == "last" else f"consumer {consumer}"


# --- describing a step -----------------------------------------------------------------------


def step_describe(step: Step) -> str:
    """The step in plain words, for the "show solution" panel: the file's `say` if it has one."""
    if step.say:
        return step.say
    a = step.args
    do = step.do
    if do == "produce":
        where = f" to partition {a['partition']}" if "partition" in a else ""
        what = "a tombstone for" if a.get("tombstone") else ""
        count = a.get("count", 1)
        subject = f"{what} key '{a['key']}'" if "key" in a else "records with no key"
        acks = f" with acks={a['acks']}" if "acks" in a else ""
        if count == 1 and "key" in a:
            return f"Produce {subject.strip()} to {a['topic']}{where}{acks}"
        return f"Produce {count} {subject.strip()} to {a['topic']}{where}{acks}"
    if do == "create_topic":
        replicated = (
            f", replication.factor={a['replication_factor']}" if "replication_factor" in a else ""
        )
        minimum = (
            f", min.insync.replicas={a['min_insync_replicas']}"
            if "min_insync_replicas" in a
            else ""
        )
        return (
            f"Create topic {a['name']} with {_plural(a['partitions'], 'partition')}"
            f"{replicated}{minimum}"
        )
    if do == "brokers":
        return f"Run {_plural(a['count'], 'broker')}"
    if do == "broker":
        verb = {"stop": "Stop", "start": "Start", "slow": "Slow down", "normal": "Speed up"}
        return f"{verb[a['state']]} broker {a['broker']}"
    if do == "elect_preferred":
        return "Elect the preferred leaders (kafka-leader-election.sh --election-type preferred)"
    if do == "add_partitions":
        return f"Grow topic {a['topic']} to {a['partitions']} partitions"
    if do == "configure_topic":
        names = {
            "retention_ms": "retention.ms",
            "cleanup_policy": "cleanup.policy",
            "segment_records": "segment records",
            "min_insync_replicas": "min.insync.replicas",
            "unclean_leader_election_enable": "unclean.leader.election.enable",
        }
        settings = ", ".join(f"{names[k]}={v}" for k, v in a.items() if k != "topic")
        return f"Set {settings} on topic {a['topic']}"
    if do == "create_group":
        return f"Create consumer group {a['group']} reading {', '.join(a['topics'])}"
    if do == "join":
        count = a.get("count", 1)
        static = f" with group.instance.id {a['instance_id']}" if "instance_id" in a else ""
        return f"Add {_plural(count, 'consumer')} to group {a['group']}{static}"
    if do == "leave":
        return f"Close {_consumer_words(a.get('consumer', 'last'))} of group {a['group']}"
    if do == "crash":
        return f"Crash {_consumer_words(a.get('consumer', 'last'))} of group {a['group']}"
    if do == "speed":
        return (
            f"Set {_consumer_words(a.get('consumer', 'last'))} of group {a['group']} to "
            f"{a['rate']:g} records/s"
        )
    if do == "advance":
        return f"Let {format_duration(a['ms'])} of simulated time pass"
    if do == "reset_offsets":
        value = f" {a['value']}" if "value" in a else ""
        return f"Reset the offsets of group {a['group']} --{a['option']}{value}"
    if do == "produce_with_fault":
        idem = a.get("idempotence", a["acks"] == "all")
        fault = {
            "none": "nothing goes wrong",
            "lose_request": "the request is lost",
            "lose_ack": "the acknowledgement is lost",
            "leader_failover": "the leader dies before a follower copies it",
        }[a["fault"]]
        return (
            f"Send {_who(a.get('key'))} to {a['topic']} with acks={a['acks']}, "
            f"enable.idempotence={'true' if idem else 'false'}; {fault}"
        )
    if do == "producer":
        parts = []
        if "running" in a:
            parts.append("start" if a["running"] else "stop")
        if "rate" in a:
            parts.append(f"set to {a['rate']:g} records/s")
        return f"{' and '.join(parts).capitalize()} producer {a['name']}"
    if do == "sqs_send":
        count = a.get("count", 1)
        return (
            f"Send {_plural(count, 'message')} with MessageGroupId {a['group_id']} to {a['queue']}"
        )
    if do == "sqs_receive":
        return f"Receive up to {_plural(a.get('max', 1), 'message')} from {a['queue']}"
    if do == "sqs_delete":
        return f"Delete the in-flight message of group {a['group_id']} from {a['queue']}"
    if do == "classic_declare":
        return f"Declare queue {a['queue']}"
    if do == "classic_exchange":
        return f"Declare {a['type']} exchange {a['exchange']}"
    if do == "classic_bind":
        key = f" with routing key {a['routing_key']}" if a.get("routing_key") else ""
        return f"Bind queue {a['queue']} to exchange {a['exchange']}{key}"
    if do == "classic_publish":
        exchange = f"exchange {a['exchange']}" if a["exchange"] else "the default exchange"
        count = a.get("count", 1)
        return (
            f"Publish {_plural(count, 'message')} to {exchange} with routing key "
            f"{a.get('routing_key', '')!r}"
        )
    if do == "classic_consume":
        return f"Consume and ack {_plural(a.get('count', 1), 'message')} from {a['queue']}"
    if do == "share_group":
        count = a.get("consumers", 2)
        return (
            f"Create share group {a['group']} on {a['topic']} with "
            f"{_plural(count, 'share consumer')}"
        )
    if do == "share_crash":
        return f"Crash {_consumer_words(a.get('consumer', 'last'))} of share group {a['group']}"
    if do == "share_speed":
        failing = a.get("failure_rate")
        then = f", failing {failing:.0%} ({a.get('on_failure', 'release')})" if failing else ""
        rate = f" to {a['rate']:g} records/s" if "rate" in a else ""
        return (
            f"Set {_consumer_words(a.get('consumer', 'last'))} of share group "
            f"{a['group']}{rate}{then}"
        )
    raise AssertionError(do)


# --- playing a step --------------------------------------------------------------------------


def step_apply(*, room: Room, step: Step) -> str:
    """Play one step in the room through the services; returns what happened, in plain words.

    Raises the services' errors (Invalid, NotFound, Conflict) when the room cannot take the
    step, with nothing written.
    """
    with transaction.atomic():
        return _APPLY[step.do](room, step.args)


def _produce(room: Room, a: dict) -> str:
    produced = records_produce(
        room=room,
        topic_name=a["topic"],
        records=_records(a),
        producer=LESSON_CONSUMER,
        acks={"0": 0, "1": 1, "all": -1}[a.get("acks", "all")],
    )
    places = sorted({f"{p.topic}-{p.partition}" for p in produced})
    return f"Produced {_plural(len(produced), 'record')} to {', '.join(places)}."


def _create_topic(room: Room, a: dict) -> str:
    topic_create(
        room=room,
        name=a["name"],
        partitions=a["partitions"],
        replication_factor=a.get("replication_factor", 1),
        min_insync_replicas=a.get("min_insync_replicas", 1),
        unclean_leader_election_enable=a.get("unclean_leader_election_enable", False),
    )
    return f"Created topic {a['name']} with {_plural(a['partitions'], 'partition')}."


def _brokers(room: Room, a: dict) -> str:
    replication.brokers_resize(room=room, count=a["count"])
    return f"The room runs {_plural(a['count'], 'broker')}."


def _broker(room: Room, a: dict) -> str:
    state = {"stop": "stopped", "start": "up", "slow": "slow", "normal": "up"}[a["state"]]
    payload = replication.broker_set(room=room, broker_id=a["broker"], state=state)
    moved = [
        f"{p['tp']} led by broker {p['leader']} (epoch {p['epoch']})"
        if p["leader"] is not None
        else f"{p['tp']} offline"
        for p in payload["partitions"]
        if p.get("elected")
    ]
    lost = f" {_plural(payload['lost'], 'record')} lost." if payload["lost"] else ""
    return f"Broker {a['broker']} {state}: {'; '.join(moved) or 'no leader moved'}.{lost}"


def _elect_preferred(room: Room, a: dict) -> str:
    payload = replication.leaders_preferred(room=room)
    return f"Preferred leaders elected for {_plural(len(payload['partitions']), 'partition')}."


def _add_partitions(room: Room, a: dict) -> str:
    topic_add_partitions(topic=_topic(room, a["topic"]), partitions=a["partitions"])
    return f"{a['topic']} now has {a['partitions']} partitions."


def _configure_topic(room: Room, a: dict) -> str:
    topic_configure(
        topic=_topic(room, a["topic"]),
        retention_ms=a.get("retention_ms"),
        cleanup_policy=a.get("cleanup_policy"),
        segment_records=a.get("segment_records"),
        min_insync_replicas=a.get("min_insync_replicas"),
        unclean_leader_election_enable=a.get("unclean_leader_election_enable"),
    )
    return step_describe(Step("configure_topic", a)) + "."


def group_defaults(a: dict) -> dict:
    """A group's settings with Kafka's defaults, where the protocol follows the assignor (and
    the other way round): cooperative rebalancing needs the cooperative-sticky assignor."""
    protocol = a.get("protocol")
    assignor = a.get("assignor") or ("cooperative-sticky" if protocol == "cooperative" else "range")
    protocol = protocol or ("cooperative" if assignor == "cooperative-sticky" else "eager")
    out = {
        "assignor": assignor,
        "protocol": protocol,
        "delivery": a.get("delivery", "at-least-once"),
        "auto_offset_reset": a.get("auto_offset_reset", "latest"),
    }
    if "session_timeout_ms" in a:
        out["session_timeout_ms"] = a["session_timeout_ms"]
    if "group_protocol" in a:
        out["group_protocol"] = a["group_protocol"]
    if "remote_assignor" in a:
        out["remote_assignor"] = a["remote_assignor"]
    return out


def _create_group(room: Room, a: dict) -> str:
    group_create(room=room, group_id=a["group"], topics=a["topics"], **group_defaults(a))
    return f"Created group {a['group']}."


def _join(room: Room, a: dict) -> str:
    group = _group(room, a["group"])
    count = a.get("count", 1)
    client_id = a.get("client_id") or group.group_id
    if count > 1:
        # Started together, as a service's tasks are: one join window, one rebalance.
        members, _result = members_join(group=group, client_id=client_id, count=count)
    else:
        member, _result = member_join(
            group=group, client_id=client_id, group_instance_id=a.get("instance_id")
        )
        members = [member]
    for member in members:
        if a.get("rate", 1.0) != member.records_per_second:
            member_set_speed(member=member, records_per_second=a["rate"])
    group.refresh_from_db()
    return (
        f"{_plural(count, 'consumer')} joined {group.group_id}; the group is "
        f"{group.state}, generation {group.generation}."
    )


def _leave(room: Room, a: dict) -> str:
    member = consumer_resolve(_group(room, a["group"]), a.get("consumer", "last"))
    member_leave(member=member)
    return f"{member} left group {a['group']}."


def _crash(room: Room, a: dict) -> str:
    group = _group(room, a["group"])
    member = consumer_resolve(group, a.get("consumer", "last"))
    member_crash(member=member)
    return (
        f"{member} crashed. The coordinator notices only when session.timeout.ms "
        f"({group.session_timeout_ms // 1000} s) has passed without a heartbeat."
    )


def _speed(room: Room, a: dict) -> str:
    member = consumer_resolve(_group(room, a["group"]), a.get("consumer", "last"))
    member_set_speed(member=member, records_per_second=a["rate"])
    return f"{member} now processes {a['rate']:g} records/s."


def _share_group(room: Room, a: dict) -> str:
    group = share_services.share_group_create(
        room=room,
        group_id=a["group"],
        topic=a["topic"],
        auto_offset_reset=a.get("auto_offset_reset", "latest"),
        settings=share_services.ShareSettings(
            record_lock_duration_ms=a.get("lock_ms", 30_000),
            delivery_count_limit=a.get("delivery_limit", 5),
            max_record_locks=a.get("max_locks", 200),
        ),
        consumers=a.get("consumers", 2),
        records_per_second=a.get("rate", 1.0),
        failure_rate=a.get("failure_rate", 0.0),
        on_failure=a.get("on_failure", "release"),
    )
    return f"Share group {group.group_id} reads {a['topic']}: its consumers share every partition."


def _share_member(room: Room, a: dict):
    group = selectors.share_group_get(room=room, group_id=a["group"])
    members = list(group.members.order_by("join_order"))
    which = a.get("consumer", "last")
    if not members or (which != "last" and not 1 <= int(which) <= len(members)):
        raise NotFound(f"Share group {group.group_id} has no consumer {which}.")
    return members[-1] if which == "last" else members[int(which) - 1]


def _share_crash(room: Room, a: dict) -> str:
    member = _share_member(room, a)
    share_services.share_member_crash(member=member)
    return f"{member} crashed: what it holds comes back when its locks run out."


def _share_speed(room: Room, a: dict) -> str:
    member = _share_member(room, a)
    member = share_services.share_member_update(
        member=member,
        records_per_second=a.get("rate", member.records_per_second),
        failure_rate=a.get("failure_rate", member.failure_rate),
        on_failure=a.get("on_failure", member.on_failure),
    )
    return (
        f"{member} now processes {member.records_per_second:g} records/s and fails "
        f"{member.failure_rate:.0%} of them ({member.on_failure} on failure)."
    )


def advance_steps(ms: int) -> list[int]:
    """The room steps an advance of `ms` takes: 1 s each, or ms/24 (whole seconds) if that
    makes more than 24 of them."""
    size = max(ADVANCE_STEP_MS, math.ceil(ms / MAX_ADVANCE_STEPS / 1000) * 1000)
    steps = [size] * (ms // size)
    if ms % size:
        steps.append(ms % size)
    return steps


@transaction.atomic
def _advance(room: Room, a: dict) -> str:
    for size in advance_steps(a["ms"]):
        room_step(room=room, step_ms=size)

    return f"{format_duration(a['ms'])} of simulated time passed."


def _reset_offsets(room: Room, a: dict) -> str:
    plan = group_offsets_reset(
        group=_group(room, a["group"]), option=a["option"], value=a.get("value"), execute=True
    )
    offsets = ", ".join(f"{tp} -> {o}" for tp, o in plan.new_offsets().items())
    return f"Offsets of {a['group']} reset: {offsets}."


def fault_outcome(a: dict) -> tuple[int, delivery.SendOutcome]:
    """How many copies of the record the broker keeps, by the delivery engine's producer model
    (acks, retries, idempotence) and the fault that hits the first attempt."""
    acks = ACKS[a["acks"]]
    # Kafka turns idempotence off by itself when acks is not "all" and it was not asked for.
    idempotence = a.get("idempotence", acks == "all")
    cluster = delivery.new_cluster(["p"])
    cluster, producer = delivery.new_producer(
        cluster, delivery.ProducerConfig(acks=acks, enable_idempotence=idempotence)
    )
    cluster, producer, outcome = delivery.send(
        cluster, producer, "p", a.get("value", "event"), FAULT_FATES[a["fault"]]
    )
    return len(outcome.offsets_in_log), outcome


def _produce_with_fault(room: Room, a: dict) -> str:
    kept, outcome = fault_outcome(a)
    heard = {"success": "the producer saw success", "error": "the producer saw an error"}[
        outcome.producer_sees
    ]
    attempts = _plural(len(outcome.attempts), "attempt")
    if kept:
        records_produce(
            room=room,
            topic_name=a["topic"],
            records=[RecordIn(key=a.get("key"), value=a.get("value", "event"))] * kept,
            producer=f"acks={a['acks']}",
        )
    else:
        _topic(room, a["topic"])  # a lost record still needs a real topic
    copies = {0: "kept nothing", 1: "kept one copy", 2: "kept two copies"}.get(
        kept, f"kept {kept} copies"
    )
    return f"{attempts}, {heard}; the broker {copies}."


def _producer(room: Room, a: dict) -> str:
    try:
        producer = Producer.objects.get(room=room, name=a["name"])
    except Producer.DoesNotExist:
        raise NotFound(f"There is no producer called '{a['name']}'.") from None
    producer_update(producer=producer, records_per_second=a.get("rate"), running=a.get("running"))
    return step_describe(Step("producer", a)) + "."


def _sqs_send(room: Room, a: dict) -> str:
    queue = _queue(room, a["queue"])
    count = a.get("count", 1)
    duplicates = 0
    for i in range(count):
        result = sqs_services.sqs_send(
            queue=queue,
            body=_numbered(a["body"], count, i),
            message_group_id=a["group_id"],
            deduplication_id=a.get("dedup_id"),
        )
        duplicates += result.duplicate
    note = f" ({duplicates} dropped as duplicates)" if duplicates else ""
    return f"Sent {_plural(count, 'message')} to {a['queue']}{note}."


def _sqs_receive(room: Room, a: dict) -> str:
    result = sqs_services.sqs_receive(
        queue=_queue(room, a["queue"]), max_messages=a.get("max", 1), consumer=LESSON_CONSUMER
    )
    if not result.messages:
        return f"Nothing to receive from {a['queue']}."
    groups = sorted({m.message_group_id or "" for m in result.messages})
    return (
        f"Received {_plural(len(result.messages), 'message')} (groups "
        f"{', '.join(groups)}); they stay in flight until deleted."
    )


def _sqs_delete(room: Room, a: dict) -> str:
    queue = _queue(room, a["queue"])
    state = selectors.sqs_state_load(queue)
    flying = [
        m
        for m in state.messages
        if m.in_flight and m.message_group_id == a["group_id"] and m.receipt_handle
    ]
    if not flying:
        raise Invalid(f"Group {a['group_id']} has no message in flight in {a['queue']}.")
    for message in flying:
        sqs_services.sqs_delete(queue=queue, receipt_handle=message.receipt_handle or "")
    return f"Deleted {_plural(len(flying), 'message')} of group {a['group_id']}: gone for good."


def _classic_declare(room: Room, a: dict) -> str:
    classic_services.classic_queue_declare(room=room, name=a["queue"])
    return f"Declared queue {a['queue']}."


def _classic_exchange(room: Room, a: dict) -> str:
    classic_services.classic_exchange_declare(
        room=room, name=a["exchange"], exchange_type=a["type"]
    )
    return f"Declared {a['type']} exchange {a['exchange']}."


def _classic_bind(room: Room, a: dict) -> str:
    classic_services.classic_bind(
        room=room, queue=a["queue"], exchange=a["exchange"], routing_key=a.get("routing_key", "")
    )
    return f"Bound {a['queue']} to {a['exchange']}."


def _classic_publish(room: Room, a: dict) -> str:
    count = a.get("count", 1)
    routed: set[str] = set()
    for i in range(count):
        outcome = classic_services.classic_publish(
            room=room,
            exchange=a["exchange"],
            routing_key=a.get("routing_key", ""),
            body=_numbered(a["body"], count, i),
        )
        routed.update(outcome.routed_to)
    if not routed:
        return "Published, but no queue was bound for it: RabbitMQ dropped it."
    return f"Published {_plural(count, 'message')}; routed to {', '.join(sorted(routed))}."


def _classic_consume(room: Room, a: dict) -> str:
    outcome = classic_services.classic_consume_and_ack(
        room=room, queue=a["queue"], count=a.get("count", 1), consumer_prefix=LESSON_CONSUMER
    )
    got = len(outcome.deliveries)
    if not got:
        return f"{a['queue']} had nothing ready to consume."
    return (
        f"Consumed and acked {_plural(got, 'message')} from {a['queue']}: deleted, "
        "nothing to replay."
    )


_APPLY = {
    "produce": _produce,
    "create_topic": _create_topic,
    "add_partitions": _add_partitions,
    "configure_topic": _configure_topic,
    "brokers": _brokers,
    "broker": _broker,
    "elect_preferred": _elect_preferred,
    "create_group": _create_group,
    "join": _join,
    "leave": _leave,
    "crash": _crash,
    "speed": _speed,
    "advance": _advance,
    "reset_offsets": _reset_offsets,
    "produce_with_fault": _produce_with_fault,
    "producer": _producer,
    "sqs_send": _sqs_send,
    "sqs_receive": _sqs_receive,
    "sqs_delete": _sqs_delete,
    "classic_declare": _classic_declare,
    "classic_exchange": _classic_exchange,
    "classic_bind": _classic_bind,
    "classic_publish": _classic_publish,
    "classic_consume": _classic_consume,
    "share_group": _share_group,
    "share_crash": _share_crash,
    "share_speed": _share_speed,
}


# --- the start state -------------------------------------------------------------------------


@transaction.atomic
def lesson_room_start(*, room: Room, spec: LessonSpec) -> None:
    """Build the lesson's `start` in an empty room: topics, groups and their consumers,
    records, producers, SQS queues, the clock's speed, then `start.steps`. Ends with a
    "lesson.started" event: goals that count events count from there."""
    room = room_lock(room=room)
    if room.topics.exists() or room.groups.exists() or room.sqs_queues.exists():
        raise Invalid(
            "A lesson starts from an empty room; this one already holds topics, groups or queues."
        )
    start = spec.start
    if start.clock_speed is not None:
        room_clock_set(room=room, speed=start.clock_speed)
    for t in start.topics:
        topic = topic_create(room=room, name=t["name"], partitions=t.get("partitions", 1))
        if {"retention_ms", "cleanup_policy", "segment_records"} & set(t):
            topic_configure(
                topic=topic,
                retention_ms=t.get("retention_ms"),
                cleanup_policy=t.get("cleanup_policy"),
                segment_records=t.get("segment_records"),
            )
    for g in start.groups:
        group_create(room=room, group_id=g["group"], topics=g["topics"], **group_defaults(g))
        if g.get("consumers", 1):
            _join(
                room,
                {
                    "group": g["group"],
                    "count": g.get("consumers", 1),
                    **{k: g[k] for k in ("client_id", "rate") if k in g},
                },
            )
    for topic_name, records in groupby(start.records, key=lambda r: r["topic"]):
        batch = [r for item in records for r in _records(item)]
        records_produce(room=room, topic_name=topic_name, records=batch, producer=LESSON_CONSUMER)
    for p in start.producers:
        producer = producer_create(
            room=room,
            name=p["name"],
            topic_name=p["topic"],
            key_mode=p.get("key_mode", "set"),
            keys=p.get("keys", []),
            records_per_second=p.get("rate", 1.0),
        )
        if not p.get("running", True):
            producer_update(producer=producer, running=False)
    for q in start.sqs_queues:
        attributes: dict[str, object] = {}
        if q["name"].endswith(".fifo"):
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = q.get("content_based_deduplication", True)
        if "visibility_timeout" in q:
            attributes["VisibilityTimeout"] = str(q["visibility_timeout"])
        sqs_services.sqs_queue_create(room=room, name=q["name"], attributes=attributes)
    for step in start.steps:
        step_apply(room=room, step=step)
    event_record(room=room, type=events.LESSON_STARTED, payload={"lesson": spec.slug})
