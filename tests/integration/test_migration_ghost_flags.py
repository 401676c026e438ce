"""gh-ost's flags, same names and meaning (issue 16): --panic-on-warnings,
--include-triggers (with --trigger-suffix, --remove-trigger-suffix-if-exists),
--attempt-instant-ddl, --hooks-path.  Against the real sandbox."""

from __future__ import annotations

import pytest

from tests.integration.migration_helpers import cli, connect, migration_sandbox, tables
from tests.support.migration_load import table_rows

pytestmark = pytest.mark.integration

sb = migration_sandbox


@pytest.fixture
def replica_sb(make_sandbox):
    """A private sandbox: a migration on a replica writes there in its own
    GTID domain, which must not reach the shared sandbox's later tests (a
    relay switched to that replica would carry them)."""
    from tests.integration.migration_helpers import with_databases

    return with_databases(make_sandbox(2))


def _table(c, name: str, ddl: str, rows: list[tuple]) -> None:
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}, {name}_gho, {name}_ghc, {name}_del")
        cur.execute(f"CREATE TABLE {name} {ddl} ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)


def _one_error_line(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(errs) == 1, r.stderr
    return errs[0]


def test_panic_on_warnings_stops_a_copy_that_would_lose_a_row_to_a_new_unique_key(sb, tmp_path):
    c = connect(sb)
    rows = [(i, i) for i in range(1, 501)]
    rows[299] = (300, 17)                   # collides with id=17 on the new unique key
    _table(c, "pw1", "(id INT PRIMARY KEY, u INT NOT NULL)", rows)
    before, want = tables(c), table_rows(c, "pw1", ["id", "u"])
    r = cli(sb, "--table", "pw1", "--alter", "ADD UNIQUE KEY uu (u)", "--execute", "--chunk-size", "100",
            "--panic-on-warnings", "--state-dir", str(tmp_path))
    assert r.returncode == 2, r.stderr
    line = _one_error_line(r)
    assert "copy: the row id=300 of mig.pw1 would be lost: Duplicate entry '17' for key 'uu'" in line, line
    assert "--panic-on-warnings" in line and "ghost and changelog dropped, original untouched" in line
    assert tables(c) == before and table_rows(c, "pw1", ["id", "u"]) == want
    c.close()


def test_panic_on_warnings_lets_duplicates_the_apply_wrote_first_through(sb, tmp_path):
    """A duplicate on the chunking key is a row the binlog apply wrote
    first: no row is lost, the migration completes."""
    c = connect(sb)
    _table(c, "pw2", "(id INT PRIMARY KEY, u INT NOT NULL)", [(i, i) for i in range(1, 2001)])
    r = cli(sb, "--table", "pw2", "--alter", "ADD UNIQUE KEY uu (u)", "--execute", "--chunk-size", "100",
            "--panic-on-warnings", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    with c.cursor() as cur:
        cur.execute("SHOW CREATE TABLE pw2")
        assert "UNIQUE KEY `uu`" in cur.fetchone()[1]
    assert len(table_rows(c, "pw2", ["id", "u"])) == 2000
    c.close()


def _triggers(c, table: str) -> dict[str, str]:
    with c.cursor() as cur:
        cur.execute("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA='mig' AND EVENT_OBJECT_TABLE IN (%s, %s)", (table, f"{table}_del"))
        return {r[0]: r[1] for r in cur.fetchall()}


def test_include_triggers_moves_them_to_the_new_table_where_they_fire(sb, tmp_path):
    import threading

    c = connect(sb)
    _table(c, "tr1", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 3001)])
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS tr1_audit")
        cur.execute("CREATE TABLE tr1_audit (n INT AUTO_INCREMENT PRIMARY KEY, id INT, what CHAR(3))")
        cur.execute("CREATE TRIGGER tr1_ai AFTER INSERT ON tr1 FOR EACH ROW "
                    "INSERT INTO tr1_audit (id, what) VALUES (NEW.id, 'ins')")
        cur.execute("CREATE TRIGGER tr1_au_v2 AFTER UPDATE ON tr1 FOR EACH ROW "
                    "INSERT INTO tr1_audit (id, what) VALUES (NEW.id, 'upd')")
    stop = threading.Event()
    writes = {"ins": 0, "upd": 0}

    def write():
        w = connect(sb)
        i = 0
        while not stop.is_set():
            i += 1
            with w.cursor() as cur:
                cur.execute("INSERT INTO tr1 (v) VALUES (%s)", (i,))
                writes["ins"] += 1
                cur.execute("UPDATE tr1 SET v = v + 1 WHERE id = %s", (i % 3000 + 1,))
                writes["upd"] += 1
        w.close()

    t = threading.Thread(target=write)
    t.start()
    try:
        r = cli(sb, "--table", "tr1", "--alter", "ADD COLUMN note VARCHAR(20) NULL", "--execute",
                "--chunk-size", "200", "--nice-ratio", "1", "--include-triggers", "--trigger-suffix", "_v2",
                "--remove-trigger-suffix-if-exists", "--ok-to-drop-table", "--state-dir", str(tmp_path))
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    assert "tr1_ai -> tr1_ai_v2" in r.stderr and "tr1_au_v2 -> tr1_au" in r.stderr, r.stderr
    # the old table went with its triggers; the new one has them, renamed
    assert _triggers(c, "tr1") == {"tr1_ai_v2": "tr1", "tr1_au": "tr1"}
    with c.cursor() as cur:
        cur.execute("INSERT INTO tr1 (v, note) VALUES (1, 'after')")
        new_id = cur.lastrowid
        cur.execute("UPDATE tr1 SET note = 'x' WHERE id = 1")
        writes["ins"] += 1
        writes["upd"] += 1
        cur.execute("SELECT what, COUNT(*) FROM tr1_audit GROUP BY what")
        counts = dict(cur.fetchall())
        cur.execute("SELECT COUNT(*) FROM tr1_audit WHERE id = %s AND what = 'ins'", (new_id,))
        assert cur.fetchone()[0] == 1
    # each write fired its trigger once: never also through the ghost's apply
    assert counts == {"ins": writes["ins"], "upd": writes["upd"]}, (counts, writes)
    assert writes["ins"] > 1, writes
    c.close()


@pytest.mark.parametrize("args, says", [
    (("--include-triggers",), "give the new ones a --trigger-suffix"),
    (("--trigger-suffix", "_v2"), "--trigger-suffix needs --include-triggers"),
    (("--include-triggers", "--trigger-suffix", "_x"), "would be created as tr2_bi_x, which exists"),
    ((), "pass --include-triggers --trigger-suffix S"),
])
def test_trigger_flags_refuse_bad_input_in_one_line_creating_nothing(sb, tmp_path, args, says):
    c = connect(sb)
    _table(c, "tr2", "(id INT PRIMARY KEY, v INT NOT NULL)", [(1, 1)])
    with c.cursor() as cur:
        cur.execute("CREATE TRIGGER tr2_bi BEFORE INSERT ON tr2 FOR EACH ROW SET NEW.v = NEW.v + 1")
        cur.execute("DROP TABLE IF EXISTS tr2_other")
        cur.execute("CREATE TABLE tr2_other (id INT PRIMARY KEY)")
        cur.execute("CREATE TRIGGER tr2_bi_x BEFORE INSERT ON tr2_other FOR EACH ROW SET NEW.id = NEW.id")
    before = tables(c)
    state = tmp_path / "state"
    r = cli(sb, "--table", "tr2", "--alter", "ADD COLUMN c INT NULL", "--execute", "--state-dir", str(state),
            *args)
    assert r.returncode == 2, r.stderr
    assert says in _one_error_line(r), r.stderr
    assert tables(c) == before and not state.exists()
    c.close()


def test_attempt_instant_ddl_takes_the_instant_path_when_the_server_can(sb, tmp_path):
    c = connect(sb)
    _table(c, "in1", "(id INT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 1001)])
    with c.cursor() as cur:
        cur.execute("CREATE TRIGGER in1_bi BEFORE INSERT ON in1 FOR EACH ROW SET NEW.v = NEW.v")
    want = table_rows(c, "in1", ["id", "v"])
    r = cli(sb, "--table", "in1", "--alter", "ADD COLUMN note VARCHAR(20) NULL", "--execute",
            "--attempt-instant-ddl", "--allow-triggers", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "instant DDL done" in r.stderr and "row copy" not in r.stderr, r.stderr
    assert "note" in [col for col in _columns(c, "in1")]
    assert tables(c) >= {"in1"} and not {"in1_gho", "in1_ghc", "in1_del"} & tables(c)
    assert table_rows(c, "in1", ["id", "v"]) == want
    # not instant (a wider type and a new unique key rebuild the table): the copy does it
    r = cli(sb, "--table", "in1", "--alter", "MODIFY v BIGINT NOT NULL, ADD UNIQUE KEY (v)", "--execute",
            "--attempt-instant-ddl", "--allow-triggers", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "instant DDL not possible" in r.stderr and "row copy complete" in r.stderr, r.stderr
    assert "in1_del" in tables(c)
    c.close()


def _columns(c, table: str) -> list[str]:
    with c.cursor() as cur:
        cur.execute(f"SHOW COLUMNS FROM `{table}`")
        return [r[0] for r in cur.fetchall()]


def _hook(d, name: str, body: str) -> None:
    p = d / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def test_hooks_run_at_gh_osts_points_with_its_environment(sb, tmp_path):
    c = connect(sb)
    _table(c, "hk1", "(id INT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 2001)])
    hooks, out = tmp_path / "hooks", tmp_path / "out"
    hooks.mkdir()
    out.mkdir()
    flag = tmp_path / "postpone"
    flag.write_text("")
    events = ["startup", "validated", "rowcount-complete", "before-row-copy", "status", "row-copy-complete",
              "begin-postponed", "before-cut-over", "success", "failure"]
    for e in events:        # an existing gh-ost hook script: records its GH_OST_* variables
        _hook(hooks, f"gh-ost-on-{e}-record", f'env | grep ^GH_OST_ | sort > "{out}/{e}"')
    # the postponed cut-over goes on once a hook removes the flag file
    _hook(hooks, "gh-ost-on-begin-postponed-release", f'sleep 1.5; rm -f "{flag}"')
    _hook(hooks, "not-a-hook", f'touch "{out}/wrong"')
    r = cli(sb, "--table", "hk1", "--alter", "ADD COLUMN note VARCHAR(20) NULL", "--execute",
            "--hooks-path", str(hooks), "--hooks-hint", "ticket-42", "--hooks-status-interval", "1",
            "--exact-rowcount", "--postpone-cut-over-flag-file", str(flag), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    ran = {p.name for p in out.iterdir()}
    assert ran == set(events) - {"failure"}, ran
    env = dict(ln.split("=", 1) for ln in (out / "before-cut-over").read_text().splitlines())
    assert env["GH_OST_DATABASE_NAME"] == "mig" and env["GH_OST_TABLE_NAME"] == "hk1"
    assert env["GH_OST_GHOST_TABLE_NAME"] == "hk1_gho" and env["GH_OST_OLD_TABLE_NAME"] == "hk1_del"
    assert env["GH_OST_DDL"] == "ADD COLUMN note VARCHAR(20) NULL"
    assert env["GH_OST_COPIED_ROWS"] == "2000" and env["GH_OST_ESTIMATED_ROWS"] == "2000"
    assert env["GH_OST_HOOKS_HINT"] == "ticket-42" and env["GH_OST_DRY_RUN"] == "false"
    assert env["GH_OST_MIGRATED_HOST"] == f"127.0.0.1:{sb.primary_port}"
    assert int(env["GH_OST_ELAPSED_SECONDS"]) >= 1
    assert "GH_OST_STATUS=" in (out / "status").read_text()
    c.close()


def test_a_failing_hook_fails_the_migration_original_intact(sb, tmp_path):
    c = connect(sb)
    _table(c, "hk2", "(id INT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 201)])
    hooks, out = tmp_path / "hooks", tmp_path / "out"
    hooks.mkdir()
    out.mkdir()
    _hook(hooks, "gh-ost-on-before-cut-over", 'echo "change freeze until Monday" >&2; exit 3')
    _hook(hooks, "gh-ost-on-failure", f'echo "$GH_OST_TABLE_NAME" > "{out}/failure"')
    r = cli(sb, "--table", "hk2", "--alter", "ADD COLUMN note VARCHAR(20) NULL", "--execute",
            "--hooks-path", str(hooks), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1, r.stderr
    line = _one_error_line(r)
    assert "hook gh-ost-on-before-cut-over (before-cut-over) failed with exit code 3: change freeze" in line
    assert (out / "failure").read_text().strip() == "hk2"
    assert "note" not in _columns(c, "hk2")
    c.close()


def _replica(sb):
    import pymysql

    n = next(n for n in sb.nodes if n.role == "replica")
    return n, pymysql.connect(host="127.0.0.1", port=n.port, user="dbops", password=sb.ops_password,
                              database="mig", autocommit=True, connect_timeout=3, read_timeout=60)


def _replication(r) -> tuple[str, str]:
    import pymysql.cursors

    with r.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        st = cur.fetchone()
    return st["Slave_IO_Running"], st["Slave_SQL_Running"]


def _writes_while(sb, table: str, fn):
    """Run ``fn`` while a thread inserts and updates ``table`` on the primary;
    returns fn's result."""
    import threading

    stop = threading.Event()

    def write():
        w = connect(sb)
        i = 0
        while not stop.is_set():
            i += 1
            with w.cursor() as cur:
                cur.execute(f"INSERT INTO {table} (v) VALUES (%s)", (i,))
                cur.execute(f"UPDATE {table} SET v = v + 1 WHERE id = %s", (i % 1000 + 1,))
            stop.wait(0.005)
        w.close()

    t = threading.Thread(target=write)
    t.start()
    try:
        return fn()
    finally:
        stop.set()
        t.join()


def test_test_on_replica_stops_replication_and_leaves_both_tables_to_compare(replica_sb, tmp_path):
    sb = replica_sb
    c = connect(sb)
    _table(c, "or1", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 3001)])
    sb.wait_replicas_caught_up()
    node, r = _replica(sb)
    hooks, out = tmp_path / "hooks", tmp_path / "out"
    hooks.mkdir()
    out.mkdir()
    for e in ("stop-replication", "start-replication"):
        _hook(hooks, f"gh-ost-on-{e}", f'touch "{out}/{e}"')
    try:
        res = _writes_while(sb, "or1", lambda: cli(
            sb, "--port", str(node.port), "--table", "or1", "--alter", "ADD COLUMN note VARCHAR(20) NULL",
            "--execute", "--chunk-size", "300", "--test-on-replica", "--hooks-path", str(hooks),
            "--state-dir", str(tmp_path / "s")))
        assert res.returncode == 0, res.stderr
        assert "START SLAVE" in res.stderr.splitlines()[-2] + res.stderr.splitlines()[-1], res.stderr
        assert _replication(r)[1] == "No"
        assert {p.name for p in out.iterdir()} == {"stop-replication"}
        # the original in place, the migrated table beside it, same rows (replication stopped: frozen)
        assert "note" not in _columns(r, "or1") and "note" in _columns(r, "or1_gho")
        assert table_rows(r, "or1", ["id", "v"]) == table_rows(r, "or1_gho", ["id", "v"])
        assert len(table_rows(r, "or1", ["id", "v"])) > 3000
        # the master was not touched
        assert not {"or1_gho", "or1_ghc", "or1_del"} & tables(c) and "note" not in _columns(c, "or1")
    finally:
        with r.cursor() as cur:
            cur.execute("START SLAVE")
    with r.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")     # (no local GTID of the master's domain)
        cur.execute("DROP TABLE IF EXISTS or1_gho")
    try:
        sb.wait_replicas_caught_up()    # the replica's own GTID domain did not break replication
    except AssertionError:
        with r.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            raise AssertionError(str(cur.fetchone())) from None
    assert _replication(r) == ("Yes", "Yes")
    assert table_rows(r, "or1", ["id", "v"]) == table_rows(c, "or1", ["id", "v"])
    r.close()
    c.close()


def test_migrate_on_replica_keeps_the_change_there_with_replication_running(replica_sb, tmp_path):
    sb = replica_sb
    c = connect(sb)
    _table(c, "or2", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 2001)])
    sb.wait_replicas_caught_up()
    node, r = _replica(sb)
    res = _writes_while(sb, "or2", lambda: cli(
        sb, "--port", str(node.port), "--table", "or2", "--alter", "ADD COLUMN note VARCHAR(20) NULL",
        "--execute", "--chunk-size", "300", "--migrate-on-replica", "--ok-to-drop-table",
        "--assume-master-host", f"127.0.0.1:{sb.primary_port}", "--state-dir", str(tmp_path / "s")))
    assert res.returncode == 0, res.stderr
    assert "note" in _columns(r, "or2") and "note" not in _columns(c, "or2")
    assert not {"or2_gho", "or2_ghc", "or2_del"} & tables(c)
    with c.cursor() as cur:
        cur.execute("INSERT INTO or2 (v) VALUES (-7)")
    sb.wait_replicas_caught_up()
    assert _replication(r) == ("Yes", "Yes")
    assert table_rows(r, "or2", ["id", "v"]) == table_rows(c, "or2", ["id", "v"])
    r.close()
    c.close()


@pytest.mark.parametrize("args, says", [
    (("--test-on-replica",), "is not a replica"),
    (("--assume-master-host", "127.0.0.1:1"), "--assume-master-host needs --test-on-replica"),
    (("--test-on-replica", "--migrate-on-replica"), "give one of --test-on-replica and --migrate-on-replica"),
    (("--hooks-path", "/nonexistent/hooks"), "--hooks-path /nonexistent/hooks: no such directory"),
    (("--old-table", "or3_del"), "--old-table needs --revert"),
    (("--revert", "--resume"), "--revert cannot be combined with --resume"),
    (("--revert",), "--revert: no completed migration of mig.or3 is recorded"),
])
def test_on_replica_bad_input_is_one_line_creating_nothing(sb, tmp_path, args, says):
    c = connect(sb)
    _table(c, "or3", "(id INT PRIMARY KEY, v INT NOT NULL)", [(1, 1)])
    before = tables(c)
    state = tmp_path / "state"
    r = cli(sb, "--table", "or3", "--alter", "ADD COLUMN c INT NULL", "--execute", "--state-dir", str(state),
            *args)
    assert r.returncode == 2, r.stderr
    assert says in _one_error_line(r), r.stderr
    assert tables(c) == before and not state.exists()
    c.close()


def _create(c, table: str) -> str:
    import re

    with c.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE `{table}`")
        return re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])


def test_revert_gives_back_the_old_schema_with_every_write_made_since(sb, tmp_path):
    import random

    c = connect(sb)
    _table(c, "rv1", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, s VARCHAR(20) NOT NULL)",
           [(i, i, f"s{i}") for i in range(1, 2001)])
    old_schema = _create(c, "rv1")
    state = str(tmp_path / "s")
    args = ("--table", "rv1", "--alter", "ADD COLUMN note VARCHAR(20) NULL, MODIFY s VARCHAR(40) NOT NULL, "
            "ADD KEY k_v (v)", "--execute", "--chunk-size", "300", "--state-dir", state)
    r = cli(sb, *args)
    assert r.returncode == 0, r.stderr
    assert "note" in _columns(c, "rv1") and "rv1_del" in tables(c)
    # 1,000 writes to the migrated table: inserts, updates, deletes
    rnd = random.Random(16)
    with c.cursor() as cur:
        for i in range(1000):
            what = i % 5
            if what in (0, 1):
                cur.execute("INSERT INTO rv1 (v, s, note) VALUES (%s, %s, 'new')", (-i, f"w{i}"))
            elif what in (2, 3):
                cur.execute("UPDATE rv1 SET v = v + 1000, s = %s, note = 'upd' WHERE id = %s",
                            (f"u{i}", rnd.randint(1, 2000)))
            else:
                cur.execute("DELETE FROM rv1 WHERE id = %s", (rnd.randint(1, 2400),))
    want = table_rows(c, "rv1", ["id", "v", "s"])
    r = cli(sb, *args, "--revert")
    assert r.returncode == 0, r.stderr
    assert "row event(s) since the cut-over applied" in r.stderr, r.stderr
    assert " 0 mismatches, 0 re-copied" in r.stderr, r.stderr     # the apply did it all
    assert _create(c, "rv1") == old_schema
    assert table_rows(c, "rv1", ["id", "v", "s"]) == want
    assert "note" in _columns(c, "rv1_gho") and "rv1_del" not in tables(c) and "rv1_ghc" not in tables(c)
    # the next id follows the migrated table's
    with c.cursor() as cur:
        cur.execute("INSERT INTO rv1 (v, s) VALUES (0, 'after')")
        assert cur.lastrowid > max(k[0] for k in want)
    # nothing left to revert
    r = cli(sb, *args, "--revert")
    assert r.returncode == 2 and "no completed migration of mig.rv1 is recorded" in _one_error_line(r)
    c.close()


def test_panic_on_warnings_names_a_row_the_apply_lost_to_a_new_unique_key(sb, tmp_path):
    """A row written during the migration whose value of the new unique key
    another row holds: the apply's REPLACE deletes that row from the ghost;
    the checksum finds it missing and, with --panic-on-warnings, its re-copy
    ends the migration naming it."""
    from tests.integration.migration_helpers import finish, start_task, wait_phase

    c = connect(sb)
    _table(c, "pw3", "(id INT PRIMARY KEY, u INT NOT NULL)", [(i, i) for i in range(1, 1001)])
    before = tables(c)
    _, task = start_task(sb, tmp_path, table="pw3", chunk_size=200, alter="ADD UNIQUE KEY uu (u)",
                         panic_on_warnings=True, postpone_cut_over=True)
    wait_phase(task, ("postponed",))
    with c.cursor() as cur:
        cur.execute("INSERT INTO pw3 VALUES (5000, 17)")       # id=17 holds u=17
    task.cmd_cut_over()
    finish(task)
    st = task.status()
    assert st.state == "failed", st
    assert "would be lost" in st.last_error and "Duplicate entry '17' for key 'uu'" in st.last_error, \
        st.last_error
    assert "id=17" in st.last_error or "id=5000" in st.last_error, st.last_error
    assert tables(c) == before
    c.close()


def test_revert_under_writes_loses_none(sb, tmp_path):
    """Writes go on through the revert and its cut-over: every one is in
    the reverted table (a model of the writes, replayed in Python, is the
    expected content)."""
    import threading

    c = connect(sb)
    _table(c, "rv2", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, s VARCHAR(20) NOT NULL)",
           [(i, i, f"s{i}") for i in range(1, 3001)])
    state = str(tmp_path / "s")
    args = ("--table", "rv2", "--alter", "ADD COLUMN note VARCHAR(20) NULL", "--execute", "--chunk-size", "500",
            "--state-dir", state)
    r = cli(sb, *args)
    assert r.returncode == 0, r.stderr
    with c.cursor() as cur:
        for i in range(200):
            cur.execute("UPDATE rv2 SET v = v + 1 WHERE id = %s", (i * 7 % 3000 + 1,))
    model = {row[0]: [row[1], row[2]] for row in table_rows(c, "rv2", ["id", "v", "s"])}
    stop = threading.Event()

    def write():
        w = connect(sb)
        i = 0
        while not stop.is_set():
            i += 1
            with w.cursor() as cur:
                cur.execute("INSERT INTO rv2 (v, s) VALUES (%s, %s)", (i, f"w{i}"))
                model[cur.lastrowid] = [i, f"w{i}"]
                k = i * 13 % 3000 + 1
                if cur.execute("UPDATE rv2 SET v = v + 1 WHERE id = %s", (k,)):
                    model[k][0] += 1
                if i % 10 == 0 and cur.execute("DELETE FROM rv2 WHERE id = %s", (i * 17 % 3000 + 1,)):
                    del model[i * 17 % 3000 + 1]
            stop.wait(0.002)
        w.close()

    t = threading.Thread(target=write)
    t.start()
    try:
        r = cli(sb, *args, "--revert")
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    assert "note" not in _columns(c, "rv2")
    got = {row[0]: [row[1], row[2]] for row in table_rows(c, "rv2", ["id", "v", "s"])}
    assert got == model, (len(got), len(model))
    c.close()


