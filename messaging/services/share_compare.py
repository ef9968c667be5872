"""Side by side: a share group, an SQS FIFO queue and a consumer group fed the same records.

`compare_setup` mirrors a topic (services/mirror.py: every record produced to it is also sent
to the FIFO queue `<topic>.fifo`, MessageGroupId = key), and starts on the topic a share group
`<topic>-share` and a consumer group `<topic>-group`, two consumers each. The room step drives
all three alike: the share consumers and the group's members by their own services, and two
SQS workers here, each with the speed, failure rate and failure handling of the share consumer
of the same rank, so the differences a class sees are the brokers', not the consumers'.

An SQS worker receives up to 5 messages, processes them one by one, deletes a message it
processed (the ACCEPT of SQS), and on a failure makes it visible again at once with
ChangeMessageVisibility 0 (the RELEASE of SQS). SQS has no REJECT: a poison message comes back
until a RedrivePolicy's maxReceiveCount moves it to a dead-letter queue, and the mirrored queue
has none, so it keeps its message group blocked. That is the point the page makes.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from messaging import events, selectors
from messaging.engine import share_group as rules
from messaging.engine import sqs
from messaging.errors import Conflict, NotFound
from messaging.models import (
    BOARD_MAX_POLL_RECORDS,
    ConsumerGroup,
    Room,
    ShareGroup,
    ShareMember,
    Topic,
)
from messaging.services import groups as group_services
from messaging.services import mirror as mirror_services
from messaging.services.events import event_record, room_lock
from messaging.services.share_groups import (
    share_group_create,
    share_member_join,
    share_slices,
)
from messaging.services.sqs import sqs_queue_store

WORKERS = ("worker-1", "worker-2")
CONSUMERS = 2
WORKLOG_KEEP = 12


def compare_names(topic_name: str) -> dict[str, str]:
    return {
        "share": f"{topic_name}-share",
        "group": f"{topic_name}-group",
        "fifo": mirror_services.mirror_names(topic_name)["fifo"],
    }


@transaction.atomic
def compare_setup(*, room: Room, topic: Topic) -> ShareGroup:
    """Mirror `topic` and put a share group and a consumer group on it (existing ones of
    those names are reused), so the next records produced to it are seen three ways."""
    room = room_lock(room=room)
    if topic.room_id != room.pk:
        raise NotFound(f"Topic '{topic.name}' does not exist in this room.")
    names = compare_names(topic.name)
    mirror_services.mirror_enable(room=room, topic=topic)
    share = ShareGroup.objects.filter(room=room, group_id=names["share"]).first()
    if share is None:
        share = share_group_create(
            room=room, group_id=names["share"], topic=topic.name, consumers=CONSUMERS
        )
    elif share.topic_id != topic.pk:
        raise Conflict(f"Share group '{names['share']}' reads another topic.", field="topic")
    elif not share.members.exists():
        for _ in range(CONSUMERS):
            share_member_join(group=share)
    group = ConsumerGroup.objects.filter(room=room, group_id=names["group"]).first()
    if group is None:
        group = group_services.group_create(room=room, group_id=names["group"], topics=[topic.name])
        # Start where the share group and the queue start, at the log end, before anyone joins:
        # `kafka-consumer-groups --reset-offsets --to-latest --execute` (auto.offset.reset
        # would only apply once the first rebalance ends, seconds later).
        group_services.group_offsets_reset(group=group, option="to-latest", execute=True)
    if not group.members.exists():
        group_services.members_join(group=group, client_id="consumer", count=CONSUMERS)
    share.refresh_from_db()
    share.compare = {
        "queue": names["fifo"],
        "group": names["group"],
        "workers": {name: {"budget": 0.0, "held": [], "counts": {}} for name in WORKERS},
        "log": [],
    }
    share.save(update_fields=["compare"])
    event_record(
        room=room,
        type=events.SHARE_CHANGED,
        payload={"group": share.group_id, "action": "compare", "topic": topic.name, **names},
    )
    return share


@transaction.atomic
def compare_stop(*, room: Room) -> None:
    """Stop the SQS workers and mirroring; the groups and the queue stay as they are."""
    room = room_lock(room=room)
    for share in ShareGroup.objects.filter(room=room).exclude(compare={}):
        share.compare = {}
        share.save(update_fields=["compare"])
    mirror_services.mirror_disable(room=room)
    event_record(
        room=room, type=events.SHARE_CHANGED, payload={"group": None, "action": "compare_off"}
    )


def compare_find(*, room: Room) -> ShareGroup | None:
    return (
        ShareGroup.objects.filter(room=room)
        .exclude(compare={})
        .select_related("topic")
        .order_by("group_id")
        .first()
    )


# --- the SQS workers on the room's step ----------------------------------------------------------


def share_compare_tick(*, room: Room, step_ms: int) -> bool:
    """The comparison's SQS workers' part of a room step (the caller holds the room's lock).
    Returns whether the queue changed; one "sqs.changed" event says so."""
    share = compare_find(room=room)
    if share is None:
        return False
    compare = dict(share.compare)
    row = selectors.sqs_queue_find(room=room, name=compare.get("queue", ""))
    if row is None:
        return False
    try:
        queue = selectors.sqs_state_load(row)
    except (KeyError, TypeError, ValueError):
        return False
    board = selectors.sqs_board_load(row)
    members = list(share.members.order_by("join_order"))
    workers: dict[str, dict[str, Any]] = {
        name: {"budget": 0.0, "held": [], "counts": {}, **compare.get("workers", {}).get(name, {})}
        for name in WORKERS
    }
    log: list[str] = list(compare.get("log", []))
    changed = False
    end = room.sim_time_ms
    slices = share_slices(step_ms)
    for number in range(1, slices + 1):
        now = end - step_ms + step_ms * number // slices
        for rank, name in enumerate(WORKERS):
            model = members[rank] if rank < len(members) else None
            if model is None or model.crashed:
                continue
            worker = workers[name]
            budget = worker["budget"] + model.records_per_second * (step_ms / slices) / 1000
            worker["budget"] = min(budget, float(BOARD_MAX_POLL_RECORDS))
            try:
                queue, moved = _work(queue, board, worker, name, model, now, room.code, log)
            except sqs.SqsError:
                continue  # the queue is ahead of the room's clock: nothing is due yet
            changed = changed or moved
    compare["workers"] = workers
    compare["log"] = log[-WORKLOG_KEEP:]
    share.compare = compare
    share.save(update_fields=["compare"])
    if changed:
        sqs_queue_store(row, queue, board)
        event_record(
            room=room,
            type=events.SQS_CHANGED,
            payload={"queue": row.name, "action": "compare", "workers": list(WORKERS)},
        )
    return changed


def _work(
    queue: sqs.Queue,
    board: dict[str, Any],
    worker: dict[str, Any],
    name: str,
    model: ShareMember,
    now: int,
    seed: str,
    log: list[str],
) -> tuple[sqs.Queue, bool]:
    """One worker's turn: process what it holds while its budget lasts, receive when empty."""
    changed = False
    while True:
        if not worker["held"]:
            queue, result = sqs.receive(queue, now_ms=now, max_messages=BOARD_MAX_POLL_RECORDS)
            if not result.messages:
                return queue, changed
            changed = True
            for message in result.messages:
                worker["held"].append(
                    [message.message_id, message.receipt_handle, message.approximate_receive_count]
                )
                board["holders"][message.message_id] = {
                    "consumer": name,
                    "handle": message.receipt_handle,
                    "at_ms": now,
                }
            groups = sorted({m.message_group_id or "" for m in result.messages})
            log.append(f"{name} received {len(result.messages)} from group(s) {', '.join(groups)}.")
        if worker["budget"] < 1:
            return queue, changed
        worker["budget"] -= 1
        message_id, handle, receives = worker["held"].pop(0)
        outcome = rules.consumer_outcome(
            seed=seed,
            member_id=name,
            partition=0,
            offset=int.from_bytes(message_id.encode()[:8], "big"),
            delivery_count=receives,
            failure_rate=model.failure_rate,
            on_failure=model.on_failure,
        )
        counts = worker.setdefault("counts", {})
        changed = True
        try:
            if outcome == rules.ACCEPT:
                queue, _ = sqs.delete(queue, handle, now_ms=now)
                counts["deleted"] = counts.get("deleted", 0) + 1
            else:
                queue, _ = sqs.change_visibility(queue, handle, 0, now_ms=now)
                counts["returned"] = counts.get("returned", 0) + 1
                log.append(
                    f"{name} failed a message (receive {receives}): ChangeMessageVisibility 0 "
                    "puts it back at the head of its group."
                )
        except (sqs.InvalidParameterValue, sqs.MessageNotInflight, sqs.ReceiptHandleIsInvalid):
            counts["expired"] = counts.get("expired", 0) + 1
            log.append(
                f"{name}'s receipt handle had expired (VisibilityTimeout ran out): "
                "another receive has the message now."
            )
