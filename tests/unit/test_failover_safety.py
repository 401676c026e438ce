"""Hooks, journal, history/anti-flapping and the task's config parsing."""

import json
import os
import stat
import time

import pytest

from console.config import parse_config
from console.engine.failover import history
from console.engine.failover.hooks import HookFailed, run_hooks
from console.engine.failover.journal import Journal


def script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def test_hooks_get_the_event_in_the_environment(tmp_path):
    out = tmp_path / "env.txt"
    ok = script(tmp_path, "ok.sh", f'echo "$DBOPS_EVENT $DBOPS_CLUSTER $DBOPS_NEW_PRIMARY" > {out}; echo done')
    lines = run_hooks([ok], {"DBOPS_EVENT": "pre_failover", "DBOPS_CLUSTER": "c1",
                             "DBOPS_NEW_PRIMARY": "h:2"})
    assert out.read_text().strip() == "pre_failover c1 h:2"
    assert lines == [f"{ok}: ok (done)"]


def test_failing_or_missing_hook_raises(tmp_path):
    bad = script(tmp_path, "bad.sh", "echo nope >&2; exit 3")
    with pytest.raises(HookFailed, match="exited 3: nope"):
        run_hooks([bad], {})
    with pytest.raises(HookFailed, match="could not run"):
        run_hooks([str(tmp_path / "missing")], {})
    slow = script(tmp_path, "slow.sh", "sleep 5")
    with pytest.raises(HookFailed, match="could not run"):
        run_hooks([slow], {}, timeout=0.2)


def test_journal_records_steps_durably(tmp_path):
    seen = []
    j = Journal(tmp_path, "failover", "c1", on_change=seen.append)
    with j.step("promote", "h:1") as s:
        s.sql.append("STOP SLAVE")
        s.detail = "writable"
    with pytest.raises(RuntimeError):
        with j.step("repoint", "h:2") as s:
            s.sql.append("CHANGE MASTER TO ...")
            raise RuntimeError("boom")
    data = json.loads(j.path.read_text())
    assert [(x["name"], x["target"], x["outcome"]) for x in data["steps"]] == [
        ("promote", "h:1", "ok"), ("repoint", "h:2", "failed")]
    assert data["steps"][1]["detail"] == "boom" and data["steps"][0]["sql"] == ["STOP SLAVE"]
    assert seen[-1][1].outcome == "failed"
    assert j.path.parent == tmp_path / "failover" / "c1" / "journal"


def test_anti_flapping_blocks_until_acknowledged(tmp_path):
    now = time.time()
    assert history.blocking([], 600) is None
    rec = history.record_local(tmp_path, "c1", "failover", "a:1", "b:2")
    assert history.blocking(history.load_local(tmp_path, "c1"), 600, now + 1) == rec
    assert history.blocking(history.load_local(tmp_path, "c1"), 600, now + 601) is None
    assert history.acknowledge_local(tmp_path, "c1") == 1
    assert history.blocking(history.load_local(tmp_path, "c1"), 600, now + 1) is None


def test_failover_task_options_parse_and_typos_are_one_line(tmp_path):
    os.environ["X_PW"] = "x"
    base = {"clusters": {"c": {"hosts": {"h": {"user": "u", "password_env": "X_PW"}},
                               "auto_failover": True, "block_period": 60}}}
    cfg = parse_config({**base, "tasks": {"fo": {"kind": "failover", "cluster": "c",
                                                 "prefer": ["h"], "wait_timeout": 3}}})
    o = cfg.tasks["fo"].options
    assert o.prefer == ("h",) and o.wait_timeout == 3.0 and cfg.clusters["c"].auto_failover
    from console.config import ConfigError
    with pytest.raises(ConfigError, match=r"tasks\.fo\.prefered: unknown key \(did you mean 'prefer'\?\)"):
        parse_config({**base, "tasks": {"fo": {"kind": "failover", "cluster": "c", "prefered": ["h"]}}})


def test_relay_tasks_of_the_cluster_follow_the_new_primary(tmp_path):
    from console.config import Config, TaskConfig, UIConfig
    from console.engine.engine import Engine
    from console.engine.failover.relay_follow import relay_follower
    from console.engine.task import Task, command

    class FakeRelay(Task):
        kind = "relay"

        def __init__(self, tid):
            super().__init__(tid)
            self.targets = []

        def run(self):
            while True:
                self.sleep(0.05)

        @command("switch-master", dangerous=True)
        def switch_master(self, target: str, force: bool = False, actor: str = "operator") -> str:
            self.targets.append(target)
            return f"switching to {target}"

    tasks = {"r1": TaskConfig("r1", "relay", "c1", False, None),
             "r2": TaskConfig("r2", "relay", "other", False, None)}
    cfg = Config(None, tmp_path, UIConfig(), {}, tasks)
    eng = Engine(cfg)
    r1, r2 = FakeRelay("r1"), FakeRelay("r2")
    for t in (r1, r2):
        eng.add_task(t)
        t.start()
    try:
        lines = relay_follower(eng)("c1", "10.0.0.2:3306")
    finally:
        eng.shutdown()
    assert lines == ["r1: switching to 10.0.0.2:3306"]
    assert r1.targets == ["10.0.0.2:3306"] and r2.targets == []
    assert any(e.action == "switch-master" and e.actor == "failover" for e in eng.state.read_audit())


