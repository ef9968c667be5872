"""Finding the real Redis and PostgreSQL servers the tests of those paths need.

Without them the tests skip and say why; with REQUIRE_SERVICES=1 (as CI sets) they fail
instead, so a missing server can never pass for a green run.
"""

from __future__ import annotations

import os
import socket

import pytest

REDIS_HOST = os.getenv("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.getenv("TEST_REDIS_PORT", "6379"))
POSTGRES_URL = os.getenv("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def services_required() -> bool:
    return os.getenv("REQUIRE_SERVICES", "").strip() in {"1", "true", "yes"}


def unavailable(what: str, why: str) -> None:
    message = f"{what} could not be reached ({why}); its tests did not run."
    if services_required():
        pytest.fail(message + " REQUIRE_SERVICES=1 makes this a failure.", pytrace=False)
    pytest.skip(message + " Start it, or set REQUIRE_SERVICES=1 to make this fail.")


def redis_url() -> str:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(16)
    except OSError as error:
        unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT}", str(error))
    if not reply.startswith(b"+PONG"):
        unavailable(f"Redis at {REDIS_HOST}:{REDIS_PORT}", f"PING answered {reply!r}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def postgres_admin_url() -> str:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means the server is not usable
        unavailable("PostgreSQL at " + POSTGRES_URL.rsplit("@", 1)[-1], str(error).strip())
    return POSTGRES_URL
