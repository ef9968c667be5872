"""Checks of free text that every service storing a user's words shares."""

from __future__ import annotations

import unicodedata

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


# The bidirectional formatting characters: they reorder the text that follows them on screen, so
# "Ana\u202eevil" shows as "Analive". Not one is needed to write a name in any script.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Control characters, lone surrogates and the line/paragraph separators: invisible or layout-
# breaking in a name on a projector.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _hidden(ch: str) -> bool:
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def name_validate(value: str, *, field: str, what: str) -> str:
    """A name other people read (a student, a group, a consumer, a producer, a room's title) is
    refused, not silently changed, when it holds a control or text-direction character: the
    person who typed it sees why, and nobody's name is shown as something it is not."""
    no_nul(value, field=field)
    for ch in value:
        if _hidden(ch):
            raise Invalid(
                f"{what} cannot contain control characters or text-direction marks "
                f"(it has U+{ord(ch):04X}): others would not see it as you typed it.",
                field=field,
            )
    return value


def key_validate(key: str | None, *, field: str = "key") -> str | None:
    """A record key is data (Kafka's are bytes), so it is kept as sent, except NUL, which
    PostgreSQL cannot store. Pages show its other control characters with `visible`."""
    return key if key is None else no_nul(key, field=field)


def visible(text: str | None) -> str | None:
    """Text as a page shows data: control and text-direction characters written as \\uXXXX,
    so a key can neither hide a character nor reorder the text around it."""
    if text is None or not any(_hidden(ch) for ch in text):
        return text
    return "".join(f"\\u{ord(ch):04x}" if _hidden(ch) else ch for ch in text)


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
