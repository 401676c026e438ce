"""Flavor handlers: the replication operations of a recovery, as SQL.

One handler per flavor.  Every statement goes through ``_run`` which records
it (with the password masked) in the step's SQL list, so the journal and
``--dry-run`` show exactly what is issued.  The MariaDB handler is exercised
against real servers by the integration tests; the MySQL 8.0/8.4 handler is
unit-tested on the statements it issues.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pymysql

from console.mysql import gtid as gtidmod
from console.mysql.connection import DBError, describe_error
from console.mysql.flavor import Dialect, MariaDBDialect, ReplicaStatus, normalize_replica_row
from console.mysql.gtid import GtidSet

MASK = "'***'"


def render(sql: str, args: Iterable[Any] | None, secret_index: int | None = None) -> str:
    """SQL text for logs: arguments inlined, the secret masked."""
    if not args:
        return sql
    parts = []
    for i, a in enumerate(args):
        if i == secret_index:
            parts.append(MASK)
        elif isinstance(a, (int, float)):
            parts.append(str(a))
        else:
            parts.append("'" + str(a).replace("'", "''") + "'")
    return sql % tuple(parts)


class Handler:
    """Operations on one flavor; ``log`` receives every statement issued."""

    def __init__(self, dialect: Dialect):
        self.d = dialect

    @property
    def flavor(self) -> str:
        return self.d.gtid_flavor

    # ---- plumbing ----------------------------------------------------------
    def _run(self, conn, sql: str, args: tuple | None = None, log: list[str] | None = None,
             secret_index: int | None = None, fetch: bool = False) -> Any:
        if log is not None:
            log.append(render(sql, args, secret_index))
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(sql, args)
                return list(cur.fetchall()) if fetch else None
        except pymysql.MySQLError as e:
            raise describe_error(e) from None

    def _value(self, conn, sql: str, args: tuple | None = None, log: list[str] | None = None) -> Any:
        rows = self._run(conn, sql, args, log, fetch=True)
        return next(iter(rows[0].values())) if rows else None

    # ---- reading ----------------------------------------------------------
    def executed(self, conn) -> GtidSet:
        return self.d.executed_gtids(conn)

    def replica_status(self, conn) -> list[ReplicaStatus]:
        rows = self._run(conn, self.d.replica_status_sql, fetch=True)
        return [normalize_replica_row(r) for r in rows]

    def long_transactions(self, conn, min_age: int) -> list[tuple[int, int]]:
        rows = self._run(conn, self.d.long_transactions_sql, fetch=True)
        return [(int(r["id"]), int(r["age"] or 0)) for r in rows if int(r["age"] or 0) >= min_age]

    def errant(self, conn, mine: GtidSet, primary: GtidSet, log: list[str] | None = None) -> GtidSet:
        """mine - primary; server-side where the flavor can (MySQL GTID_SUBTRACT)."""
        if self.d.errant_sql:
            text = self._value(conn, self.d.errant_sql, (mine.format(), primary.format()), log)
            return gtidmod.parse(str(text or ""), self.flavor)
        return mine.subtract(primary)

    # ---- replication threads ----------------------------------------------
    def stop_io(self, conn, log: list[str]) -> None:
        self._run(conn, self.d.stop_replica_sql(io_only=True), log=log)

    def stop(self, conn, log: list[str]) -> None:
        self._run(conn, self.d.stop_replica_sql(), log=log)

    def start(self, conn, log: list[str]) -> None:
        self._run(conn, self.d.start_replica_sql(), log=log)

    def wait_gtid(self, conn, target: GtidSet, timeout: float, log: list[str]) -> bool:
        """Block until ``conn``'s server has applied ``target`` (or timeout)."""
        if target.is_empty():
            return True
        res = self._value(conn, self.d.wait_for_gtid_sql(), (target.format(), float(timeout)), log)
        return self.d.wait_succeeded(res)

    def wait_relay_applied(self, conn, stall: float, log: list[str], limit: float = 600.0) -> bool:
        """After the IO thread stopped: wait until the SQL thread applied all it
        received.  Waits as long as the SQL thread makes progress; gives up
        after ``stall`` seconds without progress (or ``limit`` in all)."""
        log.append(f"-- poll {self.d.replica_status_sql} until Exec = Read position "
                   f"(gives up after {stall:g}s without progress)")
        start = last_move = time.monotonic()
        seen = None
        while True:
            st = self.replica_status(conn)
            if not st:
                return True
            c = st[0]
            if (c.relay_source_log_file, c.exec_source_log_pos) == (c.source_log_file, c.read_source_log_pos):
                return True
            now = time.monotonic()
            pos = (c.relay_source_log_file, c.exec_source_log_pos)
            if pos != seen:
                seen, last_move = pos, now
            if not c.sql_ok or now - last_move > stall or now - start > limit:
                return False
            time.sleep(0.02)

    # ---- topology changes -------------------------------------------------
    def fence_sql(self) -> list[str]:
        return [self.d.lock_timeout_sql(5), *self.d.set_read_only_sql(True)]

    def fence(self, conn, keep_ids: set[int], log: list[str]) -> list[int]:
        """read_only, kill every client connection (MariaDB has no
        super_read_only: privileged users bypass read_only), then take the
        global read lock on this connection so nothing commits any more."""
        for s in self.fence_sql():
            self._run(conn, s, log=log)
        killed = self.kill_clients(conn, keep_ids, log)
        self._run(conn, self.d.fence_lock_sql, log=log)
        return killed

    def kill_clients(self, conn, keep_ids: set[int], log: list[str]) -> list[int]:
        """Kill every client connection but ours and replication's."""
        killed = []
        for r in self._run(conn, self.d.client_threads_sql, log=log, fetch=True):
            tid = int(r["id"])
            if tid in keep_ids:
                continue
            try:
                self._run(conn, self.d.kill_sql(tid), log=log)
                killed.append(tid)
            except DBError:
                pass  # gone already
        return killed

    def unfence(self, conn, log: list[str]) -> None:
        self._run(conn, self.d.unlock_sql, log=log)
        for s in self.d.set_read_only_sql(False):
            self._run(conn, s, log=log)

    def promote_sql(self) -> list[str]:
        return [self.d.stop_replica_sql(), self.d.reset_replica_all_sql(),
                *self.d.set_read_only_sql(False)]

    def promote(self, conn, log: list[str]) -> None:
        for s in self.promote_sql():
            self._run(conn, s, log=log)

    def point_to_sql(self, host: str, port: int, user: str, *, former_primary: bool = False) -> list[str]:
        sql, args = self.d.change_source_sql(host, port, user)
        pre = ([self.d.client_threads_sql, "KILL CONNECTION <each client queued on the read lock>",
                self.d.unlock_sql, *self.d.set_read_only_sql(True)] if former_primary else [])
        mid = ([q.replace("@@global.gtid_binlog_pos", "'<final gtid>'")
                for q in self.d.before_becoming_replica_sql()] if former_primary else [])
        return [*pre, self.d.stop_replica_sql(), *mid,
                render(sql, (*args, "x"), secret_index=len(args)), self.d.start_replica_sql()]

    def point_to(self, conn, host: str, port: int, user: str, password: str, log: list[str],
                 *, former_primary: bool = False, start: bool = True, keep_ids: set[int] | None = None,
                 final: GtidSet | None = None) -> None:
        """Make ``conn``'s server replicate from host:port by GTID.  A former
        primary (``conn`` holding the fence's read lock): writers queued on the
        lock are killed before it is released, and replication starts from
        ``final``, the position read under the fence."""
        if former_primary:
            self.kill_clients(conn, keep_ids or set(), log)
            self._run(conn, self.d.unlock_sql, log=log)
            for s in self.d.set_read_only_sql(True):
                self._run(conn, s, log=log)
        self._run(conn, self.d.stop_replica_sql(), log=log)
        if former_primary:
            pos = (final.format() if final is not None and self.flavor == gtidmod.MARIADB
                   and final.is_prefix() else "")
            for s in self.d.before_becoming_replica_sql(pos):
                self._run(conn, s, log=log)
        sql, args = self.d.change_source_sql(host, port, user)
        self._run(conn, sql, (*args, password), log=log, secret_index=len(args))
        if start:
            self._run(conn, self.d.start_replica_sql(), log=log)


class MariaDBHandler(Handler):
    """Domain-aware: MASTER_USE_GTID=slave_pos, MASTER_GTID_WAIT, errant checks in Python."""


class MySQLHandler(Handler):
    """MySQL 8.0/8.4: SOURCE_AUTO_POSITION, WAIT_FOR_EXECUTED_GTID_SET, GTID_SUBTRACT,
    super_read_only as the fence (plus killing connections)."""


def handler_for(dialect: Dialect) -> Handler:
    return MariaDBHandler(dialect) if isinstance(dialect, MariaDBDialect) else MySQLHandler(dialect)
