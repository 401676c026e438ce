"""Binlog apply: stream the binlog from the migration's start position,
decode rows only of the original table and the changelog, and apply them to
the ghost in order, in batches, recording the position of the last fully
applied transaction (``applied_pos``).

python-mysql-replication is used for decoding only; we own the position: the
stream starts from our recorded GTID position (on MariaDB from the binlog
file:pos of it when known, see ``applied_file``), ``auto_position`` is moved
forward after every applied batch (so its internal reconnect resumes from
what we applied, not from the original start), and after any stream error a
new stream starts from ``applied_pos``.  Replaying a suffix is harmless: the
statements set rows to their row image (see ``dml``)."""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple

import pymysql.constants.CLIENT

from console.engine.migration.binlog_filter import TableFilter, connection_class
from console.engine.migration.ddl import ddl_conflict
from console.engine.migration.dml import DmlBuilder
from console.engine.migration.inspect import Inspection
from console.engine.migration.replication_log import silence_replication_library
from console.engine.migration.sqlutil import qt
from console.engine.migration.tables import write_changelog
from console.engine.migration.turns import Turns
from console.engine.migration.values import RowFixer
from console.mysql import gtid as gtidmod
from console.mysql.connection import Endpoint, connect, redact, rollback_quietly


class Position:
    """The GTID position of the last fully applied transaction."""

    def __init__(self, flavor: str, text: str):
        self.flavor = flavor
        if flavor == "mariadb":
            self._doms: dict[int, tuple[int, int]] = {}
            for item in filter(None, (t.strip() for t in (text or "").split(","))):
                g = gtidmod.Gtid.parse(item)
                self._doms[g.domain] = (g.server_id, g.seq)
        else:
            self._set = gtidmod.parse(text or "", gtidmod.MYSQL)

    def advance(self, gtid: str) -> None:
        if self.flavor == "mariadb":
            g = gtidmod.Gtid.parse(gtid)
            self._doms[g.domain] = (g.server_id, g.seq)
        else:
            self._set = self._set.union(gtidmod.parse(gtid, gtidmod.MYSQL))

    def text(self) -> str:
        if self.flavor == "mariadb":
            return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self._doms.items()))
        return self._set.format()


class ApplyError(Exception):
    pass


OWN_SESSION = "own-session-"     # changelog hint prefix: a migration session's connection id


