"""One writer of the ghost at a time, served in arrival order.

A copy chunk (``INSERT ... SELECT``) holds the ghost's table-level AUTO-INC
lock for the whole statement (``innodb_autoinc_lock_mode=1``, the default
before MySQL 8.0); each insert of a binlog apply batch then waits for the
chunk in flight, and the copy's next chunk, which starts right away, takes
the lock again before the batch's next insert: a batch of N inserts waited
up to N chunks (measured: one 28-event batch 996 ms under load, with every
checksum check queued behind it).  Taking turns makes that one short wait
per batch: the batch runs between two chunks, alone, in a few ms.  A ghost
without an AUTO_INCREMENT column has no such lock: no turns there (parallel
copy chunks stay parallel; they serialize on the AUTO-INC lock otherwise)."""

from __future__ import annotations

import threading


class Turns:
    """A fair (FIFO, ticket) lock: ``with turns: ...``.  ``needed=False``
    (a ghost without an AUTO_INCREMENT column: nothing to wait for, and
    parallel copy chunks really run in parallel) makes it a no-op."""

    def __init__(self, needed: bool = True) -> None:
        self.needed = needed
        self._cv = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self) -> Turns:
        if not self.needed:
            return self
        with self._cv:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cv.wait()
        return self

    def __exit__(self, *exc) -> None:
        if not self.needed:
            return
        with self._cv:
            self._serving += 1
            self._cv.notify_all()
