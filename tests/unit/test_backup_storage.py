"""Backup storage, segments, manifests and the checkpoint (no server)."""

import os

import pytest

from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, Checkpoint, CheckpointRegression
from console.engine.backup.segments import (
    SegmentManifest,
    build_segment,
    clean_fde,
    data_key,
    domains_of,
    manifest_key,
    split_transactions,
)
from console.engine.backup.storage import LocalStorage, StorageError
from console.engine.replay.txn import Txn
from console.mysql.binlog import events as E
from tests.support import binlog_events as B


def test_local_storage_put_get_list_delete(tmp_path):
    s = LocalStorage(tmp_path / "b")
    s.put("log/1.json", b"one")
    s.put("log/2.json", b"two")
    s.put("snapshots/x/manifest.json", b"{}")
    assert s.get("log/1.json") == b"one"
    assert s.list("log") == ["log/1.json", "log/2.json"]
    assert s.size("log/2.json") == 3
    s.put("log/1.json", b"uno")          # replace is atomic too
    assert s.get("log/1.json") == b"uno"
    s.delete("log/1.json")
    s.delete("log/1.json")                # deleting twice is fine
    assert s.list("log") == ["log/2.json"]
    assert not s.exists("log/1.json")
    with pytest.raises(StorageError):
        s.get("log/1.json")
    with pytest.raises(StorageError):
        s.put("../escape", b"x")


def test_writer_publishes_only_on_success(tmp_path):
    s = LocalStorage(tmp_path)
    with pytest.raises(RuntimeError):
        with s.writer("snap/data") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert not s.exists("snap/data")
    assert s.list() == []                  # no temp file left either
    with s.writer("snap/data") as f:
        f.write(b"whole")
    assert s.get("snap/data") == b"whole"


def test_temp_files_of_a_crash_are_invisible_and_cleaned(tmp_path):
    s = LocalStorage(tmp_path)
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / ".0000000001.json.tmp123").write_bytes(b"torn")
    assert s.list() == []
    assert s.clean_temp() == 1


def test_zstd_round_trip():
    data = os.urandom(1000) + b"a" * 100000
    c = zstd.compress(data)
    assert len(c) < len(data)
    assert zstd.decompress(c) == data
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(b"not zstd at all")


