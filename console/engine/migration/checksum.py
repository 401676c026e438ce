"""Checksum before cut-over (beyond gh-ost): compare the original and the
ghost chunk by chunk on the shared columns.

For each chunk the original's rows are read ``LOCK IN SHARE MODE`` inside a
transaction (writers of that range wait), a marker is written to the
changelog and the binlog apply is waited for up to it: every change made to
the range before the lock is then in the ghost, so both checksums must be
equal.  A mismatching chunk is copied again and checked again; the
cut-over is refused while any mismatch remains."""

from __future__ import annotations

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
    def __init__(self, ins: Inspection, copier: Copier, applier, marker_conn_factory,
                 chunk_size: Callable[[], int], checkpoint: Callable[[], None],
                 attempts: int = 3, wait_timeout: float = 60.0):
        self.ins, self.copier, self.applier = ins, copier, applier
        self._mcf = marker_conn_factory
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

    def _compare(self, conn, mconn, lo: Key | None, hi: Key | None) -> tuple[bool, int]:
        """(equal, rows) for ``lo < key <= hi`` (hi None: no upper bound)."""
        kc, gk = list(self.ins.key.columns), list(self.ins.key.ghost_columns)
        if hi is None:
            ow, op = ("1=1", []) if lo is None else cmp_tuple(kc, lo, ">")
            gw, gp = ("1=1", []) if lo is None else cmp_tuple(gk, lo, ">")
        else:
            ow, op = key_range(kc, lo, hi)
            gw, gp = key_range(gk, lo, hi)
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION")
            try:
                cur.execute(f"SELECT {self._oexpr} FROM {qt(self.ins.database, self.ins.table)} "
                            f"FORCE INDEX ({qi(self.ins.key.name)}) WHERE {ow} LOCK IN SHARE MODE", op)
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
                cur.execute("ROLLBACK")
        return orig == ghost, orig[0]

    def run(self, conn) -> ChecksumProgress:
        mconn = self._mcf()
        p = self.progress = ChecksumProgress()
        try:
            lo: Key | None = None
            while True:
                self._checkpoint()
                hi = self._bounds(conn, lo, self._chunk_size())
                equal, rows = self._compare(conn, mconn, lo, hi)
                tries = 0
                while not equal and tries < self.attempts:
                    p.mismatches += 1
                    tries += 1
                    self.copier.recopy_range(conn, lo, hi)
                    p.recopied += 1
                    equal, rows = self._compare(conn, mconn, lo, hi)
                if not equal:
                    p.remaining_mismatches += 1
                p.chunks += 1
                p.rows += rows
                if hi is None:
                    break
                lo = hi
        finally:
            mconn.close()
        p.done = True
        return p
