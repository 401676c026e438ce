"""The binlog apply's stream reader: open a binlog stream at the applied
position (python-mysql-replication, for decoding only; rows only of the
original table and the changelog), read and decode it into units of whole
transactions for the executor (``apply.py``), with the changelog's rows
read on the way (heartbeats, checksum/cut-over markers, the migration's own
sessions) and DDL on the table that aborts the migration (``ddl.py``).

The migration's own sessions: their connection ids, recorded in the
changelog (``OWN_SESSION``), so their DDL on the ghost, the sentry and the
RENAME is not DDL to abort on, also after a resume (``own_sessions_of``).

The reader keeps the GTID position of the last transaction it read whole
(a ``GtidPosition``, advanced per transaction).  ``StreamReader`` is mixed
into ``Applier`` (``apply.py``)."""

from __future__ import annotations

import queue
import random
import time
from typing import NamedTuple

from console.engine.migration.binlog_filter import TableFilter, connection_class
from console.engine.migration.ddl import ddl_conflict
from console.engine.migration.inspect import Inspection
from console.engine.migration.replication_log import silence_replication_library
from console.engine.migration.sqlutil import qt
from console.engine.migration.tables import write_changelog
from console.mysql.gtid import GtidPosition

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


class StreamReader:
    """The reading side of ``Applier``: the stream, decoding, own sessions."""

    FLUSH_INTERVAL = 0.05

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

        pos = GtidPosition.parse(self.applied_pos, self.flavor)
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


def _text(v) -> str:
    """A Query event's default database (bytes from the library)."""
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v or "")

