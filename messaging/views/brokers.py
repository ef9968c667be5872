"""The board's broker controls (#16): stop, start or slow down a broker, the room's number of
brokers, a preferred leader election, and the brokers panel as a fragment.

The cluster is the room's: in a classroom only the instructor drives it (`drive`), as the
clock; in a sandbox or a lesson room anyone who plays it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging import selectors
from messaging.errors import Invalid
from messaging.permissions import DRIVE, room_for_action
from messaging.services import replication
from messaging.views._htmx import handles_errors

ACTIONS = {"stop": "stopped", "start": "up", "slow": "slow", "normal": "up"}


def _answer(request: HttpRequest, room, text: str) -> HttpResponse:
    if request.htmx:
        return render(
            request, "messaging/partials.html#form-result", {"ok_text": text, "error": None}
        )
    return redirect(room)


def _summary(payload: dict) -> str:
    moved = [
        f"{p['tp']} → leader {p['leader'] if p['leader'] is not None else 'none (offline)'}"
        f" (epoch {p['epoch']})"
        for p in payload["partitions"]
        if p.get("elected")
    ]
    text = "; ".join(moved) if moved else "no leader moved"
    if payload.get("lost"):
        text += f". {payload['lost']} record(s) lost: see the durability ledger"
    return text + "."


@require_POST
@handles_errors
def broker_control(request: HttpRequest, code: str, broker_id: int) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    action = request.POST.get("action", "")
    state = ACTIONS.get(action)
    if state is None:
        raise Invalid("A broker can be stopped, started, slowed down or set back to normal.")
    payload = replication.broker_set(room=room, broker_id=broker_id, state=state)
    words = {"stopped": "stopped", "up": "running", "slow": "slow"}[state]
    return _answer(request, room, f"Broker {broker_id} {words}: {_summary(payload)}")


@require_POST
@handles_errors
def brokers_count(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    payload = replication.brokers_resize(room=room, count=request.POST.get("brokers", ""))
    return _answer(request, room, f"The room now has {payload['brokers']} broker(s).")


@require_POST
@handles_errors
def leaders_elect(request: HttpRequest, code: str) -> HttpResponse:
    room = room_for_action(request, code, DRIVE)
    payload = replication.leaders_preferred(room=room)
    return _answer(request, room, f"Preferred leader election: {_summary(payload)}")


@require_GET
@handles_errors
def brokers_panel(request: HttpRequest, code: str) -> HttpResponse:
    room = selectors.room_get(code=code)
    return render(
        request,
        "messaging/brokers.html#brokers",
        {"room": room, "cluster": selectors.room_cluster(room=room)},
    )
