from django import template
from django.utils.html import json_script

from messaging.engine.clock import format_duration
from messaging.events import event_types_for_browser
from messaging.services.text import visible as text_visible

register = template.Library()


@register.filter
def duration(ms: int) -> str:
    """A config value in ms as people say it: retention.ms=604800000 is "7 d"."""
    if ms is None or ms < 0:
        return "unlimited"
    return format_duration(int(ms))


@register.filter
def visible(text: str | None) -> str | None:
    """A record key as data: control and text-direction characters shown as \\uXXXX."""
    return text_visible(text)


@register.simple_tag
def event_types_json() -> str:
    """The room event types, as JSON for static/loglab/room-socket.js (one declaration)."""
    return json_script(event_types_for_browser(), "loglab-event-types")
