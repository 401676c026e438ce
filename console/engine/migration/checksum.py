"""Checksum before cut-over (beyond gh-ost): compare the original and the
ghost chunk by chunk on the shared columns.

For each chunk a cheap pass reads the original without locks, writes a
marker to the changelog, waits for the binlog apply up to it and reads the
ghost: equal sums end there.  Otherwise (writes between the two reads, or a
real difference) the exact pass runs: the original's rows are read ``LOCK IN
SHARE MODE`` inside a transaction (writers of that range wait), a marker is
written and the apply waited for: every change made to the range before the
lock is then in the ghost, so both checksums must be equal.  A mismatching chunk is copied again and checked again; the
cut-over is refused while any mismatch remains."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from dataclasses import dataclass

from console.engine.migration.copy import Copier, Key
from console.engine.migration.inspect import Inspection
from console.engine.migration.sqlutil import checksum_expr, cmp_tuple, col_list, key_range, qi, qt
from console.engine.migration.tables import write_changelog


@dataclass
class ChecksumProgress:
    chunks: int = 0
    rows: int = 0
    mismatches: int = 0
    recopied: int = 0
    remaining_mismatches: int = 0
    done: bool = False


class Checksummer:
    def __init__(self, ins: Inspection, copier: Copier, applier, conn_factory,
                 chunk_size: Callable[[], int], checkpoint: Callable[[], None],
                 attempts: int = 3, wait_timeout: float = 60.0):
        self.ins, self.copier, self.applier = ins, copier, applier
        self._cf = self._mcf = conn_factory
        self._chunk_size, self._checkpoint = chunk_size, checkpoint
        self.attempts, self.wait_timeout = attempts, wait_timeout
        self.progress = ChecksumProgress()
        ocols = list(ins.shared_original)
        gcols = list(ins.shared_ghost)
        self._oexpr = checksum_expr(ocols, ins.string_columns)
        self._gexpr = checksum_expr(gcols, ins.ghost_string_columns)

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

    def _compare(self, conn, mconn, lo: Key | None, hi: Key | None,
                 locked: bool = True) -> tuple[bool, int]:
        """(equal, rows) for ``lo < key <= hi`` (hi None: no upper bound).

        ``locked=False`` is the cheap first pass: the original is read
        without locks, so writes between the two reads show as a mismatch,
        which then gets the exact, locked comparison."""
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        if hi is None:
            ow, op = ("1=1", []) if lo is None else cmp_tuple(kc, lo, ">")
            gw, gp = ("1=1", []) if lo is None else cmp_tuple(gk, lo, ">")
        else:
            ow, op = key_range(kc, lo, hi)
            gw, gp = key_range(gk, lo, hi)
        with conn.cursor() as cur:
            if locked:
                cur.execute("START TRANSACTION")
            try:
                cur.execute(f"SELECT {self._oexpr} FROM {qt(self.ins.database, self.ins.table)} "
                            f"FORCE INDEX ({qi(self.ins.key.name)}) WHERE {ow}"
                            + (" LOCK IN SHARE MODE" if locked else ""), op)
                orig = tuple(int(x) for x in cur.fetchone())
                token = self.applier.expect_marker()
                write_changelog(mconn, self.ins, "marker", token)
                if not self.applier.wait_marker(token, self.wait_timeout):
                    raise TimeoutError("the binlog apply did not reach the checksum marker in "
                                       f"{self.wait_timeout:.0f}s")
                cur.execute(f"SELECT {self._gexpr} FROM {qt(self.ins.database, self.ins.ghost)} "
                            f"WHERE {gw}", gp)
                ghost = tuple(int(x) for x in cur.fetchone())
            finally:
                if locked:
                    cur.execute("ROLLBACK")
        return orig == ghost, orig[0]

    def _chunk(self, conns, lo: Key | None, hi: Key | None) -> None:
        conn, mconn = conns
        equal, rows = self._compare(conn, mconn, lo, hi, locked=False)
        if not equal:
            equal, rows = self._compare(conn, mconn, lo, hi)
        tries = mism = recop = 0
        while not equal and tries < self.attempts:
            mism += 1
            tries += 1
            self.copier.recopy_range(conn, lo, hi)
            recop += 1
            equal, rows = self._compare(conn, mconn, lo, hi)
        with self._plock:
            p = self.progress
            p.mismatches += mism
            p.recopied += recop
            p.remaining_mismatches += 0 if equal else 1
            p.chunks += 1
            p.rows += rows

    def run(self, conn, threads: int = 1) -> ChecksumProgress:
        """Chunks are bounded here in key order and compared by ``threads``
        workers, each with its own pair of connections."""
        self.progress = ChecksumProgress()
        self._plock = threading.Lock()
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
            for c in opened:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
        self.progress.done = True
        return self.progress
