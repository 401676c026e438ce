"""The headless backup and restore commands against a real sandbox: JSON
output, snapshot, verify (exit 1 on a corrupt segment), restore, and one-line
errors with exit code 2 for bad input."""

import json

import pytest

from console.cli import main
from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.segments import data_key
from console.engine.backup.storage import LocalStorage
from console.engine.engine import Engine
from tests.support.backup_helpers import backup_config, wait_for
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_headless_backup_and_restore_commands(sandbox, tmp_path, capsys):
    storage = tmp_path / "store"
    cfg_path = backup_config(sandbox, tmp_path, storage, start_from="now")
    cfg = str(cfg_path)
    engine = Engine(load_config(cfg_path))
    task = engine.create_configured("sandbox-backup")
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS bk_cli",
                "CREATE TABLE IF NOT EXISTS bk_cli.t (id INT PRIMARY KEY, v VARCHAR(20))",
                # a row over mariadb-dump's default 16 MiB packet: the logical
                # snapshot and its load must still work
                "CREATE TABLE IF NOT EXISTS bk_cli.big (id INT PRIMARY KEY, b LONGBLOB)",
                "REPLACE INTO bk_cli.big VALUES (1, REPEAT('x', 17 * 1024 * 1024))")
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        sandbox.sql("node1", *[f"REPLACE INTO bk_cli.t VALUES ({i}, 'a{i}')" for i in range(30)])
        rc, out, err = run(capsys, "backup", "snapshot", "--config", cfg, "--task", "sandbox-backup",
                           "--method", "mariadb-dump", "--json")
        assert rc == 0, err
        snap = json.loads(out)
        assert snap["method"] == "mariadb-dump" and snap["gtid"]
        sandbox.sql("node1", *[f"UPDATE bk_cli.t SET v = 'b{i}' WHERE id = {i}" for i in range(10)])
        gtid = sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: task.status().detail.checkpoint_gtid == gtid, what="checkpoint")
    finally:
        engine.shutdown()

    rc, out, _ = run(capsys, "backup", "status", "--config", cfg, "--task", "sandbox-backup", "--json")
    st = json.loads(out)
    assert rc == 0 and st["checkpoint"]["gtid"] == gtid and st["caught_up"] is True
    assert st["segments"] >= 1 and len(st["snapshots"]) == 1
    rc, out, _ = run(capsys, "backup", "list", "--config", cfg, "--task", "sandbox-backup")
    assert rc == 0 and "mariadb-dump" in out and gtid in out
    rc, out, _ = run(capsys, "backup", "verify", "--config", cfg, "--task", "sandbox-backup", "--json")
    assert rc == 0 and json.loads(out)["ok"] is True

    rc, out, _ = run(capsys, "restore", "--config", cfg, "--task", "sandbox-backup", "--to-gtid",
                     gtid, "--target-dir", str(tmp_path / "dry"), "--dry-run", "--json")
    dry = json.loads(out)
    assert rc == 0 and dry["snapshot"] == snap["id"] and dry["target_gtid"] == gtid
    assert dry["segments"] and not (tmp_path / "dry").exists()

    target = tmp_path / "restored"
    rc, out, err = run(capsys, "restore", "--config", cfg, "--task", "sandbox-backup", "--to-gtid",
                       gtid, "--target-dir", str(target), "--port", str(free_port_block(1)), "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["restored_gtid"] == gtid and r["snapshot_method"] == "mariadb-dump"
    assert r["transactions"] == 10 and r["pid"] is None
    assert json.loads((target / "restore.json").read_text())["restored_gtid"] == gtid

    # bad input: one line, exit 2, nothing changed
    for argv, words in [
        (["restore", "--config", cfg, "--task", "sandbox-backup", "--to-time", "soon",
          "--target-dir", str(tmp_path / "x")], "YYYY-MM-DD"),
        (["restore", "--config", cfg, "--task", "sandbox-backup", "--to-gtid", gtid,
          "--target-dir", str(target)], "not empty"),
        (["backup", "status", "--config", cfg, "--task", "nope"], "no task named"),
        (["backup", "verify", "--config", cfg, "--task", "sandbox-relay"], "not a backup task"),
    ]:
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "x").exists()

    seg = Catalog(LocalStorage(storage)).segment_seqs()[-1]
    p = storage / data_key(seg)
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 0xFF
    p.write_bytes(bytes(raw))
    rc, out, _ = run(capsys, "backup", "verify", "--config", cfg, "--task", "sandbox-backup")
    assert rc == 1 and f"segment {seg}: sha256 mismatch" in out
