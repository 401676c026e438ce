"""Refusals, dry run, control socket, throttling, panic, cut-over failure
and kill -9 + resume, against the real sandbox."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from console.engine.migration.alter import AlterError
from console.engine.migration.checksum import binlog_pos_key
from console.engine.migration.inspect import Refused, inspect
from console.kinds.migration import MigrationOptions
from tests.integration.migration_helpers import (
    DB,
    columns,
    connect,
    finish,
    start_task,
    tables,
    wait_phase,
)
from tests.integration.migration_helpers import cli as _cli
from tests.support.migration_load import Load, table_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sb(sandbox):
    c = connect(sandbox, None)
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"USE {DB}")
        cur.execute("DROP TABLE IF EXISTS child, parent, nokey, plain, trig")
        cur.execute("CREATE TABLE nokey (a INT NULL, b INT NULL, UNIQUE KEY (a)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("CREATE TABLE child (id INT PRIMARY KEY, p INT, "
                    "CONSTRAINT fk_child_parent FOREIGN KEY (p) REFERENCES parent(id)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE plain (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO plain VALUES (1, 1), (2, 2)")
        cur.execute("CREATE TABLE trig (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.execute("CREATE TRIGGER trig_bi BEFORE INSERT ON trig FOR EACH ROW SET NEW.v = 1")
    c.close()
    return sandbox


@pytest.mark.parametrize("table,alter,extra,expect", [
    ("nokey", "ADD COLUMN c INT", {}, "no NOT NULL unique key is shared"),
    ("parent", "ADD COLUMN c INT", {}, "is the parent of foreign key(s) from mig.child"),
    ("parent", "ADD COLUMN c INT", {"allow_foreign_keys": True},
     "is the parent of foreign key(s) from mig.child (fk_child_parent)"),
    ("child", "ADD COLUMN c INT", {}, "has foreign key(s)"),
    ("plain", "RENAME TO plain2", {}, "renames the table"),
    ("trig", "ADD COLUMN c INT", {}, "has trigger(s) trig_bi: they would not follow the table"),
    ("plain", "RENAME COLUMN v TO w", {}, "approve it with --approve-renamed-columns"),
    ("plain", "CHANGE v w INT", {}, "renames column(s) v -> w"),
    ("plain", "DROP PRIMARY KEY", {}, "no NOT NULL unique key is shared"),
    ("plain", "DROP PRIMARY KEY, ADD PRIMARY KEY (v, id)", {},
     "the new unique key (v, id) of mig.plain contains the old key PRIMARY but does not start with"),
    ("plain", "ADD COLUMN c NOSUCHTYPE", {}, "the ALTER fails on an empty copy"),
    ("missing", "ADD COLUMN c INT", {}, "does not exist"),
])
def test_refusals_are_one_line_and_change_nothing(sb, table, alter, extra, expect):
    c = connect(sb)
    before = tables(c)
    with pytest.raises((Refused, AlterError)) as ei:
        inspect(c, MigrationOptions(database=DB, table=table, alter=alter, **extra))
    assert expect in str(ei.value)
    assert "\n" not in str(ei.value)
    assert tables(c) == before
    c.close()


def test_an_account_without_replication_slave_is_refused_before_anything_changes(sb):
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER 'norepl'@'127.0.0.1' IDENTIFIED BY 'norepl-pw'")
        cur.execute(f"GRANT ALL PRIVILEGES ON {DB}.* TO 'norepl'@'127.0.0.1'")
    before = tables(c)
    u = pymysql.connect(host="127.0.0.1", port=sb.primary_port, user="norepl", password="norepl-pw",
                        autocommit=True, database=DB)
    try:
        with pytest.raises(Refused) as ei:
            inspect(u, MigrationOptions(database=DB, table="plain", alter="ADD COLUMN c INT"))
    finally:
        u.close()
        with c.cursor() as cur:
            cur.execute("DROP USER 'norepl'@'127.0.0.1'")
    assert "norepl@127.0.0.1 lacks the REPLICATION SLAVE privilege" in str(ei.value)
    assert "\n" not in str(ei.value) and tables(c) == before
    c.close()


def test_dry_run_refuses_an_unreachable_control_replica_and_an_unusable_socket_path(sb, tmp_path):
    args = ("--table", "plain", "--alter", "ADD COLUMN c INT", "--state-dir", str(tmp_path))
    r = _cli(sb, *args, "--throttle-control-replicas", "127.0.0.1:1")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(err) == 1 and "replica 127.0.0.1:1 (--throttle-control-replicas) does not answer" in err[0]
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    r = _cli(sb, *args, "--serve-socket-file", str(keep))
    assert r.returncode == 2 and "exists and is not a socket" in r.stderr, r.stderr
    assert keep.read_text() == "mine"          # left alone (it used to be unlinked)


def test_cli_dry_run_validates_and_changes_nothing(sb, tmp_path):
    c = connect(sb)
    before = tables(c)
    r = _cli(sb, "--table", "plain", "--alter", "ADD COLUMN c INT", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "dry run" in r.stderr and "chunking key: PRIMARY (id)" in r.stderr
    assert tables(c) == before and columns(c, "plain") == ["id", "v"]
    # --config gives the state dir (its audit log records the dry run)
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "cfg-state"}"\n')
    r = _cli(sb, "--table", "plain", "--alter", "ADD COLUMN c INT", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cfg-state" / "audit.log").exists()
    r = _cli(sb, "--table", "child", "--alter", "ADD COLUMN c INT", "--state-dir", str(tmp_path))
    assert r.returncode == 2
    err = [ln for ln in r.stderr.splitlines() if "dbops-console" in ln]
    assert len(err) == 1 and "foreign key" in err[0] and "Traceback" not in r.stderr
    c.close()


def test_parent_side_foreign_keys_are_refused_even_when_foreign_keys_are_allowed(sb, tmp_path):
    """--allow-foreign-keys let a table that other tables reference migrate:
    the children then pointed at parent_del (gh-ost naming: _parent_del).  No method here keeps them
    right, so it is refused: one line naming the child table and the
    constraint, exit 2, nothing created.  Child-side keys (the table
    references others, or itself) still migrate with --allow-foreign-keys."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS fkc, fkp, fks, fkc_del, fks_del")
        cur.execute("CREATE TABLE fkp (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("CREATE TABLE fkc (id INT PRIMARY KEY, p INT, CONSTRAINT fk_c_p FOREIGN KEY (p) "
                    "REFERENCES fkp (id)) ENGINE=InnoDB")
        cur.execute("CREATE TABLE fks (id INT PRIMARY KEY, up INT NULL, CONSTRAINT fk_s_s FOREIGN KEY (up) "
                    "REFERENCES fks (id)) ENGINE=InnoDB")
        cur.executemany("INSERT INTO fkp VALUES (%s)", [(i,) for i in range(1, 101)])
        cur.executemany("INSERT INTO fkc VALUES (%s, %s)", [(i, i) for i in range(1, 101)])
        cur.executemany("INSERT INTO fks VALUES (%s, %s)", [(i, i - 1 if i > 1 else None) for i in range(1, 101)])
    before = tables(c)
    r = _cli(sb, "--table", "fkp", "--alter", "ADD COLUMN c INT", "--allow-foreign-keys", "--execute",
             "--state-dir", str(tmp_path))
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(err) == 1 and "mig.fkc (fk_c_p)" in err[0], r.stderr
    assert tables(c) == before and columns(c, "fkp") == ["id"]
    for table in ("fkc", "fks"):
        r = _cli(sb, "--table", table, "--alter", "ADD COLUMN c INT", "--allow-foreign-keys", "--execute",
                 "--state-dir", str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert columns(c, table)[-1] == "c" and len(table_rows(c, table, ["id"])) == 100
    c.close()


def _fill(c, table: str, n: int) -> dict:
    rows = {}
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}, {table}_gho, {table}_ghc, {table}_del")
        cur.execute(f"CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL, "
                    f"s VARCHAR(30) NULL) ENGINE=InnoDB")
        for start in range(0, n, 2000):
            vals = [(i, i % 97, f"row {i}") for i in range(start + 1, min(n, start + 2000) + 1)]
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", vals)
            rows.update({(i,): {"id": i, "v": v, "s": s} for i, v, s in vals})
    return rows


def _send(path: str, line: str) -> str:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out.decode().strip()


def _wait(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_control_socket_throttle_and_panic_leaves_original_untouched(sb, tmp_path):
    c = connect(sb)
    _fill(c, "p1", 6000)
    with c.cursor() as cur:
        cur.execute("CHECKSUM TABLE p1")
        before = cur.fetchone()[1]
    sock = str(tmp_path / "m.sock")
    flag = tmp_path / "throttle.flag"
    flag.touch()
    _, task = start_task(sb, tmp_path, table="p1", alter="ADD COLUMN z INT", chunk_size=100,
                         serve_socket_file=sock, throttle_flag_file=str(flag), postpone_cut_over=True)
    wait_phase(task, ("copying",))
    assert _wait(lambda: os.path.exists(sock))
    assert _wait(lambda: task.status().throttle_reason == "throttle flag file exists")
    copied = task.detail().rows_copied
    time.sleep(0.5)
    assert task.detail().rows_copied == copied          # throttled: the copy waits
    assert task.state == "running", task.status().last_error
    assert _send(sock, "chunk-size=?") == "100"
    assert _send(sock, "chunk-size=250") == "OK chunk-size=250"
    assert _send(sock, "chunk-size=5").startswith("ERROR chunk-size must be between 10")
    assert _send(sock, "max-load=Threads_running=500") == "OK max-load=Threads_running=500"
    assert _send(sock, "nice-ratio=0.5") == "OK nice-ratio=0.5"
    assert _send(sock, "bogus").startswith("ERROR unknown command")
    assert "unpostpone" in _send(sock, "help")
    assert _send(sock, "coordinates").startswith("read mysql-bin.")
    flag.unlink()
    assert _send(sock, "throttle") == "OK"
    assert _wait(lambda: task.status().throttle_reason == "manual throttle (operator)")
    status = _send(sock, "status")
    assert "throttle: manual throttle (operator)" in status and "chunk-size=250" in status
    assert _send(sock, "no-throttle") == "OK"
    assert _wait(lambda: task.detail().rows_copied > copied)
    sup = _send(sock, "sup")
    assert re.match(rf"{DB}\.p1 (copying|indexing|checksumming|postponed): copied \d+/", sup), sup
    for name in ("dml-batch-size", "max-lag-millis", "critical-load", "throttle-query"):
        assert not _send(sock, f"{name}=?").startswith("ERROR"), name
    assert _send(sock, "max-load=?") == "Threads_running=500"
    assert _send(sock, "nice-ratio=?") == "0.5"
    assert _send(sock, "panic") == "OK panic: stopping"
    finish(task, 30)
    st = task.status()
    assert st.state == "failed" and "panic" in st.last_error
    assert task.exit_code == 3
    assert not {"p1_gho", "p1_ghc", "p1_del"} & tables(c)
    assert columns(c, "p1") == ["id", "v", "s"]
    with c.cursor() as cur:
        cur.execute("CHECKSUM TABLE p1")
        assert cur.fetchone()[1] == before
    audit = [json.loads(ln) for ln in (tmp_path / "audit.log").read_text().splitlines()]
    assert any(e["actor"] == "socket" and e["action"] == "panic" for e in audit)
    c.close()


def test_cut_over_lock_timeout_retries_leave_original_intact(sb, tmp_path):
    c = connect(sb)
    _fill(c, "p2", 500)
    _, task = start_task(sb, tmp_path, table="p2", alter="ADD COLUMN z INT",
                         postpone_cut_over=True, cut_over_lock_timeout_seconds=1, default_retries=2)
    wait_phase(task, ("postponed",))
    blocker = connect(sb)
    with blocker.cursor() as cur:        # an open transaction holds the table's metadata lock
        cur.execute("BEGIN")
        cur.execute("SELECT * FROM p2 LIMIT 1")
    task.engine.command(task.task_id, "cut-over")
    finish(task, 60)
    st = task.status()
    blocker.rollback()
    blocker.close()
    assert st.state == "failed" and "cut-over failed 2 times" in st.last_error
    assert columns(c, "p2") == ["id", "v", "s"]
    assert "p2_del" not in tables(c) and "p2_gho" in tables(c)
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM p2")
        assert cur.fetchone()[0] == 500
        cur.execute("INSERT INTO p2 VALUES (100000, 1, 'still writable')")
    c.close()


def test_postpone_flag_file_holds_the_cut_over_and_the_old_table_is_kept(sb, tmp_path):
    """--postpone-cut-over-flag-file holds the cut-over while it exists;
    without --ok-to-drop-table the old table stays as p9_del; with
    --no-verify-checksum no checksum runs."""
    c = connect(sb)
    _fill(c, "p9", 300)
    flag = tmp_path / "postpone.flag"
    flag.touch()
    _, task = start_task(sb, tmp_path, table="p9", alter="ADD COLUMN z INT",
                         postpone_cut_over_flag_file=str(flag), verify_checksum=False)
    wait_phase(task, ("postponed",))
    time.sleep(1.0)
    assert task.phase == "postponed" and columns(c, "p9") == ["id", "v", "s"]
    flag.unlink()
    finish(task, 60)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert task.checksummer is None
    assert columns(c, "p9") == ["id", "v", "s", "z"]
    assert "p9_del" in tables(c) and columns(c, "p9_del") == ["id", "v", "s"]
    c.close()


def test_panic_under_the_cut_over_lock_calls_the_swap_off(sb, tmp_path):
    """A panic that arrives while the cut-over holds the lock, with the
    RENAME already queued, is obeyed before the sentry is dropped (after
    that the swap is under way): the RENAME is killed, the tables unlocked,
    the original stays where it was and the ghost is dropped."""
    c = connect(sb)
    _fill(c, "p8", 500)
    _, task = start_task(sb, tmp_path, table="p8", alter="ADD COLUMN z INT", postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    log = task.log

    def panic_when_queued(msg: str) -> None:
        log(msg)
        if msg.startswith("RENAME is queued"):
            task.engine.command(task.task_id, "panic", confirm=task.confirm_target())
    task.log = panic_when_queued
    task.engine.command(task.task_id, "cut-over")
    finish(task, 60)
    st = task.status()
    assert st.state == "failed" and "panic" in st.last_error, st.last_error
    assert columns(c, "p8") == ["id", "v", "s"]
    assert not {"p8_del", "p8_gho", "p8_ghc"} & tables(c)
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM p8")
        assert cur.fetchone()[0] == 500
        cur.execute("INSERT INTO p8 VALUES (100000, 1, 'still writable')")
    c.close()


def test_cut_over_unlocks_only_once_the_rename_is_queued_on_the_original(sb, tmp_path):
    """Regression (lost writes at the cut-over): the RENAME takes its table
    locks in name order.  With gh-ost's names (_p7_del, _p7_gho, p7) it
    queued on p7 last, and an unlock before that let the queued writes run
    on the old table after the drain.  Now p7 comes first (p7, p7_del,
    p7_gho): with a transaction holding the ghost, the RENAME takes p7 at
    the unlock and waits for the ghost with the writers queued behind it."""
    c = connect(sb)
    rows = _fill(c, "p7", 2000)
    load = Load(lambda: connect(sb), "p7", ["id"], rows, threads=2, owner=lambda k: k[0] % 2,
                new_key=lambda t, n: (10_000_000 + 2 * n + t,),
                make_row=lambda r: {"v": r.randint(0, 10**6), "s": r.choice(["x", None])}).start()
    blocker = connect(sb)
    try:
        _, task = start_task(sb, tmp_path, table="p7", alter="ADD COLUMN z INT NOT NULL DEFAULT 1",
                             postpone_cut_over=True, cut_over_lock_timeout_seconds=5)
        wait_phase(task, ("postponed",))
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM p7_gho LIMIT 1")
        task.engine.command(task.task_id, "cut-over")
        wait_phase(task, ("cutting-over", "cleaning-up", "complete"))
        time.sleep(1.5)      # the RENAME waits on the ghost meanwhile; writers keep writing
        blocker.rollback()
        finish(task, 60)
    finally:
        blocker.close()
        load.stop()
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert not load.errors, load.errors[:3]
    assert task.cutover_attempts == 1     # no retry: the RENAME waited for the ghost holding p7
    assert columns(c, "p7") == ["id", "v", "s", "z"]
    assert table_rows(c, "p7", ["id", "v", "s"]) == load.expected(["id", "v", "s"])
    c.close()


def test_kill_9_during_copy_then_resume_completes_with_correct_content(sb, tmp_path):
    c = connect(sb)
    rows = _fill(c, "p3", 20000)
    with c.cursor() as cur:          # deferred during the copy; the resumed run builds it
        cur.execute("ALTER TABLE p3 ADD KEY kv (v)")
    state = tmp_path / "state"
    flag = tmp_path / "throttle.flag"
    load = Load(lambda: connect(sb), "p3", ["id"], rows, threads=2, owner=lambda k: k[0] % 2,
                new_key=lambda t, n: (10_000_000 + 2 * n + t,),
                make_row=lambda r: {"v": r.randint(0, 10**6), "s": random.choice(["x", None])},
                rate_sleep=0.005).start()
    try:
        args = ["--table", "p3", "--alter", "ADD COLUMN z INT NOT NULL DEFAULT 1", "--execute",
                "--state-dir", str(state), "--status-interval", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "migrate", "--port", str(sb.primary_port), "--user",
             "dbops", "--password-env", "DBOPS_TEST_PW", "--database", DB, *args,
             "--chunk-size", "50", "--nice-ratio", "20", "--initially-drop-ghost-table",
             "--copy-threads", "2", "--throttle-flag-file", str(flag)],
            env=dict(os.environ, DBOPS_TEST_PW=sb.ops_password),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ckpt = state / "tasks" / f"migrate-{DB}.p3" / "checkpoint.json"

        def copied():
            try:
                return json.loads(ckpt.read_text())["copy"]["rows"]
            except (OSError, ValueError):
                return 0

        assert _wait(lambda: copied() >= 1000, 120), proc.stderr.read1().decode() if proc.poll() else ""
        flag.touch()                            # hold the copy mid-way (throttled), then kill -9
        time.sleep(1.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert "p3_gho" in tables(c) and columns(c, "p3") == ["id", "v", "s"]
        killed_at = json.loads(ckpt.read_text())["copy"]
        assert not killed_at["done"]
        time.sleep(1.0)                         # more writes while nothing runs
        r = _cli(sb, *args, "--resume", "--chunk-size", "2000")
    finally:
        load.stop()
    assert r.returncode == 0, r.stderr
    assert "resuming: copy after key" in r.stderr
    assert re.search(rf"migration of {DB}\.p3 complete in [\d.]+s \(inspecting [\d.]+s, copying [\d.]+s, "
                     r"indexing [\d.]+s, checksumming [\d.]+s, cutting-over [\d.]+s, cleaning-up [\d.]+s\)",
                     r.stderr), r.stderr[-600:]
    assert not load.errors, load.errors[:3]
    assert columns(c, "p3") == ["id", "v", "s", "z"]
    assert table_rows(c, "p3", ["id", "v", "s"]) == load.expected(["id", "v", "s"])
    assert "building the deferred secondary index(es) `kv`" in r.stderr
    with c.cursor() as cur:
        cur.execute("SHOW INDEX FROM p3 WHERE Key_name = 'kv'")
        assert cur.fetchall()
    assert not ckpt.exists()
    c.close()


def test_config_task_kind_parses(tmp_path):
    from console.config import load_config

    cfg = tmp_path / "c.toml"
    pw = tmp_path / "pw"
    pw.write_text("x")
    cfg.write_text(
        '[clusters.c.hosts.h1]\nuser = "u"\npassword_file = "pw"\n'
        '[tasks.m]\nkind = "migration"\ncluster = "c"\ndatabase = "d"\ntable = "t"\n'
        'alter = "ADD COLUMN x INT"\nchunk_size = 500\nmax_load = "Threads_running=30"\n')
    t = load_config(cfg).task("m")
    assert t.kind == "migration" and t.options.chunk_size == 500 and t.options.postpone_cut_over
    cfg.write_text(cfg.read_text().replace("chunk_size", "chunk_sise"))
    with pytest.raises(Exception) as ei:
        load_config(cfg)
    assert "chunk_sise: unknown key (did you mean 'chunk_size'?)" in str(ei.value)
    cfg.write_text(cfg.read_text().replace("chunk_sise = 500", 'copy_binlog_format = "stmt"'))
    with pytest.raises(Exception) as ei:
        load_config(cfg)
    msg = str(ei.value)
    assert "copy_binlog_format" in msg and "must be one of statement, row, got 'stmt'" in msg and "\n" not in msg
    cfg.write_text(cfg.read_text().replace('"stmt"', '"statement"') + "checksum_chunk_size = 4000\n"
                   "allow_zero_in_date = true\n")
    t = load_config(cfg).task("m")
    assert t.options.copy_binlog_format == "statement" and t.options.checksum_threads == 4
    assert t.options.checksum_chunk_size == 4000 and t.options.allow_zero_in_date
    Path(pw).unlink()


def test_ddl_on_the_original_during_migration_aborts(sb, tmp_path):
    c = connect(sb)
    _fill(c, "p4", 300)
    _, task = start_task(sb, tmp_path, table="p4", alter="ADD COLUMN z INT", postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    assert any(n.startswith("binlog retention: ") for n in task.detail().notes)
    with c.cursor() as cur:
        cur.execute("ALTER TABLE p4 ADD COLUMN other INT")
    finish(task, 30)
    st = task.status()
    assert st.state == "failed" and "DDL on mig.p4 during the migration" in st.last_error
    assert "p4_del" not in tables(c) and columns(c, "p4") == ["id", "v", "s", "other"]
    c.close()


def test_panic_flag_file_stops_and_drops_ghost(sb, tmp_path):
    c = connect(sb)
    _fill(c, "p5", 300)
    flag = tmp_path / "panic.flag"
    _, task = start_task(sb, tmp_path, table="p5", alter="ADD COLUMN z INT", postpone_cut_over=True,
                         panic_flag_file=str(flag))
    wait_phase(task, ("postponed",))
    flag.touch()
    finish(task, 30)
    st = task.status()
    assert st.state == "failed" and "panic flag file" in st.last_error and task.exit_code == 3
    assert not {"p5_gho", "p5_ghc", "p5_del"} & tables(c) and columns(c, "p5") == ["id", "v", "s"]
    c.close()


def test_critical_load_aborts_with_the_reason(sb, tmp_path):
    c = connect(sb)
    _fill(c, "p6", 300)
    _, task = start_task(sb, tmp_path, table="p6", alter="ADD COLUMN z INT", postpone_cut_over=True,
                         critical_load="Threads_connected=1")
    finish(task, 30)
    st = task.status()
    assert st.state == "failed" and task.exit_code == 4
    assert "critical-load Threads_connected=" in st.last_error and "original table untouched" in st.last_error
    assert columns(c, "p6") == ["id", "v", "s"]
    assert not {"p6_del", "p6_gho", "p6_ghc"} & tables(c)      # an abort cleans up like a panic
    c.close()


def test_without_the_binlog_format_privilege_the_copy_falls_back_to_row_events(sb, tmp_path):
    """A migration user that may not set the session's binlog_format (no
    BINLOG ADMIN / SUPER) still migrates: the chunks go out as row events."""
    import dataclasses

    from console.config import Secret
    from console.engine.engine import Engine
    from console.engine.migration.task import MigrationTask
    from console.engine.state import StateDir
    from tests.integration.migration_helpers import assert_replicas_equal, endpoint

    c = connect(sb)
    rows = _fill(c, "p7", 500)
    with c.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER 'migr'@'127.0.0.1' IDENTIFIED BY 'migr-pw'")
        cur.execute(f"GRANT ALL PRIVILEGES ON {DB}.* TO 'migr'@'127.0.0.1'")
        cur.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR, "
                    "REPLICATION MASTER ADMIN, PROCESS ON *.* TO 'migr'@'127.0.0.1'")
    sb.wait_replicas_caught_up()    # the migration connects to the replicas as migr too
    ep = dataclasses.replace(endpoint(sb), user="migr", password=Secret("migr-pw"))
    lines: list[str] = []
    engine = Engine(sb.config, StateDir(tmp_path))
    task = MigrationTask("mig-p7", ep, MigrationOptions(database=DB, table="p7", alter="ADD COLUMN z INT",
                                                         chunk_size=100, copy_binlog_format="statement",
                                                         postpone_cut_over=False),
                         engine.state.task_dir("mig-p7"),
                         log=lines.append)
    engine.add_task(task)
    engine.start("mig-p7")
    finish(task, 60)
    assert task.status().state == "done", task.status().last_error
    assert task.copy_format == "row"
    assert any("binlogged as row events: cannot set binlog_format=STATEMENT" in x for x in lines), lines
    got = table_rows(c, "p7", ["id", "v", "s"])
    assert len(got) == len(rows) == 500 and got == table_rows(c, "p7_del", ["id", "v", "s"])
    assert_replicas_equal(sb, "p7", ["id", "v", "s", "z"])
    with c.cursor() as cur:
        cur.execute("DROP USER 'migr'@'127.0.0.1'")
    c.close()


def test_apply_reconnects_from_its_file_position_after_the_dump_is_killed(sb, tmp_path):
    """The apply's dump starts at the migration's binlog file:pos; when the
    server kills it, the stream reconnects by file:pos (never by a GTID the
    library would misparse as MySQL's), and the content still comes out equal."""
    c = connect(sb)
    rows = _fill(c, "p8", 3000)
    _, task = start_task(sb, tmp_path, table="p8", alter="ADD COLUMN z INT", chunk_size=500,
                         postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    assert task.applier.applied_file and task.applier.applied_file[0].startswith("mysql-bin.")
    load = Load(lambda: connect(sb), "p8", ["id"], rows, threads=2,
                owner=lambda k: k[0] % 2, new_key=lambda t, n: (10_000 + 2 * n + t,),
                make_row=lambda rng: {"v": rng.randint(0, 96), "s": f"r{rng.randint(0, 999)}"}).start()
    try:
        time.sleep(0.5)
        with c.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'dbops' "
                        "AND COMMAND LIKE 'Binlog Dump%'")
            ids = [r[0] for r in cur.fetchall()]
            assert ids, "no dump thread of the migration"
            for i in ids:
                cur.execute(f"KILL {i}")
        time.sleep(1.0)
        with c.cursor() as cur:     # a new dump connection (the library's reconnect or ours)
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'dbops' "
                        "AND COMMAND LIKE 'Binlog Dump%'")
            again = [r[0] for r in cur.fetchall()]
        assert again and not set(again) & set(ids)
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    task.engine.command(task.task_id, "cut-over")
    finish(task, 60)
    assert task.status().state == "done", task.status().last_error
    assert table_rows(c, "p8", ["id", "v", "s"]) == load.expected(["id", "v", "s"])
    c.close()


def test_apply_reads_on_while_the_ghost_is_locked(sb, tmp_path):
    """The binlog is read by one thread and applied by another: while the
    ghost is locked (as a copy chunk's AUTO-INC lock holds the apply's
    inserts) the reader still follows the binlog, and what it decoded is
    applied, in order, once the lock is gone."""
    c = connect(sb)
    _fill(c, "p9", 200)
    _, task = start_task(sb, tmp_path, table="p9", alter="ADD COLUMN z INT", chunk_size=100,
                         postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    a = task.applier
    locker = connect(sb)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES p9_gho WRITE")
        applied = a.events_applied
        with c.cursor() as cur:
            for i in range(30):
                cur.execute("INSERT INTO p9 (id, v, s) VALUES (%s, %s, %s)", (5000 + i, i, f"n{i}"))
            time.sleep(0.5)     # the apply's batch of them waits on the lock; heartbeats go on
            cur.execute("SHOW MASTER STATUS")
            f, pos = cur.fetchone()[:2]
        assert _wait(lambda: binlog_pos_key((a.read_file, a.read_pos)) >= binlog_pos_key((f, pos)), 10), \
            f"reader stopped at {a.read_file}:{a.read_pos}, binlog at {f}:{pos}"
        time.sleep(0.3)
        assert a.events_applied == applied          # nothing reached the locked ghost
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()
    assert _wait(lambda: a.events_applied >= applied + 30, 20)
    task.engine.command(task.task_id, "cut-over")
    finish(task, 60)
    assert task.status().state == "done", task.status().last_error
    assert table_rows(c, "p9", ["id", "v", "s"]) == table_rows(c, "p9_del", ["id", "v", "s"])
    assert len(table_rows(c, "p9", ["id"])) == 230
    c.close()


def test_new_unique_key_over_duplicates_refuses_the_cut_over_and_loses_nothing(sb, tmp_path):
    """gh-ost's INSERT IGNORE would drop the colliding rows silently; the
    checksum sees them missing, re-copies in vain, and refuses the cut-over:
    the original keeps every row.  The last checksum pass checks every chunk
    (a REPLACE may delete a row whose chunk was already checked)."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS p10, p10_gho, p10_ghc, p10_del")
        cur.execute("CREATE TABLE p10 (id INT NOT NULL PRIMARY KEY, u INT NOT NULL) ENGINE=InnoDB")
        cur.executemany("INSERT INTO p10 VALUES (%s, %s)", [(i, i if i != 700 else 7) for i in range(1, 1001)])
    before = table_rows(c, "p10", ["id", "u"])
    r = _cli(sb, "--table", "p10", "--alter", "ADD UNIQUE KEY uk_u (u)", "--execute", "--chunk-size", "200",
             "--state-dir", str(tmp_path), "--initially-drop-ghost-table")
    lines = r.stderr.splitlines()
    assert r.returncode != 0
    assert any("new unique key(s) uk_u" in x for x in lines), r.stderr
    err = [x for x in lines if "cut-over refused" in x]
    assert err and "collide on the new unique key(s) uk_u" in err[-1], r.stderr
    # and says where: the range, the rows on each side, the key that went missing
    assert "key range (start, end] of key PRIMARY: 1000 row(s) in the original, 999 in the ghost; " \
           "e.g. id=700 missing from the ghost" in err[-1], r.stderr
    assert any("full pass before the cut-over (new unique key" in x for x in lines), r.stderr
    assert table_rows(c, "p10", ["id", "u"]) == before and columns(c, "p10") == ["id", "u"]
    c.close()


def test_hot_table_reaches_its_cut_over_under_writers_without_pause(sb, tmp_path):
    """Regression (no cut-over within 150 s on a hot 3,000-row table with 4
    writers without pause): the last check of the changed keys ran outside
    the lock until every key was proven equal, which on a hot table never
    happens, and a checksum marker waited for more than 60 s failed the
    migration.  Now rounds shrink the set and the rest is compared under
    the cut-over lock; the status says what the migration waits for."""
    from tests.support import load_process

    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hot, hot_gho, hot_ghc, hot_del")
    load_process.fill_table(c, "hot", 3000)
    # 4 writer processes, each with a 1 ms pause: a load the apply keeps up
    # with on a busy 2-core machine (without any pause there it does not)
    writers = load_process.start(sb.primary_port, sb.ops_password, DB, "hot", 3000, 4, tmp_path, 0.001)
    waits: list[str] = []
    try:
        time.sleep(1.0)
        _, task = start_task(sb, tmp_path / "state", table="hot", alter="ADD COLUMN z INT NOT NULL DEFAULT 1")
        log = task.log

        def record(msg: str) -> None:
            log(msg)
            if msg.startswith("waiting for") or "left for the cut-over's lock" in msg:
                waits.append(msg)
        task.log = record
        assert task.join(240), f"{task.status_text()}\n{waits[-5:]}"
    finally:
        expected, errors = load_process.stop(writers, tmp_path)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert not errors, errors[:3]
    assert any("checksum round 1:" in w for w in waits), waits
    assert any("left for the cut-over's lock" in w for w in waits), waits
    assert table_rows(c, "hot", ["id", "v", "s"]) == expected
    assert columns(c, "hot") == ["id", "v", "s", "z"]
    c.close()


def test_a_changed_key_that_differs_under_the_cut_over_lock_calls_the_attempt_off(sb, tmp_path):
    """The last changed keys are compared under the lock: a row the ghost
    lost (deleted behind the apply's back) is found there, the attempt is
    called off with the original in place, the row is copied again and the
    next attempt swaps."""
    c = connect(sb)
    _fill(c, "p11", 300)
    _, task = start_task(sb, tmp_path, table="p11", alter="ADD COLUMN z INT NOT NULL DEFAULT 1")
    log = task.log
    seen: list[str] = []

    def damage_when_left(msg: str) -> None:
        log(msg)
        seen.append(msg)
        if "left for the cut-over's lock" in msg:
            with c.cursor() as cur:
                cur.execute("DELETE FROM p11_gho WHERE id = 5")
                cur.execute("UPDATE p11 SET v = v + 1 WHERE id = 5")    # a changed key
    task.log = damage_when_left
    finish(task, 120)
    st = task.status()
    assert st.state == "done", st.last_error
    assert task.cutover_attempts == 2
    assert any("called off, original intact" in m and "differ under the lock" in m for m in seen), seen
    assert table_rows(c, "p11", ["id", "v", "s"]) == table_rows(c, "p11_del", ["id", "v", "s"])
    c.close()


def test_auto_increment_counter_follows_the_table_through_the_cut_over(sb, tmp_path):
    """Regression: ids handed out and then deleted were handed out again
    after the cut-over (the ghost's counter only reached max(id) + 1)."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS ai, ai_gho, ai_ghc, ai_del")
        cur.execute("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.executemany("INSERT INTO ai (v) VALUES (%s)", [(i,) for i in range(100)])
        cur.execute("DELETE FROM ai WHERE id > 90")         # ids 91..100 were used
        cur.execute("BEGIN")
        cur.execute("INSERT INTO ai (v) VALUES (-1)")      # 101, rolled back: used too
        cur.execute("ROLLBACK")
    _, task = start_task(sb, tmp_path, table="ai", alter="ADD COLUMN z INT NOT NULL DEFAULT 1")
    finish(task, 120)
    assert task.status().state == "done", task.status().last_error
    with c.cursor() as cur:
        cur.execute("INSERT INTO ai (v) VALUES (7)")
        assert cur.lastrowid == 102
    c.close()


def test_a_second_migration_of_the_same_table_is_refused_while_one_runs(sb, tmp_path):
    """Review finding: a second run with --initially-drop-ghost-table dropped
    the live migration's ghost and changelog; a --resume beside a live run
    applied the binlog into the same ghost.  One lock per table on the server."""
    c = connect(sb)
    _fill(c, "p12", 300)
    _, first = start_task(sb, tmp_path / "a", table="p12", alter="ADD COLUMN z INT", postpone_cut_over=True)
    wait_phase(first, ("postponed",))
    for kw in ({"initially_drop_ghost_table": True}, {"resume": True, "initially_drop_ghost_table": False}):
        _, second = start_task(sb, tmp_path / f"b{len(kw)}", table="p12", alter="ADD COLUMN y INT", **kw)
        finish(second, 60)
        st = second.status()
        assert st.state == "failed" and "another migration of mig.p12 is running" in st.last_error, st
    assert "p12_gho" in tables(c) and first.phase == "postponed"
    first.engine.command(first.task_id, "cut-over")
    finish(first, 60)
    assert first.status().state == "done" and columns(c, "p12") == ["id", "v", "s", "z"]
    r = _cli(sb, "--table", "p12", "--alter", "ADD COLUMN y INT", "--initially-drop-old-table",
             "--state-dir", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr          # free again: the dry run passes
    c.close()
