"""Pure logic of the backup: options, retention plan, restore planning by
time and GTID, verify on hand-built segments, replay statement building,
the restore dialog's input check and the screen's timeline."""

import time
from dataclasses import replace

import pytest

from console.config import ConfigError, parse_config
from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, Checkpoint, SnapshotManifest
from console.engine.backup.restore import RestoreError, plan, state_at_time
from console.engine.backup.retention import apply_retention
from console.engine.backup.retention import plan as retention_plan
from console.engine.backup.segments import (
    SegmentManifest,
    advance,
    build_segment,
    domains_of,
    sha256,
)
from console.engine.backup.storage import LocalStorage
from console.engine.backup.verify import verify
from console.engine.replay.replayer import Replayer, query_parts
from console.engine.replay.txn import Txn
from console.mysql.binlog import events as E
from console.mysql.gtid import GtidPosition, position
from console.tui.widgets.restore_dialog import check
from tests.support import binlog_events as B

T0 = 1_700_000_000


def _cfg(**task):
    data = {"clusters": {"c": {"hosts": {"db1": {"user": "u", "password": "p"}}}},
            "tasks": {"b": {"kind": "backup", "cluster": "c", "storage": "/tmp/x", **task}}}
    return parse_config(data)


def test_backup_options_parse_and_reject_bad_values():
    o = _cfg(keep_snapshots=3, snapshot_method="mariadb-dump").task("b").options
    assert o.keep_snapshots == 3 and o.snapshot_method == "mariadb-dump" and o.flush_interval == 0.5
    with pytest.raises(ConfigError, match="start_from"):
        _cfg(start_from="yesterday")
    with pytest.raises(ConfigError, match="snapshot_method"):
        _cfg(snapshot_method="tar")
    with pytest.raises(ConfigError, match="did you mean 'keep_days'"):
        _cfg(keep_dayz=3)
    with pytest.raises(ConfigError, match="storage: missing"):
        parse_config({"tasks": {"b": {"kind": "backup"}}})


def _store(tmp_path, seqs_per_segment, ts_step=1):
    """A catalog with segments of domain 0 transactions, one second apart."""
    cat = Catalog(LocalStorage(tmp_path))
    state = GtidPosition()
    n = 0
    for i, count in enumerate(seqs_per_segment, 1):
        txns = []
        for _ in range(count):
            n += 1
            txns.append(Txn(0, 1, n, T0 + n * ts_step, B.txn(0, 1, n, T0 + n * ts_step), n * 100))
        stored = zstd.compress(build_segment(B.fde(), txns))
        new = advance(state, txns)
        m = SegmentManifest(seq=i, source="h:1", source_id="x", binlog_file="b.1", start_pos=4,
                            end_pos=n * 100, gtid_start=state.text(),
                            gtid_end=new.text(), domains=domains_of(txns),
                            first_ts=txns[0].commit_ts, last_ts=txns[-1].commit_ts,
                            transactions=len(txns), sha256=sha256(stored))
        cat.publish_segment(stored, m)
        state = new
        cat.save_checkpoint(Checkpoint(seq=i, gtid=m.gtid_end, last_event_ts=m.last_ts))
    return cat


def _snap(cat, sid, gtid, finished):
    cat.storage.put(f"snapshots/{sid}/dump.sql.zst", b"data")
    m = SnapshotManifest(id=sid, method="mariadb-dump", source="h:1", gtid=gtid,
                         started=finished - 1, finished=finished,
                         key=f"snapshots/{sid}/dump.sql.zst", sha256=sha256(b"data"))
    cat.publish_snapshot(m)
    return m


def test_state_at_time_stops_at_the_first_later_commit(tmp_path):
    cat = _store(tmp_path, [3, 3, 3])
    mans = cat.manifests()
    assert state_at_time(cat, mans, T0 + 5) == position("0-1-5")      # inside segment 2
    assert state_at_time(cat, mans, T0 + 6) == position("0-1-6")      # end of segment 2
    assert state_at_time(cat, mans, T0 + 100) == position("0-1-9")
    with pytest.raises(RestoreError, match="log backup starts"):
        state_at_time(cat, mans, T0)


