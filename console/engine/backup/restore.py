"""Point-in-time restore into a new data directory, never touching the cluster.

1. Target: ``to_gtid`` (a GTID position: transactions of the named domains up
   to and including those sequence numbers) or ``to_time`` (every transaction
   committed at or before that second, in binlog order, stopping at the first
   one after it).  A time target is turned into a GTID position from the
   segments, so both paths are exact.
2. ``DIR`` is marked incomplete (``incomplete.py``: ``RESTORE-INCOMPLETE``,
   locked while this restore runs) and the newest snapshot at or before that
   position is unpacked into ``DIR/data`` (``unpack.py``).
3. A private ``mariadbd`` starts on ``DIR/my.cnf`` (own port, socket, pid).
4. The stored transactions after the snapshot's position are replayed up to
   the target exactly (``engine/replay``: ``Replayer``); ``gtid_slave_pos`` is set to
   the position reached so the copy can be attached as a replica.
5. The server is stopped by its pid (``keep_running``: started again, now
   free to outlive the restore), ``DIR/restore.json`` records what was
   restored, and only then the mark is removed.

Every child (server, zstd, mbstream, mariadb, mariadb-backup) is started
with the parent-death signal: a ``kill -9`` of the restore takes them with
it.  A failure after step 2 says, in its one line, that ``DIR`` is
incomplete; the next restore there stops what a dead restore left running
and refuses the directory unless ``force`` (which replaces it).
"""

from __future__ import annotations

import collections
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pymysql.constants.CLIENT as CLIENT

from console.engine.backup import incomplete, zstd
from console.engine.backup.catalog import Catalog, SnapshotManifest
from console.engine.backup.location import open_storage
from console.engine.backup.mysqld import (
    HOST,
    RESTORE_USER,
    RestoreError,
    RestoreServer,
    check_directory,
    check_port,
)
from console.engine.backup.segments import SegmentManifest, data_key, split_transactions
from console.engine.backup.storage import LocalStorage, Storage
from console.engine.backup.unpack import check_tools, load_dump, unpack
from console.engine.replay.replayer import Replayer
from console.engine.state import write_json_atomic
from console.errors import UserError
from console.mysql.gtid import Gtid, GtidError, GtidPosition, position


@dataclass
class RestoreResult:
    target_dir: str
    port: int
    snapshot: str
    snapshot_method: str
    snapshot_gtid: str
    target: str
    restored_gtid: str
    transactions: int = 0
    last_commit: float = 0.0
    prepare_seconds: float = 0.0
    replay_seconds: float = 0.0
    replay_bytes: int = 0
    pid: int | None = None
    host: str = HOST
    socket: str = ""
    user: str = RESTORE_USER
    password_file: str = ""
    notes: list[str] = field(default_factory=list)
    server: RestoreServer | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "server"}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.pid = None

    def how_to_reach(self) -> str:
        """How to connect to the kept server (or start it again)."""
        if self.pid:
            return (f"server running (pid {self.pid}): host {self.host} port {self.port} socket "
                    f"{self.socket}, user {self.user}, password in {self.password_file}")
        return (f"server stopped; start it with: mariadbd --defaults-file={self.target_dir}/my.cnf "
                f"(user {self.user}, password in {self.password_file})")


def parse_time(text: str) -> float:
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        raise RestoreError(f"--to-time {text!r}: use 'YYYY-MM-DD HH:MM:SS' (local time)") from None


def _segment_txns(catalog: Catalog, m: SegmentManifest):
    return split_transactions(zstd.decompress(catalog.storage.get(data_key(m.seq))))


def state_at_time(catalog: Catalog, manifests: list[SegmentManifest], t: float) -> GtidPosition:
    """GTID position after every transaction committed at or before ``t`` (binlog order)."""
    if not manifests:
        raise RestoreError("the backup holds no log segments")
    if t < manifests[0].first_ts:
        first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifests[0].first_ts))
        raise RestoreError(f"no snapshot at or before that time: the log backup starts at "
                           f"{first} (GTID {manifests[0].gtid_start or 'start'})")
    state = position(manifests[0].gtid_start)
    for m in manifests:
        if m.first_ts > t:
            return state
        if m.last_ts <= t:
            state = position(m.gtid_end)
            continue
        for tx in _segment_txns(catalog, m)[1]:
            if tx.commit_ts > t:
                return state
            state.put(tx.domain, tx.server_id, tx.seq)
    return state


