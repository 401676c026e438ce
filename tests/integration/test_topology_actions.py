"""``dbops-console topology`` on real sandboxes: relocate a replica below
the other and back, re-attach an old primary holding transactions the new
primary lacks (refused with the GTID list, then --flashback), downtime and
recovery off keep automatic failover away, dry runs change nothing, bad
input is one line."""

import json
import signal
import time

import pytest

from console.cli import main
from console.engine.failover.context import ClusterOps
from console.engine.failover.task import FailoverTask
from console.engine.topology.actions import divergence, flags
from tests.integration.failover_support import prepare, replica_source, wait_gtid, wait_replicating

pytestmark = pytest.mark.integration


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def topo(capsys, h, *argv):
    return run(capsys, "topology", *argv[:1], "--config", str(h.config_path), *argv[1:])


def test_relocate_below_the_other_replica_and_back(make_sandbox, capsys):
    h = make_sandbox(2)
    prepare(h)
    p1, p2 = h.port("node1"), h.port("node2")
    # dry run: the exact statements, nothing changed
    rc, out, err = topo(capsys, h, "relocate", "node3", "--below", "node2", "--dry-run", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["outcome"] == "planned"
    sql = [q for s in d["steps"] for q in s["sql"]]
    assert "STOP SLAVE" in sql and "START SLAVE" in sql
    assert any(q.startswith("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + str(p2)) and
               "MASTER_USE_GTID=slave_pos" in q and "'***'" in q for q in sql), sql
    assert h.repl_password not in out
    assert replica_source(h, "node3") == (p1, "Yes", "Yes")
    # bad input: one line, exit 2, nothing changed
    for argv, words in ((("relocate", "node3", "--below", "node3", "--yes"), "cannot replicate from itself"),
                        (("relocate", "nosuch", "--below", "node2", "--yes"), "no host of that name"),
                        (("relocate", "node1", "--below", "node2", "--yes"), "is the primary"),
                        (("downtime", "node2", "--for", "ten minutes"), "not a duration"),
                        (("relocate", "node3", "--below", "node2"), "pass --yes")):
        rc, out, err = topo(capsys, h, *argv)
        assert rc == 2 and out == "" and err.count("\n") == 1 and words in err, (argv, err)
    assert replica_source(h, "node3") == (p1, "Yes", "Yes")
    # relocate node3 below node2: the chain node1 -> node2 -> node3 carries data
    rc, out, err = topo(capsys, h, "relocate", "node3", "--below", "node2", "--yes")
    assert rc == 0, out + err
    assert "OK" in out
    wait_replicating(h, "node3", p2)
    h.sql("node1", "INSERT INTO app.t VALUES (1001, 'chain', NOW(6))")
    wait_gtid(h, "node3", h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
    assert h.sql("node3", "SELECT writer FROM app.t WHERE id = 1001")[0][0] == "chain"
    # a cycle: node2 below node3 (which now replicates from node2)
    rc, _, err = topo(capsys, h, "relocate", "node2", "--below", "node3", "--yes")
    assert rc == 2 and "replication cycle" in err, err
    # and back below the primary
    rc, out, err = topo(capsys, h, "relocate", "node3", "--below", "node1", "--yes", "--json")
    assert rc == 0, out + err
    assert json.loads(out)["outcome"] == "ok"
    wait_replicating(h, "node3", p1)
    h.sql("node1", "INSERT INTO app.t VALUES (1002, 'back', NOW(6))")
    wait_gtid(h, "node3", h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
    assert h.sql("node3", "SELECT writer FROM app.t WHERE id = 1002")[0][0] == "back"
    # stop/start replica and read-only (dry run first)
    rc, out, _ = topo(capsys, h, "stop-replica", "node2", "--dry-run")
    assert rc == 0 and "STOP SLAVE" in out and replica_source(h, "node2") == (p1, "Yes", "Yes")
    rc, _, _ = topo(capsys, h, "stop-replica", "node2", "--yes")
    assert rc == 0 and replica_source(h, "node2")[1:] == ("No", "No")
    rc, _, _ = topo(capsys, h, "start-replica", "node2", "--yes")
    assert rc == 0 and replica_source(h, "node2") == (p1, "Yes", "Yes")
    rc, _, err = topo(capsys, h, "read-only", "node2", "off", "--yes")
    assert rc == 2 and "errant" in err
    rc, _, _ = topo(capsys, h, "read-only", "node1", "on", "--dry-run")
    assert rc == 0 and h.sql("node1", "SELECT @@global.read_only")[0][0] == 0
    # the new source purged what the host still needs: refused
    h.sql("node3", "STOP SLAVE")
    h.sql("node1", "INSERT INTO app.t VALUES (1003, 'purged', NOW(6))")
    wait_gtid(h, "node2", h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
    # twice: the binlog checkpoint keeps the previous file from being purged
    cur = h.sql("node2", "FLUSH BINARY LOGS", "FLUSH BINARY LOGS", "SHOW MASTER STATUS")[0][0]
    deadline = time.monotonic() + 10
    while len(h.sql("node2", f"PURGE BINARY LOGS TO '{cur}'", "SHOW BINARY LOGS")) > 1:
        assert time.monotonic() < deadline, h.sql("node2", "SHOW BINARY LOGS")
        time.sleep(0.2)
    rc, _, err = topo(capsys, h, "relocate", "node3", "--below", "node2", "--yes")
    assert rc == 2 and "purged there" in err, err
    assert replica_source(h, "node3") == (p1, "No", "No")  # nothing changed


def _kill_and_fail_over(h, capsys):
    """kill -9 node1, restart the replicas' threads (they confirm it is dead),
    ``failover --yes``; the new primary's name and port."""
    h.sb.stop_node("node1", signal.SIGKILL)
    for n in ("node2", "node3"):
        h.sql(n, "START SLAVE")
    deadline = time.monotonic() + 30
    while True:
        rc, out, err = run(capsys, "failover", "--config", str(h.config_path), "--yes", "--json")
        if rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rc == 0, out + err
    new_port = int(json.loads(out)["new_primary"].rpartition(":")[2])
    return ("node2" if new_port == h.port("node2") else "node3"), new_port


def test_reattach_old_primary_without_extra_transactions(make_sandbox, capsys):
    h = make_sandbox(2)
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES (4001, 'before', NOW(6))")
    h.wait_replicas_caught_up()
    new, new_port = _kill_and_fail_over(h, capsys)
    h.sb.start_node("node1")
    rc, out, err = topo(capsys, h, "reattach", "node1", "--dry-run")
    assert rc == 0 and "PLANNED" in out and "flashback" not in out, out + err
    assert replica_source(h, "node1") == (0, "", "")
    rc, out, err = topo(capsys, h, "reattach", "node1", "--yes", "--json")
    assert rc == 0, out + err
    d = json.loads(out)
    assert d["outcome"] == "ok" and d["errant"] == [] and d["rolled_back"] == []
    wait_replicating(h, "node1", new_port)
    h.sql(new, "INSERT INTO app.t VALUES (4002, 'after', NOW(6))")
    wait_gtid(h, "node1", h.sql(new, "SELECT @@gtid_binlog_pos")[0][0])
    assert {r[0] for r in h.sql("node1", "SELECT id FROM app.t")} >= {4001, 4002}
    rc, _, err = topo(capsys, h, "reattach", "node1", "--yes")
    assert rc == 2 and "already replicates from the primary" in err, err


def test_reattach_old_primary_with_three_transactions_the_new_primary_lacks(make_sandbox, capsys):
    h = make_sandbox(2)
    prepare(h)
    for n in ("node2", "node3"):
        h.sql(n, "STOP SLAVE")
    for i in (1, 2, 3):
        h.sql("node1", f"INSERT INTO app.t VALUES ({2000 + i}, 'lost', NOW(6))")
    sid1 = h.sql("node1", "SELECT @@server_id")[0][0]
    old_pos = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    d, _, seq = old_pos.partition("-")[0], None, int(old_pos.rsplit("-", 1)[1])
    three = [f"{d}-{sid1}-{s}" for s in (seq - 2, seq - 1, seq)]
    new, new_port = _kill_and_fail_over(h, capsys)
    h.sql(new, "INSERT INTO app.t VALUES (3001, 'after', NOW(6))")
    h.sb.start_node("node1")
    # refused: the three GTIDs listed, nothing changed
    rc, out, err = topo(capsys, h, "reattach", "node1", "--yes")
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    for g in three:
        assert g in err, (g, err)
    assert replica_source(h, "node1") == (0, "", "")
    assert h.sql("node1", "SELECT COUNT(*) FROM app.t WHERE writer = 'lost'")[0][0] == 3
    # dry run with --flashback: the plan, nothing changed
    rc, out, err = topo(capsys, h, "reattach", "node1", "--flashback", "--dry-run", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["outcome"] == "planned" and d["errant"] == three
    assert any("--flashback" in q for s in d["steps"] for q in s["sql"])
    assert h.sql("node1", "SELECT COUNT(*) FROM app.t WHERE writer = 'lost'")[0][0] == 3
    # --flashback: rolled back, re-attached, reported by GTID
    rc, out, err = topo(capsys, h, "reattach", "node1", "--flashback", "--yes", "--json")
    assert rc == 0, out + err
    d = json.loads(out)
    assert d["outcome"] == "ok" and d["rolled_back"] == three and d["errant"] == three, d
    wait_replicating(h, "node1", new_port)
    assert h.sql("node1", "SELECT COUNT(*) FROM app.t WHERE writer = 'lost'")[0][0] == 0
    assert h.sql("node1", "SELECT writer FROM app.t WHERE id = 3001")[0][0] == "after"
    assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 1
    # data flows from the new primary to the old one, and no errant GTID anywhere
    h.sql(new, "INSERT INTO app.t VALUES (3002, 'flows', NOW(6))")
    pos = h.sql(new, "SELECT @@gtid_binlog_pos")[0][0]
    for n in ("node1", "node2", "node3"):
        if n != new:
            wait_gtid(h, n, pos)
    ops = ClusterOps(h.cluster, h.config.state_dir)
    try:
        pb = divergence.read_binlog_gtids(ops.handler(f"127.0.0.1:{new_port}"), ops.conn(f"127.0.0.1:{new_port}"))
        for n in ("node1", "node2", "node3"):
            a = f"127.0.0.1:{h.port(n)}"
            hb = divergence.read_binlog_gtids(ops.handler(a), ops.conn(a))
            assert divergence.errant_transactions(hb, pb) == [], n
            ids = {r[0] for r in h.sql(n, "SELECT id FROM app.t")}
            assert ids == {r[0] for r in h.sql(new, "SELECT id FROM app.t")}, n
    finally:
        ops.close()
    # the history: the failover and the reattach, with their steps
    rc, out, _ = topo(capsys, h, "history", "--json")
    assert rc == 0
    recs = json.loads(out)["recoveries"]
    kinds = [r["kind"] for r in recs]
    assert "failover" in kinds and "reattach" in kinds, kinds
    fo = next(r for r in recs if r["kind"] == "failover")
    assert fo["outcome"] == "ok" and fo["steps"] and fo["acknowledged"] is False and fo["actor"] == "cli"
    ra = next(r for r in recs if r["kind"] == "reattach")
    assert ra["summary"]["rolled_back"] == three and [s["name"] for s in ra["steps"]][-1] == "verify"
    rc, out, _ = topo(capsys, h, "acknowledge")
    assert rc == 0
    rc, out, _ = topo(capsys, h, "history", "--json")
    fo = next(r for r in json.loads(out)["recoveries"] if r["kind"] == "failover")
    assert fo["acknowledged"] is True and fo["acknowledged_by"] == "cli"
    rc, out, _ = topo(capsys, h, "history")
    assert rc == 0 and "reattach" in out and "acknowledged by cli" in out
    # the evidence: the undone transactions as decoded, and their flashback (0600)
    ev = sorted((h.config.state_dir / "topology" / "sandbox" / "reattach").iterdir())[-1]
    errant_sql = (ev / "errant.sql").read_bytes()
    assert all(f"GTID {g}".encode() in errant_sql for g in three)
    assert (ev / "flashback.sql").stat().st_mode & 0o777 == 0o600


def _dead_rounds(task, n=40):
    for _ in range(n):
        v = task.check_once()
        if v.dead:
            return v
        time.sleep(0.2)
    raise AssertionError(f"not dead: {v.reason}")


def test_downtime_and_recovery_off_keep_automatic_failover_away(make_sandbox, capsys):
    h = make_sandbox(2)
    prepare(h)
    state = h.config.state_dir
    rc, out, _ = topo(capsys, h, "recovery", "off", "--cluster", "sandbox")
    assert rc == 0 and "off" in out
    rc, out, _ = topo(capsys, h, "downtime", "node3", "--for", "10m", "--reason", "maintenance")
    assert rc == 0 and "downtimed until" in out
    rc, out, _ = run(capsys, "status", "--config", str(h.config_path), "--json")
    st = json.loads(out)["clusters"]["sandbox"]
    assert st["recovery_enabled"] is False
    assert list(st["downtime"]) == [f"127.0.0.1:{h.port('node3')}"]
    assert st["downtime"][f"127.0.0.1:{h.port('node3')}"]["reason"] == "maintenance"
    task = FailoverTask(h.cluster, state, auto=True)
    task.check_once()
    det = task.detail()  # what the failover screen and the API show
    assert det.recovery_enabled is False
    assert [(a, r) for a, _u, r in det.downtime] == [(f"127.0.0.1:{h.port('node3')}", "maintenance")]
    c3 = next(c for c in task.detail().candidates if c.name == "node3")
    assert not c3.eligible and any("downtimed" in r for r in c3.reasons), c3
    h.sb.stop_node("node1", signal.SIGKILL)
    _dead_rounds(task)
    assert task.detail().recovering == "" and "recovery of sandbox is off" in task.detail().blocked
    assert task.set_recovery("on") == "automatic recovery of sandbox: on"  # the engine command (console, API)
    assert flags.recovery_enabled(state, "sandbox")
    rc, _, _ = topo(capsys, h, "downtime", "node1", "--for", "1h")
    assert rc == 0
    task.check_once()
    assert task.detail().recovering == "" and "is downtimed" in task.detail().blocked
    assert h.sql("node2", "SELECT @@global.read_only")[0][0] == 1
    assert replica_source(h, "node2")[0] == h.port("node1")
    rc, out, _ = topo(capsys, h, "downtime", "node1", "--end")
    assert rc == 0 and "ended" in out
    task.check_once()
    rep = task.wait_recovery(60)
    assert rep is not None and rep.outcome == "ok", rep and rep.error
    assert rep.new_primary == f"127.0.0.1:{h.port('node2')}"  # node3 is downtimed: never promoted
    assert [r["kind"] for r in task.recovery_history()] == ["failover"]
    assert "ended" in task.downtime("node3", "end")
    task.cleanup()