def test_plan_picks_the_newest_snapshot_before_the_target(tmp_path):
    cat = _store(tmp_path, [3, 3, 3])
    _snap(cat, "a", "0-1-2", T0 + 2)
    _snap(cat, "b", "0-1-7", T0 + 7)
    target, snap, segs, _ = plan(cat, None, "0-1-6")
    assert snap.id == "a" and [m.seq for m in segs] == [1, 2]
    target, snap, segs, _ = plan(cat, T0 + 8, None)
    assert snap.id == "b" and target == position("0-1-8") and [m.seq for m in segs] == [3]
    with pytest.raises(RestoreError, match="not backed up"):
        plan(cat, None, "0-1-10")
    with pytest.raises(RestoreError, match="complete only up to"):
        plan(cat, T0 + 60, None)
    with pytest.raises(RestoreError, match="no snapshot"):
        plan(cat, None, "0-1-1")


def test_verify_finds_sha_mismatch_gap_and_duplicate(tmp_path):
    cat = _store(tmp_path / "ok", [2, 2, 2])
    assert verify(cat).ok and verify(cat).transactions == 6
    # a duplicate: segment 3 re-holds transaction 4
    dup = _store(tmp_path / "dup", [2, 2, 2])
    m3 = dup.manifest(3)
    txns = [Txn(0, 1, q, T0 + q, B.txn(0, 1, q, T0 + q)) for q in (4, 5, 6)]
    stored = zstd.compress(build_segment(B.fde(), txns))
    dup.publish_segment(stored, replace(m3, transactions=3, sha256=sha256(stored)))
    assert any("duplicate" in p for p in verify(dup).problems)
    # a checkpoint that does not match
    cat.save_checkpoint(Checkpoint(seq=9, gtid="0-1-99"))
    assert any("checkpoint" in p for p in verify(cat).problems)


def test_retention_keeps_newest_and_the_log_they_need(tmp_path):
    cat = _store(tmp_path, [3, 3, 3])
    now = T0 + 10 * 86400
    a = _snap(cat, "a", "0-1-2", T0 + 2)
    b = _snap(cat, "b", "0-1-6", T0 + 7)
    kept, gone = retention_plan([a, b], keep_n=1, keep_days=0, now=now)
    assert [s.id for s in kept] == ["b"] and [s.id for s in gone] == ["a"]
    kept, gone = retention_plan([a, b], keep_n=0, keep_days=1, now=now)
    assert [s.id for s in kept] == ["b"]               # the last one is never deleted
    kept, gone = retention_plan([a, b], keep_n=0, keep_days=0, now=now)
    assert gone == []
    removed = apply_retention(cat, 1, 0, now=now)
    assert removed.snapshots == ("a",) and removed.segments == (1, 2)   # both end <= 0-1-6
    assert cat.segment_seqs() == [3]
    assert verify(cat).ok


def test_query_parts_and_replay_statements():
    import struct

    sv = bytes([0]) + struct.pack("<I", 1 << 26) + bytes([1]) + struct.pack("<Q", 1411383296) \
        + bytes([4]) + struct.pack("<HHH", 45, 45, 45)
    body = struct.pack("<IIBHH", 7, 0, 3, 0, len(sv)) + sv + b"app\0" + b"CREATE TABLE t (a INT)"
    ev = B.event(E.QUERY, body)
    db, stmt, vars_ = query_parts(ev, 4)
    assert (db, stmt) == (b"app", b"CREATE TABLE t (a INT)")
    assert vars_["sql_mode"] == 1411383296 and vars_["charset"] == (45, 45, 45)

    class NoConn:
        pass

    rp = Replayer(NoConn())
    rp.set_fde(B.fde())
    ddl = Txn(0, 1, 1, T0, B.gtid(0, 1, 1, standalone=True) + ev)
    rp.add(ddl)
    rp.add(Txn(0, 1, 2, T0, B.txn(0, 1, 2)))
    parts = rp.parts
    assert parts[0].startswith(b"BINLOG '")
    assert any(p.startswith(b"SET TIMESTAMP=") and b"foreign_key_checks=0" in p for p in parts)
    assert b"USE `app`" in parts and b"CREATE TABLE t (a INT)" in parts
    assert parts[-3:-1] == [b"BEGIN", parts[-2]] and parts[-2].startswith(b"BINLOG '")
    assert parts[-1] == b"COMMIT" and b"BEGIN" not in parts[:parts.index(b"CREATE TABLE t (a INT)")]


