"""The share groups page (KIP-932) and the side by side of a share group, an SQS FIFO queue and
a consumer group fed the same records.

Thin views over services/share_groups.py and services/share_compare.py, as in
`messaging.views.queues`: htmx posts get the result fragment and `HX-Trigger` (the page then
refetches its live fragment; queues.js does that for this page too), plain posts a redirect.

The page model only reshapes what the engine says (`next_fetch_offset`, `in_flight_count`,
each in-flight record's state) for the templates: no rule of share groups is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine import share_group as rules
from messaging.engine.clock import clock_payload, format_time
from messaging.errors import Invalid
from messaging.models import Partition, Record, Room, ShareGroup, ShareMember
from messaging.permissions import DRIVE, RATE_ACTION, room_for_action
from messaging.services import share_compare as compare_services
from messaging.services import share_groups as share_services
from messaging.services.clock import room_clock_step
from messaging.views._htmx import handles_errors
from messaging.views.queues import CLOCK_STEPS_MS, queue_view

RESULT = "messaging/queues_partials.html#result"
CELLS_SHOWN = 40
RECENT_SHOWN = 10
BEFORE_SPSO_SHOWN = 6
COMPARE_CELLS_SHOWN = 14
ACK_BUTTONS = (("accept", "Accept"), ("release", "Release"), ("reject", "Reject"))


# --- the page model -------------------------------------------------------------------------------


@dataclass
class ShareCell:
    offset: int
    state: str  # available, acquired, acknowledged, archived, waiting (not fetched yet), before
    delivery_count: int = 0
    holder: str = ""
    deadline_ms: int | None = None
    seconds_left: int | None = None
    key: str | None = None
    value: str = ""
    gap: bool = False  # in flight, but the log holds no record there (compacted away)

    @property
    def label(self) -> str:
        words = {
            "waiting": "not fetched yet (available)",
            "before": "before SPSO",
            "acquired": f"acquired by {self.holder}",
        }
        return words.get(self.state, self.state)


@dataclass
class SharePartitionPanel:
    index: int
    spso: int
    speo: int
    next_fetch: int
    in_flight: int
    cap: int
    log_start: int
    log_end: int
    cells: list[ShareCell]
    hidden_before: int
    counts: dict[str, int]

    @property
    def capped(self) -> bool:
        return self.in_flight >= self.cap


@dataclass
class PolledView:
    partition: int
    offset: int
    delivery_count: int
    gap: bool
    value: str
    held: bool  # whether the member still holds its lock (a slow one may have lost it)
    deadline_ms: int | None = None
    seconds_left: int | None = None


@dataclass
class ShareMemberView:
    member: ShareMember
    polled: list[PolledView]
    counts: dict[str, int]
    holding: int
    session_deadline_ms: int | None = None


@dataclass
class ShareGroupView:
    group: ShareGroup
    partitions: list[SharePartitionPanel]
    members: list[ShareMemberView]
    totals: dict[str, int]
    recent: list[dict[str, Any]]
    settings: list[tuple[str, str, str]] = field(default_factory=list)


def _seconds_left(deadline_ms: int | None, now_ms: int) -> int | None:
    if deadline_ms is None:
        return None
    return max(0, -(-(deadline_ms - now_ms) // 1000))


def _window(partition: Partition, spso: int, cells: int) -> tuple[int, int]:
    """The offsets a partition's row draws: the newest `cells`, but no more than a few of the
    records before SPSO (they are final, or were never the group's)."""
    end = partition.log_end_offset
    return max(partition.log_start_offset, end - cells, spso - BEFORE_SPSO_SHOWN), end


def share_group_view(group: ShareGroup, now_ms: int, cells: int = CELLS_SHOWN) -> ShareGroupView:
    rows = selectors.share_partition_rows(group=group)
    members = list(group.members.order_by("join_order"))
    names = {m.member_id: str(m) for m in members}
    states = {row.partition.index: selectors.share_state_load(row) for row in rows}
    panels = []
    for row in rows:
        state = states[row.partition.index]
        panels.append(_panel(row.partition, state, row.finished, group, names, now_ms, cells))
    member_views = []
    for member in members:
        polled = []
        for index, offset, count, gap in member.polled:
            record = states.get(index, rules.start(0)).record(offset)
            held = record is not None and record.member_id == member.member_id
            deadline = record.lock_until_ms if held and record else None
            value = _value_of(group, index, offset) if not gap else ""
            polled.append(
                PolledView(
                    index,
                    offset,
                    count,
                    bool(gap),
                    value,
                    held,
                    deadline,
                    _seconds_left(deadline, now_ms),
                )
            )
        holding = sum(len(rules.held_by(s, member.member_id)) for s in states.values())
        member_views.append(
            ShareMemberView(
                member=member,
                polled=polled,
                counts=member.counts,
                holding=holding,
                session_deadline_ms=(
                    member.last_heartbeat_ms + rules.DEFAULT_SESSION_TIMEOUT_MS
                    if member.crashed
                    else None
                ),
            )
        )
    return ShareGroupView(
        group=group,
        partitions=panels,
        members=member_views,
        # Template-friendly keys: "lock-expired" -> lock_expired.
        totals={key.replace("-", "_"): value for key, value in group.totals.items()},
        recent=list(reversed(group.recent[-RECENT_SHOWN:])),
        settings=[
            ("group.share.record.lock.duration.ms", str(group.record_lock_duration_ms), "ms"),
            ("group.share.delivery.count.limit", str(group.delivery_count_limit), ""),
            ("group.share.partition.max.record.locks", str(group.max_record_locks), ""),
            ("share.auto.offset.reset", group.auto_offset_reset, ""),
        ],
    )


def _value_of(group: ShareGroup, index: int, offset: int) -> str:
    value = (
        Record.objects.filter(partition__topic=group.topic, partition__index=index, offset=offset)
        .values_list("value", flat=True)
        .first()
    )
    return "" if value is None else value[:40]


def _panel(
    partition: Partition,
    state: rules.SharePartition,
    finished: list[list[Any]],
    group: ShareGroup,
    names: dict[str, str],
    now_ms: int,
    shown: int,
) -> SharePartitionPanel:
    start, end = _window(partition, state.start_offset, shown)
    records = {
        r.offset: r
        for r in Record.objects.filter(partition=partition, offset__gte=start, offset__lt=end)
    }
    done = {offset: (final, count) for offset, final, count in finished}
    in_flight = {r.offset: r for r in state.in_flight}
    offsets = sorted(set(records) | {o for o in in_flight if start <= o < end})
    cells = []
    for offset in offsets:
        record = records.get(offset)
        cell = ShareCell(
            offset=offset,
            state="waiting",
            key=record.key if record else None,
            value=(record.value or "")[:40] if record and record.value is not None else "",
            gap=record is None,
        )
        flying = in_flight.get(offset)
        if flying is not None:
            cell.state = flying.state
            cell.delivery_count = flying.delivery_count
            if flying.state == rules.ACQUIRED:
                cell.holder = names.get(flying.member_id, flying.member_id[:8])
                cell.deadline_ms = flying.lock_until_ms
                cell.seconds_left = _seconds_left(flying.lock_until_ms, now_ms)
        elif offset in done:
            cell.state, cell.delivery_count = done[offset]
        elif offset < state.start_offset:
            cell.state = "before"
        cells.append(cell)
    return SharePartitionPanel(
        index=partition.index,
        spso=state.start_offset,
        speo=state.end_offset,
        next_fetch=rules.next_fetch_offset(state),
        in_flight=rules.in_flight_count(state),
        cap=group.max_record_locks,
        log_start=partition.log_start_offset,
        log_end=partition.log_end_offset,
        cells=cells[-shown:],
        hidden_before=max(0, start - partition.log_start_offset),
        counts=rules.state_counts(state),
    )


def _clock(room: Room) -> dict[str, Any]:
    return clock_payload(room.clock())


def share_context(room: Room) -> dict[str, Any]:
    groups = selectors.share_groups_of(room=room)
    return {
        "room": room,
        "clock": _clock(room),
        "share_groups": [share_group_view(g, room.sim_time_ms) for g in groups],
        "topics": selectors.room_topics(room=room),
        "defaults": rules.ShareConfig(),
        "clock_steps": CLOCK_STEPS_MS,
        "ack_kinds": ACK_BUTTONS,
    }


def compare_context(room: Room) -> dict[str, Any]:
    context: dict[str, Any] = {
        "room": room,
        "clock": _clock(room),
        "topics": selectors.room_topics(room=room),
        "compare": None,
        "ack_kinds": ACK_BUTTONS,
    }
    share = compare_services.compare_find(room=room)
    if share is None:
        return context
    names = compare_services.compare_names(share.topic.name)
    row = selectors.sqs_queue_find(room=room, name=share.compare.get("queue", names["fifo"]))
    group = next(
        (g for g in selectors.board_groups(room=room) if g.group.group_id == names["group"]),
        None,
    )
    context["compare"] = {
        "topic": share.topic,
        "names": names,
        "share": share_group_view(share, room.sim_time_ms, cells=COMPARE_CELLS_SHOWN),
        "fifo": queue_view(row, room.sim_time_ms) if row else None,
        "workers": share.compare.get("workers", {}),
        "worklog": list(reversed(share.compare.get("log", [])))[:6],
        "group": group,
        "mirrored": room.mirror_topic_id == share.topic_id,
    }
    return context


# --- pages and fragments --------------------------------------------------------------------------


@require_GET
@handles_errors
def share_page(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.code != code:
        return redirect("share_page", code=room.code)
    return render(request, "messaging/share_groups.html", share_context(room))


@require_GET
@handles_errors
def share_fragment(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    return render(request, "messaging/share_partials.html#share-live", share_context(room))


@require_GET
@handles_errors
def share_compare_page(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.code != code:
        return redirect("share_compare", code=room.code)
    return render(
        request, "messaging/share_groups.html", {**compare_context(room), "comparing": True}
    )


@require_GET
@handles_errors
def share_compare_fragment(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    return render(request, "messaging/share_partials.html#compare-live", compare_context(room))


# --- answering a form -----------------------------------------------------------------------------


def _done(request: HttpRequest, room: Room, text: str, lines: list[str] | None = None):
    if request.htmx:
        response = render(request, RESULT, {"ok_text": text, "lines": lines or []})
        response.headers["HX-Trigger"] = "loglab:queues-changed"
        return response
    messages.success(request, " ".join([text, *(lines or [])]))
    back = "share_compare" if request.POST.get("back") == "compare" else "share_page"
    return redirect(reverse(back, args=[room.code]))


def _group(room: Room, request: HttpRequest) -> ShareGroup:
    return selectors.share_group_get(room=room, group_id=request.POST.get("group", "").strip())


def _member(room: Room, request: HttpRequest) -> ShareMember:
    group = _group(room, request)
    return selectors.share_member_get(group=group, member_id=request.POST.get("member", ""))


def _settings(request: HttpRequest) -> share_services.ShareSettings:
    return share_services.ShareSettings.parse(
        request.POST.get("record_lock_duration_ms", rules.DEFAULT_RECORD_LOCK_DURATION_MS),
        request.POST.get("delivery_count_limit", rules.DEFAULT_DELIVERY_COUNT_LIMIT),
        request.POST.get("max_record_locks", rules.DEFAULT_MAX_RECORD_LOCKS),
    )


def _count(raw: str | None, field: str, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{field} is a whole number.", field=field) from None


@require_POST
@handles_errors
def share_group_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    group = share_services.share_group_create(
        room=room,
        group_id=request.POST.get("group_id", ""),
        topic=request.POST.get("topic", ""),
        auto_offset_reset=request.POST.get("auto_offset_reset", "latest"),
        settings=_settings(request),
        consumers=_count(request.POST.get("consumers"), "consumers", 2),
        records_per_second=request.POST.get("records_per_second", "1"),
        failure_rate=request.POST.get("failure_rate", "0"),
        on_failure=request.POST.get("on_failure", "release"),
    )
    return _done(
        request,
        room,
        f"Share group {group.group_id} reads {group.topic.name}: its consumers share every "
        "partition.",
    )


@require_POST
@handles_errors
def share_group_settings(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    group = share_services.share_group_configure(
        group=_group(room, request), settings=_settings(request)
    )
    return _done(request, room, f"{group.group_id}'s settings apply to its next acquisitions.")


@require_POST
@handles_errors
def share_group_remove(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    group = _group(room, request)
    share_services.share_group_delete(group=group)
    return _done(request, room, f"Share group {group.group_id} is gone.")


@require_POST
@handles_errors
def share_member_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join")
    member = share_services.share_member_join(
        group=_group(room, request),
        display_name=request.POST.get("display_name", ""),
        records_per_second=request.POST.get("records_per_second", "1"),
        failure_rate=request.POST.get("failure_rate", "0"),
        on_failure=request.POST.get("on_failure", "release"),
    )
    return _done(request, room, f"{member} joined {member.group.group_id}.")


@require_POST
@handles_errors
def share_member_action(request: HttpRequest, code: str) -> HttpResponse:
    action = request.POST.get("action", "")
    permission = {"crash": "crash", "fetch": "join", "leave": "join", "update": "join"}
    if action not in permission:
        raise Invalid("The action is fetch, update, crash or leave.", field="action")
    room = room_for_action(request, code, permission[action], rate=RATE_ACTION)
    member = _member(room, request)
    if action == "fetch":
        got = share_services.share_fetch(member=member)
        if not got:
            return _done(request, room, f"{member} fetched nothing: no record is available to it.")
        offsets = ", ".join(f"P{p.partition}@{p.offset} (delivery {p.delivery_count})" for p in got)
        return _done(request, room, f"{member} acquired {offsets}.")
    if action == "crash":
        share_services.share_member_crash(member=member)
        return _done(request, room, f"{member} crashed: its locks will run out.")
    if action == "leave":
        share_services.share_member_leave(member=member)
        return _done(request, room, f"{member} left: what it held is available to the others.")
    share_services.share_member_update(
        member=member,
        records_per_second=request.POST.get("records_per_second", member.records_per_second),
        failure_rate=request.POST.get("failure_rate", member.failure_rate),
        on_failure=request.POST.get("on_failure", member.on_failure),
    )
    return _done(request, room, f"{member} updated.")


@require_POST
@handles_errors
def share_ack(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "join", rate=RATE_ACTION)
    member = _member(room, request)
    kind = request.POST.get("kind", "")
    result = share_services.share_acknowledge(
        member=member,
        partition=request.POST.get("partition", ""),
        offset=request.POST.get("offset", ""),
        kind=kind,
    )
    where = f"P{result.partition}@{result.offset}"
    if result.refused:
        return _done(
            request,
            room,
            f"The broker refused {member}'s {kind.upper()} of {where}: {result.refused}",
            ["Its acquisition lock had run out, so the record was no longer its to acknowledge."],
        )
    return _done(request, room, f"{member}: {kind.upper()} {where} → {result.state}.")


@require_POST
@handles_errors
def share_clock_step(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    step = CLOCK_STEPS_MS.get(request.POST.get("step_ms", "").strip())
    if step is None:
        raise Invalid("Choose one of the offered steps of simulated time.", field="step_ms")
    room = room_clock_step(room=room, step_ms=step)
    return _done(request, room, f"Simulated time is now {format_time(room.sim_time_ms)}.")


@require_POST
@handles_errors
def share_compare_setup(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    if request.POST.get("enable", "true") == "false":
        compare_services.compare_stop(room=room)
        return _done(request, room, "The comparison stopped; the groups and queue stay.")
    topic = selectors.topic_get(room=room, name=request.POST.get("topic", "").strip())
    names = compare_services.compare_names(topic.name)
    compare_services.compare_setup(room=room, topic=topic)
    return _done(
        request,
        room,
        f"Records produced to '{topic.name}' now go to the share group {names['share']}, the "
        f"SQS FIFO queue {names['fifo']} and the consumer group {names['group']}.",
    )
