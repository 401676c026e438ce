"""One writer of the ghost at a time, served in arrival order.

A copy chunk (``INSERT ... SELECT``) holds the ghost's table-level AUTO-INC
lock for the whole statement (``innodb_autoinc_lock_mode=1``, the default
before MySQL 8.0); each insert of a binlog apply batch then waits for the
chunk in flight, and the copy's next chunk, which starts right away, takes
the lock again before the batch's next insert: a batch of N inserts waited
up to N chunks (measured: one 28-event batch 996 ms under load, with every
checksum check queued behind it).  Taking turns makes that one short wait
per batch: the batch runs between two chunks, alone, in a few ms."""

from __future__ import annotations

import threading


class Turns:
    """A fair (FIFO, ticket) lock: ``with turns: ...``."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self) -> Turns:
        with self._cv:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cv.wait()
        return self

    def __exit__(self, *exc) -> None:
        with self._cv:
            self._serving += 1
            self._cv.notify_all()
