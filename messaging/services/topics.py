from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction

from messaging import events
from messaging.engine import retention as cleaner
from messaging.engine.replication import MAX_BROKERS
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import Partition, Record, Room, Topic
from messaging.services.events import event_record, room_lock
from messaging.services.groups import group_topics_changed
from messaging.services.replication import partitions_replicate, replication_validate

# Kafka's legal topic names: ASCII letters, digits, '.', '_' and '-'.
TOPIC_NAME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")


def topic_name_validate(name: str) -> str:
    name = name.strip()
    if not name:
        raise Invalid("A topic needs a name.", field="name")
    if len(name) > settings.LOGLAB_MAX_TOPIC_NAME:
        raise Invalid(
            f"A topic name has at most {settings.LOGLAB_MAX_TOPIC_NAME} characters.",
            field="name",
        )
    if name in {".", ".."}:
        raise Invalid("Kafka does not allow a topic named '.' or '..'.", field="name")
    if not TOPIC_NAME_RE.match(name):
        raise Invalid(
            "A topic name may use only ASCII letters, digits, '.', '_' and '-', as in Kafka.",
            field="name",
        )
    return name


def partition_count_validate(partitions: object) -> int:
    try:
        count = int(partitions)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid("The partition count must be a whole number.", field="partitions") from None
    if not 1 <= count <= settings.LOGLAB_MAX_PARTITIONS:
        raise Invalid(
            f"A topic has between 1 and {settings.LOGLAB_MAX_PARTITIONS} partitions "
            f"(you asked for {count}).",
            field="partitions",
        )
    return count


