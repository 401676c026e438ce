"""A source switching binlog_checksum to NONE and back mid-backup: segments
stay readable, verify passes, and a restore replays both kinds exactly."""

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.restore import restore
from console.engine.backup.snapshot import take_snapshot
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from console.mysql.connection import Endpoint
from tests.support.backup_helpers import backup_config, table_checksum, wait_for
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration


def test_checksum_none_and_back(make_sandbox, tmp_path):
    sb = make_sandbox(replicas=0)
    storage = tmp_path / "store"
    cfg = load_config(backup_config(sb, tmp_path, storage, start_from="now"))
    engine = Engine(cfg)
    task = engine.create_configured("sandbox-backup")
    sb.sql("node1", "CREATE DATABASE bk_crc",
           "CREATE TABLE bk_crc.t (id INT PRIMARY KEY AUTO_INCREMENT, k INT, v VARCHAR(64))")
    take_snapshot(task.storage, Endpoint.from_host(sb.cluster.hosts[0]), "mariadb-dump")
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        sb.sql("node1", *[f"INSERT INTO bk_crc.t (k, v) VALUES ({i}, 'crc-{i}')" for i in range(20)])
        sb.sql("node1", "SET GLOBAL binlog_checksum = NONE")
        sb.sql("node1", *[f"INSERT INTO bk_crc.t (k, v) VALUES ({i}, 'none-{i}')" for i in range(20)],
               "UPDATE bk_crc.t SET v = CONCAT(v, '!') WHERE k < 5")
        sb.sql("node1", "SET GLOBAL binlog_checksum = CRC32")
        sb.sql("node1", *[f"DELETE FROM bk_crc.t WHERE k = {i}" for i in range(3)])
        final = sb.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: task.status().detail.checkpoint_gtid == final, 30, what="catch-up")
    finally:
        engine.shutdown()
    cat = Catalog(LocalStorage(storage))
    assert len({m.binlog_file for m in cat.manifests()}) >= 2      # the checksum change rotated
    r = verify(cat)
    assert r.ok and r.transactions == 20 + 21 + 3, r.problems
    c = sb.connect("node1")
    try:
        want = table_checksum(c, "bk_crc")
    finally:
        c.close()
    res = restore(storage, tmp_path / "restored", port=free_port_block(1), to_gtid=final,
                  keep_running=True)
    try:
        rc = res.server.connect()
        assert table_checksum(rc, "bk_crc") == want
        rc.close()
    finally:
        res.stop()
