"""Consumer instances of the Kafka REST API (Confluent REST Proxy v2), as members of groups.

A REST Proxy consumer instance is a Kafka consumer the proxy keeps on behalf of an HTTP client.
Its life, here as in REST Proxy:

* **create** (`POST /consumers/<group>`): the instance exists with its configuration (`format`,
  `auto.offset.reset`, `auto.commit.enable`), but it is not in the group yet: a Kafka consumer
  joins only once it has subscribed. LogLab has no member for it until then, so the room event
  that created it (`rest.consumer.created`) is what the API knows of it.
* **subscribe**: it joins the group as a member of kind REST, display name = instance name,
  `client.id` = instance name, so its member id is `<name>-<n>`. A group that does not exist yet
  is created with the subscribed topics (range, eager, at-least-once, the instance's
  `auto.offset.reset`). Groups subscribe as a whole in LogLab, so subscribing to other topics
  than the group reads is refused (REST Proxy's 40901).
* **fetch**: one `poll()` of its consumer, from its positions (or where the engine's
  `starting_position` says): the engine's fetch buffer and fetch session decide which
  partitions' records come back, drained partition after partition as Kafka's consumer does;
  with `auto.commit.enable` the new positions are committed at once (the client's auto-commit).
* **commit**, **delete** (`consumer.close()`: LeaveGroup), and **expire**: an instance not used
  for `consumer.instance.timeout.ms` (wall clock) leaves its group.

Every rule of Kafka comes from the engine or the group services: this module only keeps what
REST Proxy keeps per instance.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import events
from messaging.engine import consumption, fetching
from messaging.errors import Conflict, Invalid, NotFound
from messaging.models import (
    Assignment,
    ConsumerGroup,
    Member,
    RestConsumerInstance,
    Room,
    RoomEvent,
    Topic,
)
from messaging.selectors import group_committed, member_assignments, records_fetch
from messaging.services.events import event_record, room_lock
from messaging.services.groups import (
    group_create,
    group_id_validate,
    member_cursors,
    member_join,
    member_leave,
    offset_commit,
)

# consumer.instance.timeout.ms, REST Proxy's default; settings.LOGLAB_REST_INSTANCE_TIMEOUT_MS
# overrides it.
CONSUMER_INSTANCE_TIMEOUT_MS = 300_000
FORMATS = ("json", "binary")
DEFAULT_FORMAT = "binary"  # REST Proxy's default embedded format
# An instance's name is its display name on the board (40 characters) and a URL segment.
MAX_NAME_CHARS = 40
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


NOT_FOUND_MESSAGE = "Consumer instance not found."


def instance_timeout_ms() -> int:
    return int(getattr(settings, "LOGLAB_REST_INSTANCE_TIMEOUT_MS", CONSUMER_INSTANCE_TIMEOUT_MS))


@dataclass(frozen=True)
class InstanceConfig:
    """What `POST /consumers/<group>` sets, validated."""

    name: str
    format: str = DEFAULT_FORMAT
    auto_offset_reset: str = ConsumerGroup.OffsetReset.LATEST
    auto_commit_enable: bool = True

    def as_payload(self) -> dict:
        return {
            "instance": self.name,
            "format": self.format,
            "auto_offset_reset": self.auto_offset_reset,
            "auto_commit_enable": self.auto_commit_enable,
        }


@dataclass(frozen=True)
class PendingInstance:
    """An instance that was created but has not subscribed: not (yet) a member of its group."""

    group_id: str
    config: InstanceConfig
    created_at: datetime

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class FetchedRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str | None

    @property
    def size(self) -> int:
        """Bytes of key and value, as REST Proxy counts them against `max_bytes`."""
        return sum(len(part.encode("utf-8")) for part in (self.key, self.value) if part)


def _flag(raw: object, field: str) -> bool:
    # REST Proxy's documentation sends "auto.commit.enable": "false", a string.
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise Invalid(f"{field} is true or false (not {raw!r}).", field=field)


def instance_config_validate(
    *,
    name: object = None,
    format: object = None,
    auto_offset_reset: object = None,
    auto_commit_enable: object = None,
) -> InstanceConfig:
    """The configuration of a new instance; a missing name is generated, as REST Proxy does."""
    if name is None:
        name = f"rest-consumer-{secrets.token_hex(4)}"
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise Invalid(f"An instance name has 1 to {MAX_NAME_CHARS} characters here.", field="name")
    if not NAME_RE.match(name):
        raise Invalid(
            "An instance name may use only ASCII letters, digits, '.', '_' and '-' here: it "
            "goes in URLs.",
            field="name",
        )
    format = DEFAULT_FORMAT if format is None else format
    if format not in FORMATS:
        raise Invalid(
            f"format is json or binary in LogLab (not {format!r}): there is no Schema "
            "Registry for avro, protobuf or jsonschema.",
            field="format",
        )
    reset = ConsumerGroup.OffsetReset.LATEST if auto_offset_reset is None else auto_offset_reset
    if reset not in ConsumerGroup.OffsetReset.values:
        raise Invalid(
            f"auto.offset.reset is earliest, latest or none (not {reset!r}).",
            field="auto.offset.reset",
        )
    commit = True if auto_commit_enable is None else _flag(auto_commit_enable, "auto.commit.enable")
    return InstanceConfig(
        name=name, format=str(format), auto_offset_reset=str(reset), auto_commit_enable=commit
    )


# --- finding an instance ---------------------------------------------------------------------


def _row(room: Room, group_id: str, name: str) -> RestConsumerInstance | None:
    return (
        RestConsumerInstance.objects.select_related("member__group")
        .filter(member__group__room=room, member__group__group_id=group_id, name=name)
        .first()
    )


def _pending(room: Room, group_id: str, name: str, now: datetime) -> PendingInstance | None:
    """The created-but-unsubscribed instance `name` of `group_id`, from the room's events.

    The last lifecycle event of the name says: created (and not timed out) means pending;
    subscribed, deleted or expired means it is not pending any more.
    """
    last = (
        RoomEvent.objects.filter(
            room=room,
            type__in=events.REST_CONSUMER_LIFECYCLE,
            payload__group=group_id,
            payload__instance=name,
        )
        .order_by("-seq")
        .first()
    )
    if last is None or last.type != events.REST_CONSUMER_CREATED:
        return None
    if last.created_at <= now - timedelta(milliseconds=instance_timeout_ms()):
        return None  # consumer.instance.timeout.ms ran out before it subscribed
    payload = last.payload
    return PendingInstance(
        group_id=group_id,
        config=InstanceConfig(
            name=name,
            format=payload["format"],
            auto_offset_reset=payload["auto_offset_reset"],
            auto_commit_enable=payload["auto_commit_enable"],
        ),
        created_at=last.created_at,
    )


def rest_instance_get(
    *, room: Room, group_id: str, name: str
) -> RestConsumerInstance | PendingInstance:
    """The instance `name` of group `group_id`: a member's instance, or one not yet subscribed."""
    row = _row(room, group_id, name)
    if row is not None:
        return row
    pending = _pending(room, group_id, name, timezone.now())
    if pending is None:
        raise NotFound(NOT_FOUND_MESSAGE, field="instance")
    return pending


