"""The migration task: inspect, build the ghost, copy in chunks while the
binlog apply keeps the ghost current, verify by checksum, wait while
postponed, cut over atomically, clean up.  Phases::

    inspecting -> copying -> indexing -> postponed -> checksumming -> cutting-over
    -> cleaning-up -> complete          (dry run: inspecting -> dry-run)

When the primary is lost on the way (a failover or switchover, ``follow.py``)
the migration pauses in ``finding-primary`` and continues on the new primary
from what that server holds, as a resume would.

The checksum runs after the postponement, right before the cut-over, so
what is verified is what gets swapped in.

The checkpoint (``state_dir/tasks/<id>/checkpoint.json``) records only what
was committed, so ``resume`` continues after a crash or ``kill -9``."""

from __future__ import annotations

import collections
import hashlib
import socket
import threading
import time
from pathlib import Path

from console.engine.coord.coordinator import Fenced
from console.engine.migration import copythreads
from console.engine.migration.apply import Applier
from console.engine.migration.apply_stream import OWN_SESSION, own_sessions_of
from console.engine.migration.checkpoint import Checkpoint
from console.engine.migration.checksum import Checksummer
from console.engine.migration.control import ControlServer, check_socket_path
from console.engine.migration.control_commands import LiveControl
from console.engine.migration.copy import Copier
from console.engine.migration.copycheck import ValueChanged
from console.engine.migration.copyschedule import CopyScheduler
from console.engine.migration.copythreads import server_facts
from console.engine.migration.cutover import CutOverFailed, KeysDiffer, cut_over
from console.engine.migration.follow import (
    APPLIED_POS,
    FollowPrimary,
    PrimaryLost,
    ghost_rows_upto,
    recorded,
)
from console.engine.migration.hooks import HookFailed, Hooks
from console.engine.migration.inspect import Inspection, Refused, inspect, table_names
from console.engine.migration.onreplica import (
    OnReplica,
    check_on_replica,
    start_replication,
    stop_replication,
)
from console.engine.migration.revert import inspect_revert, record_completed
from console.engine.migration.session import session_sql
from console.engine.migration.status import StatusReport
from console.engine.migration.tables import (
    Heartbeat,
    check_tables,
    defer_secondary_indexes,
    drop_tables,
    prepare_tables,
    restore_indexes,
    write_changelog,
)
from console.engine.migration.throttle import check_load, check_throttle_query
from console.engine.migration.throttling import Aborted, Panic, ThrottleWatch
from console.engine.task import Task, TaskStopped
from console.errors import UserError
from console.kinds.load import parse_load
from console.kinds.migration import MigrationOptions
from console.mysql.connection import Endpoint, close_quietly, connect, describe_error, scalar
from console.mysql.flavor import Dialect

DIRTY_LIMIT = 200_000   # changed keys tracked for the checksum's final pass; more: full pass


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


