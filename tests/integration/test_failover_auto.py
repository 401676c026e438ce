"""The failover task on a real sandbox: a failing pre hook aborts, automatic
failover after kill -9 with hooks, anti-flapping until acknowledged."""

import dataclasses
import signal
import stat
import time

import pytest

from console.engine.engine import Engine
from console.engine.failover.context import ClusterOps, RecoveryOptions
from console.engine.failover.switchover import Switchover
from console.engine.failover.task import FailoverTask
from tests.integration.failover_support import prepare, wait_replicating

pytestmark = pytest.mark.integration


def hook(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def wait_for(fn, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_pre_hook_aborts_then_auto_failover_with_anti_flapping(make_sandbox, tmp_path):
    h = make_sandbox(2)
    prepare(h)
    failing = hook(tmp_path, "veto.sh", "echo 'maintenance window closed' >&2; exit 1")
    veto = dataclasses.replace(h.cluster, hooks={"pre_failover": (failing,), "post_failover": ()})
    rep = Switchover(ClusterOps(veto, tmp_path / "s0"), RecoveryOptions()).run()
    assert rep.outcome == "refused" and "maintenance window closed" in rep.error
    assert h.sql("node1", "SELECT @@global.read_only")[0][0] == 0  # nothing was changed
    assert "promote" not in [s.name for s in rep.steps]

    log = tmp_path / "hooks.log"
    pre = hook(tmp_path, "pre.sh", f'echo "pre $DBOPS_KIND $DBOPS_OLD_PRIMARY" >> {log}')
    post = hook(tmp_path, "post.sh", f'echo "post $DBOPS_OUTCOME $DBOPS_NEW_PRIMARY lost=$DBOPS_LOST_GTIDS" >> {log}')
    cluster = dataclasses.replace(h.cluster, auto_failover=True, block_period=600,
                                  hooks={"pre_failover": (pre,), "post_failover": (post,)})
    engine = Engine(h.config)
    task = FailoverTask(cluster, tmp_path / "state")
    engine.add_task(task)
    task.start()
    try:
        wait_for(lambda: task.detail().verdict and task.detail().verdict.state == "healthy", what="healthy")
        h.sb.stop_node("node1", signal.SIGKILL)
        rep = wait_for(lambda: task.detail().last_report, what="automatic failover")
        assert rep.outcome == "ok", (rep.error, rep.steps)
        assert rep.detection_ms is not None
        new = int(rep.new_primary.rpartition(":")[2])
        survivor = "node3" if new == h.port("node2") else "node2"
        dead2 = "node2" if survivor == "node3" else "node3"
        wait_replicating(h, survivor, new)
        lines = log.read_text().splitlines()
        assert lines[0] == f"pre failover 127.0.0.1:{h.port('node1')}"
        assert lines[1] == f"post ok {rep.new_primary} lost="
        # the new primary dies too: blocked (anti-flapping) until acknowledged
        h.sb.stop_node(dead2, signal.SIGKILL)
        wait_for(lambda: task.detail().blocked, what="anti-flapping block")
        assert task.detail().last_report is rep
        assert h.sql(survivor, "SELECT @@global.read_only")[0][0] == 1
        msg = engine.command(task.task_id, "acknowledge")
        assert msg.startswith("acknowledged")
        rep2 = wait_for(lambda: task.detail().last_report is not rep and task.detail().last_report,
                        what="second failover after acknowledge")
        assert rep2.outcome == "ok", rep2.error
        assert rep2.new_primary.endswith(f":{h.port(survivor)}")
        assert h.sql(survivor, "SELECT @@global.read_only")[0][0] == 0
        audit = [e for e in engine.state.read_audit() if e.action == "failover"]
        assert [e.outcome for e in audit] == ["ok", "ok"] and all(e.actor == "auto" for e in audit)
    finally:
        engine.shutdown()


def test_headless_monitor_auto_failover_json(make_sandbox, tmp_path):
    import json
    import os
    import subprocess
    import sys

    h = make_sandbox(2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "console", "monitor", "--config", str(h.config_path),
                             "--auto-failover", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines = []
    try:
        first = json.loads(proc.stdout.readline())
        assert first["state"] == "healthy" and first["auto"] is True
        h.sb.stop_node("node1", signal.SIGKILL)
        deadline = time.monotonic() + 30
        report = None
        while report is None and time.monotonic() < deadline:
            d = json.loads(proc.stdout.readline())
            lines.append(d)
            if "outcome" in d:
                report = d
        assert report is not None and report["outcome"] == "ok", lines
        assert report["kind"] == "failover" and report["old_primary"].endswith(f":{h.port('node1')}")
        assert any(d.get("state") == "dead" for d in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err
