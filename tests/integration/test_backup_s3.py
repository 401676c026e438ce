"""Backup to an S3-compatible server (moto's standalone server, a real HTTP
S3 endpoint started by the test), encrypted on the client: point-in-time
restore from it gives exactly the content at the target; the objects in the
bucket are ciphertext; a changed or truncated object makes verify fail
naming it; a restore without the key says so in one line; retention and the
single-writer lease work on the bucket as on a directory."""

import pytest

from console.config import load_config
from console.engine.backup.catalog import Catalog
from console.engine.backup.crypto import MAGIC
from console.engine.backup.location import open_storage
from console.engine.backup.restore import RestoreError, restore
from console.engine.backup.retention import apply_retention
from console.engine.backup.s3 import PART, S3Storage
from console.engine.backup.segments import data_key
from console.engine.backup.storage import StorageError
from console.engine.backup.verify import verify
from console.engine.engine import Engine
from console.errors import UserError
from console.kinds import storage_url
from tests.support import s3_server
from tests.support.backup_helpers import (
    backup_config,
    table_checksum,
    take_snapshot,
    wait_backed_up,
    wait_for,
)
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DB = "bk_s3"
BUCKET = "dbops-test"
URL = f"s3://{BUCKET}/clusters/main"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s3srv")
    with s3_server.s3_server(tmp) as endpoint:
        s3_server.client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint, s3_server.credentials_file(tmp)


@pytest.fixture(scope="module")
def backed_up(sandbox, s3, tmp_path_factory):
    """An encrypted backup in the bucket: a dump snapshot, rows before and
    after a target GTID (the content at the target noted)."""
    endpoint, creds = s3
    tmp = tmp_path_factory.mktemp("s3bk")
    key = tmp / "backup.key"
    key.write_text("7f" * 32 + "\n")
    opts = dict(start_from="now", s3_endpoint=endpoint, credentials_file=str(creds),
                encryption_key_file=str(key))
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}",
                f"CREATE TABLE IF NOT EXISTS {DB}.t (id INT PRIMARY KEY AUTO_INCREMENT, "
                f"k INT NOT NULL, v VARCHAR(64))")
    cfg = backup_config(sandbox, tmp, URL, **opts)
    engine = Engine(load_config(cfg))
    task = engine.create_configured("sandbox-backup")
    try:
        task.start()
        wait_for(lambda: task.status().phase == "streaming", what="streaming")
        assert task.status().detail.storage.startswith(URL)
        take_snapshot(engine, task, "mariadb-dump")
        for i in range(200):
            sandbox.sql("node1", f"INSERT INTO {DB}.t (k, v) VALUES ({i}, 'secret-row-{i}')")
        target = wait_backed_up(sandbox, task)
        c = sandbox.connect("node1")
        try:
            checksum = table_checksum(c, DB)
        finally:
            c.close()
        sandbox.sql("node1", f"UPDATE {DB}.t SET v = 'later' WHERE id % 3 = 0",
                    f"DELETE FROM {DB}.t WHERE id % 7 = 0")
        wait_backed_up(sandbox, task)
        take_snapshot(engine, task, "mariadb-dump")
        sandbox.sql("node1", f"INSERT INTO {DB}.t (k, v) VALUES (-1, 'after the second')")
        wait_backed_up(sandbox, task)
        # one writer per storage: a second task on the bucket is refused by the lease
        other = Engine(load_config(cfg)).create_configured("sandbox-backup")
        with pytest.raises(UserError, match="backup sandbox-backup is already running"):
            other.claim()
    finally:
        engine.shutdown()
    return load_config(cfg).task("sandbox-backup").options, target, checksum, tmp, cfg


def test_pitr_from_s3_is_exact_and_objects_are_encrypted(backed_up, s3):
    opts, target, checksum, tmp, _ = backed_up
    store = open_storage(opts, create=False)
    report = verify(Catalog(store))
    assert report.ok, report.problems
    cat = Catalog(store)
    assert cat.snapshots()[0].key_id == store.key_id != ""
    assert all(m.key_id == store.key_id for m in cat.manifests())
    raw = s3_server.client(s3[0]).get_object(Bucket=BUCKET,
                                             Key=f"clusters/main/{data_key(cat.segment_seqs()[-1])}")
    body = raw["Body"].read()
    assert body.startswith(MAGIC) and b"secret-row" not in body
    r = restore(opts, tmp / "restored", port=free_port_block(1), to_gtid=target, keep_running=True)
    try:
        c = r.server.connect()
        try:
            assert table_checksum(c, DB) == checksum
        finally:
            c.close()
    finally:
        r.stop()
    assert r.restored_gtid == target and r.transactions >= 200


def test_restore_without_the_key_says_so_and_creates_nothing(backed_up):
    from dataclasses import replace

    opts, target, _, tmp, _ = backed_up
    no_key = replace(opts, encryption_key_file=None)
    with pytest.raises(RestoreError, match="encrypted .*no encryption key is configured"):
        restore(no_key, tmp / "nokey", port=free_port_block(1), to_gtid=target)
    assert not (tmp / "nokey").exists()
    other = tmp / "other.key"
    other.write_text("11" * 32)
    with pytest.raises(RestoreError, match="configured key is"):
        restore(replace(opts, encryption_key_file=other), tmp / "wrongkey",
                port=free_port_block(1), to_gtid=target)
    assert not (tmp / "wrongkey").exists()


def _cli(*args):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)