def test_restore_dialog_input_check(tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = str(free.getsockname()[1])
    free.close()
    try:
        args, why = check("2026-01-02 03:04:05", str(tmp_path / "new"), port)
        assert args == {"to_time": "2026-01-02 03:04:05", "target_dir": str(tmp_path / "new"),
                        "port": int(port), "keep_running": False} and not why
        args = check("0-1-77", str(tmp_path / "n"), port, keep_running=True)[0]
        assert args["to_gtid"] == "0-1-77" and args["keep_running"] is True
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "f").write_text("x")
        (tmp_path / "empty").mkdir()
        assert check("0-1-1", str(tmp_path / "empty"), port)[0]["target_dir"] == str(tmp_path / "empty")
        assert "not empty" in check("0-1-1", str(tmp_path / "full"), port)[1]
        assert "not a directory" in check("0-1-1", str(tmp_path / "full" / "f"), port)[1]
        assert "does not exist" in check("0-1-1", str(tmp_path / "no" / "such"), port)[1]
        assert "too long" in check("0-1-1", str(tmp_path / ("d" * 120)), port)[1]
        assert "neither" in check("soon", str(tmp_path / "n"), port)[1]
        assert "port" in check("0-1-1", str(tmp_path / "n"), "80")[1]
        assert "port" in check("0-1-1", str(tmp_path / "n"), "x")[1]
        assert f"port {busy} is in use" in check("0-1-1", str(tmp_path / "n"), str(busy))[1]
    finally:
        taken.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]


def test_timeline_marks_segments_and_snapshots():
    from types import SimpleNamespace

    from console.tui.screens.backup import timeline_text

    now = time.time()
    d = SimpleNamespace(timeline=((now - 100, now - 90, 5), (now - 10, now, 7)),
                        snapshots=(("s", "mariadb-backup", now - 50, 1, "0-1-1"),))
    text = timeline_text(d)
    assert "█" in text and "▲" in text


def test_task_collects_whole_transactions_and_never_stores_one_twice(tmp_path):
    from console.config import Secret
    from console.engine.backup.logtask import BackupTask
    from console.engine.backup.sources import ClusterEndpoints
    from console.kinds.backup import BackupOptions
    from console.mysql.connection import Endpoint

    ep = Endpoint("127.0.0.1", 1, "u", Secret("p"), "db1")
    task = BackupTask("b", ClusterEndpoints((ep,), (ep,)), BackupOptions(storage=tmp_path))
    task.cp = task.catalog.recover()

    def feed_txn(file, seq, server=1):
        evs = [B.gtid(0, server, seq), B.rows(b"x"), B.xid(seq, server=server)]
        for i, ev in enumerate(evs):
            last = i == len(evs) - 1
            task._feed(file, ev[4], ev, 100 * seq + i, last, (0, server, seq) if last else None)

    task._feed("bin.1", E.FORMAT_DESCRIPTION, B.fde(), 4, True, None)
    feed_txn("bin.1", 1)
    feed_txn("bin.1", 2)
    # a partial transaction is never stored
    g = B.gtid(0, 1, 3)
    task._feed("bin.1", E.GTID, g, 350, False, None)
    task._publish()
    assert task.cp.seq == 1 and task.cp.gtid == "0-1-2"
    task._cur = []                      # the session broke mid-transaction
    feed_txn("bin.1", 2)                # a reconnect re-sends 2: skipped
    feed_txn("bin.1", 3)
    task._feed("bin.2", E.FORMAT_DESCRIPTION, B.fde(), 4, True, None)   # new file: publish
    assert task.cp.seq == 2 and task.cp.gtid == "0-1-3"
    feed_txn("bin.2", 4, server=2)      # after a failover
    task._publish()
    mans = task.catalog.manifests()
    assert [(m.binlog_file, m.gtid_start, m.gtid_end, m.transactions) for m in mans] == [
        ("bin.1", "", "0-1-2", 2), ("bin.1", "0-1-2", "0-1-3", 1), ("bin.2", "0-1-3", "0-2-4", 1)]
    r = verify(task.catalog)
    assert r.ok and r.transactions == 4


