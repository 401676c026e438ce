"""An encrypted backup in a local directory named by a file:/// URL: every
data object on disk is ciphertext, verify passes, PITR from it is exact, and
verify names a truncated segment."""

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.crypto import MAGIC
from console.engine.backup.location import open_storage
from console.engine.backup.restore import restore
from console.engine.backup.segments import data_key
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from tests.support.backup_helpers import (
    backup_config,
    table_checksum,
    take_snapshot,
    wait_backed_up,
    wait_for,
)
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DB = "bk_enc"


def test_encrypted_file_url_backup_restores_exactly(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("DBOPS_TEST_BACKUP_KEY", "ab" * 32)
    store = tmp_path / "store"
    cfg = backup_config(sandbox, tmp_path, f"file://{store}", start_from="now",
                        encryption_key_env="DBOPS_TEST_BACKUP_KEY")
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}",
                f"CREATE TABLE IF NOT EXISTS {DB}.t (id INT PRIMARY KEY AUTO_INCREMENT, "
                f"k INT NOT NULL, v VARCHAR(64))")
    engine = Engine(load_config(cfg))
    task = engine.create_configured("sandbox-backup")
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        take_snapshot(engine, task, "mariadb-backup")
        for i in range(100):
            sandbox.sql("node1", f"INSERT INTO {DB}.t (k, v) VALUES ({i}, 'plain-text-{i}')")
        target = wait_backed_up(sandbox, task)
        c = sandbox.connect("node1")
        try:
            checksum = table_checksum(c, DB)
        finally:
            c.close()
        sandbox.sql("node1", f"DELETE FROM {DB}.t WHERE id % 2 = 0")
        wait_backed_up(sandbox, task)
    finally:
        engine.shutdown()
    opts = load_config(cfg).task("sandbox-backup").options
    cat = Catalog(open_storage(opts, create=False))
    assert verify(cat).ok, verify(cat).problems
    data = [p for p in store.rglob("*.zst")]
    assert data and all(p.read_bytes().startswith(MAGIC) for p in data)
    assert not any(b"plain-text-" in p.read_bytes() for p in data)
    r = restore(opts, tmp_path / "r", port=free_port_block(1), to_gtid=target, keep_running=True)
    try:
        c = r.server.connect()
        try:
            assert table_checksum(c, DB) == checksum
        finally:
            c.close()
    finally:
        r.stop()
    assert r.snapshot_method == "mariadb-backup" and r.restored_gtid == target
    seq = cat.segment_seqs()[-1]
    p = store / data_key(seq)
    p.write_bytes(p.read_bytes()[:-1])
    problems = verify(cat).problems
    assert any(f"segment {seq}" in x and data_key(seq) in x and "truncated" in x for x in problems), \
        problems
