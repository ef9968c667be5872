"""One server process on PostgreSQL holds a bounded number of connections, whatever the load.

Issue #13: 8 concurrent REST writers once took 97 of PostgreSQL's 100 connections. Served as
`make run` serves it, with concurrent writers and a watched room whose driver ticks in threads,
the process's connections stay within its pool and no request fails.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest

from scripts.pg_connections import measure
from tests.support import services

pytestmark = pytest.mark.postgres


def test_it_keeps_one_processs_connections_within_its_pool_under_concurrent_writers():
    admin = services.postgres_admin_url()
    server = admin.rsplit("/", 1)[0]
    database = f"loglab_pool_{secrets.token_hex(4)}"
    try:
        result = measure(
            server=server, database=database, writers=16, records=20, pool_size=10, watch=True
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    assert result["requests"] == 16 * 20
    assert result["5xx"] == 0, result
    assert result["statuses"].get(200, 0) >= 16 * 20 - 5, result  # a stray 429 at most
    assert 1 <= result["peak_connections"] <= 10, result
