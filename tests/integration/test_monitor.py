"""The monitor task on a real topology: roles, heartbeat lag, failure detection."""

import time

import pytest

from console.engine.engine import Engine
from console.engine.topology.discovery import ConnPool, discover
from console.engine.topology.monitor import MonitorTask

pytestmark = pytest.mark.integration


def test_discovery_from_a_single_replica_seed(sandbox):
    # seed with only one replica: the primary and the other replica are found
    only = sandbox.cluster.hosts[2]
    from dataclasses import replace

    cluster = replace(sandbox.cluster, hosts=(only,))
    pool = ConnPool()
    try:
        topo = discover(cluster, pool)
    finally:
        pool.close()
    assert sorted(h.role for h in topo.hosts) == ["primary", "replica", "replica"]
    assert topo.primary.address == f"127.0.0.1:{sandbox.primary_port}"


def test_heartbeat_lag_measured(sandbox, tmp_path):
    from dataclasses import replace

    cfg = replace(sandbox.config, state_dir=tmp_path / "state")
    engine = Engine(cfg)
    mon = engine.add_task(MonitorTask(sandbox.cluster, interval=0.3))
    mon.start()
    try:
        deadline = time.time() + 15
        lags = []
        while time.time() < deadline:
            topo = mon.wait_round(5)
            lags = [h.heartbeat_lag for h in topo.hosts if h.role == "replica"]
            if lags and all(lag is not None for lag in lags):
                break
        assert lags and all(lag is not None and 0 <= lag < 5 for lag in lags), lags
        rows = sandbox.sql("node2", "SELECT COUNT(*) FROM dbops.heartbeat")
        assert rows[0][0] >= 1
        hist = mon.status().detail.lag_history
        assert len(hist) == 2
    finally:
        engine.shutdown()


def test_stopped_replica_unreachable_within_two_intervals(make_sandbox, tmp_path):
    sb = make_sandbox(replicas=2)
    from dataclasses import replace

    engine = Engine(replace(sb.config, state_dir=tmp_path / "state"))
    interval = 0.5
    mon = engine.add_task(MonitorTask(sb.cluster, interval=interval))
    mon.start()
    try:
        assert mon.wait_round(10) is not None
        sb.sb.stop_node("node3")
        t0 = time.monotonic()
        seen = None
        while time.monotonic() - t0 < 2 * interval + 1.0:  # two intervals plus one probe
            topo = mon.wait_round(2)
            h = topo.host("node3")
            if h and not h.reachable:
                seen = h
                break
        assert seen is not None, "node3 never shown unreachable"
        assert seen.error and "node3" in seen.error
        assert seen.role == "replica" and seen.upstream  # keeps its last known place
        events = [e.outcome for _, e in engine.events_since(0) if e.actor == "monitor"]
        assert any("node3 became unreachable" in m for m in events)
    finally:
        engine.shutdown()


def test_status_json_shows_unreachable_with_error(make_sandbox):
    import json
    import subprocess
    import sys

    sb = make_sandbox(replicas=2)
    sb.sb.stop_node("node2")
    r = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(sb.config_path), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    hosts = json.loads(r.stdout)["clusters"]["sandbox"]["hosts"]
    h = next(h for h in hosts if h["name"] == "node2")
    assert h["reachable"] is False and h["error"]
    assert any(p.startswith("node2 unreachable") for p in json.loads(r.stdout)["clusters"]["sandbox"]["problems"])
