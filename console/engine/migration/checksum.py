"""Checksum before cut-over (beyond gh-ost): compare the original and the
ghost chunk by chunk on the shared columns.

For each chunk a cheap pass reads the original without locks, writes a
marker to the changelog, waits for the binlog apply up to it and reads the
ghost: equal sums end there.  Otherwise (writes between the two reads, or a
real difference) the exact pass runs: the original's rows are read ``LOCK IN
SHARE MODE`` inside a transaction (writers of that range wait), a marker is
written and the apply waited for: every change made to the range before the
lock is then in the ghost, so both checksums must be equal.  A mismatching
chunk is copied again and checked again; the cut-over is refused while any
mismatch remains.

Two ways to run it:

* overlapped (a fresh migration that is not postponed): each chunk is checked
  right after it is copied, by a worker of its own, while the copy goes on;
  the binlog apply records every key a row event touched (``dirty`` keys);
  right before the cut-over only the rows of those keys are checked again
  (``verify_keys``).  A row no event touched is unchanged on both sides
  since its chunk was checked: the copy wrote it once and the apply never
  touched it.
* full pass (``run``): every chunk again, right before the cut-over; used
  after a resume (the chunks checked before the crash and the keys touched
  then are not known), when the dirty set overflowed, and after a
  postponement (the ghost sat waiting; anything may have written to it)."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from console.engine.migration.copy import Copier, Key
from console.engine.migration.inspect import Inspection
from console.engine.migration.sqlutil import (
    checksum_expr,
    checksum_sql,
    cmp_tuple,
    col_list,
    column_exprs,
    key_eq,
    key_in,
    key_range,
    qi,
    qt,
)
from console.engine.migration.tables import write_changelog
from console.mysql.connection import close_quietly, transaction


def binlog_pos_key(pos: tuple[str, int]) -> tuple[int, int]:
    """Order of binlog coordinates: file sequence number, then offset."""
    name, off = pos
    ext = name.rpartition(".")[2]
    return (int(ext) if ext.isdigit() else -1, int(off))


@dataclass
class ChecksumProgress:
    chunks: int = 0
    rows: int = 0
    mismatches: int = 0
    recopied: int = 0
    remaining_mismatches: int = 0
    keys_rechecked: int = 0     # rows of dirty keys checked again in the final pass
    dirty_batches: int = 0
    locked_passes: int = 0      # comparisons that had to lock the original's rows
    first_mismatch: str = ""    # where the first remaining mismatch is, with an example key
    done: bool = False


def _show(v) -> str:
    """A column's text for a refusal (bounded)."""
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8", "replace")
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _fmt_key(k: Key | None, none: str = "") -> str:
    if k is None:
        return none
    return repr(k[0]) if len(k) == 1 else repr(tuple(k))


_NONE = object()    # no chunk added yet / no range open (a key bound may itself be None)


class CheckRanges:
    """Copied chunks, in key order, gathered into ranges of at least
    ``rows()`` rows for the overlapped checksum (``--checksum-chunk-size``):
    with the default ``--chunk-size`` every chunk was a check of its own
    (two sums, a wait for the apply, a marker: five times as many as the
    full pass makes).  Not locked: the copy threads call ``add`` under the
    same lock as ``Copier.chunk_done``, which yields the chunks in order."""

    def __init__(self, rows: Callable[[], int]):
        self._rows = rows
        self._lo: Key | None | object = _NONE     # lower bound of the range being filled
        self._last: Key | None | object = _NONE   # upper bound of the last chunk added
        self._n = 0

    def add(self, chunks: list[tuple[Key | None, Key, int]]) -> list[tuple[Key | None, Key]]:
        """Consecutive chunks (lo, hi, rows); the ranges they complete."""
        out = []
        for lo, hi, n in chunks:
            if self._last is not _NONE and lo != self._last:     # a range must not skip a chunk
                raise AssertionError(f"copied chunks out of order: {lo!r} after {self._last!r}")
            if self._lo is _NONE:
                self._lo, self._n = lo, 0
            self._last, self._n = hi, self._n + n
            if self._n >= self._rows():
                out.append((self._lo, hi))
                self._lo = _NONE
        return out

    def rest(self) -> list[tuple[Key | None, Key]]:
        """The last, partly filled range (at the end of the copy)."""
        if self._lo is _NONE:
            return []
        lo, self._lo = self._lo, _NONE
        return [(lo, self._last)]


