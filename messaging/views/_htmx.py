"""What every view shares: the error answer, the decorator that gives it, and form parsing.

htmx requests get the fragment they swap in; plain form posts get a redirect or the whole page,
so every control still works without JavaScript. A refusal a person caused (`LogLabError`)
becomes its HTTP status with the reason shown in the page, or JSON for a JSON client.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from messaging.errors import Invalid, LogLabError


def _error_response(request: HttpRequest, error: LogLabError) -> HttpResponse:
    response = _error_body(request, error)
    retry_after = getattr(error, "retry_after", None)  # a 429: the seconds its message names
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _error_body(request: HttpRequest, error: LogLabError) -> HttpResponse:
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"error": error.code, "message": error.message}, status=error.status)
    template = "messaging/error.html"
    if request.htmx:
        template = "messaging/partials.html#form-result"
    return render(request, template, {"error": error.message, "ok": None}, status=error.status)


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
