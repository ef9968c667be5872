"""Read-only transactions that see one moment of the database without holding up writers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def read_snapshot() -> Iterator[None]:
    """A transaction whose reads all see the database as it was at its first read, and that
    locks nothing: REPEATABLE READ, READ ONLY on PostgreSQL; on SQLite (messaging.infra.sqlite)
    a DEFERRED transaction, which reads one WAL snapshot while writers go on. Nothing may be
    written inside it. Outside a transaction only (it must begin one)."""
    if connection.in_atomic_block:
        raise RuntimeError("read_snapshot() begins its own transaction: call it outside one")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    connection.ensure_connection()
    deferred = hasattr(connection, "begin_deferred")
    if deferred:
        connection.begin_deferred = True
    try:
        with transaction.atomic():
            if deferred:
                connection.begin_deferred = False  # only this transaction
            yield
    finally:
        if deferred:
            connection.begin_deferred = False