def _locked(instance: RestConsumerInstance) -> tuple[Room, RestConsumerInstance]:
    room = room_lock(room=instance.member.group.room_id)
    try:
        return room, RestConsumerInstance.objects.select_related("member__group").get(
            pk=instance.pk
        )
    except RestConsumerInstance.DoesNotExist:
        # Deleted, expired, or its member was removed from the group on the board.
        raise NotFound(NOT_FOUND_MESSAGE, field="instance") from None


def _touch(instance: RestConsumerInstance, now: datetime) -> None:
    instance.last_request_at = now
    RestConsumerInstance.objects.filter(pk=instance.pk).update(last_request_at=now)


def _group_topics(group: ConsumerGroup) -> list[str]:
    return sorted(group.topics.values_list("name", flat=True))


def _already_subscribed(group_id: str, reads: list[str], wanted: list[str]) -> Conflict:
    return Conflict(
        f"Consumer cannot subscribe to {', '.join(wanted)}: group '{group_id}' reads "
        f"{', '.join(reads)}. In LogLab a group subscribes as a whole, so its members subscribe "
        "to exactly its topics (use another group id for other topics).",
        field="topics",
    )


# --- the instance's life ---------------------------------------------------------------------


@transaction.atomic
def rest_instance_create(*, room: Room, group_id: str, config: InstanceConfig) -> InstanceConfig:
    """`POST /consumers/<group>`: a new instance, not yet subscribed (so not yet a member)."""
    group_id = group_id_validate(group_id)
    room = room_lock(room=room)
    if _row(room, group_id, config.name) or _pending(room, group_id, config.name, timezone.now()):
        raise Conflict(
            "Consumer with specified consumer ID already exists in the specified consumer "
            f"group ('{config.name}' in '{group_id}').",
            field="instance",
        )
    event_record(
        room=room,
        type=events.REST_CONSUMER_CREATED,
        payload={"group": group_id, **config.as_payload()},
    )
    return config


