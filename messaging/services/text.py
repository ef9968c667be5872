"""Checks of free text that every service storing a user's words shares."""

from __future__ import annotations

from django.conf import settings

from messaging.errors import Invalid

PREVIEW_CHARS = 80
# Bodies are bounded like Kafka values on the board (SQS's own MaximumMessageSize, up to
# 1 MiB, is still checked by the engine).
MAX_BODY_BYTES = settings.LOGLAB_MAX_VALUE_BYTES


def no_nul(value: str, *, field: str) -> str:
    """PostgreSQL cannot store a NUL character, in text or in JSON."""
    if "\x00" in value:
        raise Invalid("LogLab cannot store the NUL character (\\0).", field=field)
    return value


def preview(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def body_validate(body: object) -> str:
    if not isinstance(body, str):
        raise Invalid("A message body is text.", field="body")
    no_nul(body, field="body")
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise Invalid(
            f"A message body is at most {MAX_BODY_BYTES // 1024} KB here (this one is {size} "
            "bytes); SQS itself accepts up to the queue's MaximumMessageSize.",
            field="body",
        )
    return body


def optional_text(value: str | None) -> str | None:
    """An empty form field means the parameter was not sent."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def whole_number(value: object, *, field: str, aws_name: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{aws_name} is a whole number.", field=field)
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise Invalid(f"{aws_name} is a whole number.", field=field) from None
