"""Side-by-side mode: one topic's records also sent to an SQS FIFO queue and a classic broker.

Every record produced to the mirrored topic goes, with its key, to the FIFO queue `<topic>.fifo`
(MessageGroupId = key), to the classic queue `<topic>` (competing consumers) and through the
fanout exchange `<topic>.fanout` to one queue per subscriber, so a class watches the same
records under three models at once.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.db import transaction

from messaging import events
from messaging.engine import classic, sqs
from messaging.errors import Invalid, NotFound
from messaging.models import Room, SqsQueue, Topic
from messaging.selectors import (
    classic_board_load,
    classic_state_load,
    sqs_board_load,
    sqs_state_load,
)
from messaging.services.classic import (
    classic_broker_apply,
    classic_broker_bound,
    classic_broker_row,
    classic_broker_store,
)
from messaging.services.events import event_record, room_lock
from messaging.services.sqs import MAX_MESSAGES_PER_QUEUE, sqs_queue_add, sqs_queue_store
from messaging.services.text import no_nul, preview

# The records of a null key have no MessageGroupId of their own.
NULL_KEY_GROUP = "(null-key)"
EMPTY_KEY_GROUP = "(empty-key)"
MIRROR_WORKERS = ("worker-1", "worker-2")
MIRROR_PREFETCH = 1
MIRROR_SUBSCRIBERS = ("billing", "analytics")


# --- side-by-side mode -------------------------------------------------------------------------


def mirror_names(topic_name: str) -> dict[str, str]:
    """What a topic is mirrored to. SQS queue names allow only letters, digits, - and _, so a
    Kafka topic's dots become dashes in the FIFO queue's name."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", topic_name)
    return {
        "fifo": f"{safe[:75]}.fifo",
        "classic": topic_name,
        "fanout": f"{topic_name}.fanout",
        **{name: f"{topic_name}.{name}" for name in MIRROR_SUBSCRIBERS},
    }


def mirror_group_id(key: str | None) -> str:
    """The MessageGroupId for a Kafka key. SQS requires one on every FIFO send, so a null key
    gets a group of its own; characters SQS does not take (spaces, non-ASCII) are
    percent-encoded, and a key too long for the 128 characters is shortened with a hash."""
    if key is None:
        return NULL_KEY_GROUP
    if key == "":
        return EMPTY_KEY_GROUP
    encoded = quote(key, safe=string.punctuation.replace("%", ""))
    if len(encoded) > 128:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        encoded = f"{encoded[:111]}~{digest}"
    return encoded


def mirror_deduplication_id(topic_name: str, partition: int, offset: int) -> str:
    """A record's place in the log is unique for ever, so it makes a deduplication id."""
    text = f"{topic_name}/{partition}/{offset}"
    return text if len(text) <= 128 else hashlib.sha256(text.encode()).hexdigest()


def mirror_body(value: str | None) -> str:
    """SQS refuses an empty body: a tombstone or an empty value is sent as a note."""
    if value is None:
        return "(null value: a tombstone in Kafka)"
    return value or "(empty value)"