@transaction.atomic
def topic_create(
    *,
    room: Room,
    name: str,
    partitions: object,
    replication_factor: object = 1,
    min_insync_replicas: object = 1,
    unclean_leader_election_enable: bool = False,
) -> Topic:
    name = topic_name_validate(name)
    count = partition_count_validate(partitions)
    room = room_lock(room=room)
    factor, minimum = 1, 1
    if replication_factor not in (1, "1") or min_insync_replicas not in (1, "1"):
        factor, minimum = replication_validate(
            room=room,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
    if room.topics.filter(name=name).exists():
        raise Conflict(f"Topic '{name}' already exists in this room.", field="name")
    if room.topics.count() >= settings.LOGLAB_MAX_TOPICS_PER_ROOM:
        raise Invalid(
            f"A room holds at most {settings.LOGLAB_MAX_TOPICS_PER_ROOM} topics.", field="name"
        )
    topic = Topic.objects.create(
        room=room,
        name=name,
        partition_count=count,
        replication_factor=factor,
        min_insync_replicas=minimum,
        unclean_leader_election_enable=bool(unclean_leader_election_enable),
    )
    created = Partition.objects.bulk_create(Partition(topic=topic, index=i) for i in range(count))
    partitions_replicate(room=room, topic=topic, partitions=list(created))
    payload: dict = {"topic": topic.name, "partitions": count}
    if factor > 1:
        payload["replication_factor"] = factor
    event_record(room=room, type=events.TOPIC_CREATED, payload=payload)
    return topic


@transaction.atomic
def topic_add_partitions(*, topic: Topic, partitions: object) -> Topic:
    """`kafka-topics --alter --partitions N`: more partitions, never fewer.

    Keys hash onto the new count from now on, so a key's later records may land in another
    partition than its earlier ones: ordering per key holds only within one partition count.
    Every group reading the topic sees new metadata and rebalances: at once here, where real
    clients notice at their next metadata refresh (metadata.max.age.ms, 5 minutes by default).
    """
    count = partition_count_validate(partitions)
    room = room_lock(room=topic.room_id)
    topic = Topic.objects.get(pk=topic.pk)
    if count <= topic.partition_count:
        raise Invalid(
            f"'{topic.name}' has {topic.partition_count} partitions: Kafka can only add "
            f"partitions, never remove them, so ask for more than {topic.partition_count}.",
            field="partitions",
        )
    before = topic.partition_count
    added = Partition.objects.bulk_create(
        Partition(topic=topic, index=i) for i in range(before, count)
    )
    partitions_replicate(room=room, topic=topic, partitions=list(added))
    topic.partition_count = count
    topic.save(update_fields=["partition_count"])
    event_record(
        room=room,
        type=events.TOPIC_PARTITIONS_ADDED,
        payload={"topic": topic.name, "before": before, "partitions": count},
    )
    for group in topic.groups.all():
        group_topics_changed(room=room, group=group)
    return topic


# Topic configs a client may set by Kafka's names (REST Proxy v3, CreateTopics), to
# topic_configure's arguments.
TOPIC_CONFIGS = {
    "cleanup.policy": "cleanup_policy",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "delete.retention.ms": "delete_retention_ms",
    "min.insync.replicas": "min_insync_replicas",
    "unclean.leader.election.enable": "unclean_leader_election_enable",
}

MAX_RETENTION_MS = 365 * 24 * 60 * 60 * 1000
MAX_SEGMENT_RECORDS = 10_000


def _bounded_int(value: object, *, field: str, low: int, high: int) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid(f"{field} is a whole number.", field=field) from None
    if not low <= number <= high:
        raise Invalid(f"{field} is between {low} and {high} (not {number}).", field=field)
    return number


def config_flag(value: object, *, field: str) -> bool:
    """A boolean config as Kafka reads it ("true" or "false"; a form's checkbox too)."""
    if isinstance(value, bool):
        return value
    flag = str(value).strip().lower()
    if flag not in ("true", "false", "on", "off", "1", "0"):
        raise Invalid(f"{field} is true or false (not {str(value)[:20]!r}).", field=field)
    return flag in ("true", "on", "1")


@transaction.atomic
def topic_configure(
    *,
    topic: Topic,
    cleanup_policy: str | None = None,
    retention_ms: object = None,
    retention_bytes: object = None,
    segment_records: object = None,
    delete_retention_ms: object = None,
    min_insync_replicas: object = None,
    unclean_leader_election_enable: object = None,
) -> Topic:
    """`kafka-configs --alter --entity-type topics`: retention, cleanup and replication
    settings (replication.factor itself is not a config: Kafka changes it by reassignment)."""
    room = room_lock(room=topic.room_id)
    topic = Topic.objects.get(pk=topic.pk)
    changed: dict[str, object] = {}
    if cleanup_policy is not None:
        if cleanup_policy not in Topic.CleanupPolicy.values:
            raise Invalid(
                "cleanup.policy is one of delete, compact or compact,delete.",
                field="cleanup_policy",
            )
        if (
            "compact" in cleanup_policy
            and Record.objects.filter(partition__topic=topic, key__isnull=True).exists()
        ):
            # Kafka would accept the change and its cleaner would drop these records; saying
            # so here is kinder than a silent loss.
            changed["note"] = "records without a key will be dropped by the log cleaner"
        changed["cleanup.policy"] = topic.cleanup_policy = cleanup_policy
    if retention_ms is not None:
        changed["retention.ms"] = topic.retention_ms = _bounded_int(
            retention_ms, field="retention.ms", low=-1, high=MAX_RETENTION_MS
        )
    if retention_bytes is not None:
        changed["retention.bytes"] = topic.retention_bytes = _bounded_int(
            retention_bytes, field="retention.bytes", low=-1, high=2**40
        )
    if segment_records is not None:
        changed["segment.records"] = topic.segment_records = _bounded_int(
            segment_records, field="segment.records", low=1, high=MAX_SEGMENT_RECORDS
        )
    if delete_retention_ms is not None:
        changed["delete.retention.ms"] = topic.delete_retention_ms = _bounded_int(
            delete_retention_ms, field="delete.retention.ms", low=0, high=MAX_RETENTION_MS
        )
    if min_insync_replicas is not None:
        changed["min.insync.replicas"] = topic.min_insync_replicas = _bounded_int(
            min_insync_replicas, field="min.insync.replicas", low=1, high=MAX_BROKERS
        )
    if unclean_leader_election_enable is not None:
        changed["unclean.leader.election.enable"] = topic.unclean_leader_election_enable = (
            config_flag(unclean_leader_election_enable, field="unclean.leader.election.enable")
        )
    try:
        cleaner.new_log(config=topic.log_config())  # the engine checks the combination
    except cleaner.RetentionError as error:
        raise Invalid(str(error)) from None
    topic.save()
    Partition.objects.filter(topic=topic).update(cleaner_dirty=True)
    event_record(room=room, type=events.TOPIC_CONFIGURED, payload={"topic": topic.name, **changed})
    return topic


@transaction.atomic
def topic_create_configured(
    *, room: Room, name: str, partitions: object, replication_factor: object = 1, **configs
) -> Topic:
    """A topic created with its configs in one step: refused whole if any config is bad."""
    replication = {}
    for name_ in ("min_insync_replicas", "unclean_leader_election_enable"):
        if name_ in configs:
            replication[name_] = configs.pop(name_)
    if "unclean_leader_election_enable" in replication:
        replication["unclean_leader_election_enable"] = config_flag(
            replication["unclean_leader_election_enable"], field="unclean.leader.election.enable"
        )
    topic = topic_create(
        room=room,
        name=name,
        partitions=partitions,
        replication_factor=replication_factor,
        **replication,
    )
    if configs:
        topic = topic_configure(topic=topic, **configs)
    return topic


@transaction.atomic
def topic_delete(*, topic: Topic) -> None:
    """`kafka-topics --delete`: the topic and its records go; groups reading it rebalance
    without it (their committed offsets for it go too, as Kafka removes them)."""
    room = room_lock(room=topic.room_id)
    try:
        topic = Topic.objects.get(pk=topic.pk, room=room)
    except Topic.DoesNotExist:
        raise NotFound("That topic no longer exists.") from None
    groups = list(topic.groups.all())
    name = topic.name
    if room.mirror_topic_id == topic.pk:
        Room.objects.filter(pk=room.pk).update(mirror_topic=None)
    topic.delete()
    for group in groups:
        group_topics_changed(room=room, group=group)
    event_record(room=room, type=events.RESYNC, payload={"reason": f"topic {name} deleted"})