def test_cli_on_the_bucket_shows_no_secret(backed_up, s3):
    cfg = str(backed_up[4])
    for action in ("list", "status", "verify"):
        r = _cli("backup", action, "--config", cfg, "--task", "sandbox-backup", "--json")
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        assert s3_server.SECRET not in out and "7f7f7f7f" not in out and s3_server.ACCESS not in out
    r = _cli("restore", "--config", cfg, "--task", "sandbox-backup", "--to-gtid", backed_up[1],
             "--target-dir", str(backed_up[3] / "dry"), "--dry-run")
    assert r.returncode == 0 and "nothing was changed" in r.stdout, r.stderr


def test_a_killed_writer_s_lease_is_taken_over(backed_up, sandbox):
    import json
    import signal

    from tests.support.backup_helpers import start_cli_backup

    cfg = backed_up[4]
    opts = backed_up[0]
    proc = start_cli_backup(cfg)
    try:
        store = open_storage(opts, create=False).inner
        def held():
            try:
                raw = store.s3.get_object(Bucket=BUCKET, Key="clusters/main/.lock")["Body"].read()
            except Exception:  # noqa: BLE001 - not yet
                return False
            return json.loads(raw).get("pid") == proc.pid
        wait_for(held, 60, what="the CLI backup's lease")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    task = Engine(load_config(cfg)).create_configured("sandbox-backup")
    task.claim()              # the holder is a dead process of this host: taken over at once
    task.release()
    with pytest.raises(Exception, match="404|Not Found"):      # released: the lease is gone
        store.s3.head_object(Bucket=BUCKET, Key="clusters/main/.lock")


def test_verify_names_a_changed_or_truncated_object(backed_up, s3):
    opts = backed_up[0]
    cli = s3_server.client(s3[0])
    cat = Catalog(open_storage(opts, create=False))
    seq = cat.segment_seqs()[1]
    seg = f"clusters/main/{data_key(seq)}"
    snap = cat.snapshots()[0]
    snap_key = f"clusters/main/{snap.key}"
    seg_body = cli.get_object(Bucket=BUCKET, Key=seg)["Body"].read()
    snap_body = cli.get_object(Bucket=BUCKET, Key=snap_key)["Body"].read()
    try:
        changed = bytearray(seg_body)
        changed[len(changed) // 2] ^= 0x01
        cli.put_object(Bucket=BUCKET, Key=seg, Body=bytes(changed))
        cli.put_object(Bucket=BUCKET, Key=snap_key, Body=snap_body[:-100])
        r = verify(cat)
        assert not r.ok
        text = "\n".join(r.problems)
        assert f"segment {seq}" in text and data_key(seq) in text and "changed or truncated" in text
        assert f"snapshot {snap.id}" in text and snap.key in text
    finally:
        cli.put_object(Bucket=BUCKET, Key=seg, Body=seg_body)
        cli.put_object(Bucket=BUCKET, Key=snap_key, Body=snap_body)
    assert verify(cat).ok


def test_multipart_writer_streaming_reader_and_retention_on_s3(s3):
    endpoint, creds = s3
    st = S3Storage(storage_url.parse(f"s3://{BUCKET}/mp"), endpoint=endpoint,
                   credentials_file=str(creds))
    data = bytes(range(256)) * ((5 * PART + 12345) // 256)   # 6 parts, 4 in flight
    with st.writer("snapshots/x/backup.xb.zst") as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
    assert st.size("snapshots/x/backup.xb.zst") == len(data)
    with st.reader("snapshots/x/backup.xb.zst") as f:
        got = b"".join(iter(lambda: f.read(1 << 20), b""))
    assert got == data
    with pytest.raises(RuntimeError), st.writer("snapshots/y/backup.xb.zst") as f:
        f.write(data)
        raise RuntimeError("tool failed")
    assert not st.exists("snapshots/y/backup.xb.zst")   # the upload was aborted
    assert st.list("snapshots") == ["snapshots/x/backup.xb.zst"]
    assert s3_server.client(endpoint).list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    with pytest.raises(StorageError, match="no such object"):
        st.get("log/0000000001.json")
    # the lease: a second writer is refused, released on close
    lease = st.lock("backup task a")
    with pytest.raises(StorageError, match="in use by backup task a"):
        st.lock("backup task b")
    st.put("log/0000000009.json", b"{}")
    held_until, st._lease_until = st._lease_until, 1.0   # as if renewals failed for too long
    with pytest.raises(StorageError, match="could not be renewed"):
        st.put("log/0000000009.json", b"{}")
    st._lease_until = held_until
    lease.close()
    st.put("log/0000000009.json", b"{}")                   # no lease held: not fenced
    st.delete("log/0000000009.json")
    st.lock("backup task b").close()


def test_missing_bucket_is_one_line(s3, tmp_path):
    endpoint, creds = s3
    with pytest.raises(StorageError, match="bucket nosuchbucket does not exist"):
        S3Storage(storage_url.parse("s3://nosuchbucket/x"), endpoint=endpoint,
                  credentials_file=str(creds), create=False)


def test_retention_on_s3_keeps_what_the_newest_snapshot_needs(backed_up):
    """Last in this module: it removes the first snapshot."""
    opts = backed_up[0]
    cat = Catalog(open_storage(opts, create=False))
    first, second = cat.snapshots()
    before = cat.segment_seqs()
    removed = apply_retention(cat, keep_n=1, keep_days=0)
    assert removed.snapshots == (first.id,) and removed.segments
    assert [s.id for s in cat.snapshots()] == [second.id]
    assert cat.segment_seqs() == [s for s in before if s not in removed.segments]
    assert not any(k.startswith(f"snapshots/{first.id}/") for k in cat.storage.list("snapshots"))
    r = verify(cat)
    assert r.ok, r.problems
