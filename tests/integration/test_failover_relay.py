"""Emergency failover salvages from the cluster's relay task (real sandbox).

A semi-synchronous relay task follows the primary, so every commit the
primary acknowledged is durable in the relay; the replicas' IO threads are
stopped, so the relay holds transactions no replica has; then ``kill -9`` of
the primary.  Round 1: the engine's failover task (screen key ``F``) promotes
a replica, applies the relay's transactions to it first, and the relay
follows the new primary.  Round 2: the same again with the headless
``dbops-console failover --config`` (dry run, then the real thing)."""

import json
import signal
import time

import pytest

from console.cli import main
from console.config import load_config
from console.engine.engine import Engine
from console.engine.relay.store import RelayStore
from console.mysql import gtid as G
from tests.integration.failover_support import prepare, wait_gtid, wait_replicating
from tests.integration.relay_support import wait_meta_gtid

pytestmark = pytest.mark.integration


def _wait(pred, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _status(h, node, var):
    return int(h.sql(node, f"SHOW GLOBAL STATUS LIKE '{var}'")[0][1])


def _rows(h, node):
    return (h.sql(node, "SELECT id, writer FROM app.t ORDER BY id"),
            h.sql(node, "SELECT id, v FROM app.t2 ORDER BY id"))


def _relay_only_writes(h, primary, replicas, base, relay):
    """Semi-sync on ``primary`` (only the relay ACKs), replicas' IO threads
    stopped, then writes (DML, an UPDATE, DDL) that only the relay receives.
    Returns (GTID position before, after, the primary's table content)."""
    h.sql(primary, "SET GLOBAL rpl_semi_sync_master_timeout = 30000",
          "SET GLOBAL rpl_semi_sync_master_enabled = ON")
    relay.pause()  # a new dump session registers as a semi-sync replica
    relay.resume()
    _wait(lambda: _status(h, primary, "Rpl_semi_sync_master_clients") >= 1, what="the relay as semi-sync client")
    for n in replicas:
        h.sql(n, "STOP SLAVE IO_THREAD")
    before = h.sql(primary, "SELECT @@gtid_binlog_pos")[0][0]
    no_tx = _status(h, primary, "Rpl_semi_sync_master_no_tx")
    for i in range(base, base + 20):
        h.sql(primary, f"INSERT INTO app.t VALUES ({i}, 'relay-only', NOW(6))")
    h.sql(primary, f"UPDATE app.t SET writer = 'upd-{base}' WHERE id = 1")
    h.sql(primary, f"CREATE TABLE app.t2_{base} (id INT PRIMARY KEY)")  # DDL through the relay too
    h.sql(primary, f"INSERT INTO app.t2 VALUES ({base}, REPEAT('x', 3000))")
    after = h.sql(primary, "SELECT @@gtid_binlog_pos")[0][0]
    # every commit waited for the relay's ACK (none fell back to async)
    assert _status(h, primary, "Rpl_semi_sync_master_no_tx") == no_tx
    return before, after, _rows(h, primary)


def test_failover_salvages_relay_only_transactions_and_the_relay_follows(make_sandbox, capsys):
    h = make_sandbox(2)
    prepare(h)
    h.sql("node1", "CREATE TABLE app.t2 (id INT PRIMARY KEY, v TEXT)",
          "INSERT INTO app.t VALUES " + ",".join(f"({i}, 'a', NOW(6))" for i in range(1, 51)))
    h.wait_replicas_caught_up()
    text = h.config_path.read_text().replace(
        "[tasks.sandbox-relay]\n", "[tasks.sandbox-relay]\nsemi_sync = true\nreconnect_max = 1.0\n")
    cfg_path = h.config_path.with_name("dbops-relay.toml")
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    relay_dir = cfg.tasks["sandbox-relay"].options.relay_dir
    engine = Engine(cfg)
    try:
        relay = engine.create_configured("sandbox-relay")
        relay.start()
        fo = engine.create_configured("failover")
        fo.start()
        wait_meta_gtid(relay_dir, h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
        _wait(lambda: fo.status().detail.verdict and fo.status().detail.verdict.state == "healthy",
              what="a healthy verdict")

        # ---- round 1: engine task, screen key F ------------------------------------
        before, after, rows = _relay_only_writes(h, "node1", ["node2", "node3"], 100, relay)
        # semi-sync: the relay had everything durably before each commit returned
        assert G.parse(RelayStore(relay_dir).load_meta().gtid, G.MARIADB).contains(G.parse(after, G.MARIADB))
        for n in ("node2", "node3"):
            assert h.sql(n, "SELECT @@gtid_current_pos")[0][0] == before  # no replica has them
        h.sb.stop_node("node1", signal.SIGKILL)
        _wait(lambda: fo.status().detail.verdict.state == "dead", what="the dead verdict")
        # the live ranking tells how far each candidate is short of the relay
        _wait(lambda: any("short of relay sandbox-relay" in r for c in fo.status().detail.candidates
                          for r in c.reasons), what="the relay in the ranking")
        engine.command(fo.task_id, "failover", confirm="sandbox")
        _wait(lambda: fo.status().detail.last_report is not None and not fo.status().detail.recovering,
              60, "the failover")
        rep = fo.status().detail.last_report
        assert rep.outcome == "ok", rep.error
        new = "node2" if rep.new_primary.endswith(f":{h.port('node2')}") else "node3"
        other = "node3" if new == "node2" else "node2"
        lo, hi = int(before.rsplit("-", 1)[1]) + 1, int(after.rsplit("-", 1)[1])
        assert rep.lost == "" and rep.salvaged == f"domain 0: {lo}-{hi} ({hi - lo + 1})"
        assert rep.salvaged_from == (f"relay sandbox-relay ({relay_dir}): {rep.salvaged}",)
        names = [s.name for s in rep.steps]
        assert names.index("salvage: apply relay events") < names.index("promote")
        assert any(s.name == "survivor" and "sandbox-relay" in s.detail for s in rep.steps)
        # the new primary has every transaction the relay held, with the original GTIDs
        assert after in h.sql(new, "SELECT @@gtid_binlog_state")[0][0].split(",")
        assert _rows(h, new) == rows
        assert h.sql(new, "SHOW TABLES FROM app LIKE 't2_100'")
        wait_replicating(h, other, h.port(new))
        wait_gtid(h, other, after)
        assert _rows(h, other) == rows
        # relay follows: switched to the new primary, continues by GTID with no gap
        follow = next(s for s in rep.steps if s.name == "relay follows")
        assert follow.outcome == "ok" and "sandbox-relay: switching to" in follow.detail
        h.sql(new, "INSERT INTO app.t VALUES (500, 'after', NOW(6))")
        wait_meta_gtid(relay_dir, h.sql(new, "SELECT @@gtid_binlog_pos")[0][0])
        assert RelayStore(relay_dir).load_meta().server == rep.new_primary
        assert len(RelayStore(relay_dir).subdirs()) == 2
        fo.stop()

        # ---- round 2: headless failover of the new primary -------------------------
        before2, after2, rows2 = _relay_only_writes(h, new, [other], 200, relay)
        h.sb.stop_node(new, signal.SIGKILL)
        assert main(["failover", "--config", str(cfg_path), "--dry-run", "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)
        step = next(s for s in plan["steps"] if s["name"] == "salvage: apply relay events")
        lo2, hi2 = int(before2.rsplit("-", 1)[1]) + 1, int(after2.rsplit("-", 1)[1])
        assert f"holds domain 0: {lo2}-{hi2} ({hi2 - lo2 + 1}) the candidate lacks" in step["detail"]
        assert h.sql(other, "SELECT @@global.read_only")[0][0] == 1  # the plan changed nothing
        assert main(["failover", "--config", str(cfg_path), "--yes", "--json"]) == 0
        rep2 = json.loads(capsys.readouterr().out)
        assert rep2["outcome"] == "ok" and rep2["lost"] == ""
        assert rep2["salvaged_from"] == [f"relay sandbox-relay ({relay_dir}): domain 0: {lo2}-{hi2} "
                                         f"({hi2 - lo2 + 1})"]
        assert after2 in h.sql(other, "SELECT @@gtid_binlog_state")[0][0].split(",")
        assert _rows(h, other) == rows2
        assert h.sql(other, "SELECT @@global.read_only")[0][0] == 0
        # the relay runs in another process than the command: the report says how to switch it
        follow2 = next(s for s in rep2["steps"] if s["name"] == "relay follows")
        assert "sandbox-relay: not run by this command" in follow2["detail"]
    finally:
        engine.shutdown()
