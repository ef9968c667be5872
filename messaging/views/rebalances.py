"""The same join under eager, cooperative and KIP-848 rebalancing, side by side (#15).

A page of its own, for anyone: nothing is stored, the three runs are computed from the query
(engine/rebalance_compare.py, through `selectors.rebalance_comparison`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from messaging import selectors
from messaging.views._htmx import form_int, handles_errors


@require_GET
@handles_errors
def rebalance_compare(request: HttpRequest) -> HttpResponse:
    members = form_int(request.GET.get("members"), "members", default=3)
    partitions = form_int(request.GET.get("partitions"), "partitions", default=6)
    event = request.GET.get("event", "join")
    runs, span = selectors.rebalance_comparison(
        members=members or 0, partitions=partitions or 0, event=event
    )
    return render(
        request,
        "messaging/rebalance_compare.html",
        {
            "runs": runs,
            "span_s": span / 1000,
            "members": members,
            "partitions": partitions,
            "event": event,
            "ticks": [(s, round(100 * s * 1000 / span, 3)) for s in range(0, span // 1000 + 1, 2)],
        },
    )
