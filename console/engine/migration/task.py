"""The migration task: inspect, build the ghost, copy in chunks while the
binlog apply keeps the ghost current, verify by checksum, wait while
postponed, cut over atomically, clean up.  Phases::

    inspecting -> copying -> indexing -> postponed -> checksumming -> cutting-over
    -> cleaning-up -> complete          (dry run: inspecting -> dry-run)

The checksum runs after the postponement, right before the cut-over, so
what is verified is what gets swapped in.

The checkpoint (``state_dir/tasks/<id>/checkpoint.json``) records only what
was committed, so ``resume`` continues after a crash or ``kill -9``."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import hashlib
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pymysql

from console.engine.migration.apply import OWN_SESSION, Applier, own_sessions_of
from console.engine.migration.checkpoint import Checkpoint
from console.engine.migration.checksum import CheckRanges, Checksummer
from console.engine.migration.control import ControlServer, check_socket_path
from console.engine.migration.copy import COPY_SESSION_STATEMENT, Copier
from console.engine.migration.copycheck import ValueChanged
from console.engine.migration.cutover import CutOverFailed, KeysDiffer, cut_over
from console.engine.migration.inspect import Inspection, Refused, inspect, table_names
from console.engine.migration.session import session_sql
from console.engine.migration.status import MigrationDetail, binlog_backlog
from console.engine.migration.tables import (
    Heartbeat,
    check_tables,
    defer_secondary_indexes,
    drop_tables,
    prepare_tables,
    replica_lag_sql,
    restore_indexes,
    write_changelog,
)
from console.engine.migration.throttle import (
    Observer,
    check_load,
    check_throttle_query,
    decide,
    format_load,
    parse_load,
)
from console.engine.task import Task, TaskStopped, command
from console.errors import CommandError, UserError
from console.kinds.migration import MigrationOptions
from console.mysql.connection import Endpoint, close_quietly, connect, describe_error, query, scalar
from console.mysql.flavor import Dialect
from console.options import parse_live

DIRTY_LIMIT = 200_000   # changed keys tracked for the checksum's final pass; more: full pass


class Panic(UserError):
    exit_code = 3


class Aborted(UserError):
    exit_code = 4


def binlog_start(conn, dialect: Dialect, tries: int = 50) -> tuple[tuple[str, int] | None, str]:
    """MariaDB: the current binlog file:pos and the GTID position of the same
    point, so the apply can start its dump right there (see
    ``Applier.applied_file``).  The file:pos is read between two equal reads
    of ``@@gtid_binlog_pos``: no transaction committed in between, so the
    two name the same point (``BINLOG_GTID_POS(file, pos)`` would say so
    too, but it reads the binlog file from its start: seconds for a large
    one).  Under a write load that never leaves a gap: (None, GTID), and
    the apply starts by GTID."""
    g2 = ""
    for _ in range(tries):
        g1 = scalar(conn, "SELECT @@global.gtid_binlog_pos") or ""
        at = dialect.binlog_position(conn)
        g2 = scalar(conn, "SELECT @@global.gtid_binlog_pos") or ""
        if at is None:
            return None, g2
        if g1 == g2:
            return at, g2
    return None, g2


class MigrationTask(Task):
    kind = "migration"

    def __init__(self, task_id: str, ep: Endpoint, opts: MigrationOptions, task_dir: Path,
                 log=lambda msg: None):
        super().__init__(task_id)
        self.ep, self.opts, self.task_dir = ep, opts.validate(), Path(task_dir)
        self.log = log
        # live settings (socket / screen may change them)
        self.chunk_size = opts.chunk_size
        self.dml_batch_size = opts.dml_batch_size
        self.nice_ratio = opts.nice_ratio
        self.max_lag_millis = opts.max_lag_millis
        self.max_load = parse_load(opts.max_load, "--max-load")
        self.critical_load = parse_load(opts.critical_load, "--critical-load")
        self.throttle_query = opts.throttle_query
        self.manual_throttle = False
        self.unpostponed = not opts.postpone_cut_over
        self.cutting_over = False
        self.ins: Inspection | None = None
        self.copier: Copier | None = None
        self.applier: Applier | None = None
        self.heartbeat: Heartbeat | None = None
        self.control: ControlServer | None = None
        self.checksummer: Checksummer | None = None
        self.dialect: Dialect | None = None
        self.checkpoint_file = Checkpoint(self.task_dir / "checkpoint.json")
        self._session = session_sql(opts.allow_zero_in_date)   # every connection's first statement
        self._panic = ""
        self._abort = ""
        self._hibernate_until = 0.0
        self._throttled = False
        self._replica_lags: dict[str, float | None] = {}
        self._server_binlog: tuple[str, int] | None = None
        self._binlog_sizes: dict[str, int] = {}
        self._copy_hist: collections.deque[float] = collections.deque(maxlen=60)
        self._apply_hist: collections.deque[float] = collections.deque(maxlen=60)
        self._watch_stop = threading.Event()
        self._observed = threading.Event()   # the watcher has judged the throttle once
        self.cutover_attempts = 0
        self.copy_format = opts.copy_binlog_format   # "row" after a failed SET binlog_format
        self._fmt_lock = threading.Lock()
        self.completed = False
        self.exit_code = 0
        self._final_keys: set | None = None   # changed keys the cut-over checks under its lock
        self._waiting_for = ""                # what the migration waits for (status)
        self._prepared: tuple | None = None   # (inspection connection, table lock) from prepare()
        self._resume_state: dict | None = None   # the checkpoint --resume continues from

    # ---- helpers ------------------------------------------------------------------

    def _connect(self, **kw):
        return connect(self.ep, database=self.opts.database, init_command=self._session, **kw)

    def confirm_target(self) -> str:
        return self.opts.table

    def _gate(self) -> None:
        """Blocks while throttled (copy and apply), never during cut-over."""
        while (self._throttled or time.time() < self._hibernate_until) and not self.cutting_over \
                and not self._stop.is_set():
            time.sleep(0.05)

    def _check_panic(self) -> None:
        """Raise if a panic or an abort was asked for (never waits: safe
        under the cut-over's lock, where a pause must not hold writers)."""
        if self._panic:
            raise Panic(f"panic: {self._panic}; original table untouched")
        if self._abort:
            raise Aborted(self._abort)

    def _check_abort(self) -> None:
        self._check_panic()
        if self.applier and self.applier.fatal:
            raise UserError(self.applier.fatal)
        self.checkpoint()

    def _throttled_checkpoint(self) -> None:
        """Between checksum chunks: obey the throttle, then abort checks."""
        self._check_abort()
        self._gate()
        self._check_abort()

    def _save_checkpoint(self) -> None:
        c, a = self.copier, self.applier
        if c is None or a is None or self.ins is None:
            return
        self.checkpoint_file.save(
            database=self.opts.database, table=self.opts.table, alter=self.opts.alter,
            applied_pos=a.applied_pos, copy_min=c.min, copy_max=c.max, copy_last=c.last,
            rows_copied=c.rows_copied, copy_done=c.done)

    # ---- run ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except UserError as e:
            self.exit_code = e.exit_code
            if isinstance(e, (Panic, Aborted)):
                self._abandon("panic" if isinstance(e, Panic) else "abort")
            elif isinstance(e, ValueChanged):
                raise ValueChanged(f"{e}; {self._abandon_after_copy()}") from None
            raise
        except TaskStopped:
            if self._panic:
                self._abandon("panic")
                self.exit_code = Panic.exit_code
                raise Panic(f"panic: {self._panic}; original table untouched, ghost dropped") from None
            raise

    def prepare(self) -> None:
        """Inspection and every check that may refuse the migration, before
        anything is created: ``migrate`` makes the task directory and the
        audit entries only once this passed (a refused run created both).
        Keeps the inspection's connection, and with --execute the table's
        server lock, for ``run``."""
        if self._prepared is not None:
            return
        o = self.opts
        self.set_phase("inspecting")
        conn = self._connect(read_timeout=3600, write_timeout=3600)
        lock = None
        try:
            self.ins = ins = inspect(conn, o)
            for n in ins.notes:
                self.log(n)
            self._preflight(conn)
            lock = self._take_table_lock()
            resume = o.execute and o.resume
            check_tables(conn, ins, drop_ghost=o.initially_drop_ghost_table,
                         drop_old=o.initially_drop_old_table, resume=resume)
            if resume:
                self._resume_state = self.checkpoint_file.load(o.database, o.table, o.alter)
            if not o.execute:
                close_quietly(lock)
                lock = None
        except BaseException:
            close_quietly(*(c for c in (lock, conn) if c is not None))
            raise
        self._prepared = (conn, lock)

    def release(self) -> None:
        """Close what ``prepare`` kept, when the task will not run after all."""
        held, self._prepared = self._prepared, None
        if held is not None:
            close_quietly(*(c for c in held if c is not None))

    def _run(self) -> None:
        self.prepare()
        assert self._prepared is not None and self.ins is not None
        conn, lock = self._prepared
        self._prepared = None
        try:
            if not self.opts.execute:
                self.set_phase("dry-run")
                self.log("dry run: inspection passed, nothing changed (add --execute to migrate)")
                return
            self._execute(conn, self.ins)
        finally:
            close_quietly(*(c for c in (lock, conn) if c is not None))

    def _take_table_lock(self):
        """One migration of a table at a time, whichever process or host runs
        it: a named server lock on a connection held for the whole run (a
        second run, a --resume beside a live one, or one with
        --initially-drop-ghost-table would drop or share the live ghost).  A
        dry run only checks that it is free."""
        o = self.opts
        name = "dbops-migrate-" + hashlib.sha1(f"{o.database}.{o.table}".encode()).hexdigest()[:40]
        lock = self._connect()
        try:
            got = scalar(lock, "SELECT IS_FREE_LOCK(%s)" if not o.execute else "SELECT GET_LOCK(%s, 0)",
                         (name,))
            if not got:
                holder = scalar(lock, "SELECT IS_USED_LOCK(%s)", (name,))
                raise UserError(f"another migration of {o.database}.{o.table} is running (server "
                                f"connection {holder} holds its lock): wait for it, or stop it first")
        except BaseException:
            close_quietly(lock)
            raise
        return lock

    def _preflight(self, conn) -> None:
        """What the inspection of the table cannot see, checked before
        anything is created (a dry run checks it too): the throttle's status
        variables exist and its query runs, the control socket's path can be
        served, and every replica the lag throttle will watch answers (an
        unreachable one would hold the migration throttled)."""
        check_load(conn, self.max_load, "--max-load")
        check_load(conn, self.critical_load, "--critical-load")
        check_throttle_query(conn, self.throttle_query)
        if self.opts.serve_socket_file:
            check_socket_path(self.opts.serve_socket_file)
        for name, open_conn in self._replica_endpoints().items():
            try:
                open_conn().close()
            except Exception as e:  # noqa: BLE001
                how = ("--throttle-control-replicas" if self.opts.throttle_control_replicas
                       else "found as a replica of this server")
                raise UserError(f"replica {name} ({how}) does not answer: {describe_error(e)}; its lag "
                                f"would be unknown and hold the migration throttled; fix it or name "
                                f"the replicas to watch with --throttle-control-replicas") from None

    def _execute(self, conn, ins: Inspection) -> None:
        opts = self.opts
        resume = opts.resume
        state = self._resume_state if resume else None
        self.dialect = ins.dialect
        prepare_tables(conn, ins, drop_ghost=opts.initially_drop_ghost_table,
                       drop_old=opts.initially_drop_old_table, resume=resume)
        # this connection's DDL on the ghost (deferred indexes) is the
        # migration's own; so is that of earlier runs' sessions (--resume)
        own = own_sessions_of(conn, ins) | {conn.thread_id()}
        write_changelog(conn, ins, f"{OWN_SESSION}{conn.thread_id()}", str(conn.thread_id()))
        if not resume and opts.defer_secondary_indexes:
            deferred = defer_secondary_indexes(conn, ins)
            if deferred:
                self.log(f"secondary indexes built after the copy: {', '.join(deferred)}")
        start_file = None
        if state:
            start_pos = state["applied_pos"]
        elif ins.flavor == "mariadb":
            start_file, start_pos = binlog_start(conn, self.dialect)
        else:
            start_pos = scalar(conn, "SELECT @@global.gtid_executed") or ""
        self.log(f"binlog apply starts at GTID {start_pos or '(empty)'}"
                 + (f" ({start_file[0]}:{start_file[1]})" if start_file else ""))
        self.copier = copier = Copier(ins)
        # checksum overlapped with the copy: only for a copy made entirely by
        # this run (after a resume, the full pass checks everything)
        overlap = opts.verify_checksum and not state
        self.applier = applier = Applier(self.ep, ins, start_pos, batch_size=lambda: self.dml_batch_size,
                                         gate=self._gate, dirty_limit=DIRTY_LIMIT if overlap else 0,
                                         start_file=start_file, turns=copier.turns,
                                         session=self._session, own_sessions=own)
        applier.start()
        self.heartbeat = Heartbeat(lambda: self._connect(), ins, state=self.phase)
        self.heartbeat.start()
        threading.Thread(target=self._watch, name=f"watch-{self.task_id}", daemon=True).start()
        if opts.serve_socket_file:
            self.control = ControlServer(opts.serve_socket_file, self)
            self.control.start()
        if state:
            copier.restore(state["min"], state["max"], state["last"], state["rows"])
            self.log(f"resuming: copy after key {state['last']}, {state['rows']} rows copied")
        else:
            copier.init_range(conn)
        self._save_checkpoint()

        # ---- copy (each chunk checked right after it is copied when overlapped)
        self.set_phase("copying")
        if overlap:
            self.checksummer = self._make_checksummer(copier, applier)
        self._copy(conn, copier, self.checksummer if overlap else None)
        copier.done = True
        self._save_checkpoint()
        self.log(f"row copy complete: {copier.rows_copied} rows in {copier.chunks} chunks "
                 f"(binlogged as {'statements' if self.copy_format == 'statement' else 'row events'})")
        t0 = time.monotonic()

        def indexing(names: list[str]) -> None:
            self.set_phase("indexing")
            self.log(f"building the deferred secondary index(es) {', '.join(names)} on the ghost "
                     f"({copier.rows_copied} rows copied)")

        added = restore_indexes(conn, ins, starting=indexing)
        if added:
            self.log(f"secondary indexes added to the ghost in {time.monotonic() - t0:.2f}s: "
                     f"{', '.join(added)}")
        self._drain(conn)

        # ---- postpone
        postponed = False
        while self._postponed():
            if not postponed:
                self.set_waiting("the cut-over command (postponed: `cut-over` on the socket or the "
                                 "console" + (f", or removal of {opts.postpone_cut_over_flag_file})"
                                              if opts.postpone_cut_over_flag_file else ")"))
            postponed = True
            self.set_phase("postponed")
            self._check_abort()
            self._save_checkpoint()
            self.sleep(0.2)

        self.set_waiting("")

        # ---- checksum
        if opts.verify_checksum:
            self.set_phase("checksumming")
            if overlap and not postponed and applier.tracking_dirty and not ins.added_unique:
                p = self._final_rounds(conn, self.checksummer)
            else:
                if overlap:
                    why = ("postponed" if postponed else "new unique key: a REPLACE may delete a checked row"
                           if ins.added_unique else "too many changed keys to track")
                    self.log(f"checksum: full pass before the cut-over ({why})")
                self.checksummer = cs = self._make_checksummer(copier, applier)
                p = cs.run(conn, threads=opts.checksum_threads)
            self.log(f"checksum: {p.chunks} chunks, {p.rows} rows, {p.keys_rechecked} rows of changed "
                     f"keys re-checked, {p.locked_passes} locked comparison(s), {p.mismatches} "
                     f"mismatches, {p.recopied} re-copied, {p.remaining_mismatches} remaining")
            if p.remaining_mismatches:
                hint = (f"; do rows collide on the new unique key(s) {', '.join(ins.added_unique)}?"
                        if ins.added_unique else "")
                raise UserError(f"checksum: {p.remaining_mismatches} chunk(s) still differ after "
                                f"re-copy; cut-over refused (ghost kept for inspection); first: "
                                f"{p.first_mismatch}{hint}")

        # ---- cut-over
        self.set_phase("cutting-over")
        self._cut_over()

        # ---- cleanup
        self.set_phase("cleaning-up")
        self.log(f"binlog apply: {applier.events_applied} row events in {applier.batches} batches, "
                 f"{applier.apply_seconds:.2f}s executing them")
        self._stop_workers()
        drop_tables(conn, ins, ghost=False, changelog=True)
        if opts.ok_to_drop_table:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS `{ins.database}`.`{ins.old}`")
            self.log(f"dropped old table {ins.old}")
        else:
            self.log(f"old table kept as {ins.database}.{ins.old} (drop it when satisfied)")
        self.checkpoint_file.remove()
        self.completed = True
        self.set_phase("complete")

    def set_waiting(self, what: str) -> None:
        """What the migration waits for, in the status ("" when nothing)."""
        if what != self._waiting_for and what:
            self.log(f"waiting for {what}")
        self._waiting_for = what

    def set_phase(self, phase: str) -> None:
        super().set_phase(phase)
        if self.heartbeat is not None:
            self.heartbeat.state = phase       # the changelog's state row

    def _checksum_chunk_rows(self) -> int:
        return max(self.chunk_size, self.opts.checksum_chunk_size)

    def _make_checksummer(self, copier: Copier, applier: Applier) -> Checksummer:
        return Checksummer(self.ins, copier, applier, lambda: self._connect(),
                           binlog_position=self.dialect.binlog_position,
                           chunk_size=self._checksum_chunk_rows,
                           checkpoint=self._throttled_checkpoint)

    def _lock_budget(self) -> float:
        """Seconds the changed keys' last check may add to the cut-over lock."""
        return self.opts.cut_over_lock_timeout_seconds / 3

    def _final_rounds(self, conn, cs: Checksummer):
        """The overlapped checksum's last pass, bounded: rounds of unlocked
        comparisons over the keys row events touched (each round only those
        changed since the last, plus those not yet proven equal), until the
        rest can be compared under the cut-over's lock within its budget
        (``_check_under_lock``: exact there, nothing writes).  On a hot table
        a round never ends with nothing changed; before, the pass had to
        prove every key equal outside the lock and under 4 writers without
        pause no cut-over came within 150 s."""
        assert self.applier is not None
        pending: set = set()
        with cs.connections() as conns:
            rounds = 0
            while True:
                self._drain(conn)
                taken = self.applier.take_dirty()
                assert taken is not None
                pending |= taken
                per_key = cs.seconds_per_key
                if not pending or (rounds and per_key is not None
                                   and len(pending) * per_key <= self._lock_budget()):
                    break
                rounds += 1
                self.set_waiting(
                    f"checksum round {rounds}: {len(pending)} changed key(s) to compare before the "
                    f"cut-over" + (f" (~{len(pending) * per_key:.2f}s under the lock, budget "
                                   f"{self._lock_budget():.2f}s)" if per_key is not None else ""))
                pending = set(cs.filter_keys(conns, sorted(pending, key=repr)))
        self.set_waiting("")
        self._final_keys = pending
        self.log(f"checksum: {len(pending)} changed key(s) left for the cut-over's lock after "
                 f"{rounds} round(s)")
        return cs.progress

    def _check_under_lock(self, oconn, gconn) -> None:
        """Run by the cut-over under its lock, the apply drained: the keys
        left by ``_final_rounds`` and every key changed since, compared once
        (exact: nothing writes).  A difference calls the attempt off."""
        assert self.applier is not None and self.checksummer is not None
        taken = self.applier.take_dirty()
        self._final_keys |= taken or set()
        keys = sorted(self._final_keys, key=repr)
        differ = self.checksummer.verify_quiet(oconn, gconn, keys)
        if differ:
            self._final_keys = set(differ)
            raise KeysDiffer(differ)
        self._final_keys = set()
        self.checksummer.progress.done = True
        self.log(f"checksum: {len(keys)} changed key(s) equal under the cut-over lock")

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
            for rlo, rhi in ready:
                checks.append(cs_ex.submit(verify, rlo, rhi))
            if self.nice_ratio > 0:
                self._stop.wait((time.monotonic() - t0) * self.nice_ratio)
            return n

        self._observed.wait(10)       # no chunk before the first throttle check
        threads = self.opts.copy_threads
        inflight: set[cf.Future] = set()
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
                        for f in done:
                            f.result()          # a failed chunk fails the copy
                        self._check_abort()
                    self._check_abort()
                    self._gate()
                    self._check_abort()
                    reap(False)
                    inflight.add(ex.submit(work, after, hi))
                    after = hi
                    if time.monotonic() - last_save >= 1.0:
                        self._save_checkpoint()
                        last_save = time.monotonic()
                    hi = copier.next_bound(conn, self.chunk_size, after)
                for f in cf.as_completed(inflight):
                    f.result()
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

    def _postponed(self) -> bool:
        f = self.opts.postpone_cut_over_flag_file
        if f and os.path.exists(f):
            return True
        return not self.unpostponed

    def _drain(self, conn) -> None:
        """Wait until the apply has everything written so far."""
        assert self.applier is not None

        def waiting(seconds: int) -> None:
            self._check_abort()
            backlog = self.detail().backlog_bytes
            self.set_waiting(f"the binlog apply to catch up ({seconds}s so far"
                             + (f", {backlog} bytes behind)" if backlog is not None else ")"))

        self._check_abort()
        self.applier.catch_up(lambda token: write_changelog(conn, self.ins, "marker", token),
                              each_wait=waiting)
        if self._waiting_for.startswith("the binlog apply"):
            self.set_waiting("")

    def _cut_over(self) -> None:
        assert self.ins and self.applier
        last = ""
        for attempt in range(1, self.opts.default_retries + 1):
            self._check_abort()
            self.cutover_attempts = attempt
            self.cutting_over = True
            try:
                cut_over(self.ep, self.ins, self.applier, self.opts.cut_over_lock_timeout_seconds,
                         log=self.log, abort=self._check_panic,
                         check=self._check_under_lock if self._final_keys is not None else None)
                self.log(f"cut-over done (attempt {attempt})")
                return
            except UserError:
                raise
            except KeysDiffer as e:
                last = str(e)
                self.log(f"cut-over attempt {attempt} called off, original intact: {last}")
                self._recopy_differing(e.keys)
            except Exception as e:  # noqa: BLE001 - retried; original intact
                last = str(e) if isinstance(e, CutOverFailed) else str(describe_error(e))
                self.set_error(f"cut-over attempt {attempt}: {last}")
                self.log(f"cut-over attempt {attempt} failed, original intact: {last}")
            finally:
                self.cutting_over = False
            self.sleep(min(1.0 * attempt, 5.0))
        raise UserError(f"cut-over failed {self.opts.default_retries} times (last: {last}); "
                        f"original table intact, ghost and checkpoint kept: retry with --resume --execute")

    def _recopy_differing(self, keys: list) -> None:
        """Keys that differed under the cut-over lock: compared again with
        the original's rows locked, and copied again while they differ (the
        checksum's usual way); a difference that remains refuses the cut-over."""
        assert self.checksummer is not None
        cs = self.checksummer
        before = cs.progress.remaining_mismatches
        with cs.connections() as conns:
            cs.verify_keys(conns, keys)
        if cs.progress.remaining_mismatches > before:
            raise UserError(f"checksum: rows with key(s) {', '.join(map(repr, keys[:3]))}"
                            f"{' ...' if len(keys) > 3 else ''} still differ after re-copy "
                            f"({cs.progress.first_mismatch or 'no row read differently'}); cut-over "
                            f"refused (ghost kept for inspection)")

    def _stop_workers(self) -> None:
        self._watch_stop.set()
        for w in (self.applier, self.heartbeat):
            if w is not None:
                w.stop()
        if self.control is not None:
            self.control.close()
            self.control = None

    def _abandon(self, why: str) -> bool:
        """A panic, an abort (critical load) or a copy that would change
        values ends the migration for good: the ghost, the changelog and the
        checkpoint go; the original was never touched.  False when they
        could not be dropped."""
        self._stop_workers()
        if self.ins is None or not self.opts.execute:
            return True
        try:
            c = self._connect()
            try:
                drop_tables(c, self.ins)
            finally:
                c.close()
            self.checkpoint_file.remove()
            self.log(f"{why}: ghost and changelog dropped; original untouched")
            return True
        except Exception as e:  # noqa: BLE001
            self.log(f"{why}: could not drop ghost/changelog: {e}")
            return False

    def _abandon_after_copy(self) -> str:
        """Drop what the migration made after its copy stopped on a value
        it would change (a rerun with the same ALTER stops there again);
        what is left, if anything, is said precisely."""
        if self._abandon("copy stopped"):
            return ("migration aborted, ghost and changelog dropped, original untouched: fix the "
                    "row(s) or the ALTER and run again")
        db, ins = self.opts.database, self.ins
        ghost, changelog = table_names(self.opts.table)[:2] if ins is None else (ins.ghost, ins.changelog)
        return (f"migration aborted, original untouched; could not drop its tables: drop "
                f"`{db}`.`{ghost}` and `{db}`.`{changelog}` and remove {self.checkpoint_file.path} "
                f"before running again")

    def cleanup(self) -> None:
        self._stop_workers()
        if self.applier is not None:
            self.applier.join(5)

    def on_stop_requested(self) -> None:
        pass

    # ---- watcher: throttle, panic flag, rates, backlog -------------------------------

    def _replica_endpoints(self) -> dict[str, object]:
        out = {}
        if self.opts.throttle_control_replicas:
            pairs = [(r.rsplit(":", 1)[0], int(r.rsplit(":", 1)[1]))
                     for r in self.opts.throttle_control_replicas]
        else:
            pairs = list(self.ins.replicas) if self.ins else []
        for h, p in pairs:
            ep = self.ep.with_address(h, p)
            out[f"{h}:{p}"] = (lambda ep=ep: connect(ep, connect_timeout=1.0, read_timeout=2.0))
        return out

    def _watch(self) -> None:
        assert self.ins is not None
        obs = Observer(lambda: self._connect(read_timeout=5), self._replica_endpoints(),
                       replica_lag_sql(self.ins))
        mon = None
        last_rows = last_events = 0
        last_t = time.monotonic()
        while not self._watch_stop.wait(0.1):
            try:
                if self.opts.panic_flag_file and os.path.exists(self.opts.panic_flag_file):
                    self._request_panic(f"panic flag file {self.opts.panic_flag_file} exists")
                names = sorted(set(self.max_load) | set(self.critical_load))
                o = obs.observe(names, self.throttle_query, self.opts.throttle_flag_file,
                                self.manual_throttle)
                v = decide(o, max_lag_millis=self.max_lag_millis, max_load=self.max_load,
                           critical_load=self.critical_load)
                self._replica_lags = dict(o.replica_lags)
                if v.critical:
                    if self.opts.critical_load_hibernate_seconds > 0:
                        self._hibernate_until = time.time() + self.opts.critical_load_hibernate_seconds
                        self.log(f"{v.critical}: hibernating {self.opts.critical_load_hibernate_seconds:g}s")
                    elif not self._abort:
                        self._abort = f"{v.critical}: aborted; original table untouched, ghost dropped"
                reason = v.reason
                if not reason and time.time() < self._hibernate_until:
                    reason = "hibernating after critical load"
                self._throttled = bool(reason)
                self.set_throttle(reason)
                now = time.monotonic()
                if now - last_t >= 1.0:
                    rows = self.copier.rows_copied if self.copier else 0
                    evs = self.applier.events_applied if self.applier else 0
                    self._copy_hist.append((rows - last_rows) / (now - last_t))
                    self._apply_hist.append((evs - last_events) / (now - last_t))
                    last_rows, last_events, last_t = rows, evs, now
                    if mon is None:
                        mon = self._connect(read_timeout=5)
                    self._server_binlog = sb = self.dialect.binlog_position(mon)
                    a = self.applier
                    if sb and a is not None and a.read_file and a.read_file != sb[0]:
                        # rotated past the apply's file: the backlog spans files
                        self._binlog_sizes = {str(r["Log_name"]): int(r["File_size"])
                                              for r in query(mon, "SHOW BINARY LOGS")}
            except Exception as e:  # noqa: BLE001 - observation errors never kill the task
                self.set_error(f"watch: {e}")
                mon = None
            finally:
                self._observed.set()
        obs.close()
        if mon is not None:
            mon.close()

    def _request_panic(self, reason: str) -> None:
        if not self._panic:
            self._panic = reason
            self.log(f"PANIC: {reason}")
            self._stop.set()
            self._resume.set()

    # ---- commands -------------------------------------------------------------------

    @command("throttle", help="throttle the copy and apply manually")
    def cmd_throttle(self) -> str:
        self.manual_throttle = True
        return "throttled"

    @command("no-throttle", help="end the manual throttle")
    def cmd_no_throttle(self) -> str:
        self.manual_throttle = False
        return "manual throttle off"

    @command("cut-over", help="cut over as soon as the copy is verified (unpostpone)")
    def cmd_cut_over(self) -> str:
        self.unpostponed = True
        f = self.opts.postpone_cut_over_flag_file
        if f and os.path.exists(f):
            os.unlink(f)
        return "cut-over will proceed"

    @command("unpostpone", help="alias of cut-over")
    def cmd_unpostpone(self) -> str:
        return self.cmd_cut_over()

    @command("panic", dangerous=True, help="stop now; drop ghost; original untouched")
    def cmd_panic(self) -> str:
        self._request_panic("operator panic")
        return "panic requested"

    @command("set", help="change a setting: setting=chunk-size|dml-batch-size|... value=...")
    def cmd_set(self, setting: str, value) -> str:
        """A live option (declared ``live`` in console/kinds/migration.py),
        within its declared bounds; load thresholds and the throttle query
        are also checked on the server."""
        try:
            field, parsed = parse_live(MigrationOptions, setting, str(value))
        except UserError as e:
            raise CommandError(str(e)) from None
        name = field.replace("_", "-")
        if field in ("max_load", "critical_load"):
            parsed = self._checked_live(name, parse_load(parsed, name), check_load)
        elif field == "throttle_query":
            parsed = self._checked_live(name, parsed, check_throttle_query)
        setattr(self, field, parsed)
        return f"{name}={self.get_setting(name)}"

    def _checked_live(self, name: str, value, check):
        """A throttle setting changed while the migration runs is checked on
        the server first, like the flag at the start (before the start there
        is nothing to ask: ``prepare`` checks it then)."""
        if self.ins is None:
            return value
        try:
            conn = self._connect(read_timeout=10)
        except UserError as e:
            raise CommandError(f"{name}: cannot check it on the server: {e}") from None
        try:
            check(conn, value, name)
        except UserError as e:
            raise CommandError(str(e)) from None
        finally:
            close_quietly(conn)
        return value

    def get_setting(self, name: str):
        return {"chunk-size": self.chunk_size, "dml-batch-size": self.dml_batch_size,
                "max-lag-millis": self.max_lag_millis, "nice-ratio": self.nice_ratio,
                "max-load": format_load(self.max_load), "critical-load": format_load(self.critical_load),
                "throttle-query": self.throttle_query}.get(name, "")

    # ---- status ---------------------------------------------------------------------

    def detail(self) -> MigrationDetail:
        o, ins, c, a = self.opts, self.ins, self.copier, self.applier
        d = MigrationDetail(database=o.database, table=o.table, ghost=table_names(o.table)[0], alter=o.alter,
                            execute=o.execute, chunk_size=self.chunk_size,
                            dml_batch_size=self.dml_batch_size, nice_ratio=self.nice_ratio,
                            max_lag_millis=self.max_lag_millis, max_load=format_load(self.max_load),
                            critical_load=format_load(self.critical_load),
                            throttle_query=self.throttle_query, postponed=self._postponed(),
                            cutover_attempts=self.cutover_attempts, waiting_for=self._waiting_for)
        if ins is None:
            return d
        est = max(ins.rows_estimate, 1)
        rows = c.rows_copied if c else 0
        rate = sum(list(self._copy_hist)[-5:]) / max(1, len(list(self._copy_hist)[-5:]))
        arate = sum(list(self._apply_hist)[-5:]) / max(1, len(list(self._apply_hist)[-5:]))
        done = bool(c and c.done)
        pct = 100.0 if done else min(99.9, 100.0 * rows / max(est, rows, 1))
        eta = 0.0 if done else ((max(est - rows, 0) / rate) if rate > 0 else None)
        backlog = None
        hb = None
        coords = applied = ""
        if a is not None:
            coords = f"{a.read_file}:{a.read_pos}" if a.read_file else ""
            applied = a.applied_pos
            if a.heartbeat_at:
                hb = max(0.0, time.time() - a.heartbeat_at)
            sb = self._server_binlog
            if sb and a.read_file:
                backlog = binlog_backlog((a.read_file, a.read_pos), sb, self._binlog_sizes)
        cs = ""
        if self.checksummer is not None:
            p = self.checksummer.progress
            cs = (f"{'verified' if p.done and not p.remaining_mismatches else 'checking'}: "
                  f"{p.chunks} chunks, {p.rows} rows, {p.mismatches} mismatches, {p.recopied} re-copied")
        return replace(d, unique_key=f"{ins.key.name} ({', '.join(ins.key.columns)})",
                       rows_estimate=ins.rows_estimate, rows_copied=rows, percent=round(pct, 1),
                       copy_rate=round(rate, 1), apply_rate=round(arate, 1),
                       events_applied=a.events_applied if a else 0, backlog_bytes=backlog,
                       eta_seconds=None if eta is None else round(eta, 1), heartbeat_lag=hb,
                       replica_lags=tuple(sorted(self._replica_lags.items())),
                       binlog_coordinates=coords, applied_pos=applied, checksum=cs,
                       notes=ins.notes, copy_rate_history=tuple(self._copy_hist),
                       apply_rate_history=tuple(self._apply_hist))

    def summary(self) -> str:
        d = self.detail()
        eta = "-" if d.eta_seconds is None else f"{d.eta_seconds:.0f}s"
        thr = self._throttle_reason
        return (f"{d.database}.{d.table} {self.phase or self.state}: copied {d.rows_copied}/"
                f"{d.rows_estimate} ({d.percent:.1f}%) {d.copy_rate:.0f} rows/s, applied "
                f"{d.events_applied} events, eta {eta}"
                + (f", throttled: {thr}" if thr else "")
                + (f", waiting for {d.waiting_for}" if d.waiting_for else ""))

    def status_text(self) -> str:
        d = self.detail()
        lines = [
            f"migrating {d.database}.{d.table}: {d.alter}",
            f"state: {self.state} phase: {self.phase} since {time.strftime('%H:%M:%S', time.localtime(self._since))}",
            f"unique key: {d.unique_key}",
            f"copy: {d.rows_copied}/{d.rows_estimate} rows ({d.percent:.1f}%), {d.copy_rate:.0f} rows/s, "
            f"eta {'-' if d.eta_seconds is None else f'{d.eta_seconds:.0f}s'}",
            f"apply: {d.events_applied} events, {d.apply_rate:.0f}/s, backlog "
            f"{'-' if d.backlog_bytes is None else d.backlog_bytes} bytes, heartbeat lag "
            f"{'-' if d.heartbeat_lag is None else f'{d.heartbeat_lag * 1000:.0f}ms'}",
            f"binlog: read {d.binlog_coordinates or '-'} applied GTID {d.applied_pos or '-'}",
            "replica lag: " + (", ".join(f"{n} {'?' if v is None else f'{v * 1000:.0f}ms'}"
                                         for n, v in d.replica_lags) or "-"),
            f"throttle: {self._throttle_reason or 'no'}",
            f"settings: chunk-size={d.chunk_size} dml-batch-size={d.dml_batch_size} "
            f"nice-ratio={d.nice_ratio:g} max-lag-millis={d.max_lag_millis} "
            f"max-load={d.max_load or '-'} critical-load={d.critical_load or '-'}",
            f"checksum: {d.checksum or '-'}",
            f"postponed: {'yes' if d.postponed else 'no'}; cut-over attempts: {d.cutover_attempts}",
            f"waiting for: {d.waiting_for or '-'}",
        ]
        if self._last_error:
            lines.append(f"last error: {self._last_error}")
        return "\n".join(lines)


__all__ = ["MigrationTask", "Panic", "Aborted", "Refused"]