def test_hooks_never_see_password_environment_variables(tmp_path, monkeypatch):
    from console.engine.failover.hooks import secret_env_names

    monkeypatch.setenv("DB_PW", "hunter2")
    cfg = parse_config({"clusters": {"c": {"hosts": {"h": {"user": "u", "password_env": "DB_PW"}}}}})
    names = secret_env_names(cfg.clusters["c"])
    assert names == {"DB_PW"}
    out = tmp_path / "env.txt"
    h = script(tmp_path, "dump.sh", f"env > {out}")
    run_hooks([h], {"DBOPS_EVENT": "pre_failover"}, scrub=names)
    text = out.read_text()
    assert "hunter2" not in text and "DBOPS_EVENT=pre_failover" in text


def test_binlog_salvage_helpers(tmp_path):
    from console.engine.failover.salvage_binlog import binlog_files, start_of
    from console.errors import UserError
    from console.mysql import gtid as g
    from console.mysql.tools import client_options

    missing = g.parse("0-1-5..9,3-7-2..4", g.MARIADB)
    assert start_of(missing).format() == "0-1-4,3-7-1"
    with client_options(user="dbops", password='p"w') as cred:
        path = cred.arg.split("=", 1)[1]               # /dev/fd/N: in memory, no name on disk
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert open(path).read() == open(path).read() == '[client]\nuser="dbops"\npassword="p\\"w"\n'
        assert os.readlink(f"/proc/self/fd/{cred.fd}").startswith("/memfd:")
    with pytest.raises(OSError):
        os.fstat(cred.fd)
    (tmp_path / "mysql-bin.000001").write_bytes(b"\xfebin" + b"\0" * 16)
    (tmp_path / "aria_log.00000001").write_bytes(b"not a binlog")
    (tmp_path / "mysql-bin.index").write_text("x")
    assert [p.name for p in binlog_files(tmp_path)] == ["mysql-bin.000001"]
    with pytest.raises(UserError, match="no numbered binlog files"):
        binlog_files(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_failed_automatic_failover_is_not_retried_until_acknowledged(tmp_path, monkeypatch):
    import console.engine.failover.task as taskmod
    from console.engine.failover.model import RecoveryReport
    from console.engine.topology.model import Topology
    from tests.unit.test_failover_ranking import chan, primary, replica

    monkeypatch.setenv("X_PW", "x")
    cfg = parse_config({"clusters": {"c": {"hosts": {"h": {"user": "u", "password_env": "X_PW"}},
                                           "auto_failover": True}}})
    dead = Topology("c", (primary(reachable=False), replica("r2", "0-1-5", 2, ch=chan(io="Connecting"))))
    healthy = Topology("c", (primary(), replica("r2", "0-1-5", 2)))
    topo = [dead]
    monkeypatch.setattr(taskmod, "discover", lambda *a, **k: topo[0])
    runs = []

    class FakeRecovery:
        detection_ms = None

        def run(self):
            runs.append(1)
            return RecoveryReport("failover", "c", False, "p", "", "failed", (), error="no replica can be promoted")

    t = taskmod.FailoverTask(cfg.clusters["c"], tmp_path)
    monkeypatch.setattr(t, "_make", lambda *a, **k: FakeRecovery())
    monkeypatch.setattr(t, "_collect_advice", lambda topo: ())
    t.check_once()
    t.wait_recovery(5)
    assert runs == [1] and t.detail().last_report.outcome == "failed"
    for _ in range(3):
        t.check_once()
    assert runs == [1]  # no retry loop
    assert "no automatic retry until acknowledged" in t.detail().blocked
    t.acknowledge()
    t.check_once()
    t.wait_recovery(5)
    assert runs == [1, 1]
    topo[0] = healthy
    t.check_once()
    assert t.detail().blocked == "" and t.detail().verdict.state == "healthy"


def test_recoveries_without_replication_credentials_refuse_before_anything(tmp_path, monkeypatch):
    from console.engine.failover.context import ClusterOps, RecoveryOptions
    from console.engine.failover.emergency import Failover

    monkeypatch.setenv("X_PW", "x")
    cfg = parse_config({"clusters": {"c": {"hosts": {"h": {"user": "u", "password_env": "X_PW",
                                                           "port": 1}}}}})
    rep = Failover(ClusterOps(cfg.clusters["c"], tmp_path), RecoveryOptions()).run()
    assert rep.outcome == "refused" and "no [clusters.c.replication] credentials" in rep.error
    assert rep.steps == () and rep.journal == ""
