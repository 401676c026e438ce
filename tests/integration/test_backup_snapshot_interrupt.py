"""`backup snapshot` interrupted while mariadb-backup runs (kill -9, SIGTERM,
SIGHUP of the dbops-console process): no file anywhere under TMPDIR, the
state directory or the storage holds the password, and the next snapshot
sweeps what the interrupted one left and succeeds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from console.engine.backup import zstd
from tests.support.backup_helpers import backup_config, wait_for
from tests.support.procs import alive, children_of

pytestmark = pytest.mark.integration


def files_holding(secret: str, *roots: Path) -> list[str]:
    needle = secret.encode()
    hits = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                try:
                    with open(p, "rb") as f:
                        if needle in f.read():
                            hits.append(p)
                except OSError:
                    continue
    return hits


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP],
                         ids=["kill9", "sigterm", "sighup"])
def test_interrupted_snapshot_leaves_no_password_and_is_swept(sandbox, tmp_path, sig):
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS snap_int",  # a GTID to be consistent at
                "CREATE TABLE IF NOT EXISTS snap_int.t (id INT PRIMARY KEY)",
                "REPLACE INTO snap_int.t VALUES (1)")
    storage, tmp, state = tmp_path / "store", tmp_path / "tmp", tmp_path / "state"
    tmp.mkdir()
    cfg = backup_config(sandbox, tmp_path, storage)
    cfg.write_text(re.sub(r'(?m)^state_dir = .*$', f'state_dir = "{state}"', cfg.read_text()))
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "console", "backup", "snapshot", "--config", str(cfg),
           "--task", "sandbox-backup", "--method", "mariadb-backup", "--json"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        xb = wait_for(lambda: children_of(p.pid, "mariadb-backup") or p.poll() is not None,
                      timeout=120, what="mariadb-backup to start")
        assert p.poll() is None, p.communicate()
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0
    # the orphaned mariadb-backup ends too (its output pipe is gone)
    for pid in xb:
        wait_for(lambda pid=pid: not alive(pid), timeout=120, what=f"mariadb-backup {pid} to end")
    secrets = {sandbox.ops_password, sandbox.repl_password}
    for s in secrets:
        assert files_holding(s, tmp, state, storage) == []
    if sig == signal.SIGKILL:  # it left its work directory and unfinished snapshot (swept below)
        assert [x for x in tmp.iterdir() if x.name.startswith("dbops-xb-")]
        assert list((storage / "snapshots").iterdir())
    else:
        # a requested stop cleans up on the way out: one line, nothing left
        assert len(err.decode().strip().splitlines()) == 1, err
        assert list(tmp.iterdir()) == [] and list((storage / "snapshots").iterdir()) == []

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    snap = json.loads(r.stdout)
    assert [d.name for d in (storage / "snapshots").iterdir()] == [snap["id"]]
    assert sorted(f.name for f in (storage / "snapshots" / snap["id"]).iterdir()) == \
        ["backup.xb.zst", "manifest.json"]
    assert [x.name for x in tmp.iterdir() if x.name.startswith("dbops-")] == []
    for s in secrets:
        assert files_holding(s, tmp, state, storage) == []
    assert all(s not in r.stdout + r.stderr for s in secrets)
    stream = zstd.decompress((storage / "snapshots" / snap["id"] / "backup.xb.zst").read_bytes())
    assert b"xtrabackup_info" in stream and all(s.encode() not in stream for s in secrets)
