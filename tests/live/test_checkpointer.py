from __future__ import annotations

import pytest
from django.db import connection

from messaging.live import checkpointer


@pytest.mark.django_db(transaction=True)
def test_it_checkpoints_the_wal_off_the_request_path():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 10000  # requests no longer checkpoint every 1000 pages
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    checkpointer.checkpoint_once()
    checkpointer.ensure_started()
    checkpointer.ensure_started()
    assert checkpointer._thread is not None and checkpointer._thread.is_alive()
