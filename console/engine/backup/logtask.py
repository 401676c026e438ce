"""The backup task: continuous log backup, snapshots on request, retention.

One engine thread runs dump sessions against the source (the primary by
default) through the relay's raw ``DumpClient``.  Complete transactions are
collected and published as a segment (data, then manifest, then checkpoint)
when ``flush_interval`` has passed, when the stream goes idle, when the
source file changes or when the segment is big enough.  Every session
starts by GTID from the checkpoint, so a restart after ``kill -9``, a resume
after pause and a failover to another primary all continue with no gap and
no duplicate; a source lacking stored transactions is refused.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, replace

from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, Checkpoint, state_le
from console.engine.backup.segments import (
    SegmentManifest,
    Txn,
    advance,
    build_segment,
    domains_of,
    sha256,
)
from console.engine.backup.sources import ClusterEndpoints, find_primary, missing_from
from console.engine.backup.storage import LocalStorage, StorageError
from console.engine.dumpsession import RETRYABLE, EndSession, SessionLoop
from console.engine.relay.store import RelayError
from console.engine.task import Task, TaskStopped, command
from console.errors import CommandError, UserError
from console.kinds.backup import BackupOptions
from console.mysql.binlog import events as E
from console.mysql.binlog.client import Batch, DumpClient, DumpError
from console.mysql.connection import (
    DBError,
    Endpoint,
    connect,
    query,
    query_one,
)

IDLE_FLUSH = 0.2     # an idle stream publishes what it holds once it is this old


@dataclass(frozen=True)
class BackupStatus:
    source: str
    connected: bool
    storage: str
    checkpoint_gtid: str
    checkpoint_time: float          # commit time of the newest stored transaction
    checkpoint_seq: int
    source_gtid: str
    lag_seconds: float | None       # recovery point: how old the oldest unstored change is
    caught_up: bool
    segments: int
    segment_bytes: int
    snapshot_bytes: int
    snapshots: tuple = ()           # (id, method, finished, bytes, gtid)
    snapshot_running: str = ""
    transactions: int = 0           # stored by this run
    retries: int = 0
    failovers: int = 0
    source_oldest_binlog: str = ""
    source_retention: str = ""
    last_error: str = ""
    timeline: tuple = ()            # (first_ts, last_ts, transactions) of recent segments


class BackupTask(Task):
    kind = "backup"
    report_host = "dbops-backup"

    def __init__(self, task_id: str, endpoints: ClusterEndpoints, options: BackupOptions):
        super().__init__(task_id)
        self.eps = endpoints
        self.opts = options
        self.storage = LocalStorage(options.storage, create=None)  # made when the task claims it
        self.catalog = Catalog(self.storage)
        self.cp = Checkpoint()
        self.gtid_state: dict[int, tuple[int, int]] = {}
        self.source: Endpoint = endpoints.ops[endpoints.preferred]
        self.client: DumpClient | None = None
        self._source_id = ""
        self._fde = b""
        self._file = ""
        self._pending: list[Txn] = []
        self._pending_file = ""
        self._pending_start = 0
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._cur: list[bytes] = []
        self._cur_start = 0
        self._last_pos = 0
        self._connected = False
        self._retries = 0
        self._failovers = 0
        self._txns = 0
        self._need_discovery = options.follow_primary and not options.host
        self._source_gtid = ""
        self._samples: collections.deque = collections.deque(maxlen=600)  # (t, gtid state)
        self._polled = False
        self._oldest_binlog = ""
        self._retention = ""
        self._snap_thread: threading.Thread | None = None
        self._snap_running = ""
        self._last_snapshot = 0.0
        self._stats = (0, 0, 0)
        self._stats_at = 0.0
        self._snapshots: tuple = ()
        self._timeline: collections.deque = collections.deque(maxlen=120)
        self._io = threading.Lock()
        self._lock_file = None
        self._streamed = False

    # ---- main loop ----------------------------------------------------------------

    def run(self) -> None:
        self.set_phase("recovering")
        self.claim()  # (done already when started through preflight)
        self.cp = self.catalog.recover()
        self.gtid_state = E.parse_state(self.cp.gtid)
        self._refresh_catalog()
        threading.Thread(target=self._poll_source, name=f"backup-poll-{self.task_id}",
                         daemon=True).start()

        def retry(err: BaseException) -> None:
            self._retries += 1
            if self.opts.follow_primary:
                self._need_discovery = True

        def streamed() -> bool:  # it worked for a while: the backoff starts over
            was, self._streamed = self._streamed, False
            return was

        SessionLoop(self, session=self._session, end=self._end_session, wait=self.sleep,
                    reconnect_base=0.3, reconnect_max=self.opts.reconnect_max,
                    retryable=(*RETRYABLE, RelayError), streamed=streamed,
                    other_source=lambda: self.opts.follow_primary,
                    paused=lambda: not self._resume.is_set(), on_retry=retry).run()

    def _end_session(self) -> None:
        self._safe_publish()
        self._close()

    def dump_registration(self) -> tuple[int, tuple[Endpoint, ...], str]:
        return self.opts.server_id, tuple(self.eps.ops), f"tasks.{self.task_id}.server_id"

    def login_endpoints(self) -> tuple[Endpoint, ...]:
        """Every host with the ops account (finding the primary, snapshots) and,
        unless it reads a relay directory, the dump account (streaming)."""
        return tuple(self.eps.ops) + (() if self.opts.relay_dir else tuple(self.eps.dump))

    def claim(self) -> None:
        """The storage's lock: one backup task per storage, for this process's life."""
        if self._lock_file is not None:
            return

        def running(holder: str, pid: int | None) -> UserError:
            by = f" (pid {pid})" if pid else ""
            if holder == self._lock_owner:
                return UserError(f"backup {self.task_id} is already running{by}: stop it first "
                                 f"(it holds {self.storage.root})")
            return UserError(f"backup storage {self.storage.root} is in use by {holder or 'another process'}"
                             f"{by}: one backup task per storage; give tasks.{self.task_id}.storage "
                             f"another directory")

        self._lock_file = self.storage.lock(self._lock_owner, running)

    @property
    def _lock_owner(self) -> str:
        return f"backup task {self.task_id}"

    def release(self) -> None:
        lf, self._lock_file = self._lock_file, None
        if lf is not None:
            lf.close()

    def cleanup(self) -> None:
        self._close()
        t = self._snap_thread
        if t is not None:
            t.join(600)
        self.release()

    def on_stop_requested(self) -> None:
        c = self.client
        if c is not None:
            c.shutdown()

    def pause(self, actor: str = "operator") -> None:
        super().pause(actor)
        c = self.client
        if c is not None:
            c.shutdown()

    # ---- one dump session ----------------------------------------------------------

    def _pick_source(self) -> Endpoint:
        if not self._need_discovery:
            return self.source
        self.set_phase("finding-primary")
        ep = find_primary(self.eps, prefer=self.source.address)
        if ep is None:
            raise DBError("no writable primary found among the cluster's hosts")
        if ep.address != self.source.address:
            self._failovers += 1
            if self.engine:
                self.engine.audit("engine", "backup-source", self.task_id, "ok",
                                  f"following the primary to {ep.label} from GTID {self.cp.gtid or '-'}")
        self.source = ep
        self._need_discovery = False
        return ep

    def _session(self) -> None:
        if self.opts.relay_dir:
            self._relay_session()
            return
        ep = self._pick_source()
        self.set_phase("connecting")
        client = DumpClient(self.eps.dump_for(ep.address), server_id=self.opts.server_id,
                            heartbeat=self.opts.heartbeat, report_host=self.report_host)
        self.client = client
        ident = client.connect()
        if ident.flavor != "mariadb":
            raise UserError(f"{ep.label}: backup supports MariaDB sources only")
        self._source_id = ident.key
        if self.stopping:
            raise TaskStopped()
        gtid = self._start_gtid(client)
        client.open(gtid=gtid)
        self._connected = self._streamed = True
        self._cur, self._fde = [], b""
        self.set_phase("streaming")
        self.set_error("")
        for batch in client.batches(with_events=True):
            self._consume(batch)
            now = time.monotonic()
            if self._pending:
                age = now - self._pending_since
                if age >= self.opts.flush_interval or (batch.idle and age >= IDLE_FLUSH) or (
                        batch.heartbeat and not batch.data) or \
                        self._pending_bytes >= self.opts.segment_max_mb * 1e6:
                    self._publish()
            elif batch.heartbeat and not self._cur:
                self._mark_caught_up()
            if self.stopping:
                raise TaskStopped()
            if not self._resume.is_set():
                raise EndSession()
            self._maybe_snapshot()

    def _start_gtid(self, client: DumpClient) -> str:
        if not self._start_recorded():
            self._record_start(lambda: client.master_status()[2])
            return E.format_state(self.gtid_state)
        _, _, theirs = client.master_status()
        missing = missing_from(E.format_state(self.gtid_state), theirs)
        if missing:
            raise DumpError(f"{self.source.label} lacks backed-up transactions {missing} "
                            f"(it is at {theirs or 'nothing'}); not continuing there "
                            f"to avoid a gap", transient=True)
        return E.format_state(self.gtid_state)

    def _start_recorded(self) -> bool:
        return bool(self.cp.seq or self.cp.started or self.gtid_state)

    def _record_start(self, source_gtid) -> None:
        """First start of the task: resolve ``start_from`` (``source_gtid()``
        gives the source's position for "now") and store it durably as the
        checkpoint (segment 0) before streaming, so every later start
        continues there whether or not this run stores anything."""
        sf = self.opts.start_from
        gtid = sf[5:] if sf.startswith("gtid:") else source_gtid() if sf == "now" else ""
        now = time.time()
        with self._io:
            self.cp = self.catalog.save_checkpoint(Checkpoint(
                gtid=E.format_state(E.parse_state(gtid)), source=self.source.address,
                started=now, updated=now))
            self.gtid_state = E.parse_state(self.cp.gtid)

    def _consume(self, b: Batch) -> None:
        data = b.data
        if not data:
            return
        for off, size, typ, pos, boundary, g in b.events or ():
            self._feed(b.file, typ, data[off:off + size], pos, boundary, g)

    def _feed(self, file: str, typ: int, ev, pos: int, boundary: bool, g) -> None:
        """One event of the stream: collect whole transactions into ``_pending``."""
        if typ == E.FORMAT_DESCRIPTION:
            if self._pending and file != self._pending_file:
                self._publish()
            self._fde = bytes(ev)
            self._file = file
            self._last_pos = pos
            return
        if typ == E.GTID:
            self._cur = [ev]
            self._cur_start = self._last_pos
        elif self._cur:
            self._cur.append(ev)
        self._last_pos = pos
        if not boundary or g is None or not self._cur:
            if boundary:
                self._cur = []
            return
        domain, server, seq = g
        parts, self._cur = self._cur, []
        done = self.gtid_state.get(domain)
        if done is not None and seq <= done[1]:
            return  # already stored (never store a transaction twice)
        if self._pending and self._pending_file != file:
            self._publish()
        if not self._pending:
            self._pending_since = time.monotonic()
            self._pending_file = file
            self._pending_start = self._cur_start
        ts = E.HEADER.unpack_from(ev, 0)[0]
        t = Txn(domain, server, seq, ts, b"".join(bytes(p) for p in parts), pos)
        self._pending.append(t)
        self._pending_bytes += len(t.data)

    # ---- reading a relay directory instead of a dump connection -----------------------

    def _relay_session(self) -> None:
        """Back up from the relay files of a relay task (``relay_dir``): one dump
        of the primary serves both, and the relay's switch-master carries the
        backup across failovers.  Reads only the relay's durable part."""
        from console.engine.relay.reader import RelayReader
        from console.mysql.binlog.writer import read_events

        reader = RelayReader(self.opts.relay_dir)
        if not self._start_recorded():
            self._record_start(self._source_gtid_now)
        self.set_phase("reading-relay")
        self.set_error("")
        self._connected = self._streamed = True
        self._cur, self._fde = [], b""
        where: tuple[str, str, int] | None = None     # after the last boundary consumed
        current = ("", "")
        pin = f"backup-{self.task_id}"
        while True:
            if where is None:
                events = reader.events(gtid=E.format_state(self.gtid_state), pin=pin)
            else:
                events = reader.events(subdir=where[0], file=where[1], pos=where[2], pin=pin)
            for ev in events:
                key = (ev.subdir, ev.file)
                label = f"{ev.subdir}/{ev.file}"
                if key != current:
                    current = key
                    if ev.type != E.FORMAT_DESCRIPTION:     # started inside the file
                        path = reader.store.subdir_path(ev.subdir) / ev.file
                        fde = next(iter(read_events(path, 4)), (0, b""))[1]
                        if fde[4:5] == bytes([E.FORMAT_DESCRIPTION]):
                            self._feed(label, E.FORMAT_DESCRIPTION, fde, 0, True, None)
                g = tuple(int(x) for x in ev.gtid.split("-")) if ev.gtid else None
                self._feed(label, ev.type, ev.data, ev.log_pos, ev.boundary, g)
                if ev.boundary:
                    where = (ev.subdir, ev.file, ev.end_offset)
                if self._pending and time.monotonic() - self._pending_since >= self.opts.flush_interval:
                    self._publish()
                if self.stopping:
                    raise TaskStopped()
                if not self._resume.is_set():
                    raise EndSession()
            self._cur = []
            self._publish()
            self._maybe_snapshot()
            self.sleep(min(0.2, self.opts.flush_interval))

    def _source_gtid_now(self) -> str:
        c = connect(self._pick_source(), read_timeout=10)
        try:
            return str(query_one(c, "SELECT @@gtid_binlog_pos AS g")["g"] or "")
        finally:
            c.close()

    def _publish(self) -> None:
        """Store the pending transactions as one segment, then move the checkpoint."""
        txns = self._pending
        if not txns:
            return
        if not self._fde:
            raise DumpError("no FORMAT_DESCRIPTION event before the first transaction",
                            transient=True)
        raw = build_segment(self._fde, txns)
        stored = zstd.compress(raw)
        seq = self.cp.seq + 1
        new_state = advance(self.gtid_state, txns)
        man = SegmentManifest(
            seq=seq, source=self.source.address, source_id=self._source_id,
            binlog_file=self._pending_file, start_pos=self._pending_start, end_pos=txns[-1].end_pos,
            gtid_start=E.format_state(self.gtid_state), gtid_end=E.format_state(new_state),
            domains=domains_of(txns), first_ts=txns[0].commit_ts, last_ts=txns[-1].commit_ts,
            transactions=len(txns), raw_bytes=len(raw), stored_bytes=len(stored),
            sha256=sha256(stored), created=time.time())
        with self._io:
            self.catalog.publish_segment(stored, man)
            self.gtid_state = new_state
            self.cp = self.catalog.save_checkpoint(Checkpoint(
                seq=seq, gtid=man.gtid_end, source=man.source, binlog_file=man.binlog_file,
                binlog_pos=man.end_pos, last_event_ts=man.last_ts,
                caught_up_at=self.cp.caught_up_at, updated=time.time(), started=self.cp.started))
        self._pending, self._pending_bytes = [], 0
        self._txns += len(txns)
        segs, seg_b, snap_b = self._stats
        self._stats = (segs + 1, seg_b + len(stored), snap_b)
        self._timeline.append((man.first_ts, man.last_ts, man.transactions))

    def _safe_publish(self) -> None:
        try:
            self._publish()
        except (StorageError, zstd.ZstdError, DumpError, OSError) as e:
            self.set_error(f"could not store the last transactions: {e}")
            self._pending, self._pending_bytes = [], 0

    def _mark_caught_up(self) -> None:
        now = time.time()
        if now - self.cp.caught_up_at < 1.0:
            return
        with self._io:
            self.cp = self.catalog.save_checkpoint(replace(self.cp, caught_up_at=now - 0.1,
                                                           updated=now))

    def _close(self) -> None:
        c, self.client = self.client, None
        self._connected = False
        self._cur = []
        if c is not None:
            c.close()

    # ---- snapshots and retention ---------------------------------------------------------

    def _maybe_snapshot(self) -> None:
        h = self.opts.snapshot_interval_hours
        if h <= 0 or self._snap_thread is not None:
            return
        now = time.time()
        if not self._last_snapshot:
            snaps = self.catalog.snapshots()
            self._last_snapshot = snaps[-1].finished if snaps else 1.0
        if now - self._last_snapshot >= h * 3600:
            self.snapshot_now(actor="auto")

    @command("snapshot-now", help="take a base snapshot now (in the background)")
    def snapshot_now(self, method: str = "", actor: str = "operator") -> str:
        """Take a base snapshot now; it runs beside the log backup."""
        from console.engine.backup.snapshot import take_snapshot

        if self._snap_thread is not None:
            raise CommandError(f"a snapshot is already running ({self._snap_running})")
        method = method or self.opts.snapshot_method
        host = self.opts.snapshot_host
        ep = self.eps.ops_for(host) if host else self.source

        def work() -> None:
            try:
                m = take_snapshot(self.storage, ep, method)
                self._last_snapshot = m.finished
                if self.engine:
                    self.engine.audit(actor, "snapshot", self.task_id, "ok",
                                      f"{m.id} {m.method} at GTID {m.gtid} ({m.stored_bytes} bytes)")
                self.apply_retention(actor="engine")
            except UserError as e:
                self.set_error(f"snapshot failed: {e}")
                if self.engine:
                    self.engine.audit(actor, "snapshot", self.task_id, "failed", str(e))
            finally:
                self._snap_running = ""
                self._snap_thread = None
                self._stats_at = 0.0

        self._snap_running = f"{method} of {ep.label}"
        self._snap_thread = threading.Thread(target=work, name=f"backup-snap-{self.task_id}",
                                             daemon=True)
        self._snap_thread.start()
        return f"snapshot started: {self._snap_running}"

    @command("apply-retention", help="delete snapshots and segments beyond the retention policy")
    def apply_retention(self, actor: str = "operator") -> str:
        from console.engine.backup.retention import apply_retention

        removed = apply_retention(self.catalog, self.opts.keep_snapshots, self.opts.keep_days)
        self._stats_at = 0.0
        return removed.describe()

    @command("verify", help="check every checksum and that the GTIDs have no gap")
    def verify(self, quick: bool = False) -> str:
        """Verify the stored backup (``quick``: manifests and sha256 only)."""
        from console.engine.backup.verify import verify

        r = verify(self.catalog, deep=not quick)
        head = (f"{r.segments} segments, {r.transactions} transactions, {r.snapshots} snapshots: ")
        if r.ok:
            return head + "OK"
        raise CommandError(head + f"{len(r.problems)} problem(s), first: {r.problems[0]}")

    @command("restore", help="point-in-time restore into a new directory (never the cluster)")
    def restore(self, target_dir: str, to_time: str = "", to_gtid: str = "", port: int = 3307,
                keep_running: bool = False, force: bool = False, actor: str = "operator") -> str:
        """Restore to a time ('YYYY-MM-DD HH:MM:SS') or GTID into TARGET_DIR; blocks until done.
        ``keep_running`` leaves the restored server running (the result says how to reach it);
        ``force`` replaces an incomplete restore left in TARGET_DIR."""
        from console.engine.backup.restore import parse_time, restore

        if bool(to_time) == bool(to_gtid):
            raise CommandError("restore: give exactly one of to_time or to_gtid")
        if not target_dir:
            raise CommandError("restore: give the target directory")

        def flag(v) -> bool:
            return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")

        r = restore(self.opts.storage, target_dir, port=int(port), keep_running=flag(keep_running),
                    force=flag(force),
                    to_time=parse_time(to_time) if to_time else None, to_gtid=to_gtid or None)
        return (f"restored {r.target} into {r.target_dir}: snapshot {r.snapshot} + "
                f"{r.transactions} transactions -> GTID {r.restored_gtid}; {r.how_to_reach()}")

    # ---- source polling (status) ----------------------------------------------------------

    def _poll_source(self) -> None:
        while not self.stopping and self.state not in ("done", "failed"):
            ep = self.source
            try:
                c = connect(ep, connect_timeout=2, read_timeout=5)
                try:
                    g = query_one(c, "SELECT @@gtid_binlog_pos AS g, @@expire_logs_days AS d")
                    logs = query(c, "SHOW BINARY LOGS")
                finally:
                    c.close()
                self._source_gtid = str(g["g"] or "")
                self._samples.append((time.time(), E.parse_state(self._source_gtid)))
                self._polled = True
                self._oldest_binlog = str(logs[0]["Log_name"]) if logs else ""
                days = float(g["d"] or 0)
                self._retention = f"binlogs expire after {days:g} days" if days else "binlogs never expire"
            except Exception:  # noqa: BLE001 - status only
                pass
            self._stop.wait(0.5)

    def lag_seconds(self) -> float | None:
        """Age of the oldest source position sample not yet covered by the checkpoint."""
        if not self._polled:
            return None
        now = time.time()
        while self._samples and state_le(self._samples[0][1], self.gtid_state):
            self._samples.popleft()
        return 0.0 if not self._samples else round(now - self._samples[0][0], 2)

    def _refresh_catalog(self) -> None:
        """Re-read sizes from storage at start and after snapshots/retention
        (segments published by this task are counted as they go)."""
        if self._stats_at:
            return
        self._stats_at = time.monotonic()
        try:
            self._stats = self.catalog.stored_bytes()
            self._snapshots = tuple((s.id, s.method, s.finished, s.stored_bytes, s.gtid)
                                    for s in self.catalog.snapshots())
        except (StorageError, OSError):
            pass

    def detail(self) -> BackupStatus:
        self._refresh_catalog()
        lag = self.lag_seconds()
        segs, seg_b, snap_b = self._stats
        return BackupStatus(
            source=self.source.label, connected=self._connected, storage=str(self.storage.root),
            checkpoint_gtid=self.cp.gtid, checkpoint_time=float(self.cp.last_event_ts),
            checkpoint_seq=self.cp.seq, source_gtid=self._source_gtid, lag_seconds=lag,
            caught_up=lag == 0.0, segments=segs, segment_bytes=seg_b,
            snapshot_bytes=snap_b, snapshots=self._snapshots, snapshot_running=self._snap_running,
            transactions=self._txns, retries=self._retries, failovers=self._failovers,
            source_oldest_binlog=self._oldest_binlog, source_retention=self._retention,
            last_error=self._last_error, timeline=tuple(self._timeline))

    def summary(self) -> str:
        lag = self.lag_seconds()
        t = time.strftime("%H:%M:%S", time.localtime(self.cp.last_event_ts)) if self.cp.last_event_ts else "-"
        return (f"backup of {self.source.label}: checkpoint {self.cp.gtid or '-'} ({t}), "
                f"lag {'?' if lag is None else f'{lag:.1f}s'}")