def plan(catalog: Catalog, to_time: float | None, to_gtid: str | None
         ) -> tuple[GtidPosition, SnapshotManifest, list[SegmentManifest], str]:
    cp = catalog.load_checkpoint()
    if cp is None or not cp.seq:
        raise RestoreError("the backup holds no log segments yet (is the backup task running?)")
    manifests = catalog.manifests()
    if to_gtid is not None:
        try:
            target = position(to_gtid)
        except GtidError:
            raise RestoreError(f"--to-gtid {to_gtid!r}: give a GTID like 0-1-100") from None
        if not target:
            raise RestoreError("--to-gtid is empty")
        if not target <= position(cp.gtid):
            raise RestoreError(f"the backup reaches only GTID {cp.gtid}; {to_gtid} is not backed up")
        label = f"GTID {to_gtid}"
    else:
        assert to_time is not None
        if to_time >= cp.covered_until + 1:
            covered = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cp.covered_until))
            raise RestoreError(f"the backup is complete only up to {covered}; pick an earlier "
                               f"time or wait for the log backup to catch up")
        target = state_at_time(catalog, manifests, to_time)
        label = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(to_time))
    snaps = [s for s in catalog.snapshots() if position(s.gtid) <= target]
    if not snaps:
        raise RestoreError(f"no snapshot at or before {label} (position "
                           f"{target.text() or 'empty'}); take one with "
                           f"`dbops-console backup snapshot`")
    snap = max(snaps, key=lambda s: (position(s.gtid).total(), s.finished))
    snap_state = position(snap.gtid)
    first = position(manifests[0].gtid_start) if manifests else GtidPosition()
    if not first <= snap_state:
        raise RestoreError(f"the log backup starts at {manifests[0].gtid_start}, after snapshot "
                           f"{snap.id} ({snap.gtid}): it cannot be rolled forward")
    needed = [m for m in manifests
              if not position(m.gtid_end) <= snap_state
              and not target <= position(m.gtid_start)]
    return target, snap, needed, label


def _prefetched(catalog: Catalog, manifests: list[SegmentManifest], ahead: int = 0):
    """(FDE, transactions) per segment, read and decompressed by a few threads
    (the storage's ``read_ahead``: 2 on local files, 8 on S3, where a GET
    waits for the network) that many segments ahead of the replay."""
    workers = max(1, getattr(catalog.storage, "read_ahead", 2))
    ahead = ahead or workers + 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore-read") as ex:
        pending: collections.deque = collections.deque()
        it = iter(manifests)
        for m in itertools.islice(it, ahead):
            pending.append(ex.submit(_segment_txns, catalog, m))
        while pending:
            out = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(ex.submit(_segment_txns, catalog, nxt))
            yield out


def replay_segments(catalog: Catalog, conn, manifests: list[SegmentManifest],
                    start: GtidPosition, target: GtidPosition
                    ) -> tuple[GtidPosition, int, float, int]:
    """Apply transactions after ``start`` up to ``target``; returns
    (state reached, transactions, last commit time, bytes)."""
    rp = Replayer(conn)
    state = start.copy()
    last_ts = 0.0
    for fde, txns in _prefetched(catalog, manifests):
        rp.set_fde(fde)
        for tx in txns:
            g = Gtid(tx.domain, tx.server_id, tx.seq)
            if g in state:
                continue                       # already in the snapshot
            if g not in target:
                continue                       # past the target in this domain
            done = state.gtid(tx.domain)
            if done is not None and tx.seq != done.seq + 1:
                raise RestoreError(f"GTID gap in the backup: domain {tx.domain} jumps from "
                                   f"{done.seq} to {tx.seq}; run `backup verify`")
            rp.add(tx)
            state.put(tx.domain, tx.server_id, tx.seq)
            last_ts = float(tx.commit_ts)
    rp.flush()
    return state, rp.transactions, last_ts, rp.bytes


def check_keys(catalog: Catalog, snap: SnapshotManifest, manifests: list[SegmentManifest]) -> None:
    """Every object the restore reads can be decrypted with the configured
    key: else one line naming the key id it needs (before anything is made)."""
    have = getattr(catalog.storage, "key_id", "")
    need = {m.key_id for m in [snap, *manifests] if m.key_id}
    for kid in sorted(need - {have}):
        first = snap.id if snap.key_id == kid else \
            f"segment {next(m.seq for m in manifests if m.key_id == kid)}"
        if not have:
            raise RestoreError(f"the backup is encrypted ({first}: key id {kid}) and no "
                               f"encryption key is configured: set the task's "
                               f"encryption_key_file or encryption_key_env")
        raise RestoreError(f"the backup is encrypted with key id {kid} ({first}), the configured "
                           f"key is {have}: configure the key it was written with")


