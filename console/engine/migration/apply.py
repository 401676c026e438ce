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
statements set rows to their row image (see ``dml``).

``Applier`` is one thread per migration, put together from: the stream
reader (``apply_stream.py``: open the stream, read and decode it, own
sessions), the markers the checksum and the cut-over wait for
(``apply_markers.py``: ``catch_up``) and the dirty keys of the checksum's
final pass (``apply_dirty.py``); this module holds the thread (its retry
loop, one stream at a time) and the executor that applies the decoded
batches to the ghost."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import pymysql.constants.CLIENT

from console.engine.migration.apply_dirty import DirtyKeys
from console.engine.migration.apply_markers import ApplyMarkers
from console.engine.migration.apply_stream import StreamReader, _Unit
from console.engine.migration.dml import DmlBuilder
from console.engine.migration.follow import PrimaryLost, applied_pos_statement
from console.engine.migration.inspect import Inspection
from console.engine.migration.turns import Turns
from console.engine.migration.values import RowFixer
from console.mysql.connection import Endpoint, connect, redact, rollback_quietly


class Applier(StreamReader, ApplyMarkers, DirtyKeys, threading.Thread):
    QUEUE_UNITS = 64        # decoded batches waiting for the executor; more: reading pauses

    def __init__(self, ep: Endpoint, ins: Inspection, start_pos: str, *,
                 batch_size: Callable[[], int], gate: Callable[[], None],
                 dirty_limit: int = 0, start_file: tuple[str, int] | None = None,
                 turns: Turns | None = None, session: str | None = None,
                 own_sessions: set[int] | None = None, retries: int = 10,
                 guard: Callable[[object], None] | None = None):
        super().__init__(name=f"apply-{ins.table}", daemon=True)
        # checks the ghost connection's server is still the primary (``follow.py``)
        self.guard = guard
        self.lost = ""              # why the primary was lost: the apply stopped, the task follows
        self.retries = max(1, retries)   # --default-retries: attempts of a batch that met a lock conflict
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
        self.rows_inserted = self.rows_deleted = 0     # row events applied (--exact-rowcount)
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
                if isinstance(e, PrimaryLost):
                    self.lost = str(e)
                    return
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
        if self.guard is not None:
            self.guard(conn)
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

    # ---- executor: decoded units -> ghost transactions ----------------------------

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
                        self._apply(conn, ops, done[-1].pos)
                        self.apply_seconds += time.monotonic() - t0
                    self.batches += 1
                    self.events_applied += len(ops)
                    self.rows_inserted += sum(1 for op in ops if op[0] == "ins")
                    self.rows_deleted += sum(1 for op in ops if op[0] == "del")
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

    def _apply(self, conn, ops: list[tuple], pos: str) -> None:
        # the batch records its position in its own transaction: the server
        # that holds the batch (a new primary after a failover) says where
        # the apply continues (``follow.py``)
        stmts = [*self.builder.statements(ops), applied_pos_statement(self.ins, pos)]
        for attempt in range(self.retries):
            try:
                return self._apply_once(conn, stmts)
            except Exception as e:  # noqa: BLE001
                code = e.args[0] if getattr(e, "args", None) else None
                if code not in (1205, 1213) or attempt == self.retries - 1:  # lock wait timeout, deadlock
                    raise
                self.error = f"retrying apply batch after error {code}"
                time.sleep(min(0.02 * (attempt + 1), 1.0))

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