@transaction.atomic
def mirror_enable(*, room: Room, topic: Topic) -> dict[str, str]:
    """Side-by-side mode: from now on records produced to `topic` are also sent to the FIFO
    queue `<topic>.fifo` (MessageGroupId = key), and published to the classic queue `<topic>`
    (competing consumers worker-1 and worker-2, prefetch 1) and to the fanout exchange
    `<topic>.fanout` (one copy each for `<topic>.billing` and `<topic>.analytics`)."""
    room = room_lock(room=room)
    if topic.room_id != room.pk:
        raise NotFound(f"Topic '{topic.name}' does not exist in this room.")
    names = mirror_names(topic.name)
    if not SqsQueue.objects.filter(room=room, name=names["fifo"]).exists():
        # An existing queue of that name is reused as it is: the mirror always sends its own
        # MessageDeduplicationId, so ContentBasedDeduplication does not matter to it.
        sqs_queue_add(
            room, names["fifo"], {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        )

    def topology(broker: classic.Broker) -> tuple[classic.Broker, classic.Outcome]:
        broker = classic.declare_queue(broker, names["classic"])
        broker = classic.declare_exchange(broker, names["fanout"], "fanout")
        for subscriber in MIRROR_SUBSCRIBERS:
            broker = classic.declare_queue(broker, names[subscriber])
            broker = classic.bind_queue(broker, names[subscriber], names["fanout"])
        deliveries: list[classic.Delivery] = []
        for tag in MIRROR_WORKERS:
            current = next((c for c in broker.consumers if c.consumer_tag == tag), None)
            if current is not None and current.queue == names["classic"]:
                continue
            if current is not None:
                # The worker moves to the newly mirrored queue: its old channel closes.
                broker, closed = classic.close_channel(broker, tag)
                deliveries.extend(closed.deliveries)
            broker, started = classic.consume(
                broker, names["classic"], tag, prefetch_count=MIRROR_PREFETCH
            )
            deliveries.extend(started.deliveries)
        return broker, classic.Outcome(deliveries=tuple(deliveries))

    classic_broker_apply(
        room, "mirror_on", {"topic": topic.name, "queue": names["classic"]}, topology
    )
    room.mirror_topic = topic
    room.save(update_fields=["mirror_topic"])
    event_record(
        room=room,
        type=events.SQS_CHANGED,
        payload={
            "queue": names["fifo"],
            "action": "mirror_on",
            "topic": topic.name,
        },
    )
    return names


@transaction.atomic
def mirror_disable(*, room: Room) -> None:
    """Stop mirroring; the queues and what they hold stay for inspection."""
    room = room_lock(room=room)
    if room.mirror_topic_id is None:
        return
    topic_name = Topic.objects.filter(pk=room.mirror_topic_id).values_list("name", flat=True)
    room.mirror_topic = None
    room.save(update_fields=["mirror_topic"])
    event_record(
        room=room,
        type=events.SQS_CHANGED,
        payload={"action": "mirror_off", "topic": topic_name.first()},
    )


@dataclass
class MirrorResult:
    sent: int = 0
    duplicates: int = 0
    published: int = 0
    # (partition, offset, why) of each copy that could not be made; the record itself stays.
    skipped: list[dict[str, Any]] = field(default_factory=list)


@transaction.atomic
def queues_mirror_records(
    *, room: Room, topic_name: str, records: list[Mapping[str, Any]]
) -> MirrorResult:
    """Copy produced records into the mirrored FIFO queue and classic queues.

    Called by the produce service inside its own transaction when `room.mirror_topic` is the
    topic (and a no-op otherwise). It never raises for what a record holds: a copy SQS or the
    broker would refuse is skipped and reported, so the Kafka produce itself always stands.
    """
    result = MirrorResult()
    if not records:
        return result
    room = room_lock(room=room)
    mirrored = (
        Topic.objects.filter(pk=room.mirror_topic_id).values_list("name", flat=True).first()
        if room.mirror_topic_id
        else None
    )
    if mirrored != topic_name:
        return result
    names = mirror_names(topic_name)
    _mirror_to_fifo(room, names, topic_name, records, result)
    _mirror_to_classic(room, names, records, result)
    event_record(
        room=room,
        type=events.SQS_CHANGED,
        payload={
            "queue": names["fifo"],
            "action": "mirror",
            "topic": topic_name,
            "sent": result.sent,
            "duplicates": result.duplicates,
            "published": result.published,
            "skipped": result.skipped[:10],
        },
    )
    return result


def _mirror_to_fifo(
    room: Room,
    names: dict[str, str],
    topic_name: str,
    records: list[Mapping[str, Any]],
    result: MirrorResult,
) -> None:
    row = SqsQueue.objects.filter(room=room, name=names["fifo"]).first()
    if row is None:
        result.skipped.extend(
            {
                "partition": r["partition"],
                "offset": r["offset"],
                "to": names["fifo"],
                "reason": "the FIFO queue no longer exists",
            }
            for r in records
        )
        return
    state = sqs_state_load(row)
    board = sqs_board_load(row)
    for record in records:
        where = {"partition": record["partition"], "offset": record["offset"], "to": row.name}
        if len(state.messages) >= MAX_MESSAGES_PER_QUEUE:
            result.skipped.append({**where, "reason": f"{row.name} is full"})
            continue
        group = mirror_group_id(record.get("key"))
        try:
            state, sent = sqs.send(
                state,
                mirror_body(record.get("value")),
                now_ms=room.sim_time_ms,
                message_group_id=group,
                deduplication_id=mirror_deduplication_id(
                    topic_name, record["partition"], record["offset"]
                ),
            )
        except sqs.SqsError as error:
            result.skipped.append({**where, "reason": f"{error.code}: {error.message}"})
            continue
        if sent.duplicate:
            result.duplicates += 1
            board["duplicates"].append(
                {
                    "dedup_id": sent.message_deduplication_id,
                    "group": group,
                    "message_id": sent.message_id,
                    "body": preview(mirror_body(record.get("value"))),
                    "at_ms": room.sim_time_ms,
                }
            )
        else:
            result.sent += 1
    sqs_queue_store(row, state, board)


def _mirror_to_classic(
    room: Room, names: dict[str, str], records: list[Mapping[str, Any]], result: MirrorResult
) -> None:
    row, _ = classic_broker_row(room)
    broker = classic_state_load(row)
    board = classic_board_load(row)
    routes = (("", names["classic"]), (names["fanout"], ""))
    for record in records:
        for exchange, routing_key in routes:
            where = {
                "partition": record["partition"],
                "offset": record["offset"],
                "to": exchange or names["classic"],
            }
            try:
                published, outcome = classic.publish(
                    broker,
                    exchange,
                    routing_key,
                    no_nul(mirror_body(record.get("value")), field="value"),
                )
                classic_broker_bound(published)
            except classic.BrokerError as error:
                result.skipped.append({**where, "reason": str(error)})
                continue
            except Invalid as error:
                result.skipped.append({**where, "reason": error.message})
                continue
            broker = published
            if outcome.routed_to:
                result.published += 1
                if record.get("key") is not None and outcome.message_id is not None:
                    board["keys"][outcome.message_id] = record["key"]
    classic_broker_store(row, broker, board)