@transaction.atomic
def rest_instance_subscribe(
    *, room: Room, group_id: str, name: str, topics: list[str]
) -> RestConsumerInstance:
    """`POST .../subscription`: the instance joins its group, which the engine rebalances."""
    wanted = sorted(set(topics))
    if not wanted:
        raise Invalid("Subscribe to at least one topic.", field="topics")
    room = room_lock(room=room)
    now = timezone.now()
    row = _row(room, group_id, name)
    if row is not None:
        reads = _group_topics(row.member.group)
        if reads != wanted:
            raise _already_subscribed(group_id, reads, wanted)
        _touch(row, now)
        return row  # subscribing again to the same topics changes nothing
    pending = _pending(room, group_id, name, now)
    if pending is None:
        raise NotFound(NOT_FOUND_MESSAGE, field="instance")
    known = set(Topic.objects.filter(room=room, name__in=wanted).values_list("name", flat=True))
    missing = [t for t in wanted if t not in known]
    if missing:
        raise NotFound(f"Topic not found: {', '.join(missing)}.", field="topics")
    group = ConsumerGroup.objects.filter(room=room, group_id=group_id).first()
    if group is None:
        group = group_create(
            room=room,
            group_id=group_id,
            topics=wanted,
            assignor=ConsumerGroup.Assignor.RANGE,
            protocol=ConsumerGroup.Protocol.EAGER,
            delivery=ConsumerGroup.Delivery.AT_LEAST_ONCE,
            auto_offset_reset=pending.config.auto_offset_reset,
        )
    elif (reads := _group_topics(group)) != wanted:
        raise _already_subscribed(group_id, reads, wanted)
    member, _ = member_join(group=group, client_id=name, display_name=name, kind=Member.Kind.REST)
    # The learner's code consumes for this member, not the room's simulation.
    Member.objects.filter(pk=member.pk).update(records_per_second=0)
    instance = RestConsumerInstance.objects.create(
        member=member,
        name=name,
        format=pending.config.format,
        auto_offset_reset=pending.config.auto_offset_reset,
        auto_commit_enable=pending.config.auto_commit_enable,
        subscribed=True,
        last_request_at=now,
    )
    event_record(
        room=room,
        type=events.REST_CONSUMER_SUBSCRIBED,
        payload={
            "group": group_id,
            "instance": name,
            "member": member.member_id,
            "topics": wanted,
        },
    )
    return instance


@transaction.atomic
def rest_instance_touch(*, instance: RestConsumerInstance) -> RestConsumerInstance:
    """A request used the instance: consumer.instance.timeout.ms starts again."""
    _, instance = _locked(instance)
    _touch(instance, timezone.now())
    return instance


