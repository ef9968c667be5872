"""The SQS FIFO and classic-broker views of a room, and side-by-side mode.

Thin function views, as in `messaging.views`: parse the form, call a service in
`messaging.services.queues`, render. htmx requests get a result fragment (and an
`HX-Trigger` so the page redraws at once); plain form posts get a redirect back with the result
as a flash message, so every control works without JavaScript. Errors are 4xx with the reason
in the page (`handles_errors`).

The page model below only reshapes what the engine says (`sqs.lanes`, `sqs.approximate_counts`,
`classic.queue_stats`) for the templates: no rule of SQS or RabbitMQ is decided here.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine import classic, sqs
from messaging.engine.clock import clock_payload, format_time
from messaging.errors import Invalid, NotFound
from messaging.models import ClassicBroker, Room, SqsQueue
from messaging.permissions import DRIVE, RATE_ACTION, room_for_action
from messaging.services import classic as classic_services
from messaging.services import mirror as mirror_services
from messaging.services import sqs as sqs_services
from messaging.services.clock import room_clock_step
from messaging.views._htmx import handles_errors
from messaging.views.board import kafka_login

RESULT = "messaging/queues_partials.html#result"
# Steps of simulated time the page offers, to watch visibility timeouts and dedup windows end.
CLOCK_STEPS_MS = {"1000": 1_000, "10000": 10_000, "30000": 30_000, "300000": 300_000}
# How many in-flight or ready messages the page draws per lane / queue.
CELLS_SHOWN = 40

# --- the page model -----------------------------------------------------------------------------


@dataclass
class Cell:
    message_id: str
    body: str
    group: str
    state: str  # visible, delayed, in_flight (SQS); ready, unacked (classic)
    receive_count: int = 0
    deadline_ms: int | None = None
    seconds_left: int | None = None
    deadline_display: str = ""
    consumer: str = ""
    handle: str = ""
    sequence_number: str | None = None
    position: int = 0
    key: str | None = None
    redelivered: bool = False
    delivery_tag: int | None = None


@dataclass
class Lane:
    group: str
    cells: list[Cell]
    blocked: bool
    in_flight: int
    waiting: int
    hidden: int = 0


@dataclass
class QueueView:
    name: str
    fifo: bool
    attributes: dict[str, str]
    counts: list[tuple[list[str], str, str]]
    lanes: list[Lane]
    in_flight: list[Cell]
    duplicates: list[dict]
    totals: sqs.QueueTotals
    dead_letter_target: str | None = None


@dataclass
class ConsumerView:
    tag: str
    queue: str
    prefetch: int
    unacked: list[Cell]
    has_credit: bool


@dataclass
class ClassicQueueView:
    name: str
    ready: list[Cell]
    stats: classic.QueueStats
    consumers: list[ConsumerView]
    bound_to: list[str] = field(default_factory=list)
    hidden: int = 0


@dataclass
class BrokerView:
    exchanges: list[classic.Exchange]
    queues: list[ClassicQueueView]
    totals: classic.BrokerTotals

    def queue(self, name: str) -> ClassicQueueView | None:
        return next((q for q in self.queues if q.name == name), None)


def _seconds_left(deadline_ms: int | None, now_ms: int) -> int | None:
    if deadline_ms is None:
        return None
    return max(0, -(-(deadline_ms - now_ms) // 1000))  # rounded up


def _sqs_cell(
    view: sqs.LaneMessage, message: sqs.Message, group: str, holders: dict, now_ms: int
) -> Cell:
    in_flight = view.state == "in_flight"
    holder = holders.get(view.message_id, {})
    # A holder noted for an earlier receive of this message no longer holds it.
    current = holder.get("handle") == message.receipt_handle
    deadline = None
    if in_flight:
        deadline = view.in_flight_until_ms
    elif view.state == "delayed":
        deadline = view.visible_at_ms
    return Cell(
        message_id=view.message_id,
        body=view.body,
        group=group,
        state=view.state,
        receive_count=view.receive_count,
        deadline_ms=deadline,
        seconds_left=_seconds_left(deadline, now_ms),
        deadline_display=format_time(deadline) if deadline is not None else "",
        consumer=holder.get("consumer", "") if current else "",
        handle=(message.receipt_handle or "") if in_flight else "",
        sequence_number=view.sequence_number,
    )


def queue_view(row: SqsQueue, now_ms: int) -> QueueView:
    """One queue as of the room's clock (advanced in memory only: the tick stores it)."""
    queue = selectors.sqs_state_load(row)
    board = selectors.sqs_board_load(row)
    with contextlib.suppress(sqs.TimeWentBackwards):  # the queue is ahead: show it as is
        queue, _ = sqs.advance(queue, now_ms=now_ms)
    by_id = {m.message_id: m for m in queue.messages}
    holders = board["holders"]
    lanes: list[Lane] = []
    flying: list[Cell] = []
    for lane in sqs.lanes(queue):
        views = sorted((*lane.in_flight, *lane.queued), key=lambda v: by_id[v.message_id].order)
        cells = [
            _sqs_cell(view, by_id[view.message_id], lane.message_group_id, holders, now_ms)
            for view in views
        ]
        flying.extend(cell for cell in cells if cell.state == "in_flight")
        lanes.append(
            Lane(
                group=lane.message_group_id,
                cells=cells[:CELLS_SHOWN],
                blocked=lane.blocked,
                in_flight=len(lane.in_flight),
                waiting=len(lane.queued),
                hidden=max(0, len(cells) - CELLS_SHOWN),
            )
        )
    attributes = sqs.get_queue_attributes(queue)
    counts = [
        # The name split where a line may break: ApproximateNumberOfMessages<wbr>NotVisible.
        (
            re.findall(r"Approximate|NumberOf|Messages|NotVisible|Delayed", name),
            attributes[name],
            help_text,
        )
        for name, help_text in (
            ("ApproximateNumberOfMessages", "available to receive (incl. behind a blocked group)"),
            ("ApproximateNumberOfMessagesNotVisible", "in flight"),
            ("ApproximateNumberOfMessagesDelayed", "delayed"),
        )
    ]
    policy = queue.attributes.redrive_policy
    return QueueView(
        name=row.name,
        fifo=queue.fifo,
        attributes=attributes,
        counts=counts,
        lanes=lanes,
        in_flight=sorted(flying, key=lambda c: c.deadline_ms or 0),
        duplicates=list(reversed(board["duplicates"])),
        totals=queue.totals,
        dead_letter_target=policy.dead_letter_queue_name if policy else None,
    )


