"""Point-in-time restore under a write load: restoring to a random moment T
gives exactly the content the primary had at T (checksums taken at T), from
a mariadb-backup snapshot and from a mariadb-dump snapshot, by time and by
GTID; verify reports a corrupted segment and a GTID gap; retention keeps
what the oldest kept snapshot needs."""

import random
import time

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.restore import RestoreError, restore
from console.engine.backup.retention import apply_retention
from console.engine.backup.segments import data_key, manifest_key
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from tests.support.backup_helpers import (
    Writer,
    backup_config,
    table_checksum,
    take_snapshot,
    wait_for,
)
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DB = "bk_pitr"


@pytest.fixture(scope="module")
def backed_up(sandbox, tmp_path_factory):
    """A backup taken under load, with points T (time, GTID, checksum) noted."""
    tmp = tmp_path_factory.mktemp("pitr")
    storage = tmp / "store"
    cfg = load_config(backup_config(sandbox, tmp, storage, start_from="now"))
    engine = Engine(cfg)
    task = engine.create_configured("sandbox-backup")
    w = Writer(sandbox, DB).setup()
    rng = random.Random()
    points = []
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        w.start()
        time.sleep(0.5)
        take_snapshot(engine, task, "mariadb-backup")
        for i in range(3):
            time.sleep(rng.uniform(0.5, 2.0))
            w.hold()
            c = sandbox.connect("node1")
            try:
                checksum = table_checksum(c, DB)
                with c.cursor() as cur:
                    cur.execute("SELECT @@gtid_binlog_pos")
                    gtid = cur.fetchone()[0]
            finally:
                c.close()
            t = int(time.time())
            points.append((t, gtid, checksum))
            while time.time() < t + 1.05:      # later commits carry a later second
                time.sleep(0.05)
            w.release()
            if i == 0:
                take_snapshot(engine, task, "mariadb-dump")
        time.sleep(0.5)
        w.stop()
        final = sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: task.status().detail.checkpoint_gtid == final, what="final checkpoint")
    finally:
        w.stop()
        engine.shutdown()
    assert not w.errors and w.count > 100
    return storage, points, tmp


def _restore_and_checksum(storage, tmp, name, **target):
    port = free_port_block(1)
    r = restore(storage, tmp / name, port=port, keep_running=True, **target)
    try:
        c = r.server.connect()
        try:
            return r, table_checksum(c, DB)
        finally:
            c.close()
    finally:
        r.stop()


def test_restore_to_random_times_gives_the_content_at_t(backed_up):
    storage, points, tmp = backed_up
    methods = []
    for i, (t, gtid, checksum) in enumerate(points):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
        from console.engine.backup.restore import parse_time

        r, got = _restore_and_checksum(storage, tmp, f"t{i}", to_time=parse_time(when))
        assert got == checksum, f"restore to {when} differs from the primary at that time"
        assert r.restored_gtid == gtid
        methods.append(r.snapshot_method)
    assert methods[0] == "mariadb-backup"        # the dump was taken after T1
    assert "mariadb-dump" in methods[1:]         # later points use the newer dump


def test_restore_to_gtid_is_exact(backed_up):
    storage, points, tmp = backed_up
    t, gtid, checksum = points[1]
    r, got = _restore_and_checksum(storage, tmp, "g1", to_gtid=gtid)
    assert got == checksum and r.restored_gtid == gtid and r.transactions > 0


def test_restore_refuses_bad_targets(backed_up):
    storage, points, tmp = backed_up
    with pytest.raises(RestoreError, match="not empty"):
        (tmp / "full").mkdir()
        (tmp / "full" / "x").write_text("keep me")
        restore(storage, tmp / "full", port=free_port_block(1), to_gtid=points[0][1])
    with pytest.raises(RestoreError, match="not backed up"):
        restore(storage, tmp / "future", port=free_port_block(1), to_gtid="0-1-999999999")
    with pytest.raises(RestoreError, match="no snapshot"):
        restore(storage, tmp / "past", port=free_port_block(1), to_time=time.time() - 86400 * 365)
    assert not (tmp / "future").exists() and not (tmp / "past").exists()


def test_verify_detects_corruption_and_gaps(backed_up, tmp_path):
    storage, _, _ = backed_up
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(storage, copy)
    cat = Catalog(LocalStorage(copy))
    assert verify(cat).ok, verify(cat).problems
    seqs = cat.segment_seqs()
    assert len(seqs) >= 3
    p = copy / data_key(seqs[1])
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0x5A
    p.write_bytes(bytes(raw))
    r = verify(cat)
    assert any(f"segment {seqs[1]}: sha256 mismatch" in x for x in r.problems)
    (copy / data_key(seqs[2])).unlink()
    (copy / manifest_key(seqs[2])).unlink()
    r = verify(cat)
    assert any("GTID gap" in x for x in r.problems)


def test_retention_keeps_what_the_oldest_kept_snapshot_needs(backed_up, tmp_path):
    storage, points, tmp = backed_up
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(storage, copy)
    cat = Catalog(LocalStorage(copy))
    snaps = cat.snapshots()
    removed = apply_retention(cat, keep_n=1, keep_days=0)
    assert removed.snapshots == (snaps[0].id,)
    assert [s.id for s in cat.snapshots()] == [snaps[-1].id]
    assert verify(cat).ok
    # the newest snapshot can still be rolled forward to the last point
    t, gtid, checksum = points[-1]
    r = restore(copy, tmp / "after-retention", port=free_port_block(1), to_gtid=gtid,
                keep_running=True)
    try:
        c = r.server.connect()
        assert table_checksum(c, DB) == checksum
        c.close()
    finally:
        r.stop()
