"""SQLite's WAL checkpoints, moved off the request path.

With WAL, SQLite copies the log back into the database (a checkpoint, with an fsync) inside
whichever commit crosses `wal_autocheckpoint` pages: every few hundred produces, one request
waited for the disk, and every browser in the room saw that record late. A server process that
drives rooms runs the checkpoints itself, in a thread of its own, every few seconds: off the
request path. On these disks an fsync also stalls the writes around it for tens of ms, so a
due checkpoint waits for a commit and starts right after it: rooms write in steady steps (a
produce, a clock step), and the gap before the next write is the longest there is.
`wal_autocheckpoint` (raised in settings) stays as a safety net for processes that do not.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 10.0
# How long a due checkpoint waits for a commit to follow; a quiet database is checkpointed then.
QUIET_WAIT_SECONDS = 1.0
_lock = threading.Lock()
_thread: threading.Thread | None = None
_committed = threading.Event()


def note_commit() -> None:
    """A write just committed: a waiting checkpoint can start now, in the gap after it."""
    _committed.set()


def checkpoint_once() -> None:
    # PASSIVE: copy what no reader still needs, never wait for readers or block writers.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _run_once() -> None:
    time.sleep(INTERVAL_SECONDS)
    _committed.clear()
    _committed.wait(QUIET_WAIT_SECONDS)
    try:
        checkpoint_once()
    except Exception:
        log.exception("WAL checkpoint failed; SQLite's own autocheckpoint still applies")


def _run() -> None:
    while True:
        _run_once()


def ensure_started() -> None:
    """Start this process's checkpointer once, if the database is SQLite."""
    global _thread
    if connection.vendor != "sqlite":
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="wal-checkpointer", daemon=True)
            _thread.start()
