"""Headless commands beside a serving engine (real sandbox, ``serve`` as a
subprocess): ``failover`` (kill -9 of the primary) switches the relay the
engine runs to the new primary, with no "switch it by hand"; ``status``
prints the engine's snapshot; ``relay --task`` and ``backup --task`` start
their task in the engine (and say so) instead of fighting its locks;
``backup snapshot`` asks the engine's running backup task."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from console.engine.relay.store import RelayStore
from tests.integration.failover_support import prepare
from tests.integration.relay_support import wait_meta_gtid
from tests.support.backup_helpers import wait_for
from tests.support.serving import cluster_part, relay_task, start_serving

pytestmark = pytest.mark.integration


def cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console", *argv], capture_output=True, text=True,
                          timeout=timeout)


def test_failover_beside_serve_switches_the_engines_relay(make_sandbox, tmp_path, serve):
    h = make_sandbox(2)
    prepare(h)
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(h, state) + relay_task("r", relay_dir, 6301))
    proc, client = start_serving(serve, cfg, state)
    wait_for(lambda: client.task("r")["phase"] == "streaming", timeout=120, what="the relay")
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'before', NOW(6))")
    wait_meta_gtid(relay_dir, h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
    h.wait_replicas_caught_up()
    h.sb.stop_node("node1", signal.SIGKILL)

    p = cli("failover", "--config", str(cfg), "--yes", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["outcome"] == "ok", rep["error"]
    follow = next(s for s in rep["steps"] if s["name"] == "relay follows")
    assert "r (in the engine): switching to" in follow["detail"], follow
    assert "not run by this command" not in p.stdout + p.stderr
    new = rep["new_primary"]
    node = "node2" if new.endswith(f":{h.port('node2')}") else "node3"
    # the engine's relay streams from the new primary, continuing by GTID
    h.sql(node, "INSERT INTO app.t VALUES (2, 'after', NOW(6))")
    wait_meta_gtid(relay_dir, h.sql(node, "SELECT @@gtid_binlog_pos")[0][0], timeout=120)
    assert RelayStore(relay_dir).load_meta().server == new
    wait_for(lambda: new in client.task("r")["detail"]["upstream"], timeout=60,
             what="the relay's upstream in the engine's status")
    audit = [json.loads(x) for x in (state / "audit.log").read_text().splitlines()]
    assert any(a["action"] == "switch-master" and a["target"] == "r" and a["outcome"] == "ok"
               and a["actor"].startswith("cli:") for a in audit)
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)


def test_status_relay_and_backup_talk_to_the_serving_engine(sandbox, tmp_path, serve):
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(sandbox, state) + relay_task("r", tmp_path / "relay", 6311,
                                                             autostart=False)
                   + f'\n[tasks.b]\nkind = "backup"\ncluster = "sandbox"\n'
                     f'storage = "{tmp_path / "backup"}"\nserver_id = 6312\n')
    # a GTID to snapshot at (a primary that never logged a transaction has none)
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS engine_clients")
    proc, client = start_serving(serve, cfg, state)
    pid = client.info()["pid"]
    wait_for(lambda: client.clusters()["sandbox"]["taken_at"] is not None, timeout=60,
             what="the first snapshot")

    p = cli("status", "--config", str(cfg), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["engine_pid"] == pid
    assert {h["name"] for h in out["clusters"]["sandbox"]["hosts"]} == {"node1", "node2", "node3"}
    p = cli("status", "--config", str(cfg))
    assert p.returncode == 0 and f"the engine's snapshot, pid {pid}" in p.stdout, p.stdout

    p = cli("relay", "--config", str(cfg), "--task", "r")
    assert p.returncode == 0, p.stderr
    assert f"started r in the engine serving {state} (pid {pid})" in p.stderr
    wait_for(lambda: client.task("r")["state"] == "running", timeout=60, what="r running")
    p = cli("relay", "--config", str(cfg), "--task", "r")
    assert p.returncode == 0 and "r already runs in the engine" in p.stderr, p.stderr

    p = cli("backup", "--config", str(cfg), "--task", "b")
    assert p.returncode == 0 and "started b in the engine" in p.stderr, p.stderr
    wait_for(lambda: client.task("b")["phase"] not in ("", "starting", "new"), timeout=120,
             what="the backup running")
    p = cli("backup", "snapshot", "--config", str(cfg), "--task", "b", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["in_engine"] is True
    wait_for(lambda: len(client.task("b")["detail"]["snapshots"]) >= 1, timeout=240,
             what="the snapshot taken by the engine's backup task")
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
    # with no engine serving, the commands work standalone again
    p = cli("status", "--config", str(cfg), "--json")
    assert p.returncode == 0 and "engine_pid" not in json.loads(p.stdout)
