from __future__ import annotations

import pytest
from django.db import connection

from messaging.live import checkpointer


@pytest.mark.django_db(transaction=True)
def test_it_checkpoints_sqlites_wal_off_the_request_path_and_leaves_other_databases_alone():
    checkpointer._thread = None
    checkpointer.ensure_started()
    if connection.vendor != "sqlite":
        # PostgreSQL has no WAL of SQLite's kind to checkpoint: nothing is started.
        assert checkpointer._thread is None
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 10000  # requests no longer checkpoint every 1000 pages
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    checkpointer.checkpoint_once()
    started = checkpointer._thread
    checkpointer.ensure_started()
    assert started is not None and started.is_alive()
    assert checkpointer._thread is started  # one per process
