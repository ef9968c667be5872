"""Helpers the classroom tests share (their fixtures are in conftest.py)."""

from __future__ import annotations

from django.test import Client

from messaging.models import Room

HTMX = {"HX-Request": "true"}
PASSWORD = "a-long-classroom-password"


def joined(room: Room, name: str) -> Client:
    """A browser that joined `room` as a student called `name`."""
    client = Client()
    assert client.post(f"/j/{room.code}/", {"display_name": name}).status_code == 302
    return client