class MigrationTask(FollowPrimary, LiveControl, ThrottleWatch, CopyScheduler, StatusReport, Task):
    """The orchestration (this module): ``prepare``, ``run``, ``_execute``
    and its phases, the final checksum rounds, the cut-over attempts,
    abandon and cleanup.  Mixed in: the live settings and operator commands
    (``control_commands.py``), the throttle watch, its gate and the panic and
    abort checks (``throttling.py``), the copy's scheduling with its checksum
    pool (``copyschedule.py``) and the status (``status.py``)."""

    kind = "migration"

    def __init__(self, task_id: str, ep: Endpoint, opts: MigrationOptions, task_dir: Path,
                 log=lambda msg: None, cluster: tuple[Endpoint, ...] = ()):
        super().__init__(task_id)
        self.ep, self.opts, self.task_dir = ep, opts.validate(), Path(task_dir)
        # the cluster's hosts: where the new primary is looked for after a
        # failover (``follow.py``); none: the migration cannot tell it
        self.cluster = tuple(cluster)
        self._guarding = False          # writing connections check they are on the primary
        self._primary_lost = ""         # why the primary is gone (the watch's probe)
        self._probe_failures = 0
        self.primary_moves = 0
        self._swapped = False           # the cut-over's RENAME is done
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
        self.on_replica: OnReplica | None = None                # --test-on-replica / --migrate-on-replica
        self._revert: dict | None = None          # --revert: the completed migration's record
        self.cutover_at: dict = {}                # binlog position under the cut-over lock
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
        self.copy_threads = 1                 # the copy's connections (chosen when the copy starts)
        self._run_id = ""  # this run's id (kept by --resume): the lineage of its published progress
        self._rows_counted: tuple[int, int, int] | None = None   # --exact-rowcount: (count, ins, del)
        self.hooks = Hooks(opts.hooks_path, self._hook_env, log=log)
        self._t_start = time.monotonic()
        self._t_copy: list[float] = []            # copy start (and end): GH_OST_ELAPSED_COPY_SECONDS

    # ---- helpers ------------------------------------------------------------------

    def _connect(self, **kw):
        c = connect(self.ep, database=self.opts.database, init_command=self._session, **kw)
        self._guard(c)
        return c

    def confirm_target(self) -> str:
        return self.opts.table

    def _save_checkpoint(self) -> None:
        c, a = self.copier, self.applier
        if c is None or a is None or self.ins is None or self._revert is not None:
            return      # (a revert is not resumed: it starts again from its record)
        self.guard_write()  # a fenced owner (fleet lease lost) saves nothing more
        rec = self.checkpoint_file.save(
            database=self.opts.database, table=self.opts.table, alter=self.opts.alter,
            applied_pos=a.applied_pos, copy_min=c.min, copy_max=c.max, copy_last=c.last,
            rows_copied=c.rows_copied, copy_done=c.done, run=self._run_id)
        # to a shared fleet's coordinator, never backwards within this run: the
        # progress, and the whole record another engine resumes from
        # (``fleet_resume.py``) when this one dies
        rows, done = rec["copy"]["rows"], rec["copy"]["done"]   # (the copy threads count on)
        self.publish_checkpoint("migration", [int(done), rows],
                                {"rows": rows, "done": done, "applied_pos": rec["applied_pos"],
                                 "record": rec}, lineage=self._lineage())

    def _complete(self) -> None:
        """The run is complete (a cut-over, or a revert): nothing is left to
        resume, here or, in a shared fleet, on another engine."""
        self.checkpoint_file.remove()
        rows = self.copier.rows_copied if self.copier else 0
        try:
            self.publish_checkpoint("migration", [2, rows], {"rows": rows, "done": True, "complete": True},
                                    lineage=self._lineage())
        except Fenced:  # the lease went after the swap: the next owner finds the tables swapped
            self.log("the fleet's lease was lost after the swap: its checkpoint was not marked complete")
        self.completed = True
        self.set_phase("complete")

    def _lineage(self) -> str:
        return f"{self.opts.database}.{self.opts.table} run {self._run_id}"

    # ---- run ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run_cleaning()
        except BaseException as e:
            if not isinstance(e, TaskStopped) or self._panic:
                self.hooks.run("failure", GH_OST_FAILURE=str(e))
            raise
        if self.opts.execute:
            self.hooks.run("success")

    def _run_cleaning(self) -> None:
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
        if o.old_table and not o.revert:
            raise UserError("--old-table needs --revert")
        if o.hooks_path and not self.hooks.path.is_dir():
            raise UserError(f"--hooks-path {o.hooks_path}: no such directory")
        self.on_replica = r = check_on_replica(self.ep, o.test_on_replica, o.migrate_on_replica,
                                               o.assume_master_host)
        if r is not None:
            self._session = session_sql(o.allow_zero_in_date, gtid_domain_id=r.domain)
            self.log(f"{'testing' if r.mode == 'test' else 'migrating'} on the replica {self.ep.host}:"
                     f"{self.ep.port} (master {r.master[0]}:{r.master[1]}, not touched); its writes go to "
                     f"GTID domain {r.domain}")
        conn = self._connect(read_timeout=3600, write_timeout=3600)
        lock = None
        try:
            # a writable primary: from now on each writing connection checks it
            # still is one, and a lost primary is followed (``follow.py``)
            self._guarding = r is None and not int(scalar(conn, "SELECT @@global.read_only") or 0)
            if o.revert:
                self._check_revert_options()
                notes: list[str] = []
                self.ins, self._revert = inspect_revert(conn, o.database, o.table, o.old_table,
                                                        self.task_dir, notes)
                ins = self.ins
            else:
                self.ins = ins = inspect(conn, o)
            for n in ins.notes:
                self.log(n)
            self._preflight(conn)
            lock = self._take_table_lock()
            if o.revert:
                if not o.execute:
                    close_quietly(lock)
                    lock = None
                self._prepared = (conn, lock)
                return
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
        self._t_start = time.monotonic()
        self.hooks.run("startup")
        self.prepare()
        assert self._prepared is not None and self.ins is not None
        conn, lock = self._prepared
        self._prepared = None
        try:
            self.hooks.run("validated")
            if self.opts.revert and self.opts.execute:
                self._execute_revert(conn, self.ins)
                return
            if not self.opts.execute:
                self.set_phase("dry-run")
                self.log("dry run: inspection passed, nothing changed (add --execute to migrate)")
                return
            state = self._resume_state if self.opts.resume else None
            while True:
                try:
                    self._execute(conn, self.ins, state)
                    return
                except (Panic, Aborted, ValueChanged, HookFailed, TaskStopped):
                    raise
                except Exception as e:
                    why = self._lost_primary(e)
                    if not why:
                        raise
                close_quietly(*(c for c in (lock, conn) if c is not None))
                conn = lock = None
                conn, lock, state = self._follow_primary(why)
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

    def _instant(self, conn, ins: Inspection) -> bool:
        """--attempt-instant-ddl (gh-ost's): the ALTER with
        ``ALGORITHM=INSTANT``, a change of the table's metadata only, waiting
        at most the cut-over lock timeout for the table's metadata lock (a
        long transaction on it would otherwise hold every writer queued
        behind the ALTER).  True when it was done; refused (not instant,
        lock wait), the online copy goes on."""
        sql = f"ALTER TABLE `{ins.database}`.`{ins.table}` {ins.plan.sql}, ALGORITHM=INSTANT"
        t0 = time.monotonic()
        try:
            with conn.cursor() as cur:
                cur.execute("SET @dbops_lwt = @@session.lock_wait_timeout")
                cur.execute("SET SESSION lock_wait_timeout = %s", (self.opts.cut_over_lock_timeout_seconds,))
                try:
                    cur.execute(sql)
                finally:
                    cur.execute("SET SESSION lock_wait_timeout = @dbops_lwt")
        except Exception as e:  # noqa: BLE001 - any refusal: the copy does it
            self.log(f"instant DDL not possible ({describe_error(e)}): migrating with a copy")
            return False
        self.log(f"instant DDL done in {time.monotonic() - t0:.2f}s (ALGORITHM=INSTANT: metadata only, "
                 f"no ghost table, no copy)")
        return True

    def _execute(self, conn, ins: Inspection, state: dict | None = None) -> None:
        """The migration, fresh or from ``state`` (a resume, or the new
        primary after a failover: ``follow.py``)."""
        opts = self.opts
        resume = state is not None
        # the run's id (kept by --resume and across a failover): the lineage of its published progress
        self._run_id = (state or {}).get("run") or self._run_id or hashlib.sha1(
            f"{self.task_id} {time.time()} {socket.gethostname()}".encode()).hexdigest()[:16]
        if self._swapped:       # the primary was lost after the swap: only the cleanup is left
            self._clean_up(conn, ins)
            return
        self.dialect = ins.dialect
        if opts.attempt_instant_ddl and not resume and self._instant(conn, ins):
            self.completed = True
            self.set_phase("complete")
            return
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
            # what this server's changelog records is exact for it (each apply
            # batch and copy chunk wrote it), the checkpoint file is up to 1 s
            # old and may come from another server (``follow.py``)
            applied, last, have_last = recorded(conn, ins)
            rows = state["rows"]
            if have_last and last is not None and last != state["last"]:
                # chunks committed after the checkpoint's save: the rows copied
                # are the ghost's up to the server's copy-last (never fewer than
                # the checkpoint said: a published count never goes back)
                rows = max(rows, ghost_rows_upto(conn, ins, last))
            state = dict(state, applied_pos=applied or state["applied_pos"],
                         last=last if have_last else state["last"], rows=rows)
            start_pos = state["applied_pos"]
        elif ins.flavor == "mariadb":
            start_file, start_pos = binlog_start(conn, self.dialect)
        else:
            start_pos = scalar(conn, "SELECT @@global.gtid_executed") or ""
        if not state:
            write_changelog(conn, ins, APPLIED_POS, start_pos)
        self.log(f"binlog apply starts at GTID {start_pos or '(empty)'}"
                 + (f" ({start_file[0]}:{start_file[1]})" if start_file else ""))
        cores, lock_mode = server_facts(conn)
        self.copy_threads, why = copythreads.choose(
            opts.copy_threads, cores, any(c.auto_increment for c in ins.ghost_columns), lock_mode)
        self.log(f"copy: {self.copy_threads} connection(s) ({why})")
        self.copier = copier = Copier(ins, panic_on_warnings=opts.panic_on_warnings,
                                     retries=opts.default_retries, autoinc_lock_mode=lock_mode)
        # checksum overlapped with the copy: only for a copy made entirely by
        # this run (after a resume, the full pass checks everything)
        overlap = opts.verify_checksum and not state
        self.applier = applier = Applier(self.ep, ins, start_pos, batch_size=lambda: self.dml_batch_size,
                                         gate=self._gate, dirty_limit=DIRTY_LIMIT if overlap else 0,
                                         start_file=start_file, turns=copier.turns,
                                         session=self._session, own_sessions=own,
                                         retries=opts.default_retries, guard=self._guard)
        self._start_workers(ins)
        if state:
            copier.restore(state["min"], state["max"], state["last"], state["rows"])
            self.log(f"resuming: copy after key {state['last']}, {state['rows']} rows copied")
        else:
            copier.init_range(conn)
        self._save_checkpoint()

        if opts.exact_rowcount:
            threading.Thread(target=self._count_rows, name=f"rowcount-{self.task_id}", daemon=True).start()
        else:
            self.hooks.run("rowcount-complete")     # (the estimate is the count)
        if self.hooks.path is not None:
            threading.Thread(target=self._status_hooks, name=f"hooks-{self.task_id}", daemon=True).start()

        # ---- copy (each chunk checked right after it is copied when overlapped)
        self.hooks.run("before-row-copy")
        self._t_copy = [time.monotonic()]
        self.set_phase("copying")
        if overlap:
            self.checksummer = self._make_checksummer(copier, applier)
        self._copy(conn, copier, self.checksummer if overlap else None)
        copier.done = True
        self._t_copy.append(time.monotonic())
        self._save_checkpoint()
        self.hooks.run("row-copy-complete")
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
            if not postponed:
                self.hooks.run("begin-postponed")
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

        if opts.analyze_ghost_table_before_cutover:
            t0 = time.monotonic()
            with conn.cursor() as cur:
                cur.execute(f"ANALYZE TABLE `{ins.database}`.`{ins.ghost}`")
                cur.fetchall()
            self.log(f"ghost table analyzed in {time.monotonic() - t0:.2f}s")

        # ---- cut-over
        self.hooks.run("before-cut-over")
        self.set_phase("cutting-over")
        testing = self.on_replica is not None and self.on_replica.mode == "test"
        if testing:
            self.hooks.run("stop-replication")
            stop_replication(conn)
            self.log(f"replication stopped on {self.ep.host}:{self.ep.port} (--test-on-replica)")
        try:
            self._cut_over()
        except BaseException:
            if testing:
                start_replication(conn)
                self.log("cut-over failed: replication started again")
                self.hooks.run("start-replication")
            raise
        self._swapped = True
        if testing:
            self._stop_workers()        # (the apply would take the swap back for foreign DDL)
            with conn.cursor() as cur:
                cur.execute(f"RENAME TABLE `{ins.database}`.`{ins.table}` TO `{ins.database}`.`{ins.ghost}`, "
                            f"`{ins.database}`.`{ins.old}` TO `{ins.database}`.`{ins.table}`")
                cur.execute("SELECT @@global.gtid_slave_pos")
                at = cur.fetchone()[0]
            self.log(f"--test-on-replica: swapped back: {ins.database}.{ins.table} is the original, "
                     f"{ins.database}.{ins.ghost} the migrated table, both as of replicated GTID {at}")

        # ---- cleanup
        self.log(f"binlog apply: {applier.events_applied} row events in {applier.batches} batches, "
                 f"{applier.apply_seconds:.2f}s executing them")
        self._clean_up(conn, ins, testing)

    def _clean_up(self, conn, ins: Inspection, testing: bool = False) -> None:
        """After the swap: the changelog goes, the old table stays (or goes
        with --ok-to-drop-table), the checkpoint goes."""
        opts, applier = self.opts, self.applier
        self.set_phase("cleaning-up")
        self._stop_workers()
        drop_tables(conn, ins, ghost=False, changelog=True)
        if testing:
            self.log(f"replication on {self.ep.host}:{self.ep.port} is stopped: compare the tables, then "
                     f"resume it with START SLAVE there and drop {ins.database}.{ins.ghost}")
        elif opts.ok_to_drop_table:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS `{ins.database}`.`{ins.old}`")
            self.log(f"dropped old table {ins.old}")
        elif not self.cutover_at.get("gtid"):
            self.log(f"old table kept as {ins.database}.{ins.old} (drop it when satisfied); the cut-over's "
                     f"binlog position was lost with the primary: no --revert record")
        else:
            path = record_completed(self.task_dir, ins, self.cutover_at, applier.own_sessions, opts.alter)
            self.log(f"old table kept as {ins.database}.{ins.old} (drop it when satisfied; --revert swaps it "
                     f"back with the changes made since, recorded in {path})")
        self._complete()

    def _count_rows(self) -> None:
        """--exact-rowcount (gh-ost's, with its concurrent rowcount): a
        real ``COUNT(*)`` of the original beside the copy, on a connection
        of its own; the progress and the ETA use it from then on, adjusted
        by the rows the apply inserted and deleted since (gh-ost's
        heuristic)."""
        assert self.ins is not None
        try:
            c = self._connect(read_timeout=24 * 3600)
            try:
                ins0, del0 = self._applied_row_changes()
                n = int(scalar(c, f"SELECT COUNT(*) FROM `{self.ins.database}`.`{self.ins.table}`") or 0)
            finally:
                close_quietly(c)
        except Exception as e:  # noqa: BLE001 - only the ETA loses precision
            self.log(f"exact rowcount failed ({describe_error(e)}): the estimate stays")
            return
        self._rows_counted = (n, ins0, del0)
        self.log(f"exact rowcount: {n} rows")
        try:
            self.hooks.run("rowcount-complete")
        except HookFailed as e:     # (a thread beside the copy: it cannot fail the step)
            self.log(str(e))

    def _hook_env(self) -> dict[str, str]:
        """gh-ost's GH_OST_* variables, as of now."""
        o, ins = self.opts, self.ins
        ghost, _, old = table_names(o.table)
        now = time.monotonic()
        copy_s = ((self._t_copy[1] if len(self._t_copy) > 1 else now) - self._t_copy[0]
                  if self._t_copy else 0.0)
        c = self.copier
        exact = self.rows_exact()
        rows = exact if exact is not None else (ins.rows_estimate if ins is not None else 0)
        copied = c.rows_copied if c is not None else 0
        d = None
        try:
            d = self.detail() if ins is not None else None
        except Exception:  # noqa: BLE001 - the variables must not fail the hook
            pass
        env = {
            "GH_OST_DATABASE_NAME": o.database, "GH_OST_TABLE_NAME": o.table,
            "GH_OST_GHOST_TABLE_NAME": ghost, "GH_OST_OLD_TABLE_NAME": old,
            "GH_OST_DDL": o.alter,
            "GH_OST_ELAPSED_SECONDS": str(int(now - self._t_start)),
            "GH_OST_ELAPSED_COPY_SECONDS": str(int(copy_s)),
            "GH_OST_ESTIMATED_ROWS": str(rows), "GH_OST_COPIED_ROWS": str(copied),
            "GH_OST_MIGRATED_HOST": f"{self.ep.host}:{self.ep.port}",
            "GH_OST_INSPECTED_HOST": f"{self.ep.host}:{self.ep.port}",
            "GH_OST_EXECUTING_HOST": socket.gethostname(),
            "GH_OST_HOOKS_HINT": o.hooks_hint, "GH_OST_HOOKS_HINT_OWNER": o.hooks_hint_owner,
            "GH_OST_HOOKS_HINT_TOKEN": o.hooks_hint_token,
            "GH_OST_DRY_RUN": "false" if o.execute else "true",
            "GH_OST_PROGRESS": f"{d.percent:.1f}" if d is not None else "0.0",
            "GH_OST_ETA_SECONDS": (str(int(d.eta_seconds)) if d is not None and d.eta_seconds is not None
                                   else "-1"),
        }
        return env

    def _status_hooks(self) -> None:
        """gh-ost-on-status every --hooks-status-interval seconds, GH_OST_STATUS set."""
        stop = self._watch_stop     # (a new one after a failover: ``_start_workers``)
        while not stop.wait(self.opts.hooks_status_interval):
            self.hooks.run("status", GH_OST_STATUS=self.summary())

    def rows_exact(self) -> int | None:
        """The counted rows plus the apply's inserts minus its deletes since."""
        if self._rows_counted is None:
            return None
        n, ins0, del0 = self._rows_counted
        i, d = self._applied_row_changes()
        return max(n + (i - ins0) - (d - del0), 0)

    def _applied_row_changes(self) -> tuple[int, int]:
        a = self.applier
        return (a.rows_inserted, a.rows_deleted) if a is not None else (0, 0)

    def _cutover_position(self, cm) -> dict:
        """The binlog position under the cut-over's lock (``cut_over``), for --revert."""
        assert self.dialect is not None
        if self.dialect.name == "mariadb":
            at, gtid = binlog_start(cm, self.dialect, tries=20)
            return {"file": at[0] if at else None, "pos": at[1] if at else None, "gtid": gtid}
        return {"file": None, "pos": None, "gtid": scalar(cm, "SELECT @@global.gtid_executed") or ""}

    def _check_revert_options(self) -> None:
        o = self.opts
        bad = [f for f, on in (("--resume", o.resume), ("--attempt-instant-ddl", o.attempt_instant_ddl),
                               ("--include-triggers", o.include_triggers),
                               ("--test-on-replica", o.test_on_replica),
                               ("--migrate-on-replica", o.migrate_on_replica)) if on]
        if bad:
            raise UserError(f"--revert cannot be combined with {', '.join(bad)}")

    def _start_workers(self, ins: Inspection) -> None:
        """The binlog apply (built by the caller), the heartbeat, the throttle
        watch and the control socket: what a run and a revert both start
        (again on a new primary after a failover)."""
        self._watch_stop = threading.Event()
        self.applier.start()
        self.heartbeat = Heartbeat(lambda: self._connect(), ins, state=self.phase)
        self.heartbeat.start()
        threading.Thread(target=self._watch, name=f"watch-{self.task_id}", daemon=True).start()
        if self.opts.serve_socket_file:
            self.control = ControlServer(self.opts.serve_socket_file, self)
            self.control.start()

    def _execute_revert(self, conn, ins: Inspection) -> None:
        """--revert (``revert.py``): the changes made since the cut-over
        replayed onto the old table, a full checksum, the same cut-over."""
        rec = self._revert
        assert rec is not None
        opts = self.opts
        self.dialect = ins.dialect
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{ins.database}`.`{ins.changelog}` (hint VARCHAR(64) NOT NULL PRIMARY "
                        f"KEY, value VARCHAR(4096) NOT NULL, ts DATETIME(6) NOT NULL) ENGINE=InnoDB "
                        f"COMMENT='dbops-console migration changelog'")
        own = set(int(x) for x in rec.get("own_sessions", ())) | {conn.thread_id()}
        write_changelog(conn, ins, f"{OWN_SESSION}{conn.thread_id()}", str(conn.thread_id()))
        cut = rec["cutover"]
        start_file = (cut["file"], int(cut["pos"])) if cut.get("file") else None
        self.log(f"revert: binlog apply starts at the cut-over, GTID {cut.get('gtid') or '(empty)'}"
                 + (f" ({start_file[0]}:{start_file[1]})" if start_file else ""))
        self.copier = copier = Copier(ins, panic_on_warnings=opts.panic_on_warnings,
                                      retries=opts.default_retries)
        self.applier = applier = Applier(self.ep, ins, cut.get("gtid") or "", batch_size=lambda: self.dml_batch_size,
                                         gate=self._gate, dirty_limit=0, start_file=start_file,
                                         turns=copier.turns, session=self._session, own_sessions=own,
                                         retries=opts.default_retries)
        self._start_workers(ins)
        copier.init_range(conn)     # (the checksum's ranges; nothing is copied)
        copier.done = True
        self.set_phase("reverting")
        self._drain(conn)
        self.log(f"revert: {applier.events_applied} row event(s) since the cut-over applied to {ins.ghost}")
        if opts.verify_checksum:
            self.set_phase("checksumming")
            self.checksummer = cs = self._make_checksummer(copier, applier)
            p = cs.run(conn, threads=opts.checksum_threads)
            self.log(f"checksum: {p.chunks} chunks, {p.rows} rows, {p.mismatches} mismatches, {p.recopied} "
                     f"re-copied, {p.remaining_mismatches} remaining")
            if p.remaining_mismatches:
                raise UserError(f"checksum: {p.remaining_mismatches} chunk(s) still differ after re-copy; "
                                f"revert refused ({ins.database}.{ins.table} untouched); first: "
                                f"{p.first_mismatch}")
        self.hooks.run("before-cut-over")
        self.set_phase("cutting-over")
        self._cut_over()
        self.set_phase("cleaning-up")
        self._stop_workers()
        drop_tables(conn, ins, ghost=False, changelog=True)
        if opts.ok_to_drop_table:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS `{ins.database}`.`{ins.old}`")
            self.log(f"dropped the migrated table {ins.old}")
        else:
            self.log(f"reverted: {ins.database}.{ins.table} is the old table again; the migrated table is "
                     f"kept as {ins.database}.{ins.old}")
        (self.task_dir / "completed.json").unlink(missing_ok=True)
        self._complete()

    def set_waiting(self, what: str) -> None:
        """What the migration waits for, in the status ("" when nothing)."""
        if what != self._waiting_for and what:
            self.log(f"waiting for {what}")
        self._waiting_for = what

    def set_phase(self, phase: str) -> None:
        super().set_phase(phase)
        if self.heartbeat is not None:
            self.heartbeat.state = phase       # the changelog's state row

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
                self.cutover_at = cut_over(
                         self.ep, self.ins, self.applier, self.opts.cut_over_lock_timeout_seconds,
                         log=self.log, abort=self._check_panic,
                         check=self._check_under_lock if self._final_keys is not None else None,
                         session=self._session if self.on_replica is not None else None,
                         position=self._cutover_position, guard=self._guard)
                self.log(f"cut-over done (attempt {attempt})")
                return
            except UserError:
                raise
            except KeysDiffer as e:
                last = str(e)
                self.log(f"cut-over attempt {attempt} called off, original intact: {last}")
                self._recopy_differing(e.keys)
            except Exception as e:  # noqa: BLE001 - retried; original intact
                if why := self._lost_primary(e):    # (never retried on a server that is no primary)
                    raise PrimaryLost(why) from None
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


__all__ = ["MigrationTask", "Panic", "Aborted", "Refused"]
