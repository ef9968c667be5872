"""Thin function views: parse the request, call a service or selector, render a template.

htmx requests get the fragment they swap in; plain form posts get a redirect or the whole page,
so every control still works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors, services
from messaging.errors import Invalid, LogLabError
from messaging.models import Room
from messaging.permissions import room_for_action


def _error_response(request: HttpRequest, error: LogLabError) -> HttpResponse:
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"error": error.code, "message": error.message}, status=error.status)
    template = "messaging/error.html"
    if request.htmx:
        template = "messaging/partials.html#form-result"
    return render(
        request, template, {"error": error.message, "ok": None}, status=error.status
    )


def handles_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except LogLabError as error:
            return _error_response(request, error)

    return wrapper


def form_int(raw: str | None, field: str, *, default: int | None = None) -> int | None:
    """A form's optional whole number: empty means `default`, anything else must parse."""
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{field} is a whole number, or empty.", field=field) from None


def form_speed(raw: str | None) -> float:
    """The clock's speed from a form; the service checks the range."""
    try:
        return float(raw or "")
    except ValueError:
        raise Invalid("The speed is a number from 0.25 to 20.", field="speed") from None


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    recent = Room.objects.filter(kind=Room.Kind.SANDBOX).order_by("-last_active_at")[:5]
    return render(request, "messaging/home.html", {"recent": recent})


@require_GET
def fidelity(request: HttpRequest) -> HttpResponse:
    """What the simulator computes exactly as the real systems do, and what it simplifies."""
    return render(request, "messaging/fidelity.html")


@require_POST
@handles_errors
def room_new(request: HttpRequest) -> HttpResponse:
    room = services.room_create(title=request.POST.get("title", ""))
    services.room_seed_sandbox(room=room)
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
    return render(request, "messaging/room.html", _board_context(room))


@require_GET
@handles_errors
def room_live(request: HttpRequest, code: str) -> HttpResponse:
    """Every live region of the board at once: what a browser swaps in to resync."""
    room = selectors.room_get(code=code)
    return render(request, "messaging/partials.html#live", _board_context(room))


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
    produced = services.records_produce(
        room=room,
        topic_name=request.POST.get("topic", ""),
        records=[
            services.RecordIn(
                # An empty key box means a null key: Kafka then spreads records, no ordering.
                key=key if key != "" else None,
                value=request.POST.get("value", ""),
                partition=partition,
            )
        ],
        producer="you",
    )[0]
    if request.htmx:
        return render(
            request, "messaging/partials.html#form-result", {"ok": produced, "error": None}
        )
    return redirect(room)


@require_POST
@handles_errors
def topic_new(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, "settings")
    topic = services.topic_create(
        room=room,
        name=request.POST.get("name", ""),
        partitions=request.POST.get("partitions", ""),
    )
    if request.htmx:
        return render(
            request,
            "messaging/partials.html#form-result",
            {"ok_text": f"Topic '{topic.name}' created.", "error": None},
        )
    return redirect(room)


def _board_context(room: Room) -> dict:
    from messaging.engine.clock import format_time
    from messaging.models import ConsumerGroup, Topic
    from messaging.services.groups import RESET_OPTIONS

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
    }
