"""The board's controls: one thin view per form.

Each answers with a short result fragment (htmx) or a redirect to the board (no JavaScript);
the board itself redraws from the room event the service records, so every browser in the
room sees the change, not only the one that clicked.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from messaging import selectors
from messaging.errors import Invalid
from messaging.models import ConsumerGroup, Member, Producer, Room, Topic
from messaging.permissions import (
    DRIVE,
    RATE_ACTION,
    actor_for_request,
    request_act,
    room_for_action,
)
from messaging.services import clock as clock_services
from messaging.services import groups as group_services
from messaging.services import simulation, topics
from messaging.views._htmx import form_int, form_speed, handles_errors


def _done(request: HttpRequest, room: Room, text: str, **extra) -> HttpResponse:
    if request.htmx:
        context = {"ok_text": text, "error": None, **extra}
        return render(request, "messaging/partials.html#form-result", context)
    return redirect(room)


def _owned(model, room: Room, pk: int, what: str):
    return selectors.room_row_get(model=model, room=room, pk=pk, what=what)


def clock_apply(room: Room, form) -> str:
    """The clock form's action (play, pause, step, speed), from the board or the presenter
    view; returns what happened, in words."""
    action = form.get("action", "")
    if action in ("play", "pause"):
        clock_services.room_clock_set(room=room, running=action == "play")
        return "The clock runs." if action == "play" else "The clock is paused."
    if action == "step":
        step = form_int(form.get("step_ms"), "step_ms", default=1_000) or 1_000
        clock_services.room_clock_step(room=room, step_ms=step)
        return f"The clock stepped {step / 1000:g} s."
    if action == "speed":
        speed = form_speed(form.get("speed"))
        clock_services.room_clock_set(room=room, speed=speed)
        return f"Simulated time runs {speed:g}× as fast as yours."
    raise Invalid("The clock can play, pause, step or change speed.")


@require_POST
@handles_errors
def clock_control(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    return _done(request, room, clock_apply(room, request.POST))


@require_POST
@handles_errors
def producer_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    producer = simulation.producer_create(
        room=room,
        name=request.POST.get("name", ""),
        topic_name=request.POST.get("topic", ""),
        key_mode=request.POST.get("key_mode", ""),
        keys=request.POST.get("keys", "").split(","),
        records_per_second=request.POST.get("rate", ""),
    )
    return _done(request, room, f"Producer '{producer.name}' added: press play to run it.")


@require_POST
@handles_errors
def producer_control(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    producer = _owned(Producer, room, pk, "producer")
    action = request.POST.get("action", "")
    if action == "delete":
        simulation.producer_delete(producer=producer)
        return _done(request, room, f"Producer '{producer.name}' removed.")
    if action in ("pause", "resume"):
        simulation.producer_update(producer=producer, running=action == "resume")
    elif action == "rate":
        simulation.producer_update(producer=producer, records_per_second=request.POST.get("rate"))
    else:
        raise Invalid("A producer can pause, resume, change rate or be removed.")
    return _done(request, room, f"Producer '{producer.name}': {action}.")


@require_POST
@handles_errors
def group_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    group = group_services.group_create(
        room=room,
        group_id=request.POST.get("group_id", ""),
        topics=request.POST.getlist("topics"),
        assignor=request.POST.get("assignor", ConsumerGroup.Assignor.RANGE),
        protocol=request.POST.get("protocol", ConsumerGroup.Protocol.EAGER),
        delivery=request.POST.get("delivery", ConsumerGroup.Delivery.AT_LEAST_ONCE),
        auto_offset_reset=request.POST.get("auto_offset_reset", "earliest"),
        group_protocol=request.POST.get("group_protocol", ConsumerGroup.GroupProtocol.CLASSIC),
        remote_assignor=request.POST.get("remote_assignor", ""),
    )
    return _done(request, room, f"Consumer group '{group.group_id}' created: add consumers.")


@require_POST
@handles_errors
def member_new(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    # Simulated consumers change the group for everyone: a setting, not a student's own join.
    room = room_for_action(request, code, "settings")
    group = _owned(ConsumerGroup, room, pk, "consumer group")
    instance = request.POST.get("group_instance_id", "").strip() or None
    member, result = group_services.member_join(
        group=group,
        client_id=request.POST.get("client_id", "").strip() or "consumer",
        group_instance_id=instance,
    )
    return _done(request, room, result.narration or f"{member.member_id} joined.")


# What each of a consumer's buttons needs: a student may crash or leave only their own
# consumer (when those are unlocked); a speed is theirs to set on their own consumer, and a
# setting on anyone else's.
MEMBER_ACTIONS = {"crash": "crash", "leave": "join", "speed": "join"}


def _member_act(request: HttpRequest, room: Room, member: Member, action: str) -> None:
    actor = actor_for_request(request, room)
    own = actor.student is not None and actor.student.member_id == member.pk
    if action == "speed" and not own:
        request_act(request, room, "settings")
    else:
        rate = RATE_ACTION if action == "speed" else None
        request_act(request, room, MEMBER_ACTIONS[action], member=member, rate=rate)


@require_POST
@handles_errors
def member_control(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = selectors.room_get(code=code)
    member = _owned(Member, room, pk, "consumer")
    action = request.POST.get("action", "")
    if action not in MEMBER_ACTIONS:
        raise Invalid("A consumer can crash, leave or change speed.")
    _member_act(request, room, member, action)
    if action == "crash":
        group_services.member_crash(member=member)
        text = (
            f"{member.member_id} crashed: no more heartbeats. The coordinator notices after "
            f"session.timeout.ms ({member.group.session_timeout_ms // 1000} s)."
        )
    elif action == "leave":
        result = group_services.member_leave(member=member)
        text = result.narration or f"{member.member_id} left."
    elif action == "speed":
        simulation.member_set_speed(member=member, records_per_second=request.POST.get("rate"))
        text = f"{member.member_id} now processes {request.POST.get('rate')} records/s."
    return _done(request, room, text)


@require_POST
@handles_errors
def offsets_reset(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    group = _owned(ConsumerGroup, room, pk, "consumer group")
    option = request.POST.get("option", "")
    value = form_int(request.POST.get("value"), "value")
    if option == "by-duration" and value is not None:
        value *= 1000  # the form asks for seconds; the tool's duration is in ms
    execute = request.POST.get("execute") == "1"
    plan = group_services.group_offsets_reset(
        group=group, option=option, value=value, execute=execute
    )
    verb = "Reset" if execute else "Dry run (nothing changed)"
    return _done(request, room, f"{verb}: --reset-offsets --{option}.", reset_plan=plan)


@require_POST
@handles_errors
def partitions_add(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    topic = _owned(Topic, room, pk, "topic")
    topic = topics.topic_add_partitions(topic=topic, partitions=request.POST.get("partitions"))
    return _done(
        request,
        room,
        f"'{topic.name}' has {topic.partition_count} partitions now. Keys hash onto the new "
        "count from here on, so a key's new records may land in another partition than its "
        "old ones: per-key order holds only within one partition.",
    )


@require_POST
@handles_errors
def topic_config(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    topic = _owned(Topic, room, pk, "topic")

    def field(name: str) -> str | None:
        value = request.POST.get(name, "").strip()
        return value or None

    retention_s = form_int(field("retention_s"), "retention (s)")
    if retention_s is not None and retention_s < -1:
        raise Invalid(
            f"retention (s) is -1 (unlimited) or a number of seconds (not {retention_s}).",
            field="retention_s",
        )
    retention_ms = retention_s
    if retention_s is not None and retention_s != -1:  # -1 is Kafka's "unlimited", not -1 s
        retention_ms = retention_s * 1000
    topics.topic_configure(
        topic=topic,
        cleanup_policy=field("cleanup_policy"),
        retention_ms=retention_ms,
        retention_bytes=field("retention_bytes"),
        segment_records=field("segment_records"),
        min_insync_replicas=field("min_insync_replicas"),
        # A checkbox says nothing when unchecked: the form marks that it drew one.
        unclean_leader_election_enable=(
            request.POST.get("unclean_leader_election_enable") == "on"
            if "unclean_shown" in request.POST
            else None
        ),
    )
    return _done(request, room, f"'{topic.name}' reconfigured.")