def test_command_packets_split_at_0xffffff_and_the_reply_follows_the_last():
    from console.mysql.binlog.protocol import MAX_PACKET, command_packets

    def split(data):
        out, p = [], 0
        while p < len(data):
            n = int.from_bytes(data[p:p + 3], "little")
            out.append((data[p + 3], n))
            p += 4 + n
        return out

    assert command_packets(3, b"SELECT 1") == (b"\x09\x00\x00\x00\x03SELECT 1", 1)
    assert split(command_packets(3, b"x" * (MAX_PACKET - 2))[0]) == [(0, MAX_PACKET - 1)]
    data, seq = command_packets(3, b"x" * (MAX_PACKET - 1))        # exactly 0xFFFFFF: empty last
    assert split(data) == [(0, MAX_PACKET), (1, 0)] and seq == 2
    data, seq = command_packets(3, b"x" * (2 * MAX_PACKET + 5))
    assert split(data) == [(0, MAX_PACKET), (1, MAX_PACKET), (2, 6)] and seq == 3
    assert data[4] == 3 and len(data) == 2 * MAX_PACKET + 6 + 12


def test_replay_uses_no_database_a_database_ddl_names_and_uses_again_after_it():
    import struct

    def query(db: bytes, stmt: bytes, seq: int) -> Txn:
        body = struct.pack("<IIBHH", 7, 0, len(db), 0, 0) + db + b"\0" + stmt
        return Txn(0, 1, seq, T0, B.gtid(0, 1, seq, standalone=True) + B.event(E.QUERY, body))

    rp = Replayer(object())
    rp.set_fde(B.fde())
    for seq, (db, stmt) in enumerate([
            (b"a", b"CREATE TABLE t (id INT)"),
            (b"new", b"CREATE DATABASE new"),
            (b"s", b"/* x */\n create  or replace SCHEMA s"),
            (b"never", b"DROP DATABASE IF EXISTS never"),
            (b"a", b"CREATE TABLE t2 (id INT)"),           # after a drop: USE again
            (b"a", b"DROP DATABASE a"),
            (b"a", b"CREATE DATABASE a"),
            (b"a", b"CREATE TABLE t3 (id INT)"),
            (b"a", b"ALTER DATABASE CHARACTER SET latin1"),
            (b"", b"CREATE TABLE a.t4 (id INT)"),
            (b"create_db", b"CREATE DATABASEx_not_ddl"),
    ], 1):
        rp.add(query(db, stmt, seq))
    stmts = [p for p in rp.parts if not p.startswith((b"SET ", b"BINLOG "))]
    assert stmts == [b"USE `a`", b"CREATE TABLE t (id INT)", b"CREATE DATABASE new",
                     b"/* x */\n create  or replace SCHEMA s", b"DROP DATABASE IF EXISTS never",
                     b"USE `a`", b"CREATE TABLE t2 (id INT)", b"DROP DATABASE a",
                     b"CREATE DATABASE a", b"USE `a`", b"CREATE TABLE t3 (id INT)",
                     b"ALTER DATABASE CHARACTER SET latin1", b"CREATE TABLE a.t4 (id INT)",
                     b"USE `create_db`", b"CREATE DATABASEx_not_ddl"]


