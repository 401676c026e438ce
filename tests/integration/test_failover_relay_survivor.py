"""The emergency failover report names each relay survivor once (issue 12
review, item 6), against a real sandbox whose primary is killed: the
cluster's relay task is a salvage source from the config, and the same
directory given again with ``--binlog-dir`` (as its help suggests) must not
make it a second survivor (in the plan and in the report)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from console.cli import main
from console.config import load_config
from tests.integration.failover_support import prepare

pytestmark = pytest.mark.integration


def survivor_steps(report: dict) -> list[str]:
    return [s["detail"] for s in report["steps"] if s["name"] == "survivor"]


def test_relay_given_again_as_binlog_dir_is_one_survivor(make_sandbox, capsys):
    h = make_sandbox(1)
    prepare(h)
    h.sql("node1", "INSERT INTO app.t VALUES (1, 'a', NOW(6)), (2, 'a', NOW(6))")
    h.wait_replicas_caught_up()
    cfg = str(h.config_path)
    relay_dir = load_config(h.config_path).tasks["sandbox-relay"].options.relay_dir
    r = subprocess.run([sys.executable, "-m", "console", "relay", "--config", cfg, "--task",
                        "sandbox-relay", "--stop-at-end", "--quiet"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    h.sb.stop_node("node1", signal.SIGKILL)
    argv = ["failover", "--config", cfg, "--force", "--json", "--binlog-dir", str(relay_dir),
            "--binlog-dir", f"{relay_dir}/"]
    assert main([*argv, "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    surv = survivor_steps(plan)
    assert len(surv) == 1 and surv[0].startswith(f"relay sandbox-relay ({relay_dir}): "), surv
    relay_steps = [s for s in plan["steps"] if s["name"] == "salvage: apply relay events"]
    assert len(relay_steps) == 1, relay_steps

    assert main([*argv, "--yes"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["outcome"] == "ok", rep["error"]
    surv = survivor_steps(rep)
    assert len(surv) == 1 and surv[0].startswith(f"relay sandbox-relay ({relay_dir}): "), surv