def test_migrate_on_replica_throttles_while_the_replica_does_not_replicate(replica_sb, tmp_path):
    sb = replica_sb
    import os
    import subprocess
    import sys
    import time

    c = connect(sb)
    _table(c, "or4", "(id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 501)])
    sb.wait_replicas_caught_up()
    node, r = _replica(sb)
    with r.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
    log = tmp_path / "log"
    env = dict(os.environ, DBOPS_TEST_PW=sb.ops_password)
    cmd = [sys.executable, "-m", "console", "migrate", "--port", str(node.port), "--user", "dbops",
           "--password-env", "DBOPS_TEST_PW", "--database", "mig", "--table", "or4", "--alter",
           "ADD COLUMN note VARCHAR(20) NULL", "--execute", "--migrate-on-replica", "--ok-to-drop-table",
           "--status-interval", "0.5", "--state-dir", str(tmp_path / "s")]
    try:
        with open(log, "w") as f:
            p = subprocess.Popen(cmd, env=env, stdout=f, stderr=f)
            deadline = time.monotonic() + 30
            while "this replica, behind its master) unknown" not in log.read_text():
                assert p.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert "note" not in _columns(r, "or4")
            with r.cursor() as cur:
                cur.execute("START SLAVE SQL_THREAD")
            assert p.wait(60) == 0, log.read_text()
    finally:
        with r.cursor() as cur:
            cur.execute("START SLAVE")
    assert "note" in _columns(r, "or4")
    r.close()
    c.close()
