"""Salvage and lagging replicas in an emergency failover (real sandboxes).

node3 is made to lag: its IO thread is stopped while the primary takes more
writes that only node2 receives; then the primary is killed (-9)."""

import signal

import pytest

from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.emergency import Failover
from tests.integration.failover_support import (
    ids_on,
    prepare,
    replica_source,
    wait_gtid,
    wait_replicating,
)
from tests.integration.test_failover_emergency import wait_dead

pytestmark = pytest.mark.integration


def lagging_node3_then_kill(h, tmp_path):
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES " + ",".join(f"({i}, 'a', NOW(6))" for i in range(1, 51)))
    h.wait_replicas_caught_up()
    h.sql("node3", "STOP SLAVE IO_THREAD")
    for i in range(51, 81):  # 30 single-row transactions only node2 receives
        h.sql("node1", f"INSERT INTO app.t VALUES ({i}, 'b', NOW(6))")
    gtid = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    wait_gtid(h, "node2", gtid)
    ops = ClusterOps(h.cluster, tmp_path / "state")
    prev = ops.discover()
    h.sb.stop_node("node1", signal.SIGKILL)
    wait_dead(ops, prev)
    return ops, prev, set(range(1, 81))


def test_preferred_candidate_behind_gets_missing_transactions_before_writes(make_sandbox, tmp_path):
    h = make_sandbox(2)
    ops, prev, written = lagging_node3_then_kill(h, tmp_path)
    assert not written <= ids_on(h, "node3")  # really behind
    rep = Failover(ops, RecoveryOptions(prefer=frozenset({"node3"})), previous=prev).run()
    assert rep.outcome == "ok", rep.error
    assert rep.new_primary.endswith(f":{h.port('node3')}")
    assert rep.salvaged and rep.lost == "", (rep.salvaged, rep.lost)
    names = [s.name for s in rep.steps]
    # salvage happened before the candidate became writable
    assert names.index("salvage: replicate from donor") < names.index("promote")
    assert written <= ids_on(h, "node3")
    # the donor now replicates from the new primary and stays consistent
    wait_replicating(h, "node2", h.port("node3"))
    h.sql("node3", "INSERT INTO app.t VALUES (1000, 'new', NOW(6))")
    wait_gtid(h, "node2", h.sql("node3", "SELECT @@gtid_binlog_pos")[0][0])
    assert ids_on(h, "node2") == written | {1000}


def test_lagging_replica_is_not_promoted_when_a_better_one_exists(make_sandbox, tmp_path):
    h = make_sandbox(2)
    ops, prev, written = lagging_node3_then_kill(h, tmp_path)
    # nobody may be promoted: the attempt fails and gives replication back
    no = Failover(ops, RecoveryOptions(must_not=frozenset({"node2", "node3"})), previous=prev).run()
    assert no.outcome == "failed" and "no replica can be promoted" in no.error
    assert [s.name for s in no.steps].count("roll back: restart replication") == 2
    for n in ("node2", "node3"):
        assert h.sql(n, "SELECT @@global.read_only")[0][0] == 1
        assert replica_source(h, n)[0] == h.port("node1")
        assert replica_source(h, n)[1] in ("Yes", "Connecting")
    rep = Failover(ops, RecoveryOptions(), previous=prev).run()
    assert rep.outcome == "ok", rep.error
    assert rep.new_primary.endswith(f":{h.port('node2')}")
    c = {c.name: c for c in rep.candidates}
    assert c["node2"].rank == 1 and c["node2"].advanced > c["node3"].advanced
    assert rep.salvaged == "" and rep.lost == ""
    wait_replicating(h, "node3", h.port("node2"))
    wait_gtid(h, "node3", h.sql("node2", "SELECT @@gtid_binlog_pos")[0][0])
    assert ids_on(h, "node3") == written


def test_transactions_no_survivor_holds_are_reported_by_gtid_range(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'a', NOW(6))")
    h.wait_replicas_caught_up()
    before = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    for n in ("node2", "node3"):
        h.sql(n, "STOP SLAVE IO_THREAD")
    for i in range(2, 5):  # 3 transactions only the primary holds
        h.sql("node1", f"INSERT INTO app.t VALUES ({i}, 'only-primary', NOW(6))")
    after = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    ops = ClusterOps(h.cluster, tmp_path / "state")
    prev = ops.discover()  # the console saw the primary's last position
    h.sb.stop_node("node1", signal.SIGKILL)
    wait_dead(ops, prev)
    rep = Failover(ops, RecoveryOptions(), previous=prev).run()
    assert rep.outcome == "ok", rep.error
    lo = int(before.rsplit("-", 1)[1]) + 1
    hi = int(after.rsplit("-", 1)[1])
    assert rep.lost == f"domain 0: {lo}-{hi} (3)"
    assert any(s.name == "not saved" and s.outcome == "failed" for s in rep.steps)


def test_salvage_from_the_dead_primarys_binlog_files(make_sandbox, tmp_path):
    """No replica has the last transactions, but the dead primary's binlogs
    are readable here (as relay files would be): they are applied to the
    candidate with their original GTIDs before it takes writes."""
    h = make_sandbox(2)
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'a', NOW(6))")
    h.wait_replicas_caught_up()
    before = int(h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0].rsplit("-", 1)[1])
    for n in ("node2", "node3"):
        h.sql(n, "STOP SLAVE IO_THREAD")
    for i in range(2, 5):
        h.sql("node1", f"INSERT INTO app.t VALUES ({i}, 'only-primary', NOW(6))")
    h.sql("node1", "UPDATE app.t SET writer = 'changed' WHERE id = 1")
    after = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
    ops = ClusterOps(h.cluster, tmp_path / "state")
    prev = ops.discover()
    h.sb.stop_node("node1", signal.SIGKILL)
    wait_dead(ops, prev)
    datadir = next(n.datadir for n in h.nodes if n.name == "node1")
    with pytest.raises(Exception, match="not a directory"):
        from console.engine.failover.salvage_relay import sources_from_dirs
        sources_from_dirs([str(tmp_path / "nope")])
    rep = Failover(ops, RecoveryOptions(binlog_dirs=(datadir,)), previous=prev).run()
    assert rep.outcome == "ok", rep.error
    assert rep.lost == "" and rep.salvaged == f"domain 0: {before + 1}-{before + 4} (4)"
    new = "node2" if rep.new_primary.endswith(f":{h.port('node2')}") else "node3"
    other = "node3" if new == "node2" else "node2"
    rows = dict(h.sql(new, "SELECT id, writer FROM app.t"))
    assert rows == {1: "changed", 2: "only-primary", 3: "only-primary", 4: "only-primary"}
    # the salvaged transactions kept their GTIDs: the other replica gets them from the new primary
    state = h.sql(new, "SELECT @@gtid_binlog_state")[0][0].split(",")
    assert after in state  # written with the dead primary's server id and seq
    wait_replicating(h, other, h.port(new))
    wait_gtid(h, other, after)
    assert dict(h.sql(other, "SELECT id, writer FROM app.t")) == rows
    steps = [s.name for s in rep.steps]
    assert steps.index("salvage: apply binlog events") < steps.index("promote")
