"""Log backup against a real sandbox under a write load: kill -9 and restart
leave no gap and no duplicate; pause/resume; the checkpoint never moves back."""

import signal
import time

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from console.mysql.gtid import position
from tests.support.backup_helpers import (
    Writer,
    backup_config,
    start_cli_backup,
    stored_gtids,
    wait_for,
)

pytestmark = pytest.mark.integration


def _primary_gtid(sandbox) -> str:
    return sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]


def _checkpoint(storage):
    return Catalog(LocalStorage(storage)).load_checkpoint()


def test_kill9_and_restart_leaves_no_gap_and_no_duplicate(sandbox, tmp_path):
    storage = tmp_path / "store"
    cfg = backup_config(sandbox, tmp_path, storage, start_from="now")
    w = Writer(sandbox, "bk_kill").setup()
    w.start()
    procs = []
    try:
        seen = []
        for _round in range(3):
            p = start_cli_backup(cfg)
            procs.append(p)
            base = _checkpoint(storage).seq if _checkpoint(storage) else 0
            wait_for(lambda b=base: (cp := _checkpoint(storage)) and cp.seq >= b + 3,
                     what="three new segments")
            seen.append(_checkpoint(storage).seq)
            p.send_signal(signal.SIGKILL)
            p.wait()
        p = start_cli_backup(cfg)
        procs.append(p)
        time.sleep(1.0)
        w.stop()
        target = _primary_gtid(sandbox)
        wait_for(lambda: (cp := _checkpoint(storage)) and cp.gtid == target, 30,
                 what=f"checkpoint to reach {target}")
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 128 + signal.SIGTERM, p.stderr.read().decode()
    finally:
        w.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert w.count > 100 and not w.errors
    assert seen == sorted(seen)
    gtids = stored_gtids(storage)
    seqs = [s for d, _, s in gtids if d == 0]
    assert len(seqs) == len(set(seqs)), "a transaction was stored twice"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a transaction is missing"
    assert seqs[-1] == position(target).seq(0)
    report = verify(Catalog(LocalStorage(storage)))
    assert report.ok, report.problems
    assert report.transactions == len(seqs)


def test_pause_holds_the_checkpoint_and_resume_catches_up(sandbox, tmp_path):
    storage = tmp_path / "store"
    cfg = load_config(backup_config(sandbox, tmp_path, storage, start_from="now"))
    engine = Engine(cfg)
    task = engine.create_configured("sandbox-backup")
    w = Writer(sandbox, "bk_pause").setup()
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        sandbox.sql("node1", "INSERT INTO bk_pause.t (k, v) VALUES (1, 'before pause')")
        wait_for(lambda: task.status().detail.checkpoint_gtid == _primary_gtid(sandbox),
                 what="first checkpoint")
        engine.command("sandbox-backup", "pause")
        held = task.status().detail.checkpoint_gtid
        for i in range(20):
            sandbox.sql("node1", f"INSERT INTO bk_pause.t (k, v) VALUES ({i}, 'paused')")
        time.sleep(1.5)
        assert task.status().state == "paused"
        assert task.status().detail.checkpoint_gtid == held
        engine.command("sandbox-backup", "resume")
        target = _primary_gtid(sandbox)
        wait_for(lambda: task.status().detail.checkpoint_gtid == target, what="catch-up")
        wait_for(lambda: task.status().detail.lag_seconds == 0.0, what="lag 0")
    finally:
        w.stop()
        engine.shutdown()
    assert verify(Catalog(LocalStorage(storage))).ok


def test_periodic_snapshots_and_retention_in_the_task(sandbox, tmp_path):
    storage = tmp_path / "store"
    cfg = load_config(backup_config(sandbox, tmp_path, storage, start_from="now",
                                    snapshot_method="mariadb-dump",
                                    snapshot_interval_hours=0.0005, keep_snapshots=2))
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS bk_periodic",
                "CREATE TABLE IF NOT EXISTS bk_periodic.t (id INT PRIMARY KEY)")
    engine = Engine(cfg)
    task = engine.create_configured("sandbox-backup")

    def snapshots_taken():
        return [e for _, e in engine.events_since(0) if e.action == "snapshot" and e.outcome == "ok"]

    try:
        task.start()
        for i in range(40):
            sandbox.sql("node1", f"REPLACE INTO bk_periodic.t VALUES ({i})")
            if len(snapshots_taken()) >= 3:
                break
            time.sleep(0.3)
        wait_for(lambda: len(snapshots_taken()) >= 3, 30, what="three periodic snapshots")
        wait_for(lambda: not task.status().detail.snapshot_running, 30, what="last snapshot")
    finally:
        engine.shutdown()
    cat = Catalog(LocalStorage(storage))
    snaps = cat.snapshots()
    assert len(snaps) == 2                               # keep_snapshots = 2
    assert all(s.method == "mariadb-dump" for s in snaps)
    r = verify(cat)
    assert r.ok, r.problems
    assert all(position(r.first_gtid).seq(0) <= position(s.gtid).seq(0) for s in snaps)
