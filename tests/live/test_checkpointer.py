from __future__ import annotations

import pytest
from django.db import connection

from messaging.infra import checkpointer


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


def test_it_starts_a_due_checkpoint_right_after_a_commit(monkeypatch):
    import threading

    runs: list[float] = []
    done = threading.Event()

    def fake_checkpoint() -> None:
        runs.append(1.0)
        done.set()

    monkeypatch.setattr(checkpointer, "INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(checkpointer, "QUIET_WAIT_SECONDS", 30.0)
    monkeypatch.setattr(checkpointer, "checkpoint_once", fake_checkpoint)
    # Commits of other threads in this process (a room driver an earlier test left ticking)
    # must not count: only this test's own commit signals.
    commit = checkpointer.note_commit
    monkeypatch.setattr(checkpointer, "_committed", threading.Event())
    monkeypatch.setattr(checkpointer, "note_commit", lambda: None)
    thread = threading.Thread(target=checkpointer._run_once, daemon=True)
    thread.start()
    assert not done.wait(0.2)  # due, but waiting for a commit to follow
    commit()
    assert done.wait(2.0)  # the commit let it start, long before the quiet wait ran out
    thread.join(2.0)
    assert runs == [1.0]
