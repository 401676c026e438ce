"""``start_from = "now"``: the first run records where it starts before it
streams, so a restart after a first run that stored nothing (here: killed
with -9 right after it opened the dump) continues from there instead of
taking "now" again and skipping what was committed in between."""

import signal

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.mysql.gtid import position
from tests.support.backup_helpers import (
    backup_config,
    running_backup,
    start_cli_backup,
    stored_gtids,
    wait_backed_up,
    wait_for,
)

pytestmark = pytest.mark.integration
SERVER_ID = 4291


def _dumping(sandbox) -> bool:
    return any(int(r[0]) == SERVER_ID for r in sandbox.sql("node1", "SHOW SLAVE HOSTS"))


def test_now_is_recorded_by_the_first_run(sandbox, tmp_path):
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS bk_now",
                "CREATE TABLE IF NOT EXISTS bk_now.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    opts = {"start_from": "now", "server_id": SERVER_ID}
    cfg = backup_config(sandbox, tmp_path, tmp_path / "store", **opts)
    start = position(sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]).seq(0)
    p = start_cli_backup(cfg)
    try:
        wait_for(lambda: _dumping(sandbox), what="the first run's dump")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not Catalog(LocalStorage(tmp_path / "store")).segment_seqs()    # it stored nothing
    sandbox.sql("node1", *[f"INSERT INTO bk_now.t (v) VALUES ({i})" for i in range(5)])
    with running_backup(sandbox, tmp_path, **opts) as (_engine, task):
        sandbox.sql("node1", "INSERT INTO bk_now.t (v) VALUES (99)")
        end = position(wait_backed_up(sandbox, task)).seq(0)
    seqs = [s for d, _, s in stored_gtids(tmp_path / "store") if d == 0]
    assert seqs == list(range(start + 1, end + 1)), "transactions between the runs were skipped"
    assert end - start == 6
