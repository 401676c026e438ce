"""Restore across every DDL shape the replay can meet after the snapshot:
CREATE/DROP/ALTER DATABASE (a CREATE DATABASE event carries the new
database as its default database), DDL with and without a default
database, a DROP DATABASE of the session's default database, cross-database
DML (row and statement format), CREATE TABLE ... SELECT.  The restored copy
(by GTID and by time) holds exactly what the primary holds."""

import time

import pytest

from console.engine.backup.restore import restore
from tests.support.backup_helpers import running_backup, take_snapshot, wait_backed_up, wait_for
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DBS = ("bkd_a", "bkd_new", "bkd_new2", "bkd_schema", "bkd_ine", "bkd_gone", "bkd_old",
       "bkd_repl", "bkd-odd`name")


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def content(conn) -> list:
    """Databases bkd*, their character sets, tables and rows."""
    out = []
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE 'bkd%' ORDER BY 1")
        schemas = cur.fetchall()
        out.append(schemas)
        for db, _ in schemas:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                        "ORDER BY 1", (db,))
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT * FROM {_q(db)}.{_q(table)} ORDER BY 1")
                out.append((db, table, cur.fetchall()))
    return out


def ddl_after_snapshot(conn) -> None:
    """One session, so USE and the default database behave as for an application."""
    with conn.cursor() as cur:
        for s in [
            # no default database
            "CREATE DATABASE bkd_new",
            "CREATE TABLE bkd_new.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO bkd_new.t VALUES (1, 'no default db')",
            # default database a, creating others
            "USE bkd_a",
            "CREATE DATABASE bkd_new2 CHARACTER SET latin1",
            "/* a comment first */ CREATE SCHEMA bkd_schema",
            "CREATE DATABASE IF NOT EXISTS bkd_ine",           # what our failover writes
            "CREATE DATABASE IF NOT EXISTS bkd_ine",           # and again: a no-op, still logged
            "CREATE OR REPLACE DATABASE bkd_repl",
            "CREATE DATABASE `bkd-odd``name`",
            "CREATE TABLE t2 (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO t2 VALUES (1, 'in a')",
            "CREATE TABLE `bkd-odd``name`.t (id INT PRIMARY KEY)",
            "INSERT INTO `bkd-odd``name`.t VALUES (5)",
            # cross-database DML, row and statement format
            "INSERT INTO bkd_new.t VALUES (2, 'from a, row')",
            "SET SESSION binlog_format = 'STATEMENT'",
            "INSERT INTO bkd_new.t VALUES (3, 'from a, statement')",
            "UPDATE bkd_new.t SET v = CONCAT(v, '!') WHERE id = 1",
            "SET SESSION binlog_format = 'ROW'",
            # ALTER DATABASE, named and of the default database
            "ALTER DATABASE bkd_new2 CHARACTER SET utf8mb4",
            "USE bkd_schema",
            "ALTER DATABASE CHARACTER SET latin1",
            # CREATE TABLE ... SELECT across databases
            "CREATE TABLE copy SELECT * FROM bkd_new.t",
            "CREATE TABLE bkd_new2.copy2 (PRIMARY KEY (id)) SELECT id, v FROM bkd_a.t2",
            # DROP DATABASE of the default database, then the same name again
            "USE bkd_old",
            "DROP DATABASE bkd_old",
            "CREATE TABLE bkd_new.after_drop (id INT PRIMARY KEY)",
            "CREATE DATABASE bkd_gone",
            "USE bkd_gone",
            "CREATE TABLE g (id INT PRIMARY KEY)",
            "DROP DATABASE bkd_gone",
            "CREATE DATABASE bkd_gone",
            "USE bkd_gone",
            "CREATE TABLE g2 (id INT PRIMARY KEY)",
            "INSERT INTO g2 VALUES (7)",
            "DROP DATABASE IF EXISTS bkd_never",
        ]:
            cur.execute(s)


def test_restore_across_database_ddl(sandbox, tmp_path):
    sandbox.sql("node1", *[f"DROP DATABASE IF EXISTS {_q(d)}" for d in DBS],
                "CREATE DATABASE bkd_a", "CREATE TABLE bkd_a.t (id INT PRIMARY KEY)",
                "INSERT INTO bkd_a.t VALUES (1)",
                "CREATE DATABASE bkd_old", "CREATE TABLE bkd_old.t (id INT PRIMARY KEY)")
    with running_backup(sandbox, tmp_path, start_from="now") as (engine, task):
        take_snapshot(engine, task, "mariadb-backup")
        c = sandbox.connect("node1")
        try:
            ddl_after_snapshot(c)
            expected = content(c)
        finally:
            c.close()
        gtid = wait_backed_up(sandbox, task)
        after = time.time()
        wait_for(lambda: task.catalog.load_checkpoint().covered_until >= after + 1, 30,
                 what="the checkpoint to cover the time")
    assert [s for s, _ in expected[0]] == sorted(set(DBS) - {"bkd_old"})
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(after + 1))
    from console.engine.backup.restore import parse_time

    for name, target in (("by-gtid", {"to_gtid": gtid}), ("by-time", {"to_time": parse_time(when)})):
        r = restore(tmp_path / "store", tmp_path / name, port=free_port_block(1),
                    keep_running=True, **target)
        try:
            c = r.server.connect()
            try:
                got = content(c)
            finally:
                c.close()
        finally:
            r.stop()
        assert r.restored_gtid == gtid, name
        assert got == expected, name
