"""A migration survives a failover (issue 16, item 3): a headless ``migrate
--cluster`` of 200k rows under writes, the primary moved in the middle of the
copy by a switchover, and in a second run by ``kill -9`` of its mariadbd and
an emergency failover: each completes on the new primary, the migrated table
equal to the original (and, after the switchover, to the writer's own record
of its writes), every replica equal to the new primary.

Private sandboxes: the primary is moved or killed."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymysql
import pytest

from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.detection import assess
from console.engine.failover.emergency import Failover
from console.engine.failover.switchover import Switchover
from tests.integration.failover_support import connect_writable
from tests.support.serving import cluster_part, start_serving

pytestmark = pytest.mark.integration

ROWS = 200_000
APP, APP_PW = "app", "app-pw-not-secret"
NAMES = ("node1", "node2", "node3")
SUM = "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('#', id, a, b))), BIT_XOR(CRC32(CONCAT_WS('#', id, a, b))) FROM mig.{}"


def prepare(h, rows: int = ROWS) -> None:
    h.sql("node1",
          "CREATE DATABASE mig",
          "CREATE TABLE mig.t (id INT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(40) NOT NULL, KEY ka (a))",
          f"INSERT INTO mig.t SELECT seq, seq % 1000, CONCAT('r', seq) FROM mig.seq_1_to_{rows}",
          f"CREATE USER '{APP}'@'127.0.0.1' IDENTIFIED BY '{APP_PW}'",      # read_only applies to it
          f"GRANT SELECT, INSERT, UPDATE, DELETE ON mig.* TO '{APP}'@'127.0.0.1'")
    h.wait_replicas_caught_up()


class Writer(threading.Thread):
    """Updates, inserts and deletes rows of mig.t on whichever node is
    writable, and keeps the expected content: a statement whose outcome is
    unknown (its connection died) makes its id uncertain."""

    def __init__(self, ports: list[int], rows: int = ROWS):
        super().__init__(daemon=True)
        self.ports, self.rows = ports, rows
        self.model = {i: (i % 1000, f"r{i}") for i in range(1, rows + 1)}
        self.uncertain: set[int] = set()
        self.ops = 0
        self.where: dict[int, int] = {}
        self.stop_ev = threading.Event()

    def _connect(self):
        return connect_writable(self.ports, APP, APP_PW)

    def run(self) -> None:
        rng = random.Random(16)
        conn, port, next_id = None, None, self.rows + 1
        while not self.stop_ev.is_set():
            if conn is None:
                conn, port = self._connect()
                if conn is None:
                    time.sleep(0.05)
                    continue
            x = rng.random()
            if x < 0.3:
                i, row = next_id, (rng.randint(0, 999), f"n{next_id}")
                next_id += 1
                sql, args = "INSERT INTO mig.t VALUES (%s, %s, %s)", (i, *row)
            else:
                i = rng.randint(1, next_id - 1)
                if x < 0.8:
                    row = (rng.randint(0, 999), f"u{rng.randint(0, 10**9)}")
                    sql, args = "UPDATE mig.t SET a = %s, b = %s WHERE id = %s", (*row, i)
                else:
                    row = None
                    sql, args = "DELETE FROM mig.t WHERE id = %s", (i,)
            try:
                with conn.cursor() as cur:
                    n = cur.execute(sql, args)
            except pymysql.MySQLError:
                self.uncertain.add(i)
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                continue
            if row is None:
                self.model.pop(i, None)
            elif n or sql.startswith("INSERT"):
                self.model[i] = row
            self.ops += 1
            self.where[port] = self.where.get(port, 0) + 1
            time.sleep(0.002)

    def finish(self) -> None:
        self.stop_ev.set()
        self.join(15)


def primary_of(h) -> str:
    """The node that is writable and replicates from nobody."""
    for n in NAMES:
        try:
            ro = h.sql(n, "SELECT @@global.read_only")[0][0]
            st = h.sql(n, "SHOW SLAVE STATUS")
        except pymysql.MySQLError:
            continue
        if not int(ro) and not st:
            return n
    raise AssertionError("no primary")


def ghost_rows(h, node: str) -> int:
    try:
        return int(h.sql(node, "SELECT COUNT(*) FROM mig.t_gho")[0][0])
    except pymysql.MySQLError:
        return -1


def state_row(h, node: str) -> str:
    try:
        r = h.sql(node, "SELECT value FROM mig.t_ghc WHERE hint = 'state'")
    except pymysql.MySQLError:
        return ""
    return r[0][0] if r else ""


def start_migrate(h, tmp_path: Path, where: tuple[str, ...] = ("--cluster", "sandbox"),
                  config: Path | None = None) -> tuple[subprocess.Popen, Path, Path]:
    """The headless migrate, given the cluster: slowed (small chunks, a nice
    ratio) so that the primary moves during the copy, the cut-over postponed
    until the writer has stopped (to compare the tables)."""
    flag = tmp_path / "postpone"
    flag.touch()
    log = tmp_path / "migrate.log"
    cmd = [sys.executable, "-m", "console", "--config", str(config or h.config_path), "migrate", *where,
           "--database", "mig", "--table", "t", "--alter", "ADD COLUMN c INT NULL, MODIFY b VARCHAR(60) NOT NULL",
           "--execute", "--chunk-size", "1000", "--nice-ratio", "2", "--max-lag-millis", "60000",
           "--postpone-cut-over-flag-file", str(flag), "--state-dir", str(tmp_path / "state"),
           "--status-interval", "1", "--failover-wait-seconds", "60"]
    env = dict(os.environ, DBOPS_TEST_PW=h.ops_password)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env)
    return proc, flag, log


def wait_for(what, cond, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if proc.poll() is not None:
            raise AssertionError(f"migrate ended (rc {proc.returncode}) waiting for {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s:\n{log.read_text()}")
        time.sleep(0.05)


def finish_and_check(h, proc, flag: Path, log: Path, w: Writer, new: str, *, model: bool,
                     was: str = "") -> None:
    """Writer stopped once the migration is postponed on the new primary,
    then the cut-over; the migrated table equals the original everywhere."""
    wait_for("postponed cut-over", lambda: state_row(h, new) == "postponed", 90, proc, log)
    w.finish()
    assert w.where.get(h.port(new), 0) > 0, f"the writer never wrote to the new primary: {w.where}"
    flag.unlink()
    try:
        rc = proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"migrate did not finish:\n{log.read_text()}") from None
    text = log.read_text()
    assert rc == 0, text
    assert "primary lost: node1 (127.0.0.1:" in text or f"primary lost: 127.0.0.1:{h.port('node1')}" in text, text
    if was:     # the same host again: its address is its name (no cluster)
        assert f"primary 127.0.0.1:{h.port(was)} is back: the binlog apply continues" in text, text
    else:
        assert f"new primary {new} (127.0.0.1:{h.port(new)})" in text, text
    c = pymysql.connect(host="127.0.0.1", port=h.port(new), user="dbops", password=h.ops_password,
                        database="mig", autocommit=True, read_timeout=60)
    with c.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert {r[0] for r in cur.fetchall()} == {"t", "t_del"}
        cur.execute("SHOW COLUMNS FROM t")
        assert [r[0] for r in cur.fetchall()] == ["id", "a", "b", "c"]
        cur.execute(SUM.format("t"))
        migrated = cur.fetchone()
        cur.execute(SUM.format("t_del"))
        assert migrated == cur.fetchone(), "migrated table differs from the original"
        cur.execute("SELECT id, a, b FROM t")
        got = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        cur.execute("SELECT @@gtid_binlog_pos")
        gtid = cur.fetchone()[0]
    c.close()
    assert migrated[0] > w.rows * 0.9
    if model:       # nothing lost by a switchover: the writer's record holds
        want = {i: r for i, r in w.model.items() if i not in w.uncertain}
        have = {i: r for i, r in got.items() if i not in w.uncertain}
        assert have == want, (f"{len(set(want) - set(have))} row(s) missing, "
                              f"{len(set(have) - set(want))} extra, "
                              f"{sum(1 for i in want if i in have and have[i] != want[i])} differ")
    for n in (x.name for x in h.nodes):
        if n == new or not _up(h, n):
            continue
        assert h.sql(n, f"SELECT MASTER_GTID_WAIT('{gtid}', 30)")[0][0] == 0, f"{n} did not catch up"
        assert h.sql(n, SUM.format("t"))[0] == migrated, f"{n}: t differs from the new primary's"
        assert h.sql(n, "SHOW COLUMNS FROM mig.t")[-1][0] == "c"


def _up(h, node: str) -> bool:
    try:
        h.sql(node, "SELECT 1")
        return True
    except pymysql.MySQLError:
        return False


def test_a_switchover_during_the_copy_moves_the_migration_to_the_new_primary(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    w = Writer([h.port(n) for n in NAMES])
    w.start()
    proc, flag, log = start_migrate(h, tmp_path)
    try:
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 40_000, 60, proc, log)
        rep = Switchover(ClusterOps(h.cluster, tmp_path / "fo"), RecoveryOptions(to="node2")).run()
        assert rep.outcome == "ok", rep.error
        assert 0 < ghost_rows(h, "node2") < ROWS, "the switchover came after the copy"
        finish_and_check(h, proc, flag, log, w, "node2", model=True)
    finally:
        w.finish()
        if proc.poll() is None:
            proc.kill()


def test_kill_9_of_the_primary_during_the_copy_completes_on_the_promoted_replica(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    w = Writer([h.port(n) for n in NAMES])
    w.start()
    proc, flag, log = start_migrate(h, tmp_path)
    try:
        ops = ClusterOps(h.cluster, tmp_path / "fo")
        prev = ops.discover()
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 40_000, 60, proc, log)
        h.sb.stop_node("node1", signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not assess(ops.discover(prev), prev).dead:
            assert time.monotonic() < deadline, "the dead primary was not detected"
            time.sleep(0.2)
        rep = Failover(ops, RecoveryOptions(), previous=prev).run()
        assert rep.outcome == "ok", rep.error
        new = primary_of(h)
        assert rep.new_primary.endswith(f":{h.port(new)}")
        finish_and_check(h, proc, flag, log, w, new, model=False)
    finally:
        w.finish()
        if proc.poll() is None:
            proc.kill()


def test_without_the_cluster_a_switchover_fails_the_migration_at_once_saying_what_to_do(make_sandbox, tmp_path):
    """gh-ost hangs when its primary goes (gh-ost #1569): without the
    cluster's hosts the migration cannot tell the new primary, so it stops
    in one line that says how to go on, and never writes to the old primary,
    now a replica (the ops account bypasses read_only)."""
    h = make_sandbox(2)
    prepare(h, rows=60_000)
    proc, flag, log = start_migrate(h, tmp_path, ("--port", str(h.port("node1")), "--user", "dbops",
                                                  "--password-env", "DBOPS_TEST_PW"))
    try:
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 10_000, 60, proc, log)
        rep = Switchover(ClusterOps(h.cluster, tmp_path / "fo"), RecoveryOptions(to="node2")).run()
        assert rep.outcome == "ok", rep.error
        t0 = time.monotonic()
        rc = proc.wait(30)
        text = log.read_text()
        assert rc == 2, text
        assert time.monotonic() - t0 < 15
        assert "cannot tell the new primary (no cluster configuration)" in text, text
        assert "--resume --execute --host H --port P" in text and "--config F --cluster C" in text
        assert f"127.0.0.1:{h.port('node1')} it is read-only" in text, text
        # node1 replicates from node2 without an errant write of ours
        gtid = h.sql("node2", "SELECT @@gtid_binlog_pos")[0][0]
        assert h.sql("node1", f"SELECT MASTER_GTID_WAIT('{gtid}', 30)")[0][0] == 0
        c = h.connect("node1", cursorclass=pymysql.cursors.DictCursor)
        with c.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            st = cur.fetchone()
        c.close()
        assert (st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_SQL_Errno"]) == ("Yes", "Yes", 0)
        assert h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0] == gtid
    finally:
        if proc.poll() is None:
            proc.kill()


def test_chunks_and_batches_the_new_primary_never_got_are_done_again_there(make_sandbox, tmp_path):
    """The promoted replica had stopped replicating for a while before the
    primary died: copy chunks and apply batches committed on the old
    primary never reached it.  The migration reads what the new primary
    holds from its changelog and copies and applies the rest again there."""
    rows = 100_000
    h = make_sandbox(1)
    prepare(h, rows=rows)
    w = Writer([h.port("node1"), h.port("node2")], rows=rows)
    w.start()
    proc, flag, log = start_migrate(h, tmp_path)
    try:
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 15_000, 60, proc, log)
        h.sql("node2", "STOP SLAVE")
        held = ghost_rows(h, "node2")
        wait_for("chunks node2 lacks", lambda: ghost_rows(h, "node1") >= held + 10_000, 60, proc, log)
        h.sb.stop_node("node1", signal.SIGKILL)
        h.sql("node2", "RESET SLAVE ALL", "SET GLOBAL read_only = 0")     # promoted by hand
        assert ghost_rows(h, "node2") == held
        finish_and_check(h, proc, flag, log, w, "node2", model=False)
        m = re.search(r"the copy after key \((\d+),\)", log.read_text())
        assert m and int(m.group(1)) <= held + 1000, "the copy did not restart from what node2 held"
    finally:
        w.finish()
        if proc.poll() is None:
            proc.kill()


def test_a_restart_of_the_primary_is_waited_for_and_the_migration_goes_on_there(make_sandbox, tmp_path):
    """gh-ost does not reconnect after a primary restart (gh-ost #1169).
    Without the cluster the migration waits (--failover-wait-seconds) for
    the same host to be writable again and continues there from what its
    changelog records."""
    rows = 100_000
    h = make_sandbox(1)
    prepare(h, rows=rows)
    w = Writer([h.port("node1")], rows=rows)
    w.start()
    proc, flag, log = start_migrate(h, tmp_path, ("--port", str(h.port("node1")), "--user", "dbops",
                                                  "--password-env", "DBOPS_TEST_PW"))
    try:
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 15_000, 60, proc, log)
        h.sb.stop_node("node1", signal.SIGKILL)
        time.sleep(2)
        assert proc.poll() is None, log.read_text()        # waiting, not failed
        h.sb.start_node("node1")
        finish_and_check(h, proc, flag, log, w, "node1", model=False, was="node1")
    finally:
        w.finish()
        if proc.poll() is None:
            proc.kill()


def test_a_migration_handed_to_a_serving_engine_follows_a_switchover(make_sandbox, tmp_path, serve):
    """``migrate --cluster`` beside ``serve``: the run is the engine's task,
    which follows the primary among the hosts of the engine's cluster."""
    h = make_sandbox(2)
    prepare(h)
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(h, state))
    start_serving(serve, cfg, state)
    w = Writer([h.port(n) for n in NAMES])
    w.start()
    proc, flag, log = start_migrate(h, tmp_path, config=cfg)
    try:
        wait_for("copy progress", lambda: ghost_rows(h, "node1") >= 40_000, 60, proc, log)
        assert "handed to the engine serving" in log.read_text()
        rep = Switchover(ClusterOps(h.cluster, tmp_path / "fo"), RecoveryOptions(to="node2")).run()
        assert rep.outcome == "ok", rep.error
        finish_and_check(h, proc, flag, log, w, "node2", model=True)
    finally:
        w.finish()
        if proc.poll() is None:
            proc.kill()