def broker_view(row: ClassicBroker | None) -> BrokerView:
    broker = selectors.classic_state_load(row)
    keys = selectors.classic_board_load(row)["keys"]

    def cell(message: classic.BrokerMessage, state: str, tag: int | None = None) -> Cell:
        return Cell(
            message_id=message.message_id,
            body=message.body,
            group="",
            state=state,
            position=message.position,
            key=keys.get(message.message_id),
            redelivered=message.redelivered,
            delivery_tag=tag,
        )

    queues = []
    for queue in broker.queues:
        consumers = [
            ConsumerView(
                tag=c.consumer_tag,
                queue=c.queue,
                prefetch=c.prefetch_count,
                unacked=[cell(d.message, "unacked", d.delivery_tag) for d in c.unacked],
                has_credit=c.has_credit,
            )
            for c in broker.consumers
            if c.queue == queue.name
        ]
        ready = [cell(m, "ready") for m in queue.ready]
        queues.append(
            ClassicQueueView(
                name=queue.name,
                ready=ready[:CELLS_SHOWN],
                stats=classic.queue_stats(broker, queue.name),
                consumers=consumers,
                bound_to=[e.name for e in broker.exchanges if _binds(e, queue.name)],
                hidden=max(0, len(ready) - CELLS_SHOWN),
            )
        )
    return BrokerView(exchanges=list(broker.exchanges), queues=queues, totals=broker.totals)


def _binds(exchange: classic.Exchange, queue: str) -> bool:
    return any(binding.queue == queue for binding in exchange.bindings)


def _clock(room: Room) -> dict[str, Any]:
    return clock_payload(room.clock())


def queues_context(room: Room) -> dict[str, Any]:
    rows = selectors.sqs_queues(room=room)
    broker = selectors.classic_broker_find(room=room)
    return {
        "room": room,
        "clock": _clock(room),
        "sqs_queues": [queue_view(row, room.sim_time_ms) for row in rows],
        "broker": broker_view(broker),
        "clock_steps": CLOCK_STEPS_MS,
    }


def _side_by_side_context(room: Room) -> dict[str, Any]:
    board = selectors.board_topics(room=room)
    context: dict[str, Any] = {
        "room": room,
        "clock": _clock(room),
        "topics": [view.topic for view in board],
        "mirror": None,
    }
    topic = room.mirror_topic
    if topic is None:
        return context
    names = mirror_services.mirror_names(topic.name)
    kafka = next((view for view in board if view.topic.pk == topic.pk), None)
    row = selectors.sqs_queue_find(room=room, name=names["fifo"])
    broker = broker_view(selectors.classic_broker_find(room=room))
    context["mirror"] = {
        "topic": topic,
        "names": names,
        "kafka": kafka,
        "fifo": queue_view(row, room.sim_time_ms) if row else None,
        "work": broker.queue(names["classic"]),
        "subscribers": [
            q for q in (broker.queue(names[n]) for n in mirror_services.MIRROR_SUBSCRIBERS) if q
        ],
    }
    return context


