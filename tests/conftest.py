from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests.support import services


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.redis_url()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the real server, dropped afterwards."""
    import psycopg

    admin = services.postgres_admin_url()
    name = f"loglab_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.getenv("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(path):
        pytest.fail(
            f"No Chromium at {path}: `make test` installs Debian's chromium, or set CHROMIUM.",
            pytrace=False,
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def rate_buckets_in_memory() -> None:
    """Tests count rate limits in this process's memory, so any test (with or without the
    database) may clear them. The shared stores, Redis and the database, and two server
    processes sharing one limit are tested in tests/api/test_shared_rates.py."""
    from messaging.infra import rates

    rates.buckets.use(rates.TokenBuckets())


@pytest.fixture
def rate_clock_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limiter's clock stands still: a burst is refused however slowly the test's
    requests run (on a busy CI machine ten requests can take longer than a refill)."""
    import types

    from messaging.infra import rates

    stopped = types.SimpleNamespace(monotonic=lambda: 1_000_000.0, time=lambda: 1_000_000.0)
    monkeypatch.setattr(rates, "time", stopped)
    rates.buckets.clear()
