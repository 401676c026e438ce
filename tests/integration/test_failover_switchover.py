"""Planned switchover on a real sandbox, under a write load."""

import time

import pytest

from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.switchover import Switchover
from tests.integration.failover_support import (
    Writer,
    ids_on,
    prepare,
    replica_source,
    wait_gtid,
    wait_replicating,
)

pytestmark = pytest.mark.integration


def test_switchover_under_load_loses_no_write(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    ports = [h.port("node1"), h.port("node2"), h.port("node3")]
    w = Writer(ports)
    w.start()
    time.sleep(1.0)
    ops = ClusterOps(h.cluster, tmp_path / "state")
    rep = Switchover(ops, RecoveryOptions(to="node2")).run()
    assert rep.outcome == "ok", rep.error
    assert rep.old_primary.endswith(f":{ports[0]}") and rep.new_primary.endswith(f":{ports[1]}")
    assert rep.write_block_ms is not None and rep.write_block_ms > 0
    time.sleep(1.0)
    w.finish()
    assert w.where.get(ports[0], 0) > 0 and w.where.get(ports[1], 0) > 0, w.where
    # the old primary and the other replica replicate from the new primary
    wait_replicating(h, "node1", ports[1])
    wait_replicating(h, "node3", ports[1])
    assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 1
    assert h.sql("node2", "SELECT @@global.read_only")[0][0] == 0
    assert replica_source(h, "node2") == (0, "", "")
    gtid = h.sql("node2", "SELECT @@gtid_binlog_pos")[0][0]
    for n in ("node1", "node3"):
        wait_gtid(h, n, gtid)
    acked = set(w.acked)
    for n in ("node1", "node2", "node3"):
        assert acked <= ids_on(h, n), f"{n} lost {sorted(acked - ids_on(h, n))[:5]}"
    # the journal names each step with its target and SQL, without secrets
    names = [s.name for s in rep.steps]
    assert names[:4] == ["lease", "catch up", "fence", "wait candidate"]
    assert "promote" in names and "old primary replicates" in names
    text = open(rep.journal).read()
    assert h.repl_password not in text and "MASTER_PASSWORD='***'" in text


def test_back_and_forth_with_the_consoles_heartbeat_writer_running(make_sandbox, tmp_path):
    """The console's own heartbeat writer (a privileged user: it bypasses
    read_only) writes to the primary every 0.1 s; switchovers must not let a
    write queued on the fence land on the old primary (replication there
    would then break on a duplicate GTID sequence)."""
    import dataclasses

    from console.engine.engine import Engine
    from console.engine.topology.monitor import MonitorTask

    h = make_sandbox(2)
    cluster = dataclasses.replace(h.cluster, heartbeat=True, heartbeat_interval=0.1)
    engine = Engine(dataclasses.replace(h.config, state_dir=tmp_path / "state"))
    mon = MonitorTask(cluster, interval=0.2)
    engine.add_task(mon)
    mon.start()
    try:
        mon.wait_round()
        for to in ("node2", "node3", "node1"):
            rep = Switchover(ClusterOps(h.cluster, tmp_path / "state"), RecoveryOptions(to=to)).run()
            assert rep.outcome == "ok", rep.error
            new_port = h.port(to)
            for n in ("node1", "node2", "node3"):
                if n != to:
                    wait_replicating(h, n, new_port)
            time.sleep(0.5)  # heartbeats flow to the new primary
        assert h.sql("node1", "SELECT COUNT(*) FROM dbops.heartbeat")[0][0] >= 1
        gtid = h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        for n in ("node2", "node3"):
            wait_gtid(h, n, gtid)
            src = replica_source(h, n)
            assert src == (h.port("node1"), "Yes", "Yes"), (n, src)
    finally:
        engine.shutdown()
