from django import template

from messaging.engine.clock import format_duration

register = template.Library()


@register.filter
def duration(ms: int) -> str:
    """A config value in ms as people say it: retention.ms=604800000 is "7 d"."""
    if ms is None or ms < 0:
        return "unlimited"
    return format_duration(int(ms))
