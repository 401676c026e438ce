"""A wrong password in the config (issue 12 review, item 1), against the
real sandbox: the configured foreground commands (``relay --task``,
``backup run``, ``monitor --once`` and ``monitor``) say one line naming the
host, the user and what to check, exit 2, try once (an authentication
failure is never retried) and create nothing; in the long-running engine a
host that refuses the login shows that reason, not "no primary"."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.config import Secret, load_config
from console.engine.backup import make_backup_task
from console.engine.engine import Engine
from console.engine.failover.task import FailoverTask
from console.engine.topology.monitor import MonitorTask
from console.errors import UserError

pytestmark = pytest.mark.integration

WRONG = "not-the-password"


def denied_count(h, node: str = "node1") -> int:
    return int(h.sql(node, "SHOW GLOBAL STATUS LIKE 'Access_denied_errors'")[0][1])


def wrong_config(h, tmp_path: Path) -> tuple[Path, Path]:
    """The sandbox config with every password file replaced by a wrong one and
    every directory under ``tmp_path/made`` (which must stay absent)."""
    wrong = tmp_path / "wrong.pw"
    wrong.write_text(WRONG + "\n")
    wrong.chmod(0o600)
    made = tmp_path / "made"
    text = h.config_path.read_text()
    text = re.sub(r'(?m)^password_file = .*$', f'password_file = "{wrong}"', text)
    for key in ("state_dir", "relay_dir", "storage"):
        text = re.sub(rf'(?m)^{key} = .*$', f'{key} = "{made / key}"', text)
    p = tmp_path / "dbops.toml"
    p.write_text(text)
    return p, made


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console", *argv], capture_output=True, text=True,
                          timeout=timeout)


def refused(r, h, user: str, wrong: Path) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    line = lines[0]
    assert f"127.0.0.1:{h.primary_port}" in line and "node1" in line, line
    assert f"access denied for user '{user}'@" in line, line
    assert "check password / password_file" in line and str(wrong) in line, line
    assert "no primary" not in line and "Traceback" not in r.stderr
    assert h.ops_password not in r.stderr + r.stdout and h.repl_password not in r.stderr + r.stdout
    return line


@pytest.mark.parametrize("argv,user", [
    (["relay", "--task", "sandbox-relay"], "repl"),
    (["backup", "run", "--task", "sandbox-backup"], "dbops"),
    (["monitor", "--once"], "dbops"),
    (["monitor"], "dbops"),
], ids=["relay", "backup-run", "monitor-once", "monitor"])
def test_configured_command_with_a_wrong_password(sandbox, tmp_path, argv, user):
    cfg, made = wrong_config(sandbox, tmp_path)
    before = denied_count(sandbox)
    t0 = time.monotonic()
    r = cli(argv[0], "--config", str(cfg), *argv[1:])
    refused(r, sandbox, user, tmp_path / "wrong.pw")
    assert time.monotonic() - t0 < 30
    assert not made.exists(), sorted(str(p) for p in made.rglob("*"))  # no state dir, relay dir, storage
    # once per account: no retry (backup: the ops and the replication account)
    assert denied_count(sandbox) - before <= 2


def one_host_wrong(h, tmp_path: Path, names: tuple[str, ...]):
    wrong = tmp_path / "wrong.pw"
    wrong.write_text(WRONG + "\n")
    c = h.cluster
    hosts = tuple(dataclasses.replace(x, password=Secret(file=str(wrong))) if x.name in names else x
                  for x in c.hosts)
    return dataclasses.replace(c, hosts=hosts)


def test_engine_shows_the_refused_login_on_the_host(sandbox, tmp_path):
    """The long-running engine: the topology monitor marks the host as
    "access denied" with the reason, the failover watch says so instead of
    judging the primary (never "no primary", never a failover)."""
    cluster = one_host_wrong(sandbox, tmp_path, ("node1",))
    mon = MonitorTask(cluster)
    try:
        topo = mon.refresh()
    finally:
        mon.cleanup()
    h1 = topo.host("node1")
    assert not h1.reachable and h1.access_denied and h1.down_word == "access denied"
    assert "access denied for user 'dbops'@" in h1.error and "check password / password_file" in h1.error
    assert any("access denied" in p and "node1" in p for p in topo.problems), topo.problems
    assert "1 refuse our login" in mon.summary()
    fo = FailoverTask(cluster, tmp_path / "state")
    v = fo.check_once()
    assert v.state == "unknown" and not v.dead, v
    assert "node1" in v.reason and "access denied for user 'dbops'@" in v.reason, v.reason
    assert "no primary" not in v.reason

    every = one_host_wrong(sandbox, tmp_path, ("node1", "node2", "node3"))
    v = FailoverTask(every, tmp_path / "state").check_once()
    assert v.state == "unknown" and "access denied for user" in v.reason, v
    assert "also refused by node2, node3" in v.reason and "no primary" not in v.reason


def test_engine_refuses_to_start_a_task_whose_login_is_refused(sandbox, tmp_path):
    """Engine.start (the console's start key): the failover watch and the
    backup refuse to start with the one line; the backup task run without
    the check (a password changed while it runs) fails instead of retrying."""
    cfg_path, made = wrong_config(sandbox, tmp_path)
    cfg = load_config(cfg_path)
    engine = Engine(cfg)
    try:
        for name in ("failover", "sandbox-backup"):
            task = engine.create_configured(name)
            with pytest.raises(UserError) as e:
                engine.start(name)
            assert "access denied for user 'dbops'@" in str(e.value)
            assert task.status().state == "failed" and task.status().last_error == str(e.value)
        assert not (made / "storage").exists()
        # run without the start check: the first refused login ends it (never retried)
        task = make_backup_task(engine, dataclasses.replace(cfg.task("sandbox-backup"),
                                                            name="bk-unchecked"))
        before = denied_count(sandbox)
        task.start()
        assert task.join(30), "the backup kept retrying a refused login"
        st = task.status()
        assert st.state == "failed" and "access denied for user" in st.last_error, st
        assert denied_count(sandbox) - before <= 2  # its first attempt (and the status poll's)
    finally:
        engine.shutdown()