# --- pages and fragments ------------------------------------------------------------------------


def _room(code: str) -> Room:
    return selectors.room_get(code=code)


@require_GET
@handles_errors
def queues_page(request: HttpRequest, code: str) -> HttpResponse:
    room = _room(code)
    if room.code != code:
        return redirect("queues", code=room.code)
    return render(
        request,
        "messaging/queues.html",
        {**queues_context(room), "kafka": kafka_login(request, room)},
    )


@require_GET
@handles_errors
def queues_fragment(request: HttpRequest, code: str) -> HttpResponse:
    """What a browser swaps in when something changed, or when it resyncs."""
    room = _room(code)
    return render(request, "messaging/queues_partials.html#queues-live", queues_context(room))


@require_GET
@handles_errors
def side_by_side(request: HttpRequest, code: str) -> HttpResponse:
    room = _room(code)
    if room.code != code:
        return redirect("side_by_side", code=room.code)
    return render(
        request,
        "messaging/queues.html",
        {
            **_side_by_side_context(room),
            "side_by_side": True,
            "kafka": kafka_login(request, room),
        },
    )


@require_GET
@handles_errors
def side_by_side_fragment(request: HttpRequest, code: str) -> HttpResponse:
    room = _room(code)
    return render(request, "messaging/queues_partials.html#side-live", _side_by_side_context(room))


# --- answering a form ---------------------------------------------------------------------------


def _done(
    request: HttpRequest, room: Room, text: str, *, lines: list[str] | None = None, **extra: Any
) -> HttpResponse:
    if request.htmx:
        response = render(request, RESULT, {"ok_text": text, "lines": lines or [], **extra})
        response.headers["HX-Trigger"] = "loglab:queues-changed"
        return response
    messages.success(request, " ".join([text, *(lines or [])]))
    back = "side_by_side" if request.POST.get("back") == "side_by_side" else "queues"
    return redirect(reverse(back, args=[room.code]))


def _sqs_queue(room: Room, name: str) -> SqsQueue:
    queue = selectors.sqs_queue_find(room=room, name=(name or "").strip())
    if queue is None:
        raise NotFound(
            f"QueueDoesNotExist: there is no queue named '{(name or '').strip()[:80]}' in this "
            "room."
        )
    return queue


def _checkbox(request: HttpRequest, name: str) -> bool:
    return request.POST.get(name, "") in {"on", "true", "1", "yes"}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@require_POST
@handles_errors
def sqs_queue_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    fifo = request.POST.get("type", "fifo") != "standard"
    name = request.POST.get("name", "").strip()
    attributes: dict[str, object] = {}
    if fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = (
            "true" if _checkbox(request, "content_based_deduplication") else "false"
        )
    for form_name, aws_name in (
        ("visibility_timeout", "VisibilityTimeout"),
        ("message_retention_period", "MessageRetentionPeriod"),
        ("delay_seconds", "DelaySeconds"),
    ):
        value = request.POST.get(form_name, "").strip()
        if value:
            attributes[aws_name] = value
    queue = sqs_services.sqs_queue_create(room=room, name=name, attributes=attributes)
    kind = "FIFO" if fifo else "standard"
    return _done(request, room, f"Queue {queue.name} is ready ({kind}).")


@require_POST
@handles_errors
def sqs_send(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "produce")
    queue = _sqs_queue(room, request.POST.get("queue", ""))
    group = request.POST.get("message_group_id")
    result = sqs_services.sqs_send(
        queue=queue,
        body=request.POST.get("body", ""),
        message_group_id=group,
        deduplication_id=request.POST.get("deduplication_id"),
    )
    if result.duplicate:
        dedup_id = _short(result.message_deduplication_id or "")
        text = (
            f"Duplicate dropped: MessageDeduplicationId {dedup_id} was already used in the last "
            f"5 minutes. SQS answered OK with the original MessageId {result.message_id[:8]}…, "
            "and will never deliver this copy."
        )
    else:
        where = f" in group {group.strip()}" if group and group.strip() else ""
        sequence = (
            f", SequenceNumber …{result.sequence_number[-6:]}" if result.sequence_number else ""
        )
        text = f"Sent to {queue.name}{where}: MessageId {result.message_id[:8]}…{sequence}."
    return _done(request, room, text)


