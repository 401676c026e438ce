"""The migration's row copy schedule: chunk bounds read in key order while
``copy_threads`` workers copy the chunks before them, each on its own
connection (binlogged as statements where it may set ``binlog_format``);
the checkpoint saved with the gap-free prefix of committed chunks; and, when
the checksum overlaps the copy, a pool of checksum workers that checks the
committed chunks while the copy goes on.

``CopyScheduler`` is mixed into ``MigrationTask`` (``task.py``); the copy of
one chunk is ``copy.py``'s ``Copier``, the comparison ``checksum.py``'s
``Checksummer``."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import threading
import time

import pymysql

from console.engine.migration.checksum import CheckRanges, Checksummer
from console.engine.migration.copy import COPY_LOCK_WAIT_SECONDS, COPY_SESSION_STATEMENT, Copier
from console.engine.migration.follow import record_copy_last
from console.mysql.connection import describe_error


class CopyScheduler:
    """The copy's scheduling with its checksum pool, for ``MigrationTask``."""

    def _checksum_chunk_rows(self) -> int:
        return max(self.chunk_size, self.opts.checksum_chunk_size)

    def _copy(self, conn, copier: Copier, cs: Checksummer | None = None) -> None:
        """Chunks are bounded here, in key order, and copied by
        ``copy_threads`` workers with their own connections; the checkpoint
        records only the gap-free prefix of committed chunks.  With ``cs``
        each committed chunk is checked by a checksum worker of its own
        while the copy goes on."""
        local = threading.local()
        conns: list = []
        cs_local = threading.local()
        checks: collections.deque[cf.Future] = collections.deque()
        # several checkers: each spends most of its time waiting for the apply
        # to pass its marker, so they overlap well even on few cores
        cs_ex = (cf.ThreadPoolExecutor(self.opts.checksum_threads, thread_name_prefix=f"checksum-{self.task_id}")
                 if cs else None)
        ranges = CheckRanges(self._checksum_chunk_rows)   # chunks checked together
        in_order = threading.Lock()

        def verify(lo, hi):
            pair = getattr(cs_local, "conns", None)
            if pair is None:
                pair = cs_local.conns = cs.open_conns()
                conns.extend(pair)
            self._throttled_checkpoint()
            cs.verify_chunk(pair, lo, hi)

        def reap(wait: bool) -> None:
            while checks and (wait or checks[0].done()):
                checks.popleft().result()     # a failed check fails the migration

        def work(lo, hi):
            c = getattr(local, "conn", None)
            if c is None:
                c = local.conn = self._copy_conn()
                conns.append(c)
            t0 = time.monotonic()
            n = copier.copy_range(c, lo, hi)
            with in_order:      # copy threads: ranges get the joined chunks in key order
                joined = copier.chunk_done(lo, hi, n)
                ready = ranges.add(joined) if cs_ex is not None else []
                if joined:      # what a new primary holds of the copy (``follow.py``)
                    record_copy_last(c, self.ins, copier.last)
            for rlo, rhi in ready:
                checks.append(cs_ex.submit(verify, rlo, rhi))
            if self.nice_ratio > 0:
                self._stop.wait((time.monotonic() - t0) * self.nice_ratio)
            return n

        self._observed.wait(10)       # no chunk before the first throttle check
        threads = self.copy_threads     # --copy-threads, or chosen (``copythreads.py``)
        inflight: set[cf.Future] = set()
        seq: dict[cf.Future, int] = {}      # the chunks in flight, numbered in key order
        numbers = itertools.count()

        def settle(done) -> None:
            """A failed chunk fails the copy, with the failure of the first
            range in key order among those in flight (with several threads a
            later chunk can fail first: the row named is then still the
            first that does not fit)."""
            for f in done:
                if f.exception() is None:
                    seq.pop(f, None)
                    continue
                cf.wait(list(seq))
                failed = [g for g in seq if not g.cancelled() and g.exception() is not None]
                raise min(failed, key=seq.__getitem__).exception()

        after = copier.last
        last_save = time.monotonic()
        try:
            with cf.ThreadPoolExecutor(threads, thread_name_prefix=f"copy-{self.task_id}") as ex:
                # the next chunk's bound is read while the chunks in flight copy
                hi = copier.next_bound(conn, self.chunk_size, after)
                while hi is not None:
                    while len(inflight) >= threads:
                        done, inflight = cf.wait(inflight, timeout=0.5,
                                                 return_when=cf.FIRST_COMPLETED)
                        settle(done)
                        self._check_abort()
                    self._check_abort()
                    self._gate()
                    self._check_abort()
                    reap(False)
                    f = ex.submit(work, after, hi)
                    seq[f] = next(numbers)
                    inflight.add(f)
                    after = hi
                    if time.monotonic() - last_save >= 1.0:
                        self._save_checkpoint()
                        last_save = time.monotonic()
                    hi = copier.next_bound(conn, self.chunk_size, after)
                for f in cf.as_completed(inflight):
                    settle([f])
                inflight = set()
            if cs_ex is not None:
                for rlo, rhi in ranges.rest():
                    checks.append(cs_ex.submit(verify, rlo, rhi))
            if checks:
                self.log(f"copy: last chunk committed; {sum(not f.done() for f in checks)} chunk "
                         f"check(s) still running")
            reap(True)
        finally:
            for f in inflight:
                f.cancel()
            if cs_ex is not None:
                for f in checks:
                    f.cancel()
                cs_ex.shutdown(wait=True)
            for c in conns:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass

    def _copy_conn(self):
        """A copy connection; with ``copy_binlog_format = "statement"`` its
        chunks are binlogged as statements (falls back to row events, once
        and logged, where the user may not set the session's binlog_format)."""
        c = self._connect(read_timeout=3600, write_timeout=3600)
        with c.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (COPY_LOCK_WAIT_SECONDS,))
        if self.copy_format == "statement":
            try:
                with c.cursor() as cur:
                    for sql in COPY_SESSION_STATEMENT:
                        cur.execute(sql)
            except pymysql.MySQLError as e:  # the session keeps its row format
                with self._fmt_lock:
                    if self.copy_format == "statement":
                        self.copy_format = "row"
                        self.log(f"row copy binlogged as row events: cannot set binlog_format="
                                 f"STATEMENT ({describe_error(e)})")
        return c