def own_sessions_of(conn, ins: Inspection) -> set[int]:
    """The connection ids the changelog records as the migration's own
    sessions (earlier runs of a resumed migration included)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT value FROM {qt(ins.database, ins.changelog)} WHERE hint LIKE %s",
                    (OWN_SESSION + "%",))
        return {int(r[0]) for r in cur.fetchall() if str(r[0]).isdigit()}


class _ExecutorFailed(Exception):
    """The executor stopped (failed or told to): the reader stops too."""


class _Unit(NamedTuple):
    """Decoded transactions for the executor: their row ops, the GTID
    position after them, where their last commit ends in the binlog, and the
    checksum/cut-over markers among them."""
    ops: list[tuple]
    pos: str
    commit_at: tuple[str, int]
    markers: list[str]


class Applier(threading.Thread):
    FLUSH_INTERVAL = 0.05
    QUEUE_UNITS = 64        # decoded batches waiting for the executor; more: reading pauses

    def __init__(self, ep: Endpoint, ins: Inspection, start_pos: str, *,
                 batch_size: Callable[[], int], gate: Callable[[], None],
                 dirty_limit: int = 0, start_file: tuple[str, int] | None = None,
                 turns: Turns | None = None, session: str | None = None,
                 own_sessions: set[int] | None = None):
        super().__init__(name=f"apply-{ins.table}", daemon=True)
        # server connection ids of the migration's own sessions: their DDL on
        # the ghost, the sentry and the RENAME is the migration's (``own``)
        self.own_sessions: set[int] = set(own_sessions or ())
        self.session = session      # the ghost connection's first statement (``session.py``)
        self.ep, self.ins = ep, ins
        self.flavor = "mariadb" if ins.flavor == "mariadb" else "mysql"
        self.applied_pos = start_pos
        # MariaDB: the binlog file:pos of applied_pos, when known.  A dump by
        # GTID makes the server read the binlog file from its start up to the
        # GTID (seconds in a large file, with the apply and every checksum
        # marker waiting); by file:pos it starts right there.
        self.applied_file = start_file if self.flavor == "mariadb" else None
        self._batch_size, self._gate = batch_size, gate
        self.turns = turns or Turns(needed=False)   # the row copy's (task): one ghost writer at a time
        self.builder = DmlBuilder(ins.database, ins.ghost, ins.shared, ins.key.columns,
                                  ins.key.ghost_columns, ins.key.ghost_unique)
        self.fixer = RowFixer((c.name, c.type) for c in ins.columns)   # decoded -> sent values
        self.events_applied = 0
        self.batches = 0
        self.apply_seconds = 0.0         # time spent executing batches on the ghost
        self.read_file, self.read_pos = "", 0
        self.heartbeat_at = 0.0          # primary time of the last heartbeat seen in the stream
        self.error = ""
        self.fatal: str = ""
        self.reconnects = 0
        self._markers: dict[str, threading.Event] = {}
        self._mlock = threading.Lock()
        self._stop_ev = threading.Event()
        self._stream = None
        # dirty keys: every key of the original that a decoded row event
        # touched (before and after images), for the checksum's final pass
        self._dlock = threading.Lock()
        self._dirty: set[tuple] | None = set() if dirty_limit > 0 else None
        self.dirty_limit = dirty_limit
        self.dirty_overflow = False

    # ---- dirty keys ---------------------------------------------------------------

    @property
    def tracking_dirty(self) -> bool:
        return self._dirty is not None

    def mark_dirty(self, ops: list[tuple]) -> None:
        """Record the keys of decoded ops (called at decode time, so before
        any marker that follows them in the stream is signalled).  Past
        ``dirty_limit`` keys tracking stops and ``dirty_overflow`` is set."""
        with self._dlock:
            d = self._dirty
            if d is None:
                return
            for op in ops:
                for vals in op[1:]:
                    d.add(self.builder.key_of(vals))
            if len(d) > self.dirty_limit:
                self._dirty = None
                self.dirty_overflow = True

    def take_dirty(self) -> set[tuple] | None:
        """The keys touched since the last call (None when not tracking or
        overflowed); tracking goes on with an empty set."""
        with self._dlock:
            d = self._dirty
            if d is None:
                return None
            self._dirty = set()
            return d

    # ---- markers ----------------------------------------------------------------

    def expect_marker(self) -> str:
        token = uuid.uuid4().hex
        with self._mlock:
            self._markers[token] = threading.Event()
        return token

    def wait_marker(self, token: str, timeout: float) -> bool:
        """True once the apply has committed everything up to the marker;
        raises ``ApplyError`` at once if the apply died."""
        ev = self._markers.get(token)
        deadline = time.monotonic() + timeout
        ok = False
        try:
            while ev is not None and time.monotonic() < deadline:
                if ev.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                    ok = True
                    break
                if self.fatal:
                    raise ApplyError(self.fatal)
                if not self.is_alive() and self.ident is not None:
                    raise ApplyError(f"binlog apply stopped: {self.error or 'no reason'}")
        finally:
            with self._mlock:
                self._markers.pop(token, None)
        return ok

    def catch_up(self, write_marker: Callable[[str], None], *, stall_timeout: float | None = None,
                 each_wait: Callable[[int], None] = lambda seconds: None) -> None:
        """Return once the apply has committed everything binlogged before a
        marker written now (``write_marker(token)``).  Waits in 5 s steps,
        each with a fresh marker, calling ``each_wait(seconds so far)`` after
        every step; a loaded apply may take long, so only one that makes no
        progress for ``stall_timeout`` seconds raises TimeoutError."""
        progress, since, waited = None, time.monotonic(), 0
        while True:
            token = self.expect_marker()
            write_marker(token)
            if self.wait_marker(token, 5.0):
                return
            waited += 5
            each_wait(waited)
            at = (self.applied_pos, self.events_applied)
            if at != progress:
                progress, since = at, time.monotonic()
            elif stall_timeout is not None and time.monotonic() - since > stall_timeout:
                raise TimeoutError(f"the binlog apply made no progress in {stall_timeout:.0f}s "
                                   f"(marker not reached)")

    def _signal(self, tokens: list[str]) -> None:
        with self._mlock:
            for t in tokens:
                ev = self._markers.get(t)
                if ev:
                    ev.set()

    # ---- thread -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop_ev.set()
        s = self._stream
        if s is not None:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass

    def run(self) -> None:
        failures = 0
        while not self._stop_ev.is_set():
            started = time.monotonic()
            try:
                self._stream_once()
                if self.fatal:
                    return
            except Exception as e:  # noqa: BLE001
                if self._stop_ev.is_set():
                    break
                try:
                    secret = [self.ep.password.reveal()]
                except OSError:
                    secret = []
                self.error = redact(f"{type(e).__name__}: {e}", secret)
                self.reconnects += 1
                if (why := data_error(e)) is not None:     # the same row fails again: no retry
                    self.fatal = f"binlog apply: the ghost refuses a row: {self.error}{why}"
                    return
                failures = 0 if time.monotonic() - started > 30 else failures + 1
                if failures >= 10:
                    self.fatal = f"binlog apply keeps failing: {self.error}"
                    return
                self._stop_ev.wait(min(5.0, 0.2 * 2 ** failures))

    def _open_stream(self):
        from pymysqlreplication import BinLogStreamReader

        silence_replication_library()  # its reconnect notice is not the operator's business
        from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        settings = {"host": self.ep.host, "port": self.ep.port, "user": self.ep.user,
                    "password": self.ep.password.reveal(), "charset": "utf8mb4"}
        self.table_filter = TableFilter({(self.ins.database, self.ins.table),
                                         (self.ins.database, self.ins.changelog)})
        if self.applied_file:
            where = {"log_file": self.applied_file[0], "log_pos": self.applied_file[1],
                     "resume_stream": True, "is_mariadb": False, "auto_position": None}
        else:
            where = {"is_mariadb": self.flavor == "mariadb", "auto_position": self.applied_pos}
        return BinLogStreamReader(
            connection_settings=settings, pymysql_wrapper=connection_class(self.table_filter),
            server_id=random.randint(1_000_000_000, 2_000_000_000), blocking=True, **where,
            only_schemas=[self.ins.database], only_tables=[self.ins.table, self.ins.changelog],
            only_events=[GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent, WriteRowsEvent,
                         UpdateRowsEvent, DeleteRowsEvent],
            enable_logging=False, slave_heartbeat=1)

    def _stream_once(self) -> None:
        """One binlog stream: this thread reads and decodes it, an executor
        thread applies what was decoded.  Reading never waits for the
        ghost: while a copy chunk holds the ghost's AUTO-INC lock (an
        ``INSERT ... SELECT`` holds it to its end) the apply's inserts wait,
        and a reader that waited with them fell hundreds of milliseconds
        behind the binlog (the copy's own row events still have to be read
        past), with every checksum marker and the cut-over waiting too.
        The executor merges what queued up meanwhile into one batch."""
        conn = connect(self.ep, read_timeout=600, write_timeout=600, init_command=self.session,
                       client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        stream = self._stream = self._open_stream()
        units: queue.Queue[_Unit | None] = queue.Queue(maxsize=self.QUEUE_UNITS)
        failed: list[BaseException] = []
        executor = threading.Thread(target=self._execute, args=(conn, units, failed),
                                    name=f"{self.name}-exec", daemon=True)
        executor.start()
        try:
            self._read(stream, units, failed)
        finally:
            self._stream = None
            self._finish(units, failed)
            while executor.is_alive() and not self._stop_ev.is_set():
                executor.join(0.5)      # (it may wait for a throttle to end)
            try:
                stream.close()
            finally:
                conn.close()
        if failed:
            raise failed[0]

    def _put(self, units: queue.Queue, unit: _Unit, failed: list) -> None:
        """Queue a unit for the executor; blocks while the queue is full (the
        executor throttled or slow), so reading stops too."""
        while True:
            if failed or self._stop_ev.is_set():
                raise _ExecutorFailed()
            try:
                units.put(unit, timeout=0.2)
                return
            except queue.Full:
                pass

    def _finish(self, units: queue.Queue, failed: list) -> None:
        """Tell the executor the reading is over: it ends after what is
        queued (when stopping, or when it failed, the queued units are
        dropped to make room)."""
        while True:
            try:
                units.put(None, timeout=0.2)
                return
            except queue.Full:
                if failed or self._stop_ev.is_set():
                    try:
                        units.get_nowait()
                    except queue.Empty:
                        pass

    def _read(self, stream, units: queue.Queue, failed: list) -> None:
        from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        pos = Position(self.flavor, self.applied_pos)
        ops: list[tuple] = []
        markers: list[str] = []
        gtid = None
        explicit = False      # inside BEGIN ... (statements do not end the transaction)
        last_flush = time.monotonic()
        try:
            for ev in stream:
                if self._stop_ev.is_set() or failed:
                    return
                self.read_file, self.read_pos = stream.log_file or self.read_file, stream.log_pos or 0
                if isinstance(ev, (MariadbGtidEvent, GtidEvent)):
                    gtid = ev.gtid
                    explicit = False
                    continue
                if isinstance(ev, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
                    if ev.table == self.ins.changelog:
                        self._changelog(ev, markers)
                    elif ev.table == self.ins.table and ev.schema == self.ins.database:
                        new = self._ops(ev)
                        self.mark_dirty(new)
                        ops.extend(new)
                    continue
                if isinstance(ev, QueryEvent) and ev.slave_proxy_id not in self.own_sessions and (
                        why := ddl_conflict(ev.query, _text(ev.schema), self.ins.database,
                                            self.ins.table, self.own_tables)):
                    self.fatal = (f"{why[0]} during the migration ({' '.join(ev.query.split())[:160]})"
                                  f": {why[1]}; aborted, original untouched: start over "
                                  f"(--initially-drop-ghost-table) once it is done")
                    return
                if isinstance(ev, QueryEvent):
                    q = ev.query.strip().upper()
                    if q == "BEGIN" or q.startswith("XA START"):
                        explicit = True
                        continue
                    # a statement inside BEGIN ... COMMIT/XID (a statement-
                    # binlogged chunk) does not end its transaction; DDL
                    # (its own group) and COMMIT/ROLLBACK do
                    end = not explicit or q.startswith(
                        ("COMMIT", "ROLLBACK", "XA PREPARE", "XA COMMIT", "XA ROLLBACK"))
                else:
                    end = isinstance(ev, XidEvent)
                if not end or gtid is None:
                    continue
                explicit = False
                pos.advance(gtid)
                gtid = None
                now = time.monotonic()
                if not markers and len(ops) < self._batch_size() and now - last_flush < self.FLUSH_INTERVAL:
                    continue  # keep batching across transactions (and heartbeats)
                self._put(units, _Unit(ops, pos.text(), (self.read_file, self.read_pos), markers), failed)
                ops, markers = [], []
                last_flush = now
        except _ExecutorFailed:
            return

    def _execute(self, conn, units: queue.Queue, failed: list) -> None:
        """Apply queued units in order: consecutive units merge into one
        ghost transaction up to the batch size; then the applied position
        moves and the units' markers are signalled."""
        try:
            while True:
                unit = units.get()
                if unit is None:
                    return
                ops, done = list(unit.ops), [unit]
                end = self._merge_queued(units, ops, done)
                if ops:
                    if not self._markers:   # someone waits for a marker (checksum, cut-over): no throttle
                        self._gate()
                    with self.turns:        # (after the copy's chunk in flight)
                        if not end:         # and what queued up meanwhile
                            end = self._merge_queued(units, ops, done)
                        t0 = time.monotonic()
                        self._apply(conn, ops)
                        self.apply_seconds += time.monotonic() - t0
                    self.batches += 1
                    self.events_applied += len(ops)
                last = done[-1]
                self.applied_pos = last.pos
                stream = self._stream
                if self.applied_file:
                    # file:pos mode: the library's own reconnect resumes from the
                    # last event it read (a GTID here would send it down its
                    # MySQL-GTID branch, which cannot parse a MariaDB GTID)
                    if last.commit_at[0]:
                        self.applied_file = last.commit_at
                elif stream is not None:
                    stream.auto_position = self.applied_pos
                self._signal([m for u in done for m in u.markers])
                self.error = ""
                if end:
                    return
        except BaseException as e:  # noqa: BLE001 - the reader raises it
            failed.append(e)

    def _merge_queued(self, units: queue.Queue, ops: list, done: list[_Unit]) -> bool:
        """Add the units already queued to the batch, up to the batch size;
        True when the end of the stream was taken.  Markers do not stop it:
        they are signalled once the merged batch, which includes them, has
        committed, and taking only what is queued adds no wait.  Each batch
        is a ghost transaction the copy waits for (turns); cut short at
        every checksum marker there were ~10% more of them under load."""
        while len(ops) < self._batch_size():
            try:
                nxt = units.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            ops.extend(nxt.ops)
            done.append(nxt)
        return False

    @property
    def own_tables(self) -> tuple[str, str, str]:
        return (self.ins.ghost, self.ins.changelog, self.ins.old)

    def own(self, conn) -> None:
        """``conn`` is one of the migration's own sessions: the DDL it runs
        (deferred indexes, the cut-over's sentry, AUTO_INCREMENT and RENAME)
        is the migration's, not DDL to abort on.  Also recorded in the
        changelog, ahead of that DDL in the binlog, so a resumed migration
        knows it too (``own_sessions_of``)."""
        tid = conn.thread_id()
        self.own_sessions.add(tid)
        write_changelog(conn, self.ins, f"{OWN_SESSION}{tid}", str(tid))

    def _changelog(self, ev, markers: list[str]) -> None:
        for row in ev.rows:
            vals = row.get("after_values") or row.get("values") or {}
            hint = vals.get("hint")
            if isinstance(hint, str) and hint.startswith(OWN_SESSION):
                try:
                    self.own_sessions.add(int(vals.get("value")))
                except (TypeError, ValueError):
                    pass
            elif hint == "heartbeat":
                try:
                    self.heartbeat_at = float(vals.get("value"))
                except (TypeError, ValueError):
                    pass
            elif hint == "marker":
                markers.append(str(vals.get("value")))

    def _ops(self, ev):
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent

        kind = "upd" if isinstance(ev, UpdateRowsEvent) else "del" if isinstance(ev, DeleteRowsEvent) else "ins"
        return self.fixer.ops(kind, ev.rows)

    def _apply(self, conn, ops: list[tuple]) -> None:
        stmts = self.builder.statements(ops)
        for attempt in range(10):
            try:
                return self._apply_once(conn, stmts)
            except Exception as e:  # noqa: BLE001
                code = e.args[0] if getattr(e, "args", None) else None
                if code not in (1205, 1213) or attempt == 9:  # lock wait timeout, deadlock
                    raise
                self.error = f"retrying apply batch after error {code}"
                time.sleep(0.02 * (attempt + 1))

    def _apply_once(self, conn, stmts) -> None:
        """One ghost transaction, sent as few multi-statement packets (one
        round trip per ~1 MB instead of one per row): the server stops at the
        first failing statement, which raises here, and we roll back."""
        with conn.cursor() as cur:
            try:
                for packet in pack_statements([cur.mogrify(sql, params) for sql, params in stmts]):
                    cur.execute(packet)
                    while cur.nextset():
                        pass
            except Exception:
                rollback_quietly(cur)
                raise


