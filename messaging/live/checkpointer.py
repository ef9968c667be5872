"""SQLite's WAL checkpoints, moved off the request path.

With WAL, SQLite copies the log back into the database (a checkpoint, with an fsync) inside
whichever commit crosses `wal_autocheckpoint` pages: every few hundred produces, one request
waited for the disk, and every browser in the room saw that record late. A server process that
drives rooms runs the checkpoints itself, in a thread of its own, every half minute: few and off
the request path, since on these disks any fsync stalls the writes around it for tens of ms.
`wal_autocheckpoint` (raised in settings) stays as a safety net for processes that do not.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30.0
_lock = threading.Lock()
_thread: threading.Thread | None = None


def checkpoint_once() -> None:
    # PASSIVE: copy what no reader still needs, never wait for readers or block writers.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _run() -> None:
    while True:
        time.sleep(INTERVAL_SECONDS)
        try:
            checkpoint_once()
        except Exception:
            log.exception("WAL checkpoint failed; SQLite's own autocheckpoint still applies")


def ensure_started() -> None:
    """Start this process's checkpointer once, if the database is SQLite."""
    global _thread
    if connection.vendor != "sqlite":
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="wal-checkpointer", daemon=True)
            _thread.start()