def restore(storage_dir: str | os.PathLike | Storage | object, target_dir: str | os.PathLike, *, port: int = 3307,
            to_time: float | None = None, to_gtid: str | None = None,
            keep_running: bool = False, force: bool = False,
            progress=lambda msg: None) -> RestoreResult:
    """``storage_dir``: a Storage, a backup task's options (its storage,
    encryption key) or a directory.  Every input is checked before anything is created (one line, nothing
    changed); then the target directory is marked incomplete, filled, and
    its server runs only inside this call (stopped on any error or signal,
    killed by the kernel if this process dies) unless ``keep_running``.  A
    failure says, in its one line, that the directory is incomplete.

    A server a dead restore left in a directory marked incomplete is
    stopped first; ``force`` replaces such a directory."""
    if (to_time is None) == (to_gtid is None):
        raise RestoreError("give exactly one of --to-time or --to-gtid")
    tdir = Path(target_dir).expanduser().resolve()
    stopped = incomplete.stop_leftovers(tdir)
    tdir = check_directory(tdir, force=force, stopped=stopped)
    check_port(port)
    if isinstance(storage_dir, Storage):
        store = storage_dir
    elif hasattr(storage_dir, "storage"):
        store = open_storage(storage_dir, create=False)
    else:
        store = LocalStorage(storage_dir, create=False)  # type: ignore[arg-type]
    catalog = Catalog(store)
    target, snap, manifests, label = plan(catalog, to_time, to_gtid)
    check_keys(catalog, snap, manifests)
    check_tools(snap.method)
    if stopped:
        progress(f"stopped the leftover server (pid {', '.join(map(str, stopped))}) of an "
                 f"incomplete restore in {tdir}")
    if force and incomplete.marked(tdir):
        progress(f"replacing the incomplete restore in {tdir}")
        incomplete.clear(tdir)
    tdir.mkdir(exist_ok=True)
    marker = incomplete.Marker(tdir)
    try:
        return _run(catalog, tdir, port, target, snap, manifests, label, keep_running, progress,
                    marker)
    except UserError as e:
        raise RestoreError(f"restore failed: {e}; {incomplete.hint(tdir)}",
                           exit_code=e.exit_code) from None
    except (pymysql.MySQLError, OSError) as e:
        raise RestoreError(f"restore failed: {type(e).__name__}: {e}; {incomplete.hint(tdir)}") from None
    finally:
        marker.release()


def _run(catalog: Catalog, tdir: Path, port: int, target: GtidPosition, snap: SnapshotManifest,
         manifests: list[SegmentManifest], label: str, keep_running: bool, progress,
         marker: incomplete.Marker) -> RestoreResult:
    server = RestoreServer(tdir, port)
    result = RestoreResult(target_dir=str(tdir), port=port, snapshot=snap.id,
                           snapshot_method=snap.method, snapshot_gtid=snap.gtid, target=label,
                           restored_gtid=snap.gtid, host=server.host, socket=server.socket,
                           password_file=str(server.password_file), server=server)
    try:
        server.write_config()
        t0 = time.monotonic()
        progress(f"preparing snapshot {snap.id} ({snap.method}, GTID {snap.gtid})")
        unpack(catalog, snap, server)
        result.pid = server.start()
        if snap.method == "mariadb-dump":
            progress("loading the dump")
            load_dump(catalog, snap, server)
        result.prepare_seconds = round(time.monotonic() - t0, 3)
        progress(f"replaying {len(manifests)} segment(s) up to {label}")
        conn = server.connect(client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            t1 = time.monotonic()
            state, n, last_ts, nbytes = replay_segments(catalog, conn, manifests,
                                                        position(snap.gtid), target)
            result.replay_seconds = round(time.monotonic() - t1, 3)
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL gtid_slave_pos = %s", (state.text(),))
        finally:
            if conn.open:
                conn.close()
        result.restored_gtid = state.text()
        result.transactions, result.last_commit, result.replay_bytes = n, last_ts, nbytes
        missing = [g for g in target.gtids() if state.seq(g.domain) < g.seq]
        if missing:
            raise RestoreError(f"could not reach the target: stopped at {result.restored_gtid}, "
                               f"target {target.text()}")
        result.stop()
        if keep_running:        # again, now free to outlive this process
            progress("starting the restored server to keep it running")
            result.pid = server.start(die_with_parent=False)
        write_json_atomic(tdir / "restore.json", result.to_dict())
        marker.done()
    except BaseException:
        result.stop()
        raise
    return result