def test_zstd_objects_read_by_the_tool_and_the_tool_s_read_here():
    """Segments written by the zstd tool (before the library) still restore,
    the tool reads what the library writes, and a truncated or changed
    object is an error, never a short result."""
    import shutil
    import subprocess

    data = os.urandom(5000) * 3 + b"binlog" * 20000
    tool = shutil.which("zstd")
    assert tool, "zstd is installed by scripts/bootstrap.sh"
    by_tool = subprocess.run([tool, "-q", "-3", "-c"], input=data, capture_output=True, check=True).stdout
    assert zstd.decompress(by_tool) == data
    assert zstd.decompress(by_tool + by_tool) == data + data
    ours = zstd.compress(data)
    assert subprocess.run([tool, "-q", "-d", "-c"], input=ours, capture_output=True, check=True).stdout == data
    for bad in (ours[:-4], ours[: len(ours) // 2], ours[:-1] + bytes([ours[-1] ^ 1]), b""):
        with pytest.raises(zstd.ZstdError):
            zstd.decompress(bad)


def test_segment_is_a_binlog_with_clean_fde_and_whole_transactions():
    fde = B.fde(in_use=True)
    txns = [Txn(0, 1, n, 1_700_000_000 + n, B.txn(0, 1, n, 1_700_000_000 + n)) for n in (5, 6, 7)]
    raw = build_segment(fde, txns)
    assert raw.startswith(E.MAGIC)
    got_fde, got = split_transactions(raw)
    assert not E.parse_header(got_fde).flags & E.LOG_EVENT_BINLOG_IN_USE_F
    assert E.crc_ok(clean_fde(fde))
    assert [(t.gtid, t.commit_ts) for t in got] == [("0-1-5", 1_700_000_005),
                                                    ("0-1-6", 1_700_000_006),
                                                    ("0-1-7", 1_700_000_007)]
    assert domains_of(got) == {"0": [5, 7, 3]}


def test_corrupt_segment_is_detected():
    raw = bytearray(build_segment(B.fde(), [Txn(0, 1, 1, 0, B.txn(0, 1, 1))]))
    raw[-10] ^= 0xFF
    with pytest.raises(E.BinlogFormatError):
        split_transactions(bytes(raw))
    torn = build_segment(B.fde(), [Txn(0, 1, 1, 0, B.txn(0, 1, 1)[:-5])])
    with pytest.raises(E.BinlogFormatError):
        split_transactions(torn)


def _manifest(seq, start, end):
    return SegmentManifest(seq=seq, source="h:1", source_id="x", binlog_file="mysql-bin.000001",
                           start_pos=4, end_pos=100, gtid_start=start, gtid_end=end)


def test_recover_removes_orphans_and_rebuilds_checkpoint(tmp_path):
    s = LocalStorage(tmp_path)
    cat = Catalog(s)
    cat.publish_segment(b"seg1", _manifest(1, "", "0-1-5"))
    cat.publish_segment(b"seg2", _manifest(2, "0-1-5", "0-1-9"))
    s.put(data_key(3), b"orphan: crashed before its manifest")
    cp = cat.recover()
    assert (cp.seq, cp.gtid) == (2, "0-1-9")
    assert not s.exists(data_key(3))
    assert s.exists(manifest_key(2))
    assert cat.load_checkpoint().gtid == "0-1-9"


def test_checkpoint_never_moves_backwards(tmp_path):
    cat = Catalog(LocalStorage(tmp_path))
    cat.save_checkpoint(Checkpoint(seq=3, gtid="0-1-10,1-2-4", last_event_ts=100))
    with pytest.raises(CheckpointRegression):
        cat.save_checkpoint(Checkpoint(seq=2, gtid="0-1-10,1-2-4"))
    with pytest.raises(CheckpointRegression):
        cat.save_checkpoint(Checkpoint(seq=4, gtid="0-1-9,1-2-4"))
    with pytest.raises(CheckpointRegression):       # a domain may not disappear
        cat.save_checkpoint(Checkpoint(seq=4, gtid="0-1-11"))
    cp = cat.save_checkpoint(Checkpoint(seq=4, gtid="0-2-11,1-2-4", last_event_ts=50))
    assert cp.last_event_ts == 100                   # times do not go back either
    assert cat.load_checkpoint().gtid == "0-2-11,1-2-4"


def test_one_backup_task_per_storage(tmp_path):
    s = LocalStorage(tmp_path)
    held = s.lock("backup task a")
    with pytest.raises(StorageError, match="in use by backup task a"):
        LocalStorage(tmp_path).lock("backup task b")
    held.close()
    LocalStorage(tmp_path).lock("backup task b").close()
    assert s.list() == []                 # the lock file is not an object


def test_sweep_spares_a_live_writer_and_removes_empty_dirs(tmp_path):
    s = LocalStorage(tmp_path)
    (tmp_path / "snapshots" / "dead").mkdir(parents=True)
    (tmp_path / "snapshots" / "dead" / ".backup.xb.zst.tmp999").write_bytes(b"torn")
    with s.writer("snapshots/live/backup.xb.zst") as f:
        f.write(b"half")
        assert s.clean_temp("snapshots") == 1          # the dead writer's, not the live one's
        assert s.remove_empty_dirs("snapshots") == 1
        assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["live"]
    assert s.get("snapshots/live/backup.xb.zst") == b"half"


def test_recover_sweeps_interrupted_snapshots(tmp_path):
    from console.engine.backup.catalog import Catalog

    (tmp_path / "snapshots" / "20260101T000000-000").mkdir(parents=True)
    (tmp_path / "snapshots" / "20260101T000000-000" / ".dump.sql.zst.tmp4242").write_bytes(b"torn")
    (tmp_path / "snapshots" / "20260101T000001-000").mkdir()
    Catalog(LocalStorage(tmp_path)).recover()
    assert list((tmp_path / "snapshots").iterdir()) == []
