"""The ghost table ``<t>_gho`` (new schema), the changelog ``<t>_ghc``
(heartbeat every 100 ms, state, markers) and the heartbeat writer."""

from __future__ import annotations

import json
import re
import threading
import time

import pymysql

from console.engine.migration.inspect import Inspection, Refused
from console.engine.migration.sqlutil import qt
from console.mysql.connection import query_one

HEARTBEAT_INTERVAL = 0.1


def table_exists(conn, db: str, table: str) -> bool:
    return query_one(conn, "SELECT 1 AS x FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                           "AND TABLE_NAME=%s", (db, table)) is not None


def check_tables(conn, ins: Inspection, *, drop_ghost: bool, drop_old: bool, resume: bool) -> None:
    """The refusals of ``prepare_tables``, without changing anything (dry run)."""
    db = ins.database
    if table_exists(conn, db, ins.old) and not drop_old:
        raise Refused(f"table {db}.{ins.old} already exists (a previous migration's old "
                      f"table?): drop it or pass --initially-drop-old-table")
    for t in (ins.ghost, ins.changelog):
        if resume and not table_exists(conn, db, t):
            raise Refused(f"cannot resume: {db}.{t} is gone; start a new migration without --resume")
        if not resume and not drop_ghost and table_exists(conn, db, t):
            raise Refused(f"table {db}.{t} already exists: resume with --resume, or "
                          f"pass --initially-drop-ghost-table to start over")


def prepare_tables(conn, ins: Inspection, *, drop_ghost: bool, drop_old: bool, resume: bool) -> None:
    db = ins.database
    check_tables(conn, ins, drop_ghost=drop_ghost, drop_old=drop_old, resume=resume)
    with conn.cursor() as cur:
        if table_exists(conn, db, ins.old):
            if not drop_old:
                raise Refused(f"table {db}.{ins.old} already exists (a previous migration's old "
                              f"table?): drop it or pass --initially-drop-old-table")
            cur.execute(f"DROP TABLE {qt(db, ins.old)}")
        if resume:
            for t in (ins.ghost, ins.changelog):
                if not table_exists(conn, db, t):
                    raise Refused(f"cannot resume: {db}.{t} is gone; start a new migration "
                                  f"without --resume")
            return
        for t in (ins.ghost, ins.changelog):
            if table_exists(conn, db, t):
                if not drop_ghost:
                    raise Refused(f"table {db}.{t} already exists: resume with --resume, or "
                                  f"pass --initially-drop-ghost-table to start over")
                cur.execute(f"DROP TABLE {qt(db, t)}")
        cur.execute(f"CREATE TABLE {qt(db, ins.changelog)} (hint VARCHAR(64) NOT NULL PRIMARY KEY, "
                    f"value VARCHAR(4096) NOT NULL, ts DATETIME(6) NOT NULL) ENGINE=InnoDB "
                    f"COMMENT='dbops-console migration changelog'")
        cur.execute(f"CREATE TABLE {qt(db, ins.ghost)} LIKE {qt(db, ins.table)}")
        cur.execute(f"ALTER TABLE {qt(db, ins.ghost)} {ins.plan.sql}")


_PLAIN_KEY = re.compile(r"^KEY (`(?:[^`]|``)+`) \(")


def plain_key_clauses(create_table: str) -> list[tuple[str, str]]:
    """(quoted name, ``ADD KEY ...`` clause) of each plain (non-unique, not
    FULLTEXT/SPATIAL) secondary index in a ``SHOW CREATE TABLE`` text."""
    out = []
    for line in create_table.splitlines():
        text = line.strip().rstrip(",")
        m = _PLAIN_KEY.match(text)
        if m:
            out.append((m.group(1), "ADD " + text))
    return out


def defer_secondary_indexes(conn, ins: Inspection) -> list[str]:
    """Drop the empty ghost's plain secondary indexes; the copy then fills
    only the clustered index and unique keys (INSERT IGNORE needs those), and
    ``restore_indexes`` builds the others in one sorted pass afterwards.  The
    clauses are kept in the changelog, so a resumed migration restores them."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE {qt(ins.database, ins.ghost)}")
        keys = plain_key_clauses(cur.fetchone()[1])
        value = json.dumps([c for _, c in keys])
        if not keys or len(value) > 4000:
            return []
        write_changelog(conn, ins, "deferred-indexes", value)
        cur.execute(f"ALTER TABLE {qt(ins.database, ins.ghost)} "
                    + ", ".join(f"DROP INDEX {n}" for n, _ in keys))
    return [n for n, _ in keys]


def restore_indexes(conn, ins: Inspection, starting=lambda names: None) -> list[str]:
    """Add the deferred indexes the ghost lacks (online: the apply goes on);
    ``starting`` is told their (quoted) names before the build, which are
    returned."""
    row = query_one(conn, f"SELECT value FROM {qt(ins.database, ins.changelog)} "
                          f"WHERE hint='deferred-indexes'")
    if row is None:
        return []
    named = [(_PLAIN_KEY.match(c[4:]).group(1), c) for c in json.loads(row["value"])]
    with conn.cursor() as cur:
        cur.execute(f"SHOW INDEX FROM {qt(ins.database, ins.ghost)}")
        have = {r[2] for r in cur.fetchall()}
        missing = [(n, c) for n, c in named if n[1:-1].replace("``", "`") not in have]
        if missing:
            starting([n for n, _ in missing])
            add_keys(cur, f"ALTER TABLE {qt(ins.database, ins.ghost)} "
                          f"{', '.join(c for _, c in missing)}, ALGORITHM=INPLACE")
        cur.execute(f"DELETE FROM {qt(ins.database, ins.changelog)} WHERE hint='deferred-indexes'")
    return [n for n, _ in missing]


def add_keys(cur, alter: str) -> str:
    """Run ``alter`` (ADD KEY clauses) online; returns the LOCK it took.  If
    the online log outgrew ``innodb_online_alter_log_max_size`` (writes to
    the ghost during a long build: 1799) or the server cannot build it
    online (1846), it is built again with ``LOCK=SHARED``: the apply waits
    for it (the binlog keeps what it has to apply; only the ghost, which
    nobody reads, is locked)."""
    try:
        cur.execute(alter + ", LOCK=NONE")
        return "NONE"
    except pymysql.MySQLError as e:
        if not e.args or e.args[0] not in (1799, 1846):
            raise
    cur.execute(alter + ", LOCK=SHARED")
    return "SHARED"


def write_changelog(conn, ins: Inspection, hint: str, value: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {qt(ins.database, ins.changelog)} (hint, value, ts) "
                    f"VALUES (%s, %s, NOW(6)) ON DUPLICATE KEY UPDATE value=VALUES(value), "
                    f"ts=VALUES(ts)", (hint, value))


def auto_increment(conn, db: str, table: str) -> int | None:
    row = query_one(conn, "SELECT AUTO_INCREMENT AS n FROM information_schema.TABLES "
                          "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s", (db, table))
    return None if row is None or row["n"] is None else int(row["n"])


def carry_auto_increment(conn, ins: Inspection, lock_timeout: int) -> int | None:
    """Raise the ghost's AUTO_INCREMENT counter to the original's (the copy
    and the apply insert explicit ids, so the ghost's counter only reaches
    the highest id still present: ids handed out and then deleted or rolled
    back would be handed out again after the cut-over).  Called under the
    cut-over lock, where the original's counter no longer moves; returns the
    value set, None when nothing had to change."""
    want = auto_increment(conn, ins.database, ins.table)
    have = auto_increment(conn, ins.database, ins.ghost)
    if want is None or have is None or have >= want:
        return None
    with conn.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = %s", (lock_timeout,))
        cur.execute(f"ALTER TABLE {qt(ins.database, ins.ghost)} AUTO_INCREMENT = {int(want)}")
    return want


def replica_lag_sql(ins: Inspection) -> str:
    """Seconds since the heartbeat the replica last applied."""
    return (f"SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) / 1000000 FROM "
            f"{qt(ins.database, ins.changelog)} WHERE hint='heartbeat'")


def drop_tables(conn, ins: Inspection, *, ghost: bool = True, changelog: bool = True) -> None:
    with conn.cursor() as cur:
        if ghost:
            cur.execute(f"DROP TABLE IF EXISTS {qt(ins.database, ins.ghost)}")
        if changelog:
            cur.execute(f"DROP TABLE IF EXISTS {qt(ins.database, ins.changelog)}")


class Heartbeat(threading.Thread):
    """Writes the heartbeat row every 100 ms (replica lag and apply clock),
    and the ``state`` row (the migration's phase) whenever ``state``
    changes, so the changelog says what the migration is doing to anyone
    who reads it, on the primary or a replica."""

    def __init__(self, conn_factory, ins: Inspection, state: str = ""):
        super().__init__(name=f"heartbeat-{ins.table}", daemon=True)
        self._cf, self._ins = conn_factory, ins
        self._stop_ev = threading.Event()
        self.error = ""
        self.state = state
        self._written = ""

    def run(self) -> None:
        conn = None
        while not self._stop_ev.is_set():
            try:
                if conn is None:
                    conn = self._cf()
                write_changelog(conn, self._ins, "heartbeat", f"{time.time():.6f}")
                state = self.state
                if state != self._written:
                    write_changelog(conn, self._ins, "state", state)
                    self._written = state
                self.error = ""
            except Exception as e:  # noqa: BLE001 - keep beating; report
                self.error = str(e)
                try:
                    if conn:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            self._stop_ev.wait(HEARTBEAT_INTERVAL)
        if conn:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        self._stop_ev.set()
