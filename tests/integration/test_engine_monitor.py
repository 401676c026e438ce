"""``monitor`` beside a serving engine is never a second recoverer (private
sandboxes, ``serve`` and ``monitor`` as subprocesses, kill -9 of the
primary):

- the engine has a failover task for the cluster: ``monitor
  --auto-failover`` starts it there and turns its automatic failover on,
  prints what it sees, and the recovery after kill -9 is the engine's (the
  report comes from it); stopping ``monitor`` leaves it watching;
- the engine has none: ``monitor`` watches here, recovers, and the relay
  the engine runs follows the new primary through the API.
"""

from __future__ import annotations

import json
import signal

import pytest

from console.engine.relay.store import RelayStore
from tests.integration.failover_support import prepare
from tests.integration.relay_support import wait_meta_gtid
from tests.support.backup_helpers import wait_for
from tests.support.foreground import Cli
from tests.support.serving import cluster_part, relay_task, start_serving

pytestmark = pytest.mark.integration


def json_lines(cli: Cli) -> list[dict]:
    out = []
    for ln in list(cli.out):
        try:
            out.append(json.loads(ln))
        except ValueError:
            continue
    return out


def report_of(cli: Cli) -> dict | None:
    return next((d for d in json_lines(cli) if "outcome" in d), None)


def test_monitor_hands_the_watch_to_the_engines_failover_task(make_sandbox, tmp_path, serve):
    h = make_sandbox(2)
    prepare(h)
    state = tmp_path / "state"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(h, state) + '\n[tasks.fo]\nkind = "failover"\ncluster = "sandbox"\n')
    proc, client = start_serving(serve, cfg, state)
    assert client.task("fo")["state"] == "not started"

    mon = Cli("monitor", "--config", str(cfg), "--auto-failover", "--json")
    wait_for(lambda: json_lines(mon) or mon.p.poll() is not None, timeout=120,
             what="monitor's first line")
    assert any("started fo in the engine" in ln for ln in mon.err), "\n".join(mon.err)
    first = json_lines(mon)[0]
    assert first["state"] == "healthy" and first["auto"] is True, first
    t = client.task("fo")
    assert t["state"] == "running" and t["detail"]["auto"] is True

    h.sb.stop_node("node1", signal.SIGKILL)
    wait_for(lambda: report_of(mon) or mon.p.poll() is not None, timeout=120,
             what="the recovery report")
    rep = report_of(mon)
    assert rep is not None and rep["outcome"] == "ok" and rep["kind"] == "failover", mon.out
    # the recovery was the engine's: its task counted it, and this command ran none
    wait_for(lambda: ["failover", "ok", 1] in client.task("fo")["detail"]["recoveries"], timeout=30,
             what="the engine's recovery count")
    assert not any("watching it here" in ln for ln in mon.err)

    assert mon.stop(signal.SIGINT) == 130
    assert mon.err[-1] == "monitor: stopped; fo keep(s) watching in the engine", mon.err[-3:]
    assert client.task("fo")["state"] == "running"
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)


def test_monitor_without_an_engine_watcher_recovers_here_and_the_engines_relay_follows(
        make_sandbox, tmp_path, serve):
    h = make_sandbox(2)
    prepare(h)
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "dbops.toml"
    cfg.write_text(cluster_part(h, state) + relay_task("r", relay_dir, 6331))
    proc, client = start_serving(serve, cfg, state)
    wait_for(lambda: client.task("r")["phase"] == "streaming", timeout=120, what="the relay")

    mon = Cli("monitor", "--config", str(cfg), "--auto-failover", "--json")
    wait_for(lambda: json_lines(mon) or mon.p.poll() is not None, timeout=120,
             what="monitor's first line")
    assert any("has no failover task for sandbox: watching it here" in ln for ln in mon.err), \
        "\n".join(mon.err)
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'before', NOW(6))")
    wait_meta_gtid(relay_dir, h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0])
    h.wait_replicas_caught_up()
    h.sb.stop_node("node1", signal.SIGKILL)

    wait_for(lambda: report_of(mon) or mon.p.poll() is not None, timeout=120,
             what="the recovery report")
    rep = report_of(mon)
    assert rep is not None and rep["outcome"] == "ok", mon.out
    follow = next(s for s in rep["steps"] if s["name"] == "relay follows")
    assert "r (in the engine): switching to" in follow["detail"], follow
    new = rep["new_primary"]
    node = "node2" if new.endswith(f":{h.port('node2')}") else "node3"
    h.sql(node, "INSERT INTO app.t VALUES (2, 'after', NOW(6))")
    wait_meta_gtid(relay_dir, h.sql(node, "SELECT @@gtid_binlog_pos")[0][0], timeout=120)
    assert RelayStore(relay_dir).load_meta().server == new

    assert mon.stop(signal.SIGINT) == 130
    assert mon.err[-1] == "monitor: stopped", mon.err[-3:]
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