@transaction.atomic
def rest_records_fetch(
    *, instance: RestConsumerInstance, max_bytes: int | None = None
) -> list[FetchedRecord]:
    """`GET .../records`: one poll of the instance's consumer.

    Each assigned partition is read from the instance's position; a partition without one (or
    whose position fell off the log) starts where `starting_position` says, from the committed
    offset or by `auto.offset.reset`. At most max.poll.records records come back, the buffered
    partitions drained in turn (`consumption.poll`), and with `max_bytes` at most that many
    bytes of keys and values (but at least one record, so a small limit cannot stall a
    consumer); what the limit leaves stays buffered, first in line. During a rebalance a poll
    returns nothing. With `auto.commit.enable` the new positions are committed.
    """
    room, instance = _locked(instance)
    _touch(instance, timezone.now())
    member = instance.member
    group = member.group
    if group.consumers_paused():
        return []
    owned = member_assignments(member=member)
    committed = group_committed(group=group, partition_ids=[a.partition_id for a in owned])
    limit = settings.LOGLAB_MAX_FETCH  # max.poll.records
    consumer = consumption.ConsumerSettings(
        auto_offset_reset=instance.auto_offset_reset,  # type: ignore[arg-type]
        max_poll_records=limit,
    )
    # The learner's own client sees Kafka's sizes, not the board's scale: its records weigh
    # what the engine's unscaled record does, so a fetch brings up to max.poll.records.
    cursors = [
        replace(c, record_bytes=fetching.RECORD_BYTES_UNSCALED)
        for c in member_cursors(owned, committed)
    ]
    result = consumption.poll(
        cursors, consumer, fetch_state=fetching.FetchState.from_dict(member.fetch_state)
    )
    if result.stuck:
        raise Conflict(f"Illegal state: {result.stuck[0].error}", field="subscription")
    by_name = {str(a.partition): a for a in owned}
    after = {c.partition: c for c in result.cursors}
    taken: list[FetchedRecord] = []
    size = 0
    cut: list[str] = []  # partitions max_bytes stopped in: their records stay buffered, first
    for name, first, end in result.polled:
        a = by_name[name]
        if cut:
            cut.append(name)
            after[name] = replace(after[name], position=first, polled_until=first)
            continue
        for record in records_fetch(partition=a.partition, offset=first, max_records=end - first):
            fetched = FetchedRecord(
                topic=a.partition.topic.name,
                partition=a.partition.index,
                offset=record.offset,
                key=record.key,
                value=record.value,
            )
            if max_bytes is not None and taken and size + fetched.size > max_bytes:
                # REST Proxy stops at max_bytes (but returns at least one record); the rest
                # of what was fetched waits for the next request.
                cut.append(name)
                after[name] = replace(
                    after[name], position=record.offset, polled_until=record.offset
                )
                break
            taken.append(fetched)
            size += fetched.size
    state = result.fetch_state
    if cut:
        state = replace(state, buffered=(*cut, *(p for p in state.buffered if p not in cut)))
    for a in owned:
        c = after[str(a.partition)]
        a.fetched_until = c.fetched_until
        a.save(update_fields=["fetched_until"])
    Member.objects.filter(pk=member.pk).update(fetch_state=state.to_dict())
    positions = {a.pk: after[str(a.partition)].position for a in owned}

    moved = {}
    for a in owned:
        if a.position != positions[a.pk]:
            a.position = a.polled_until = positions[a.pk]
            a.save(update_fields=["position", "polled_until"])
            moved[f"{a.partition.topic.name}-{a.partition.index}"] = a.position
    if instance.auto_commit_enable:
        for a in owned:
            if a.position is not None and a.position != committed.get(a.partition_id):
                offset_commit(
                    group=group,
                    topic_name=a.partition.topic.name,
                    partition=a.partition.index,
                    offset=a.position,
                )
    if moved:
        event_record(
            room=room,
            type=events.REST_RECORDS_FETCHED,
            payload={
                "group": group.group_id,
                "instance": instance.name,
                "member": member.member_id,
                "records": len(taken),
                "positions": moved,
            },
        )
    taken.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return taken


