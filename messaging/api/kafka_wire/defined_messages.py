"""kafka-python's message classes, defined in Python for the APIs its schema files lack.

kip848_messages.py and share_messages.py write their messages from Kafka's protocol
documentation in the form kafka-python's loader builds from a schema file; this gives them to
its own machinery, so they decode, encode and check nulls as the listener's other messages do.
"""

from __future__ import annotations

from typing import Any

from kafka.protocol.api_message import ApiMessageData
from kafka.protocol.data_container import SlotsBuilder
from kafka.protocol.schemas import StructField


class Defined(ApiMessageData):
    """kafka-python's message metaclass, given the definition in the class body (``SCHEMA``)
    instead of reading it from a schema file of the package."""

    def __new__(metacls, name: str, bases: tuple, attrs: dict, **kw: Any) -> Any:
        if kw.get("init", True):
            schema = attrs.pop("SCHEMA")
            attrs["_json"] = schema
            attrs["_struct"] = StructField(schema)
        return SlotsBuilder.__new__(metacls, name, bases, attrs, **kw)


def field(name: str, kind: str, versions: str = "0+", **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "versions": versions, **more}


def nullable(name: str, kind: str, versions: str = "0+", **more: Any) -> dict[str, Any]:
    return field(name, kind, versions, nullableVersions=versions, default="null", **more)


def message(api_key: int, kind: str, name: str, valid: str, fields: list) -> dict[str, Any]:
    """A message every version of which is flexible (KIP-482)."""
    return {
        "apiKey": api_key,
        "type": kind,
        "name": name,
        "validVersions": valid,
        "flexibleVersions": "0+",
        "fields": fields,
    }
