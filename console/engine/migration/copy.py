"""Row copy in chunks along the unique key: ``INSERT IGNORE INTO ghost ...
SELECT ... FROM original WHERE lo < key <= hi ORDER BY key LOCK IN SHARE MODE``.

Each chunk is binlogged as row events (like gh-ost's).  With
``copy_binlog_format = "statement"`` (opt-in, ``COPY_SESSION_STATEMENT``)
replicas re-run the chunk on their own copy of the original instead: exact
only for identical replicas and a deterministic ALTER (docs/migration.md).
REPEATABLE READ with LOCK IN SHARE MODE locks the range and its gaps, so
every change to it is ordered in the binlog either wholly before the chunk
or wholly after it, and ORDER BY fixes which row an INSERT IGNORE keeps.

Chunks take turns with the binlog apply's batches on the ghost
(``turns.Turns``): an ``INSERT ... SELECT`` holds the ghost's AUTO-INC lock
to its end.

The range ends at the key's maximum read right after the binlog stream
started: rows inserted later arrive through the binlog apply.  ``last`` is
the upper bound of the last committed chunk (what a checkpoint records)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from console.engine.migration.copycheck import (
    DUPLICATE,
    describe_key,
    refuse,
    refuse_lost,
    row_of_warning,
    strict_error,
    value_warnings,
)
from console.engine.migration.copythreads import serializes
from console.engine.migration.inspect import Inspection
from console.engine.migration.sqlutil import cmp_tuple, col_list, key_eq, key_in, key_range, qi, qt
from console.engine.migration.turns import Turns
from console.mysql.connection import transaction
from console.mysql.retry import is_lock_conflict, with_retries

Key = tuple[Any, ...]


class Copier:
    def __init__(self, ins: Inspection, turns: Turns | None = None, panic_on_warnings: bool = False,
                 retries: int = 10, autoinc_lock_mode: int | None = None):
        self.ins = ins
        self.retries = retries      # --default-retries: attempts of a chunk that met a lock conflict
        # a duplicate-key warning that cost a row (a new unique key) stops the copy
        self.panic_on_warnings = panic_on_warnings
        # shared with the binlog apply: one ghost writer at a time, where the
        # ghost has an AUTO-INC lock to wait for
        self.turns = turns or Turns(serializes(any(c.auto_increment for c in ins.ghost_columns),
                                               autoinc_lock_mode))
        self.kcols = list(ins.key.columns)
        self.min: Key | None = None
        self.max: Key | None = None
        self.last: Key | None = None          # upper bound of the last committed chunk
        self.done = False
        self.rows_copied = 0
        self.chunks = 0
        self._lock = threading.Lock()
        self._finished: dict[Key | None, tuple[Key, int]] = {}   # lo -> (hi, rows)

    @property
    def _src(self) -> str:
        return qt(self.ins.database, self.ins.table)

    @property
    def _idx(self) -> str:
        return f"FORCE INDEX ({qi(self.ins.key.name)})"

    def init_range(self, conn) -> None:
        order = ", ".join(qi(c) for c in self.kcols)
        desc = ", ".join(f"{qi(c)} DESC" for c in self.kcols)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {order} FROM {self._src} {self._idx} ORDER BY {order} LIMIT 1")
            lo = cur.fetchone()
            cur.execute(f"SELECT {order} FROM {self._src} {self._idx} ORDER BY {desc} LIMIT 1")
            hi = cur.fetchone()
        self.min = tuple(lo) if lo else None
        self.max = tuple(hi) if hi else None
        self.done = self.max is None

    def restore(self, min_: Key | None, max_: Key | None, last: Key | None, rows: int) -> None:
        self.min, self.max, self.last, self.rows_copied = min_, max_, last, rows
        self.done = self.max is None or (last is not None and tuple(last) == tuple(self.max))

    def next_bound(self, conn, chunk_size: int, after: Key | None = ...) -> Key | None:
        """Upper bound of the chunk after ``after`` (default: ``last``), or
        None when the copy is complete."""
        if after is ...:
            after = self.last
        if self.max is None or (after is not None and tuple(after) == tuple(self.max)):
            return None
        order = ", ".join(qi(c) for c in self.kcols)
        where, params = key_range(self.kcols, after, self.max)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {order} FROM {self._src} {self._idx} WHERE {where} "
                        f"ORDER BY {order} LIMIT 1 OFFSET %s", params + [chunk_size - 1])
            row = cur.fetchone()
        return tuple(row) if row else tuple(self.max)

    def copy_range(self, conn, lo: Key | None, hi: Key) -> int:
        """Copy ``lo < key <= hi`` in one transaction (retried on deadlock or
        lock wait timeout); returns rows inserted.  Thread-safe."""
        if not self.ins.key.ghost_unique:
            # the key is no unique index of the ghost: INSERT IGNORE would add
            # a second row beside the apply's; the chunk replaces its range
            return self.recopy_range(conn, lo, hi)
        where, params = key_range(self.kcols, lo, hi)
        sql = self._insert_select(where)

        def chunk():
            with self.turns, conn.cursor() as cur, transaction(cur):
                n = cur.execute(sql, params)
                self._check_values(cur, where, params)
                return n

        return retry_locks(chunk, self.retries)   # the turn given back between attempts

    def _insert_select(self, where: str) -> str:
        return (f"INSERT IGNORE INTO {qt(self.ins.database, self.ins.ghost)} "
                f"({col_list(self.ins.shared_ghost)}) SELECT {col_list(self.ins.shared_original)} "
                f"FROM {self._src} {self._idx} WHERE {where} ORDER BY {col_list(self.kcols)} "
                f"LOCK IN SHARE MODE")

    def _check_values(self, cur, where: str, params: list) -> None:
        """Before the chunk commits: raise ``ValueChanged`` (the chunk is
        rolled back) if the server warned that a value changed on its way to
        the ghost (``copycheck``), naming the first row's key and the
        server's error for it."""
        warnings = value_warnings(cur, duplicates=self.panic_on_warnings)
        dups = [w for w in warnings if w[0] == DUPLICATE]
        warnings = [w for w in warnings if w[0] != DUPLICATE]
        if dups and not warnings:
            lost = self._lost_row(cur, where, params)
            if lost is not None:
                raise refuse_lost(dups, table=f"{self.ins.database}.{self.ins.table}",
                                  key=describe_key(self.kcols, lost))
            return
        if not warnings:
            return
        key = None
        strict = None
        row = row_of_warning(warnings[0][1])
        if row is not None:
            order = col_list(self.kcols)
            cur.execute(f"SELECT {order} FROM {self._src} {self._idx} WHERE {where} ORDER BY {order} "
                        f"LIMIT 1 OFFSET %s LOCK IN SHARE MODE", params + [row - 1])
            found = cur.fetchone()
            if found is not None:
                key = tuple(found)
                gw, gp = key_eq(list(self.ins.key.ghost_columns), key)
                ow, op = key_eq(self.kcols, key)
                strict = strict_error(
                    cur, (f"DELETE FROM {qt(self.ins.database, self.ins.ghost)} WHERE {gw}", gp),
                    (self._insert_select(ow).replace("INSERT IGNORE", "INSERT", 1), op))
        raise refuse(warnings, table=f"{self.ins.database}.{self.ins.table}",
                     key=describe_key(self.kcols, key) if key else None, strict_error=strict)

    def _lost_row(self, cur, where: str, params: list) -> Key | None:
        """After a chunk's insert, in its transaction: the first row of its
        range that is not in the ghost.  A duplicate on the chunking key is
        a row the apply wrote first (it is there); one on another unique
        key left the row out."""
        order = col_list(self.kcols)
        match = " AND ".join(f"g.{qi(g)} = o.{qi(c)}"
                             for c, g in zip(self.kcols, self.ins.key.ghost_columns, strict=True))
        cur.execute(f"SELECT {order} FROM {self._src} o WHERE {where} AND NOT EXISTS (SELECT 1 FROM "
                    f"{qt(self.ins.database, self.ins.ghost)} g WHERE {match}) ORDER BY {order} "
                    f"LIMIT 1 LOCK IN SHARE MODE", params)
        row = cur.fetchone()
        return tuple(row) if row else None

    def chunk_done(self, lo: Key | None, hi: Key, n: int) -> list[tuple[Key | None, Key, int]]:
        """Record a committed chunk; ``last`` advances only over a gap-free
        prefix of committed chunks (parallel chunks finish out of order).
        Returns the chunks (lo, hi, rows) that joined the prefix, in order."""
        joined = []
        with self._lock:
            self.rows_copied += n
            self.chunks += 1
            self._finished[lo] = (tuple(hi), n)
            while self.last in self._finished:
                nxt, rows = self._finished.pop(self.last)
                joined.append((self.last, nxt, rows))
                self.last = nxt
            if self.max is not None and self.last is not None and tuple(self.last) == tuple(self.max):
                self.done = True
        return joined

    def copy_chunk(self, conn, hi: Key) -> int:
        """Copy the chunk after ``last`` up to ``hi`` (single-threaded use)."""
        lo = self.last
        n = self.copy_range(conn, lo, hi)
        self.chunk_done(lo, hi, n)
        return n

    def recopy_range(self, conn, lo: Key | None, hi: Key | None) -> int:
        """Replace the ghost's rows in ``lo < key <= hi`` (hi None: no upper
        bound) with a fresh copy."""
        gwhere, gparams = open_range(list(self.ins.key.ghost_columns), lo, hi)
        where, params = open_range(self.kcols, lo, hi)
        return self._recopy(conn, gwhere, gparams, where, params)

    def recopy_keys(self, conn, keys: list[Key]) -> int:
        """Replace the ghost's rows with these keys by a fresh copy."""
        gwhere, gparams = key_in(list(self.ins.key.ghost_columns), keys)
        where, params = key_in(self.kcols, keys)
        return self._recopy(conn, gwhere, gparams, where, params)

    def _recopy(self, conn, gwhere: str, gparams: list, where: str, params: list) -> int:
        delete = f"DELETE FROM {qt(self.ins.database, self.ins.ghost)} WHERE {gwhere}"
        insert = self._insert_select(where)

        def both():
            with self.turns, conn.cursor() as cur, transaction(cur):
                cur.execute(delete, gparams)
                n = cur.execute(insert, params)
                self._check_values(cur, where, params)
                return n

        return retry_locks(both, self.retries)


