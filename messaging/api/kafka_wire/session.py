"""One client connection: who it is, and where its SASL exchange stands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Session:
    peer: str
    # The address and port the client reached us on: what Metadata advertises, so a phone on
    # the LAN is sent back to the LAN address, never to 127.0.0.1.
    host: str
    port: int
    listener: Any
    # The broker this connection reached (by the port it came to: api/kafka_wire/brokers.py).
    broker: int = 1
    room_pk: int | None = None
    room_code: str = ""
    student_pk: int | None = None
    student_name: str = ""
    # The room's own credentials (its code and client secret): the owner's, no locks apply.
    owner: bool = False
    client_id: str = ""
    software: str = ""
    handshake_version: int | None = None
    raw_sasl: bool = False
    authenticated: bool = False
    closing: bool = False

    def seen(self, header: Any) -> None:
        if header.client_id:
            self.client_id = header.client_id[:64]

    def label(self) -> str:
        """How the board names what this connection runs: software, then the student."""
        who = self.software or self.client_id or "a Kafka client"
        return f"{who} ({self.student_name})" if self.student_name else who