class Checksummer:
    # Under write load the unlocked pass sees writes that fell between its two
    # reads; trying it again is far cheaper than locking the range (writers
    # would wait), so the locked pass is the last resort.
    UNLOCKED_TRIES = 3

    def __init__(self, ins: Inspection, copier: Copier, applier, conn_factory,
                 chunk_size: Callable[[], int], checkpoint: Callable[[], None],
                 attempts: int = 3, wait_timeout: float = 60.0,
                 binlog_position: Callable[[object], tuple[str, int] | None] | None = None):
        self.ins, self.copier, self.applier = ins, copier, applier
        self._cf = self._mcf = conn_factory
        self._chunk_size, self._checkpoint = chunk_size, checkpoint
        self.attempts, self.wait_timeout = attempts, wait_timeout
        self._binlog_position = binlog_position   # the server's file:pos (Dialect.binlog_position)
        self.progress = ChecksumProgress()
        self._plock = threading.Lock()
        self._cost: collections.deque[float] = collections.deque(maxlen=50)
        self.last_sum_seconds = 0.0
        ocols = list(ins.shared_original)
        gcols = list(ins.shared_ghost)
        conv_o, conv_g = ins.convert_columns()
        null_o, null_g = ins.nullable_columns()
        self._oexpr = checksum_expr(ocols, conv_o, null_o, ins.cast_columns())
        self._gexpr = checksum_expr(gcols, conv_g, null_g)
        # each column's text as the checksum hashes it (to say which differs)
        self._ocols = [f"CONCAT({e})" for e in column_exprs(ocols, conv_o, ins.cast_columns())]
        self._gcols = [f"CONCAT({e})" for e in column_exprs(gcols, conv_g)]

    def _bounds(self, conn, lo: Key | None, n: int) -> Key | None:
        kc = list(self.ins.key.columns)
        order = col_list(kc)
        where, params = ("1=1", []) if lo is None else cmp_tuple(kc, lo, ">")
        with conn.cursor() as cur:
            cur.execute(f"SELECT {order} FROM {qt(self.ins.database, self.ins.table)} "
                        f"FORCE INDEX ({qi(self.ins.key.name)}) WHERE {where} ORDER BY {order} "
                        f"LIMIT 1 OFFSET %s", params + [n - 1])
            row = cur.fetchone()
        return tuple(row) if row else None

    def _range_preds(self, lo: Key | None, hi: Key | None) -> tuple[str, list, str, list]:
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        if hi is None:
            ow, op = ("1=1", []) if lo is None else cmp_tuple(kc, lo, ">")
            gw, gp = ("1=1", []) if lo is None else cmp_tuple(gk, lo, ">")
        else:
            ow, op = key_range(kc, lo, hi)
            gw, gp = key_range(gk, lo, hi)
        return ow, op, gw, gp

    def _compare(self, conn, mconn, preds: tuple[str, list, str, list],
                 locked: bool = True) -> tuple[bool, int]:
        """(equal, rows) for the rows the predicates select on each side.

        The ghost is summed only once the apply has applied every change
        committed before the original was summed: either it already has (on
        MariaDB: its applied binlog file:pos is at or past the server's
        position read right after the original's sum; no marker needed), or
        a marker is written and waited for.  (Summing the ghost before the apply caught up is not a proof even
        when the sums agree: a pending REPLACE may still delete a row another
        unique key collides with.)

        ``locked=False`` is the cheap pass: the original is read without
        locks, so writes between the two reads show as a mismatch, which then
        gets the exact, locked comparison."""
        ow, op, gw, gp = preds
        with conn.cursor() as cur, (transaction(cur, end="ROLLBACK") if locked else nullcontext()):
            t0 = time.monotonic()
            orig = self._sum_original(cur, ow, op, locked)
            spent = time.monotonic() - t0
            if not self._caught_up(conn):     # only a stalled apply fails the check
                self.applier.catch_up(lambda token: write_changelog(mconn, self.ins, "marker", token),
                                      stall_timeout=self.wait_timeout)
            t0 = time.monotonic()
            ghost = self._sum_ghost(cur, gw, gp)
            self.last_sum_seconds = spent + time.monotonic() - t0
        return orig == ghost, orig[0]

    def _sum_original(self, cur, where: str, params: list, locked: bool = False) -> tuple[int, ...]:
        cur.execute(checksum_sql(self._oexpr, f"{qt(self.ins.database, self.ins.table)} "
                                              f"FORCE INDEX ({qi(self.ins.key.name)})",
                                 where, locked), params)
        return tuple(int(x) for x in cur.fetchone())

    def _sum_ghost(self, cur, where: str, params: list) -> tuple[int, ...]:
        cur.execute(checksum_sql(self._gexpr, qt(self.ins.database, self.ins.ghost), where), params)
        return tuple(int(x) for x in cur.fetchone())

    def _caught_up(self, conn) -> bool:
        """Has the apply applied everything the server has binlogged so far?"""
        applied = getattr(self.applier, "applied_file", None)
        if not applied or self._binlog_position is None:
            return False
        at = self._binlog_position(conn)
        return at is not None and binlog_pos_key(applied) >= binlog_pos_key(at)

    def _verify(self, conns, preds, recopy: Callable[[object], int], count_chunk: bool,
                what: str) -> None:
        conn, mconn = conns
        for _ in range(self.UNLOCKED_TRIES):
            equal, rows = self._compare(conn, mconn, preds, locked=False)
            if equal:
                break
        locked = 0
        if not equal:
            locked = 1
            equal, rows = self._compare(conn, mconn, preds)
        tries = mism = recop = 0
        while not equal and tries < self.attempts:
            mism += 1
            tries += 1
            recopy(conn)
            recop += 1
            equal, rows = self._compare(conn, mconn, preds)
        why = "" if equal or self.progress.first_mismatch else self._explain(conn, preds, what)
        with self._plock:
            p = self.progress
            if why and not p.first_mismatch:
                p.first_mismatch = why
            p.mismatches += mism
            p.recopied += recop
            p.remaining_mismatches += 0 if equal else 1
            p.locked_passes += locked + recop
            if count_chunk:
                p.chunks += 1
                p.rows += rows
            else:
                p.keys_rechecked += rows

    def _chunk(self, conns, lo: Key | None, hi: Key | None) -> None:
        self._verify(conns, self._range_preds(lo, hi),
                     lambda c: self.copier.recopy_range(c, lo, hi), count_chunk=True,
                     what=f"key range ({_fmt_key(lo, 'start')}, {_fmt_key(hi, 'end')}]")

    def _explain(self, conn, preds: tuple[str, list, str, list], what: str) -> str:
        """Why a comparison still differs, for the refusal: the rows on
        each side and one key that is missing, extra or different (read
        once, after the last failed comparison; one range of rows)."""
        ow, op, gw, gp = preds
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {col_list(kc)}, {self._oexpr} FROM {qt(self.ins.database, self.ins.table)} "
                        f"WHERE {ow}", op)
            orig = {tuple(r[:-1]): r[-1] for r in cur.fetchall()}
            cur.execute(f"SELECT {col_list(gk)}, {self._gexpr} FROM {qt(self.ins.database, self.ins.ghost)} "
                        f"WHERE {gw}", gp)
            ghost = {tuple(r[:-1]): r[-1] for r in cur.fetchall()}
        example = (next(((k, "missing from the ghost") for k in orig if k not in ghost), None)
                   or next(((k, "only in the ghost") for k in ghost if k not in orig), None)
                   or next(((k, "differs") for k in orig if orig[k] != ghost[k]), None))
        text = (f"{what} of key {self.ins.key.name}: {len(orig)} row(s) in the original, "
                f"{len(ghost)} in the ghost")
        if example:
            k, how = example
            text += f"; e.g. {', '.join(f'{c}={v!r}' for c, v in zip(kc, k, strict=True))} {how}"
            if how == "differs":
                text += self._column_difference(conn, k)
        return text

    def _column_difference(self, conn, key: Key) -> str:
        """Which shared column of the row with ``key`` differs, and its text
        on each side (as the checksum compares it): a refusal said only that
        the row differed."""
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        ow, op = key_eq(kc, key)
        gw, gp = key_eq(gk, key)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(self._ocols)} FROM {qt(self.ins.database, self.ins.table)} "
                        f"WHERE {ow}", op)
            orow = cur.fetchone()
            cur.execute(f"SELECT {', '.join(self._gcols)} FROM {qt(self.ins.database, self.ins.ghost)} "
                        f"WHERE {gw}", gp)
            grow = cur.fetchone()
        if orow is None or grow is None:
            return " (changed meanwhile)"
        pairs = zip(self.ins.shared_original, self.ins.shared_ghost, orow, grow, strict=True)
        for o, g, a, b in pairs:
            if a != b:
                name = o if o == g else f"{o} ({g} in the ghost)"
                return f" in column {name}: {_show(a)} in the original, {_show(b)} in the ghost"
        return " (no column differs when read again: changed meanwhile?)"

    # ---- overlapped with the copy ----------------------------------------------------

    def verify_chunk(self, conns, lo: Key | None, hi: Key) -> None:
        """Check one freshly copied chunk (called during the copy)."""
        self._chunk(conns, lo, hi)

    def verify_keys(self, conns, keys: list[Key], batch: int = 500) -> None:
        """Check the rows with these keys (the dirty keys the binlog apply
        touched), ``batch`` keys per comparison; mismatches are copied again."""
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            self._checkpoint()
            ow, op = key_in(kc, part)
            gw, gp = key_in(gk, part)
            self._verify(conns, (ow, op, gw, gp),
                         lambda c, part=part: self.copier.recopy_keys(c, part), count_chunk=False,
                         what=f"{len(part)} changed key(s) from {_fmt_key(part[0])}")
            with self._plock:
                self.progress.dirty_batches += 1

    # ---- the final check: rounds before the cut-over, the rest under its lock ---------

    def filter_keys(self, conns, keys: list[Key], batch: int = 500) -> list[Key]:
        """One unlocked pass over ``keys`` (no row locks, no re-copy): the
        keys of batches that compared equal are done; those of batches that
        did not (changed meanwhile, or different) come back, to be checked
        in the next round or under the cut-over's lock.  Measures the cost
        of a comparison per key (``seconds_per_key``) for that lock's budget."""
        conn, mconn = conns
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        left: list[Key] = []
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            self._checkpoint()
            ow, op = key_in(kc, part)
            gw, gp = key_in(gk, part)
            for _ in range(self.UNLOCKED_TRIES):
                equal, rows = self._compare(conn, mconn, (ow, op, gw, gp), locked=False)
                self._cost.append(self.last_sum_seconds / len(part))
                if equal:
                    break
            with self._plock:
                self.progress.dirty_batches += 1
                if equal:
                    self.progress.keys_rechecked += rows
            if not equal:
                left.extend(part)
        return left

    @property
    def seconds_per_key(self) -> float | None:
        """Median cost of comparing one key (both sums), from the last passes."""
        costs = sorted(self._cost)
        return costs[len(costs) // 2] if costs else None

    def verify_quiet(self, oconn, gconn, keys: list[Key], batch: int = 500) -> list[Key]:
        """Compare ``keys`` under the cut-over's lock: nothing writes the
        original (locked) nor the ghost (the apply is drained), so one
        comparison is exact.  The original is read on ``oconn``, the session
        that holds ``LOCK TABLES`` (no other session may read it then, and
        it may read nothing else), the ghost on ``gconn``.  Returns the keys
        of the batches that differ."""
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        differ: list[Key] = []
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            ow, op = key_in(kc, part)
            gw, gp = key_in(gk, part)
            with oconn.cursor() as ocur, gconn.cursor() as gcur:
                orig = self._sum_original(ocur, ow, op)
                ghost = self._sum_ghost(gcur, gw, gp)
            with self._plock:
                self.progress.keys_rechecked += orig[0] if orig == ghost else 0
            if orig != ghost:
                differ.extend(part)
        return differ

    def open_conns(self):
        return (self._cf(), self._mcf())

    @contextmanager
    def connections(self):
        """A pair from ``open_conns``, closed at the end."""
        conns = self.open_conns()
        try:
            yield conns
        finally:
            close_quietly(*conns)

    def run(self, conn, threads: int = 1) -> ChecksumProgress:
        """Chunks are bounded here in key order and compared by ``threads``
        workers, each with its own pair of connections."""
        self.progress = ChecksumProgress()
        local = threading.local()
        opened: list = []

        def work(lo, hi):
            conns = getattr(local, "conns", None)
            if conns is None:
                conns = local.conns = (self._cf(), self._mcf())
                opened.extend(conns)
            self._chunk(conns, lo, hi)

        inflight: set[cf.Future] = set()
        try:
            with cf.ThreadPoolExecutor(threads, thread_name_prefix="checksum") as ex:
                lo: Key | None = None
                while True:
                    while len(inflight) >= threads:
                        done, inflight = cf.wait(inflight, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                        for f in done:
                            f.result()
                        self._checkpoint()
                    self._checkpoint()
                    hi = self._bounds(conn, lo, self._chunk_size())
                    inflight.add(ex.submit(work, lo, hi))
                    if hi is None:
                        break
                    lo = hi
                for f in cf.as_completed(inflight):
                    f.result()
                inflight = set()
        finally:
            for f in inflight:
                f.cancel()
            close_quietly(*opened)
        self.progress.done = True
        return self.progress