@transaction.atomic
def rest_offsets_commit(
    *, instance: RestConsumerInstance, offsets: list[tuple[str, int, int]] | None = None
) -> list[tuple[str, int, int]]:
    """`POST .../offsets`: commit for the instance's group; returns (topic, partition, offset).

    Without `offsets`, every position the instance fetched up to (`commitSync()`). With them,
    REST Proxy commits each given offset **plus one**: you name the last record you processed,
    and the group's committed offset is, as always in Kafka, the next one to read.
    """
    _, instance = _locked(instance)
    _touch(instance, timezone.now())
    group = instance.member.group
    if offsets is None:
        committed = group_committed(group=group)
        targets = [
            (a.partition.topic.name, a.partition.index, a.position)
            for a in Assignment.objects.filter(member=instance.member)
            .select_related("partition__topic")
            .order_by("partition__topic__name", "partition__index")
            if a.position is not None and a.position != committed.get(a.partition_id)
        ]
    else:
        targets = [(topic, partition, offset + 1) for topic, partition, offset in offsets]
    for topic, partition, offset in targets:
        offset_commit(group=group, topic_name=topic, partition=partition, offset=offset)
    return targets


@transaction.atomic
def rest_instance_delete(*, room: Room, group_id: str, name: str) -> None:
    """`DELETE .../instances/<name>`: `consumer.close()`, so its member leaves the group."""
    room = room_lock(room=room)
    row = _row(room, group_id, name)
    member_id = None
    if row is not None:
        member_id = row.member.member_id
        member_leave(member=row.member)
        RestConsumerInstance.objects.filter(pk=row.pk).delete()
    elif _pending(room, group_id, name, timezone.now()) is None:
        raise NotFound(NOT_FOUND_MESSAGE, field="instance")
    event_record(
        room=room,
        type=events.REST_CONSUMER_DELETED,
        payload={"group": group_id, "instance": name, "member": member_id},
    )


def rest_instances_expire(*, room: Room | None = None) -> list[tuple[str, str]]:
    """Instances unused for consumer.instance.timeout.ms leave their groups, as REST Proxy's
    expiration thread closes them. Returns the (group id, instance name) pairs removed.

    Measured on the wall clock from each instance's last request (`last_request_at`), not on
    the room's simulated clock: it is the HTTP client that went quiet. Instances that never
    subscribed have no member and simply lapse. Cheap when nothing is due (one query).
    """
    cutoff = timezone.now() - timedelta(milliseconds=instance_timeout_ms())
    stale = RestConsumerInstance.objects.filter(last_request_at__lt=cutoff)
    if room is not None:
        stale = stale.filter(member__group__room=room)
    room_ids = sorted(set(stale.values_list("member__group__room_id", flat=True)))
    expired: list[tuple[str, str]] = []
    for room_id in room_ids:
        try:
            expired.extend(_expire_in_room(room_id=room_id))
        except NotFound:
            continue  # the room itself went away meanwhile
    return expired


@transaction.atomic
def _expire_in_room(*, room_id: int) -> list[tuple[str, str]]:
    room = room_lock(room=room_id)
    cutoff = timezone.now() - timedelta(milliseconds=instance_timeout_ms())
    expired = []
    stale = RestConsumerInstance.objects.filter(
        member__group__room=room, last_request_at__lt=cutoff
    ).select_related("member__group")
    for instance in stale:
        group_id, member_id = instance.member.group.group_id, instance.member.member_id
        member_leave(member=instance.member)
        RestConsumerInstance.objects.filter(pk=instance.pk).delete()
        event_record(
            room=room,
            type=events.REST_CONSUMER_EXPIRED,
            payload={
                "group": group_id,
                "instance": instance.name,
                "member": member_id,
                "timeout_ms": instance_timeout_ms(),
            },
        )
        expired.append((group_id, instance.name))
    return expired
