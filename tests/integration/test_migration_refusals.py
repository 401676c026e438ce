"""A refused ``migrate`` creates nothing: no table, no state directory, no
task directory, no audit entry (the task directory and the audit log were
written before the inspection ran).  The throttle's settings are checked
before anything too: a misspelt ``--max-load`` variable and a throttle
query that fails were ignored for the whole migration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.errors import CommandError
from tests.integration.migration_helpers import (
    cli,
    connect,
    finish,
    start_task,
    tables,
    wait_phase,
    with_databases,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sb(sandbox):
    sb = with_databases(sandbox)
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS rf_plain, rf_nokey, rf_ghosted, rf_ghosted_gho")
        cur.execute("CREATE TABLE rf_plain (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO rf_plain VALUES (1, 1), (2, 2)")
        cur.execute("CREATE TABLE rf_nokey (a INT NULL, UNIQUE KEY (a)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE rf_ghosted (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("CREATE TABLE rf_ghosted_gho (id INT PRIMARY KEY) ENGINE=InnoDB")
    c.close()
    return sb


def listing(root: Path) -> list[tuple[str, int]]:
    """Every path below ``root`` with its size (-1 for a directory)."""
    if not root.exists():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out.append((os.path.relpath(os.path.join(dirpath, d), root), -1))
        for f in filenames:
            p = os.path.join(dirpath, f)
            out.append((os.path.relpath(p, root), os.path.getsize(p)))
    return sorted(out)


def one_error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(errs) == 1, r.stderr
    return errs[0]


REFUSED = [
    (("--table", "rf_missing"), "does not exist"),
    (("--table", "rf_nokey"), "no NOT NULL unique key is shared"),
    (("--table", "rf_plain", "--chunk-size", "5"), "--chunk-size must be between 10"),
    (("--table", "rf_plain", "--copy-threads", "-1"), "--copy-threads must be between 0"),
    (("--table", "rf_plain", "--max-load", "Threads_runing=50"),
     "--max-load: Threads_runing is not a status variable of this server"),
    (("--table", "rf_plain", "--critical-load", "Threads_running=90,Questionz=5"),
     "--critical-load: Questionz is not a status variable"),
    (("--table", "rf_plain", "--max-load", "Uptime_since_flush_status=5,Rpl_status=1"),
     "--max-load: status variable Rpl_status is not a number"),
    (("--table", "rf_plain", "--throttle-query", "SELECT COUNT(*) FROM no_such_table"),
     "--throttle-query 'SELECT COUNT(*) FROM no_such_table' fails: error 1146"),
    (("--table", "rf_plain", "--throttle-query", "SELECT 'busy'"),
     "--throttle-query \"SELECT 'busy'\" returns 'busy', not a number"),
    (("--table", "rf_plain", "--execute", "--resume"), "cannot resume"),
    (("--table", "rf_ghosted", "--execute"), "table mig.rf_ghosted_gho already exists"),
    (("--table", "rf_missing", "--execute"), "does not exist"),
]


@pytest.mark.parametrize("args, expect", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_a_refused_run_creates_nothing(sb, tmp_path, args, expect):
    state = tmp_path / "state"
    (state / "tasks" / "other").mkdir(parents=True)
    (state / "audit.log").write_text('{"earlier": "entry"}\n')
    before = listing(state)
    c = connect(sb)
    schema = tables(c)
    r = cli(sb, *args, "--alter", "ADD COLUMN c INT", "--state-dir", str(state))
    line = one_error_line(r)
    assert expect in line, line
    assert listing(state) == before
    assert tables(c) == schema
    # a state directory that does not exist is not created either
    fresh = tmp_path / "fresh"
    r = cli(sb, *args, "--alter", "ADD COLUMN c INT", "--state-dir", str(fresh))
    assert expect in one_error_line(r)
    assert not fresh.exists()
    c.close()


def test_a_run_that_passes_inspection_records_it(sb, tmp_path):
    """The other side: once the inspection passed, the task directory and
    the audit entries are made (a status variable's case does not matter)."""
    state = tmp_path / "state"
    r = cli(sb, "--table", "rf_plain", "--alter", "ADD COLUMN c INT", "--state-dir", str(state),
            "--max-load", "threads_running=50", "--throttle-query", "SELECT 0")
    assert r.returncode == 0, r.stderr
    assert (state / "audit.log").exists() and (state / "tasks" / "migrate-mig.rf_plain").is_dir()


def test_throttle_settings_changed_while_running_are_checked(sb, tmp_path):
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS rf_live, rf_live_gho, rf_live_ghc, rf_live_del")
        cur.execute("CREATE TABLE rf_live (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.executemany("INSERT INTO rf_live VALUES (%s, %s)", [(i, i) for i in range(1, 101)])
    engine, task = start_task(sb, tmp_path, table="rf_live", alter="ADD COLUMN c INT",
                              postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    for setting, value, expect in (
            ("max-load", "Threads_runing=5", "Threads_runing is not a status variable"),
            ("critical-load", "Threads_runing=5", "Threads_runing is not a status variable"),
            ("throttle-query", "SELECT nope FROM nowhere", "fails: error 1146")):
        with pytest.raises(CommandError, match=expect):
            engine.command(task.task_id, "set", setting=setting, value=value)
    assert task.get_setting("max-load") == "" and task.get_setting("throttle-query") == ""
    assert engine.command(task.task_id, "set", setting="max-load", value="Threads_running=500") \
        == "max-load=Threads_running=500"
    engine.command(task.task_id, "cut-over")
    finish(task)
    assert task.status().state == "done", task.status().last_error
    c.close()
