"""Django's SQLite backend, with writers of one process queued in Python, not in SQLite's sleeps.

SQLite lets one writer at a time in. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 50... ms between tries whatever happens
meanwhile: a Produce from the Kafka listener that arrived while the room's step held the lock
for 8 ms slept until 18 or 33 ms, and the step likewise behind a Produce. Measured with py-spy
during `python -m bench kafka`: the listener's thread spent 14% of the run, and the room's
driver 27%, asleep in `BEGIN IMMEDIATE` (docs/benchmarks.md).

Here `BEGIN IMMEDIATE` is tried without SQLite's busy handler; when the lock is taken, the
writer waits for the next commit or rollback of this process (a condition variable, so it
tries again at once), or at most POLL_SECONDS when the holder is another process, up to the
connection's own timeout; then it fails as SQLite would ("database is locked"). Inside the
transaction nothing changes: the lock is held, and the busy timeout is back for any statement
that still needs it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

from django.db.backends.sqlite3 import base

# Another process's writer does not notify this one: look again this often.
POLL_SECONDS = 0.002
_SQLITE_BUSY = 5

_released = threading.Condition()
_generation = 0


def _writer_done() -> None:
    global _generation
    with _released:
        _generation += 1
        _released.notify_all()


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == _SQLITE_BUSY
    return "locked" in str(error)


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by infra/consistent_reads.read_snapshot: the next transaction only reads, so it begins
    # DEFERRED, a WAL snapshot that blocks no writer, instead of taking the write lock.
    begin_deferred = False

    def _start_transaction_under_autocommit(self) -> None:
        if self.begin_deferred:
            with self.wrap_database_errors:
                self.connection.execute("BEGIN DEFERRED")
            return
        if self.transaction_mode != "IMMEDIATE":
            super()._start_transaction_under_autocommit()
            return
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        deadline = time.monotonic() + timeout
        raw = self.connection
        with self.wrap_database_errors:
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                while True:
                    with _released:
                        seen = _generation
                    try:
                        raw.execute("BEGIN IMMEDIATE")
                        return
                    except sqlite3.OperationalError as error:
                        left = deadline - time.monotonic()
                        if not _busy(error) or left <= 0:
                            raise
                    with _released:
                        if _generation == seen:
                            _released.wait(min(POLL_SECONDS, left))
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            _writer_done()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            _writer_done()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            _writer_done()
