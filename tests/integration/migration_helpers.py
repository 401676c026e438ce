"""Shared pieces of the migration integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from console.config import Secret
from console.engine.engine import Engine
from console.engine.migration.task import MigrationTask
from console.engine.state import StateDir
from console.kinds.migration import MigrationOptions
from console.mysql.connection import Endpoint

DB = "mig"


def endpoint(sb) -> Endpoint:
    return Endpoint("127.0.0.1", sb.primary_port, "dbops", Secret(sb.ops_password), "node1")


def connect(sb, db: str | None = DB) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=sb.primary_port, user="dbops",
                           password=sb.ops_password, autocommit=True, database=db,
                           connect_timeout=3, read_timeout=60)


def start_task(sb, state: Path, **kw) -> tuple[Engine, MigrationTask]:
    kw.setdefault("database", DB)
    kw.setdefault("initially_drop_old_table", True)
    kw.setdefault("initially_drop_ghost_table", True)
    kw.setdefault("postpone_cut_over", False)     # (the options' default waits for the operator)
    opts = MigrationOptions(**kw)
    engine = Engine(sb.config, StateDir(state))
    tid = f"mig-{kw['table']}"
    task = MigrationTask(tid, endpoint(sb), opts, engine.state.task_dir(tid))
    engine.add_task(task)
    engine.start(tid)
    return engine, task


def wait_phase(task: MigrationTask, phases: tuple[str, ...], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task.phase in phases:
            return
        if task.state in ("done", "failed"):
            raise AssertionError(f"task ended ({task.state}) in phase {task.phase}: "
                                 f"{task.status().last_error}")
        time.sleep(0.05)
    raise AssertionError(f"task still in phase {task.phase} after {timeout}s")


def finish(task: MigrationTask, timeout: float = 180) -> None:
    assert task.join(timeout), f"task still running in phase {task.phase}"


def tables(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        return {r[0] for r in cur.fetchall()}


def columns(conn, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(f"SHOW COLUMNS FROM `{table}`")
        return [r[0] for r in cur.fetchall()]


def assert_replicas_equal(sb, table: str, cols: list[str]) -> None:
    """Every replica, caught up, holds exactly the primary's rows of ``table``."""
    from tests.support.migration_load import table_rows

    sb.wait_replicas_caught_up()
    c = connect(sb)
    want = table_rows(c, table, cols)
    c.close()
    for n in sb.nodes:
        if n.role != "replica":
            continue
        r = pymysql.connect(host="127.0.0.1", port=n.port, user="dbops", password=sb.ops_password,
                            database=DB, connect_timeout=3, read_timeout=60)
        try:
            got = table_rows(r, table, cols)
        finally:
            r.close()
        assert got == want, f"{n.name}: {table} differs from the primary ({len(got)} vs {len(want)} rows)"


def cli(sb, *args, env_extra=None, **kw) -> subprocess.CompletedProcess:
    """``dbops-console migrate`` on the sandbox's primary, database ``DB``."""
    env = dict(os.environ, DBOPS_TEST_PW=sb.ops_password, **(env_extra or {}))
    cmd = [sys.executable, "-m", "console", "migrate", "--port", str(sb.primary_port),
           "--user", "dbops", "--password-env", "DBOPS_TEST_PW", "--database", DB, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, **kw)


def with_databases(sandbox, *names: str):
    """The shared sandbox, with the migration tests' database (and ``names``)."""
    c = connect(sandbox, None)
    with c.cursor() as cur:
        for db in (DB, *names):
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    c.close()
    return sandbox


@pytest.fixture(scope="module")
def migration_sandbox(sandbox):
    """Import it as ``sb``: the shared sandbox with the migration database."""
    return with_databases(sandbox)


@pytest.fixture
def zero_dates_refused(sb):
    """The server's sql_mode refuses zero dates (MySQL's default does; the
    sandbox's MariaDB default does not): for new connections, restored
    after.  Use it as ``no_zero_dates = zero_dates_refused``."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("SELECT @@global.sql_mode")
        before = cur.fetchone()[0]
        cur.execute("SET GLOBAL sql_mode = CONCAT(@@global.sql_mode, ',NO_ZERO_DATE,NO_ZERO_IN_DATE')")
    try:
        yield
    finally:
        with c.cursor() as cur:
            cur.execute("SET GLOBAL sql_mode = %s", (before,))
        c.close()
