"""The headless subcommands on the shared sandbox (nothing here changes the
topology): dry runs, monitor --once, bad input."""

import json

import pytest

from console.cli import main

pytestmark = pytest.mark.integration


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_switchover_dry_run_json_and_text(sandbox, capsys):
    cfg = str(sandbox.config_path)
    rc, out, _ = run(capsys, "switchover", "--config", cfg, "--dry-run", "--json", "--to", "node3")
    assert rc == 0
    d = json.loads(out)
    assert d["outcome"] == "planned" and d["dry_run"] is True
    assert d["new_primary"] == f"127.0.0.1:{sandbox.port('node3')}"
    assert [s["name"] for s in d["steps"]][-1] == "old primary replicates"
    assert all(s["outcome"] == "planned" for s in d["steps"])
    assert sandbox.repl_password not in out and sandbox.ops_password not in out
    rc, out, _ = run(capsys, "switchover", "--config", cfg, "--dry-run")
    assert rc == 0 and "PLANNED (dry run: nothing was changed)" in out and "FLUSH TABLES WITH READ LOCK" in out


def test_failover_refuses_while_the_primary_is_healthy(sandbox, capsys):
    rc, out, err = run(capsys, "failover", "--config", str(sandbox.config_path), "--yes")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "is reachable and healthy: nothing to fail over" in err
    assert sandbox.sql("node1", "SELECT @@global.read_only")[0][0] == 0


def test_bad_input_is_one_line_exit_2(sandbox, capsys):
    cfg = str(sandbox.config_path)
    rc, _, err = run(capsys, "switchover", "--config", cfg, "--yes", "--to", "nosuch")
    assert rc == 2 and err.count("\n") == 1 and "no host of that name" in err
    rc, _, err = run(capsys, "switchover", "--config", cfg, "--cluster", "other", "--dry-run")
    assert rc == 2 and "no cluster named 'other'" in err
    rc, _, err = run(capsys, "switchover", "--config", cfg)  # no tty, no --yes
    assert rc == 2 and "pass --yes" in err


def test_monitor_once_json(sandbox, capsys):
    rc, out, _ = run(capsys, "monitor", "--config", str(sandbox.config_path), "--once", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["state"] == "healthy" and d["auto"] is False
    assert [c["rank"] for c in d["candidates"]] == [1, 2]


def test_primary_refusing_the_consoles_login_is_not_failed_over(sandbox, tmp_path):
    """Holistic detection on real servers: the console cannot log in to the
    primary (wrong password) while the replicas still replicate from it.  The
    primary answered (it refused the login): not dead, not a partition; the
    verdict and the refusal say what is wrong (issue 12 review, item 1)."""
    import dataclasses

    from console.config import Secret
    from console.engine.failover.context import ClusterOps, RecoveryOptions
    from console.engine.failover.detection import assess
    from console.engine.failover.emergency import Failover

    c = sandbox.cluster
    hosts = tuple(dataclasses.replace(h, password=Secret("wrong")) if h.name == "node1" else h
                  for h in c.hosts)
    blind = dataclasses.replace(c, hosts=hosts)
    ops = ClusterOps(blind, tmp_path)
    v = assess(ops.discover())
    assert v.state == "unknown" and not v.dead, v
    assert "node1" in v.reason and "access denied for user 'dbops'@" in v.reason, v.reason
    rep = Failover(ops, RecoveryOptions(), previous=None).run()
    assert rep.outcome == "refused" and "access denied for user 'dbops'@" in rep.error, rep.error
    assert "check password / password_file" in rep.error
    assert sandbox.sql("node2", "SELECT @@global.read_only")[0][0] == 1
