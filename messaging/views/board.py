"""The home page, /about/, making and joining rooms, and a room's board: its page, its live
fragment, its JSON state, and the produce and new-topic forms. The board's other controls are
in controls.py."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.engine.clock import format_time
from messaging.infra.addresses import host_without_port
from messaging.models import ConsumerGroup, Room, Topic
from messaging.permissions import Actor, actor_for_request, room_for_action
from messaging.services.groups import RESET_OPTIONS
from messaging.services.records import RecordIn, records_produce
from messaging.services.seeds import sandbox_create
from messaging.services.topics import topic_create
from messaging.views._htmx import form_int, handles_errors


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    recent = selectors.rooms_recent()
    return render(request, "messaging/home.html", {"recent": recent})


@require_GET
def fidelity(request: HttpRequest) -> HttpResponse:
    """What the simulator computes exactly as the real systems do, and what it simplifies."""
    return render(request, "messaging/fidelity.html")


@require_POST
@handles_errors
def room_new(request: HttpRequest) -> HttpResponse:
    room = sandbox_create(title=request.POST.get("title", ""))
    return redirect(room)


@require_GET
@handles_errors
def room_join(request: HttpRequest) -> HttpResponse:
    room = selectors.room_get(code=request.GET.get("code", ""))
    if room.kind == Room.Kind.CLASSROOM and room.owner_id != request.user.pk:
        # A student typed the code from the projector: they join with a name (or, if this
        # browser already did, land on their own page).
        return redirect("student_join", code=room.code)
    return redirect(room)


@require_GET
@handles_errors
def room_board(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    if room.code != code:
        return redirect(room)
    context = board_context(room)
    topics = context["topics"]
    context["kafka"] = kafka_login(
        request, room, topic=topics[0].topic.name if topics else "orders"
    )
    return render(request, "messaging/room.html", context)


@require_GET
@handles_errors
def room_live(request: HttpRequest, code: str) -> HttpResponse:
    """Every live region of the board at once: what a browser swaps in to resync."""
    room = selectors.room_get(code=code)
    return render(request, "messaging/partials.html#live", board_context(room))


@require_GET
@handles_errors
def room_state(request: HttpRequest, code: str) -> JsonResponse:
    room = selectors.room_get(code=code)
    topics = selectors.board_topics(room=room)
    return JsonResponse(
        {
            "code": room.code,
            "seq": room.last_seq,
            "topics": [
                {
                    "name": t.topic.name,
                    "partitions": [
                        {
                            "partition": p.partition.index,
                            "log_start_offset": p.partition.log_start_offset,
                            "log_end_offset": p.partition.log_end_offset,
                            "records": [
                                {"offset": r.offset, "key": r.key, "value": r.value}
                                for r in p.records
                            ],
                        }
                        for p in t.partitions
                    ],
                }
                for t in topics
            ],
        }
    )


@require_POST
@handles_errors
def record_produce(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "produce")
    key = request.POST.get("key", "")
    partition = form_int(request.POST.get("partition"), "partition")
    # The producer's acks (#16): all (-1, Kafka's default), 1 or 0.
    acks = form_int(request.POST.get("acks", "-1").replace("all", "-1"), "acks", default=-1)
    produced = records_produce(
        room=room,
        topic_name=request.POST.get("topic", ""),
        records=[
            RecordIn(
                # An empty key box means a null key: Kafka then spreads records, no ordering.
                key=key if key != "" else None,
                value=request.POST.get("value", ""),
                partition=partition,
            )
        ],
        producer="you",
        acks=acks if acks is not None else -1,
    )[0]
    if request.htmx:
        return render(
            request,
            "messaging/partials.html#form-result",
            {"ok": produced, "error": None, "acks": acks},
        )
    return redirect(room)


@require_POST
@handles_errors
def topic_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    topic = topic_create(
        room=room,
        name=request.POST.get("name", ""),
        partitions=request.POST.get("partitions", ""),
        replication_factor=request.POST.get("replication_factor", "1") or "1",
        min_insync_replicas=request.POST.get("min_insync_replicas", "1") or "1",
        unclean_leader_election_enable=request.POST.get("unclean_leader_election_enable") == "on",
    )
    if request.htmx:
        return render(
            request,
            "messaging/partials.html#form-result",
            {"ok_text": f"Topic '{topic.name}' created.", "error": None},
        )
    return redirect(room)


def board_context(room: Room) -> dict:

    return {
        "room": room,
        "topics": selectors.board_topics(room=room),
        "groups": selectors.board_groups(room=room),
        "producers": selectors.board_producers(room=room),
        "sim_time": format_time(room.sim_time_ms),
        "speeds": [0.25, 0.5, 1, 2, 5, 10, 20],
        "assignors": ConsumerGroup.Assignor.values,
        "deliveries": ConsumerGroup.Delivery.values,
        "resets": ConsumerGroup.OffsetReset.values,
        "reset_options": RESET_OPTIONS,
        "cleanup_policies": Topic.CleanupPolicy.values,
        "cluster": selectors.room_cluster(room=room),
    }


@dataclass(frozen=True)
class KafkaLogin:
    """What "Connect your own code" shows a Kafka client needs, for the person looking."""

    # host:port of the Kafka listener; "" when this server runs without one.
    bootstrap: str
    # SASL/PLAIN: the room's login, a student's own, or "" for someone who gets none.
    username: str
    password: str
    # "room" (a sandbox's or lesson's anyone, a classroom's instructor), "student" or "none".
    whose: str
    # A topic of the room for the examples.
    topic: str = "orders"


def kafka_bootstrap(request: HttpRequest) -> str:
    """The address a Kafka client reaches this server at: the host this page came from (a
    phone on the LAN is given the LAN address, as Metadata advertises it) and the listener's
    port; "" when the listener is off (LOGLAB_KAFKA_PORT=0). The same rule as the
    `bootstrap_servers` of POST /api/rooms."""
    if not settings.LOGLAB_KAFKA_PORT:
        return ""
    return f"{host_without_port(request.get_host())}:{settings.LOGLAB_KAFKA_PORT}"


def kafka_login(
    request: HttpRequest, room: Room, *, topic: str = "orders", actor: Actor | None = None
) -> KafkaLogin:
    """Whose Kafka login this person sees. Anyone with a sandbox's link may act in it, so they
    see the room's; in a classroom the instructor sees the room's, a student their own (their
    clients then appear under their name and the locks apply), and a visitor none."""
    bootstrap = kafka_bootstrap(request)
    actor = actor or actor_for_request(request, room)
    if room.kind != Room.Kind.CLASSROOM or actor.is_owner:
        return KafkaLogin(bootstrap, room.code, room.client_secret, "room", topic)
    if actor.student is not None:
        username = selectors.kafka_student_username(student=actor.student)
        return KafkaLogin(bootstrap, username, actor.student.client_secret, "student", topic)
    return KafkaLogin(bootstrap, "", "", "none", topic)