# errors of a row's value on the ghost: deterministic, a retry fails the same
# (column cannot be null, out of range, incorrect value, too long, zero date)
DATA_ERRORS = (1048, 1264, 1265, 1292, 1366, 1406, 4025)   # (1265 data truncated, 4025 CHECK)


def data_error(e: BaseException) -> str | None:
    """For an error of the ghost refusing a value: a hint ('' if none);
    None for any other error (retried)."""
    args = getattr(e, "args", ())
    if not args or args[0] not in DATA_ERRORS:
        return None
    if args[0] == 1292 and "0000-00-00" in str(args[-1]):
        return ("; the row holds a zero date the sql_mode refuses (NO_ZERO_DATE/NO_ZERO_IN_DATE): "
                "rerun with --allow-zero-in-date (--resume --execute keeps what was copied)")
    return ""


def _text(v) -> str:
    """A Query event's default database (bytes from the library)."""
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v or "")


def pack_statements(stmts: list[str], limit: int = 1 << 20) -> list[str]:
    """``START TRANSACTION; s1; ...; COMMIT`` cut into multi-statement
    packets of at most about ``limit`` bytes (one statement may be longer);
    the transaction spans the packets."""
    out: list[str] = []
    cur: list[str] = ["START TRANSACTION"]
    size = len(cur[0])
    for s in [*stmts, "COMMIT"]:
        if cur and size + len(s) + 2 > limit:
            out.append(";\n".join(cur))
            cur, size = [], 0
        cur.append(s)
        size += len(s) + 2
    out.append(";\n".join(cur))
    return out
