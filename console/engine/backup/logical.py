"""The logical snapshot (method ``mariadb-dump``): one consistent-snapshot
session gives the position and every table's data, written exactly
(``dumpdata``); mariadb-dump writes the definitions.

1. The session runs ``START TRANSACTION WITH CONSISTENT SNAPSHOT``; the
   binlog position of that snapshot (``binlog_snapshot_file/position``) and
   its GTID (``BINLOG_GTID_POS``) are the snapshot's position.
2. It takes a shared metadata lock on every table (``SELECT ... LIMIT 0``),
   so no DDL changes them while mariadb-dump writes the definitions
   (``--no-data``: databases, tables, sequences, views) and, kept aside,
   the triggers, routines and events.  The tables and views are listed
   again afterwards: one created or dropped meanwhile fails the snapshot.
3. The locks are released (``ROLLBACK TO SAVEPOINT``; with binary logging
   MariaDB releases them only under ``sql_log_bin=0``: without the
   privilege to set it they stay to the end, as with mariadb-dump itself),
   and each table's data is read in the snapshot.  A table changed by DDL
   since the snapshot is refused by InnoDB (error 1412): the snapshot fails.
4. Output: a header naming the position, the definitions, the data, then
   the triggers, routines and events (last: loading the data must not fire
   the triggers).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import pymysql
import pymysql.converters
import pymysql.cursors

from console.engine.backup.dumpdata import (
    LOAD_END,
    LOAD_SETTINGS,
    Column,
    insert_statements,
    quote_name,
    select_sql,
)
from console.errors import UserError
from console.mysql.connection import Endpoint, connect, describe_error
from console.mysql.tools import ClientOptions, tool_process

ER_TABLE_DEF_CHANGED = 1412
DATA_TABLES = ("BASE TABLE", "SYSTEM VERSIONED")
LOCK_WAIT_SECONDS = 120
_COMMON = ["--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--skip-lock-tables",
           "--skip-add-locks"]
DEFINITIONS = ["--no-data", "--skip-triggers", "--skip-routines", "--skip-events"]
PROGRAMS = ["--no-data", "--no-create-info", "--no-create-db", "--triggers", "--routines",
            "--events"]

Write = Callable[[bytes], object]


class DumpError(UserError):
    pass


@dataclass(frozen=True)
class Position:
    file: str
    pos: int
    gtid: str


class _Session:
    """The snapshot session: raw bytes back (no conversion of any value)."""

    def __init__(self, ep: Endpoint):
        self.ep = ep
        self.conn = connect(ep, read_timeout=3600, write_timeout=3600, use_unicode=False,
                            conv=dict(pymysql.converters.encoders))

    def run(self, sql: str, args=None) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return [tuple(v.decode() if isinstance(v, bytes) else v for v in r)
                        for r in cur.fetchall()]
        except pymysql.MySQLError as e:
            raise describe_error(e, self.ep) from None

    def start(self) -> Position:
        try:                                 # lets ROLLBACK TO SAVEPOINT free the locks
            self.run("SET SESSION sql_log_bin = 0")
        except UserError:
            pass
        self.run("SET SESSION time_zone = '+00:00', character_set_results = NULL, "
                 f"lock_wait_timeout = {LOCK_WAIT_SECONDS}")
        self.run("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self.run("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        st = dict(self.run("SHOW STATUS LIKE 'binlog_snapshot_%'"))
        file, pos = st.get("Binlog_snapshot_file", ""), int(st.get("Binlog_snapshot_position") or 0)
        if not file:
            raise DumpError(f"{self.ep.label}: no binlog position for the snapshot "
                            f"(is binary logging on?)")
        gtid = self.run("SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))[0][0]
        if gtid is None:
            raise DumpError(f"{self.ep.label}: no GTID for binlog position {file}:{pos}")
        self.run("SAVEPOINT dbops_sp")
        return Position(file, pos, gtid)

    def objects(self, dbs: list[str]) -> list[tuple[str, str, str]]:
        """(database, name, type) of every table, view and sequence."""
        marks = ",".join(["%s"] * len(dbs))
        return self.run(f"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                        f"WHERE TABLE_SCHEMA IN ({marks}) ORDER BY 1, 2", dbs)

    def columns(self, dbs: list[str]) -> dict[tuple[str, str], list[Column]]:
        marks = ",".join(["%s"] * len(dbs))
        out: dict[tuple[str, str], list[Column]] = {}
        for db, t, name, dtype, cs, gen in self.run(
                f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, "
                f"IS_GENERATED FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) "
                f"ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", dbs):
            out.setdefault((db, t), []).append(Column(name, dtype, cs, gen == "ALWAYS"))
        return out

    def lock(self, tables: list[tuple[str, str]]) -> None:
        for db, t in tables:
            self.run(f"SELECT 1 FROM {quote_name(db)}.{quote_name(t)} LIMIT 0")

    def release(self) -> None:
        self.run("ROLLBACK TO SAVEPOINT dbops_sp")

    def write_table(self, db: str, table: str, cols: list[Column], write: Write) -> int:
        """Write the INSERTs of one table; returns the rows written."""
        n = 0
        try:
            with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(select_sql(db, table, cols))

                def rows():
                    nonlocal n
                    while batch := cur.fetchmany(1000):
                        n += len(batch)
                        yield from batch

                for stmt in insert_statements(db, table, cols, rows()):
                    write(stmt)
        except pymysql.MySQLError as e:
            if e.args and e.args[0] == ER_TABLE_DEF_CHANGED:
                raise DumpError(f"{self.ep.label}: table {db}.{table} was changed (DDL) while the "
                                f"snapshot was taken; take the snapshot again") from None
            raise describe_error(e, self.ep) from None
        self.release()
        return n

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass


def _mariadb_dump(exe: str, cred: ClientOptions, args: list[str], dbs: list[str],
                  write: Write) -> None:
    with tempfile.TemporaryFile() as err:
        with tool_process([exe, *_COMMON, *args, "--databases", *dbs], cred,
                          stdout=subprocess.PIPE, stderr=err) as proc:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 20):
                write(chunk)
            proc.stdout.close()
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            last = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()][-1:]
            raise DumpError(f"mariadb-dump failed (exit {rc}): {(last or ['no output'])[0][:300]}")


def header(pos: Position) -> bytes:
    return (f"-- dbops-console logical snapshot: definitions by mariadb-dump, data exact\n"
            f"-- consistent at binlog {pos.file}:{pos.pos}, GTID {pos.gtid}\n"
            f"-- SET GLOBAL gtid_slave_pos='{pos.gtid}';\n").encode()


def dump(ep: Endpoint, exe: str, cred: ClientOptions, dbs: list[str], write: Write) -> Position:
    """Write the logical snapshot of ``dbs`` through ``write``; returns its position."""
    s = _Session(ep)
    try:
        pos = s.start()
        listed = s.objects(dbs)
        cols = s.columns(dbs)
        tables = [(db, t) for db, t, kind in listed if kind in DATA_TABLES]
        s.lock(tables)
        write(header(pos))
        _mariadb_dump(exe, cred, DEFINITIONS, dbs, write)
        with tempfile.TemporaryFile() as programs:
            _mariadb_dump(exe, cred, PROGRAMS, dbs, programs.write)
            if s.objects(dbs) != listed:
                raise DumpError(f"{ep.label}: tables or views were created or dropped while the "
                                f"snapshot was taken; take the snapshot again")
            s.release()
            write(LOAD_SETTINGS)
            for db, t in tables:
                if (db, t) not in cols:
                    raise DumpError(f"{ep.label}: table {db}.{t} has no columns listed; take the "
                                    f"snapshot again")
                s.write_table(db, t, cols[(db, t)], write)
            write(LOAD_END)
            programs.seek(0)
            while chunk := programs.read(1 << 20):
                write(chunk)
        s.run("ROLLBACK")
        return pos
    finally:
        s.close()