def test_checkpoint_consistency_allows_a_moving_checkpoint_and_reports_a_real_mismatch(tmp_path):
    from console.engine.backup.verify import checkpoint_problems

    ms = _store(tmp_path, [2, 2, 2, 2]).manifests()                 # seqs 1..4, GTIDs 0-1-2..8

    def cp(seq, gtid):
        return Checkpoint(seq=seq, gtid=gtid)

    def problems(before, after, listed=ms):
        return checkpoint_problems(before, after, listed)

    assert problems(cp(4, "0-1-8"), cp(4, "0-1-8")) == []           # stopped, complete
    assert problems(cp(3, "0-1-6"), cp(3, "0-1-6")) == []           # segment 4 being published
    assert problems(cp(2, "0-1-4"), cp(6, "0-1-12")) == []          # moved on while verifying
    assert problems(cp(0, ""), cp(4, "0-1-8")) == []                # the start record
    assert problems(cp(1, "0-1-2"), cp(4, "0-1-8"), ms[2:]) == []   # retention removed 1..2
    assert problems(None, None, []) == []
    # real mismatches
    assert problems(cp(4, "0-1-9"), cp(4, "0-1-9")) == [
        "checkpoint (4/0-1-9) does not match segment 4 (ends at 0-1-8)"]
    assert "ahead of the log" in problems(cp(5, "0-1-10"), cp(5, "0-1-10"))[0]
    assert "trails the log: segments 3..4" in problems(cp(2, "0-1-4"), cp(2, "0-1-4"))[0]
    assert "ahead of the oldest stored segment 3" in problems(cp(1, "0-1-5"), cp(4, "0-1-8"), ms[2:])[0]
    assert "names segment 2, which is missing" in problems(cp(2, "0-1-4"), cp(4, "0-1-8"),
                                                           [ms[0], ms[2], ms[3]])[0]
    assert "checkpoint.json is missing" in problems(None, None)[0]


def test_verify_tolerates_retention_removing_the_log_prefix_and_a_snapshot_meanwhile(tmp_path):
    from console.engine.backup.catalog import CHECKPOINT_KEY
    from console.engine.backup.segments import data_key

    class RacingStorage(LocalStorage):
        """Runs ``action`` once, when verify first reads ``key`` (retention in
        the task's thread deleting while verify reads)."""
        key, action = "", None

        def _race(self, key):
            if key == self.key and self.action:
                action, self.action = self.action, None
                action()

        def get(self, key):
            self._race(key)
            return super().get(key)

        def reader(self, key):
            self._race(key)
            return super().reader(key)

    _store(tmp_path, [2, 2, 2, 2])
    storage = RacingStorage(tmp_path)
    cat = Catalog(storage)
    old = _snap(cat, "s1", "0-1-2", T0 + 10)
    _snap(cat, "s2", "0-1-4", T0 + 20)
    storage.key = data_key(2)            # the log's prefix goes while segment 2 is read
    storage.action = lambda: [cat.delete_snapshot(old), cat.delete_segment(1),
                              cat.delete_segment(2)]          # retention's order
    r = verify(cat)
    assert r.ok, r.problems
    assert r.segments == 2 and r.first_gtid == "0-1-4" and r.transactions == 4
    assert r.snapshots == 1
    older = _snap(cat, "s0", "0-1-4", T0 + 15)
    storage.key = older.key              # a snapshot goes while it is checked
    storage.action = lambda: cat.delete_snapshot(older)
    r = verify(cat)
    assert r.ok and r.snapshots == 1, r.problems
    # still reported: a data object missing beside its manifest, a corrupt manifest
    (tmp_path / data_key(3)).unlink()
    (tmp_path / "log" / "0000000004.json").write_text("{not json")
    storage.put(CHECKPOINT_KEY, Checkpoint(seq=3, gtid="0-1-6").to_json())
    problems = verify(cat).problems
    assert any(p.startswith("segment 3:") for p in problems), problems
    assert any("manifest 4 is corrupt" in p for p in problems), problems
    assert len(problems) == 2, problems