@require_POST
@handles_errors
def sqs_receive(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join", rate=RATE_ACTION)
    queue = _sqs_queue(room, request.POST.get("queue", ""))
    consumer = request.POST.get("consumer", "").strip()
    result = sqs_services.sqs_receive(
        queue=queue,
        max_messages=request.POST.get("max_messages", "1").strip() or "1",
        visibility_timeout=request.POST.get("visibility_timeout", "").strip() or None,
        consumer=consumer,
    )
    who = consumer or "A consumer"
    lines: list[str] = []
    if result.dead_lettered:
        lines.append(
            f"{len(result.dead_lettered)} message(s) had reached maxReceiveCount and moved to "
            f"{result.dead_lettered[0].target_queue_name} instead: the next message of the "
            "group overtakes them."
        )
    if not result.messages:
        queue.refresh_from_db()
        room.refresh_from_db()
        view = queue_view(queue, room.sim_time_ms)
        if not view.lanes:
            why = "the queue is empty."
        elif all(lane.blocked or lane.waiting == 0 for lane in view.lanes):
            why = (
                "every message group that has messages waiting is blocked by a message in "
                "flight. Delete it, or let its visibility timeout run out."
            )
        else:
            why = "the waiting messages are still delayed."
        return _done(request, room, f"{who} received nothing: {why}", lines=lines)
    now = room_now(room)
    received = [
        {
            "body": m.body,
            "group": m.message_group_id,
            "count": m.approximate_receive_count,
            "deadline": format_time(m.visibility_deadline_ms),
            "seconds": max(0, (m.visibility_deadline_ms - now) // 1000),
            "handle": m.receipt_handle,
        }
        for m in result.messages
    ]
    plural = "s" if len(received) != 1 else ""
    text = (
        f"{who} received {len(received)} message{plural} from {queue.name}. Each is invisible "
        "to everyone else until its visibility timeout ends: delete it before then, or it "
        "comes back to the head of its group."
    )
    return _done(request, room, text, lines=lines, received=received)


def room_now(room: Room) -> int:
    return selectors.room_time_ms(room=room)


@require_POST
@handles_errors
def sqs_delete(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join", rate=RATE_ACTION)
    queue = _sqs_queue(room, request.POST.get("queue", ""))
    result = sqs_services.sqs_delete(
        queue=queue, receipt_handle=request.POST.get("receipt_handle", "")
    )
    if result.deleted:
        text = f"Deleted from {queue.name}: gone for good (SQS has no replay)."
    else:
        text = "That message was already gone; SQS still answers OK (DeleteMessage is idempotent)."
    return _done(request, room, text)


@require_POST
@handles_errors
def sqs_change_visibility(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join", rate=RATE_ACTION)
    queue = _sqs_queue(room, request.POST.get("queue", ""))
    change = sqs_services.sqs_change_visibility(
        queue=queue,
        receipt_handle=request.POST.get("receipt_handle", ""),
        timeout=request.POST.get("timeout", "").strip(),
    )
    if change.in_flight_until_ms is None:
        text = "VisibilityTimeout=0: the message is visible again, at the head of its group."
    else:
        text = f"The message stays in flight until {format_time(change.in_flight_until_ms)}."
    return _done(request, room, text)


@require_POST
@handles_errors
def sqs_purge(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    queue = _sqs_queue(room, request.POST.get("queue", ""))
    result = sqs_services.sqs_purge(queue=queue)
    count = len(result.purged_message_ids)
    return _done(request, room, f"Purged {queue.name}: {count} message(s) deleted.")


@require_POST
@handles_errors
def queues_clock_step(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    step = CLOCK_STEPS_MS.get(request.POST.get("step_ms", "").strip())
    if step is None:
        raise Invalid("Choose one of the offered steps of simulated time.", field="step_ms")
    room = room_clock_step(room=room, step_ms=step)
    # The room's step lets time reach the queues too; asking again finds nothing left to do.
    sqs_services.sqs_tick(room=room)
    room.refresh_from_db()
    return _done(request, room, f"Simulated time is now {format_time(room.sim_time_ms)}.")


# --- classic broker forms -------------------------------------------------------------------


@require_POST
@handles_errors
def classic_publish(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "produce")
    exchange = request.POST.get("exchange", "")
    outcome = classic_services.classic_publish(
        room=room,
        exchange=exchange,
        routing_key=request.POST.get("routing_key", ""),
        body=request.POST.get("body", ""),
    )
    if not outcome.routed_to:
        text = (
            "Published, but no queue was bound for it: the message is lost (RabbitMQ drops "
            "unroutable messages unless the publisher sets mandatory)."
        )
    else:
        pushed = ", ".join(sorted({d.consumer_tag for d in outcome.deliveries}))
        text = f"Routed to {', '.join(outcome.routed_to)}" + (
            f"; pushed at once to {pushed}." if pushed else "; waiting for a consumer."
        )
    return _done(request, room, text)


@require_POST
@handles_errors
def classic_consume(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join")
    tag = request.POST.get("consumer_tag", "").strip()
    outcome = classic_services.classic_consume(
        room=room,
        queue=request.POST.get("queue", ""),
        consumer_tag=tag,
        prefetch_count=request.POST.get("prefetch_count", "1").strip() or "0",
    )
    return _done(
        request,
        room,
        f"{tag} consumes now; {len(outcome.deliveries)} message(s) pushed to it straight away.",
    )


def _delivery_action(request: HttpRequest, code: str, action: str) -> HttpResponse:
    room = room_for_action(request, code, "join", rate=RATE_ACTION)
    tag = request.POST.get("consumer_tag", "")
    delivery_tag = request.POST.get("delivery_tag", "").strip()
    if action == "ack":
        outcome = classic_services.classic_ack(
            room=room, consumer_tag=tag, delivery_tag=delivery_tag
        )
        text = f"{tag} acked delivery {delivery_tag}: the message is deleted, nothing to replay."
    else:
        requeue = action == "requeue"
        outcome = classic_services.classic_nack(
            room=room, consumer_tag=tag, delivery_tag=delivery_tag, requeue=requeue
        )
        if requeue:
            text = f"{tag} nacked delivery {delivery_tag}: back in its place, flagged redelivered."
        elif outcome.dead_lettered:
            text = f"{tag} rejected delivery {delivery_tag}: dead-lettered."
        else:
            text = f"{tag} rejected delivery {delivery_tag} without requeue: dropped."
    pushed = [f"{_short(d.message.body, 20)} → {d.consumer_tag}" for d in outcome.deliveries]
    lines = [f"Pushed next: {', '.join(pushed)}."] if pushed else []
    return _done(request, room, text, lines=lines)


@require_POST
@handles_errors
def classic_ack(request: HttpRequest, code: str) -> HttpResponse:
    return _delivery_action(request, code, "ack")


@require_POST
@handles_errors
def classic_nack(request: HttpRequest, code: str) -> HttpResponse:
    requeue = request.POST.get("requeue", "true") != "false"
    return _delivery_action(request, code, "requeue" if requeue else "drop")


@require_POST
@handles_errors
def classic_close(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "crash")
    tag = request.POST.get("consumer_tag", "")
    outcome = classic_services.classic_close(room=room, consumer_tag=tag)
    text = f"{tag}'s channel closed (a crash): {len(outcome.requeued)} unacked message(s) requeued"
    pushed = sorted({d.consumer_tag for d in outcome.deliveries})
    text += f" and redelivered to {', '.join(pushed)}." if pushed else "."
    return _done(request, room, text)


@require_POST
@handles_errors
def classic_queue_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    name = request.POST.get("name", "")
    classic_services.classic_queue_declare(
        room=room, name=name, dead_letter_exchange=request.POST.get("dead_letter_exchange")
    )
    return _done(request, room, f"Queue '{name.strip()}' declared.")


@require_POST
@handles_errors
def classic_exchange_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    name = request.POST.get("name", "")
    kind = request.POST.get("type", "fanout")
    classic_services.classic_exchange_declare(room=room, name=name, exchange_type=kind)
    return _done(request, room, f"Exchange '{name.strip()}' ({kind}) declared.")


@require_POST
@handles_errors
def classic_bind(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    queue, exchange = request.POST.get("queue", ""), request.POST.get("exchange", "")
    classic_services.classic_bind(
        room=room, queue=queue, exchange=exchange, routing_key=request.POST.get("routing_key", "")
    )
    return _done(request, room, f"Queue '{queue.strip()}' bound to exchange '{exchange.strip()}'.")


# --- side-by-side mode ------------------------------------------------------------------------


@require_POST
@handles_errors
def mirror(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    if request.POST.get("enable", "true") == "false":
        mirror_services.mirror_disable(room=room)
        return _done(request, room, "Mirroring is off; the queues keep what they hold.")
    topic = selectors.topic_get(room=room, name=request.POST.get("topic", "").strip())
    names = mirror_services.mirror_names(topic.name)
    mirror_services.mirror_enable(room=room, topic=topic)
    return _done(
        request,
        room,
        f"Records produced to '{topic.name}' now also go to the FIFO queue {names['fifo']}, "
        f"the classic queue '{names['classic']}' and the fanout exchange '{names['fanout']}'.",
    )
