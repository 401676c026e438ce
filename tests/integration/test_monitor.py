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
    assert h["reachable"] is False and h["error"] and h["binlog_bytes"] is None
    primary = next(h for h in hosts if h["name"] == "node1")
    assert primary["binlog_bytes"] >= primary["binlog_pos"] > 0  # every binlog's size
    assert any(p.startswith("node2 unreachable") for p in json.loads(r.stdout)["clusters"]["sandbox"]["problems"])


# ---- issue 12, item 21: one refresh at a time; a failing refresh is not fatal ----------

def heartbeat_ts(h):
    rows = h.sql("node1", "SELECT ts FROM dbops.heartbeat WHERE server_id = @@server_id")
    return rows[0][0] if rows else None


def wait_heartbeat_moves(h, timeout: float = 20.0) -> bool:
    first = heartbeat_ts(h)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        ts = heartbeat_ts(h)
        if ts is not None and ts != first:
            return True
    return False


def assert_sane(topo, sandbox):
    addrs = [h.address for h in topo.hosts]
    assert all(not a.endswith(":0") and not a.startswith(":") for a in addrs), addrs
    assert topo.primary is not None and topo.primary.address == f"127.0.0.1:{sandbox.primary_port}", \
        [(h.address, h.role, h.error) for h in topo.hosts]
    assert len(topo.hosts) == 3 and all(h.reachable for h in topo.hosts), \
        [(h.address, h.reachable, h.error) for h in topo.hosts]


def test_concurrent_refreshes_are_serialized(sandbox, tmp_path, monkeypatch):
    import threading
    from dataclasses import replace

    from tests.support.probe_tracking import track_probes

    overlaps = track_probes(monkeypatch)
    engine = Engine(replace(sandbox.config, state_dir=tmp_path / "state"))
    assert sandbox.cluster.heartbeat
    mon = engine.add_task(MonitorTask(sandbox.cluster, interval=0.2))
    mon.start()
    try:
        assert mon.wait_round(15) is not None
        results, errors = [], []

        def hammer():
            for _ in range(5):
                try:
                    results.append(mon.refresh())
                except Exception as e:  # noqa: BLE001 - collected, asserted below
                    errors.append(repr(e))

        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert not overlaps, f"connections used by two threads at once: {overlaps}"
        assert len(results) == 30
        for topo in results:
            assert_sane(topo, sandbox)
        rounds = mon.status().detail.rounds
        assert_sane(mon.wait_round(15), sandbox)
        assert mon.state == "running" and mon.status().detail.rounds > rounds
        assert wait_heartbeat_moves(sandbox), "the heartbeat stopped"
    finally:
        engine.shutdown()


def test_failing_refresh_does_not_kill_the_monitor(sandbox, tmp_path, monkeypatch):
    from dataclasses import replace

    import pymysql

    from console.engine.topology import monitor as monitor_mod

    calls = [0]
    real = monitor_mod.discover

    def flaky(*args, **kwargs):
        calls[0] += 1
        if calls[0] in (2, 3):  # what a connection out of sync raises
            raise pymysql.err.InternalError("Packet sequence number wrong - got 1 expected 2")
        return real(*args, **kwargs)

    monkeypatch.setattr(monitor_mod, "discover", flaky)
    engine = Engine(replace(sandbox.config, state_dir=tmp_path / "state"))
    mon = engine.add_task(MonitorTask(sandbox.cluster, interval=0.2))
    mon.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (calls[0] < 5 or mon.state != "running"):
            time.sleep(0.1)
        assert mon.state == "running", mon.status().last_error
        assert calls[0] >= 5
        assert_sane(mon.wait_round(15), sandbox)
        assert any("Packet sequence number wrong" in e.outcome for _, e in engine.events_since(0)
                   if e.target == mon.task_id)
        assert wait_heartbeat_moves(sandbox), "the heartbeat stopped"
    finally:
        engine.shutdown()