def open_range(cols: list[str], lo: Key | None, hi: Key | None) -> tuple[str, list[Any]]:
    if hi is not None:
        return key_range(cols, lo, hi)
    if lo is None:
        return "1=1", []
    return cmp_tuple(cols, lo, ">")


# the copy connection's session when the chunks are binlogged as statements
# A copy chunk waits at most this long for a row lock of the original, then
# rolls back, gives its turn back and tries again (pt-osc's default too).  A
# writer's transaction can hold a row the chunk reads while it waits for a
# range a locked checksum pass holds; that pass waits for the binlog apply,
# and the apply for the chunk's turn (or its ghost rows): a cycle through
# our own threads that InnoDB cannot see, which held every writer of the
# range until innodb_lock_wait_timeout (50 s: sysbench's p95 at 98 s in the
# migration bench, 2026-12-04).
COPY_LOCK_WAIT_SECONDS = 1

COPY_SESSION_STATEMENT = ("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                          "SET SESSION binlog_format = 'STATEMENT'")

T = TypeVar("T")


def retry_locks(fn: Callable[[], T], attempts: int = 10) -> T:
    """A copy or checksum chunk that met a lock wait timeout or a deadlock
    (e.g. with the binlog apply) is tried again, quickly."""
    return with_retries(fn, attempts=attempts, base=0.02, cap=0.2, retry_if=is_lock_conflict)

