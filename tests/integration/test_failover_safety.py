"""Safety on real sandboxes: one recovery at a time (the cluster lease),
errant replicas excluded, dry run changes nothing."""

import signal
import threading
import time

import pytest

from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.emergency import Failover
from console.engine.failover.lease import ClusterLease, LeaseBusy
from console.engine.failover.switchover import Switchover
from tests.integration.failover_support import prepare, replica_source, wait_replicating
from tests.integration.test_failover_emergency import wait_dead

pytestmark = pytest.mark.integration


def test_two_concurrent_recoveries_only_one_acts(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    # two consoles: separate state dirs (as on two machines), same cluster
    ops_a = ClusterOps(h.cluster, tmp_path / "a")
    ops_b = ClusterOps(h.cluster, tmp_path / "b")
    prev = ops_a.discover()
    h.sb.stop_node("node1", signal.SIGKILL)
    wait_dead(ops_a, prev)
    reports = {}
    go = threading.Barrier(2)

    def run(name, ops):
        go.wait()
        reports[name] = Failover(ops, RecoveryOptions(), previous=prev).run()

    ts = [threading.Thread(target=run, args=(n, o)) for n, o in (("a", ops_a), ("b", ops_b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    outcomes = sorted(r.outcome for r in reports.values())
    assert outcomes == ["ok", "refused"], {n: (r.outcome, r.error) for n, r in reports.items()}
    loser = next(r for r in reports.values() if r.outcome == "refused")
    assert "lease" in loser.error or "already recovered" in loser.error, loser.error
    winner = next(r for r in reports.values() if r.outcome == "ok")
    # one primary, the other replica follows it
    new_port = int(winner.new_primary.rpartition(":")[2])
    other = "node3" if new_port == h.port("node2") else "node2"
    wait_replicating(h, other, new_port)


def test_lease_is_exclusive_and_released_with_the_connection(make_sandbox, tmp_path):
    h = make_sandbox(1)
    ops = ClusterOps(h.cluster, None)
    eps = [ops.endpoint(f"127.0.0.1:{h.port(n)}") for n in ("node1", "node2")]
    a = ClusterLease("sandbox")
    assert len(a.acquire(eps)) == 2
    b = ClusterLease("sandbox")
    with pytest.raises(LeaseBusy, match="another recovery holds the lease"):
        b.acquire(eps)
    assert not b.held
    a.release()
    assert len(b.acquire(eps)) == 2
    b.release()


def test_errant_replica_is_excluded_and_dry_run_changes_nothing(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    # a local write on node3 in its own domain: errant (dbops bypasses read_only)
    h.sql("node3", "SET SESSION gtid_domain_id = 5", "CREATE DATABASE local_junk")
    ops = ClusterOps(h.cluster, tmp_path / "state")
    dry = Switchover(ops, RecoveryOptions(dry_run=True)).run()
    assert dry.outcome == "planned" and dry.new_primary.endswith(f":{h.port('node2')}")
    c = {c.name: c for c in dry.candidates}
    assert not c["node3"].eligible and "domain 5" in c["node3"].errant
    assert any(r.startswith("errant GTIDs") for r in c["node3"].reasons)
    assert all(s.outcome == "planned" for s in dry.steps) and dry.steps
    assert any("MASTER_PASSWORD='***'" in q for s in dry.steps for q in s.sql)
    assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 0  # nothing changed
    refused = Switchover(ops, RecoveryOptions(to="node3")).run()
    assert refused.outcome == "refused" and "errant GTIDs" in refused.error
    assert replica_source(h, "node3")[0] == h.port("node1")
    # an open transaction on the primary (older than max_trx_seconds) refuses too
    trx = h.connect("node1")
    try:
        with trx.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO app.t VALUES (99, 'open', NOW(6))")
        # INNODB_TRX is served from a cache InnoDB refreshes at most every
        # 100 ms: the dry run above read it just now
        time.sleep(0.3)
        busy = Switchover(ops, RecoveryOptions(max_trx_seconds=0)).run()
        assert busy.outcome == "refused" and "finish or kill it first" in busy.error
        assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 0
    finally:
        trx.rollback()
        trx.close()


def test_switchover_rolls_back_the_fence_when_the_candidate_cannot_catch_up(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'a', NOW(6))")
    h.wait_replicas_caught_up()
    holder = h.connect("node2")  # a row lock on the candidate blocks its SQL thread
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM app.t WHERE id = 1 FOR UPDATE")
        h.sql("node1", "UPDATE app.t SET writer = 'b' WHERE id = 1")
        ops = ClusterOps(h.cluster, tmp_path / "state")
        # a candidate that does not catch up is refused before any fence
        rep = Switchover(ops, RecoveryOptions(to="node2", wait_timeout=1.0)).run()
        assert rep.outcome == "refused" and "nothing was fenced" in rep.error
        assert "fence" not in [s.name for s in rep.steps]
        assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 0

        # the same when it stalls only under the fence (catch-up skipped here):
        # the fence is rolled back
        class Stalls(Switchover):
            def _catch_up(self, *a):
                return "skipped by the test"

        rep = Stalls(ClusterOps(h.cluster, tmp_path / "state"), RecoveryOptions(to="node2", wait_timeout=1.0)).run()
        assert rep.outcome == "failed" and "fence rolled back" in rep.error
        names = [s.name for s in rep.steps]
        assert "roll back fence" in names and "promote" not in names
        # the old primary takes writes again; the candidate is still its replica
        assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 0
        h.sql("node1", "INSERT INTO app.t VALUES (2, 'after', NOW(6))")
        assert replica_source(h, "node2")[0] == h.port("node1")
        assert h.sql("node2", "SELECT @@global.read_only")[0][0] == 1
    finally:
        holder.rollback()
        holder.close()
    h.wait_replicas_caught_up()
