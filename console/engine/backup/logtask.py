"""The backup task: continuous log backup, snapshots on request, retention.

One engine thread runs dump sessions against the source (the primary by
default) through the relay's raw ``DumpClient``.  Complete transactions are
collected and published as a segment (data, then manifest, then checkpoint)
when ``flush_interval`` has passed, when the stream goes idle, when the
source file changes or when the segment is big enough.  Every session
starts by GTID from the checkpoint, so a restart after ``kill -9``, a resume
after pause and a failover to another primary all continue with no gap and
no duplicate; a source lacking stored transactions is refused.

This module holds the run and its sessions (the source, the start GTID, a
dump connection or a relay directory, when to publish) and the task's
lifecycle; ``BackupTask`` mixes in the transactions' collection and the
segment publishing with its checkpoint (``publishing.py``), the snapshot
schedule and retention (``scheduling.py``), the ``verify`` and ``restore``
commands (``commands.py``) and the status (``status.py``).
"""

from __future__ import annotations

import collections
import threading
import time

from console.engine.backup.catalog import Catalog, Checkpoint
from console.engine.backup.commands import BackupCommands
from console.engine.backup.location import open_storage
from console.engine.backup.publishing import SegmentPublisher
from console.engine.backup.scheduling import SnapshotSchedule
from console.engine.backup.sources import ClusterEndpoints, find_primary, missing_from
from console.engine.backup.status import BackupStatusReport
from console.engine.dumpsession import RETRYABLE, EndSession, SessionLoop
from console.engine.relay.store import RelayError
from console.engine.replay.txn import Txn
from console.engine.task import Task, TaskStopped
from console.errors import UserError
from console.kinds.backup import BackupOptions
from console.mysql import gtid as G
from console.mysql.binlog import events as E
from console.mysql.binlog.client import DumpClient, DumpError
from console.mysql.connection import DBError, Endpoint, connect, query_one

IDLE_FLUSH = 0.2     # an idle stream publishes what it holds once it is this old


class BackupTask(SegmentPublisher, SnapshotSchedule, BackupCommands, BackupStatusReport, Task):
    kind = "backup"
    report_host = "dbops-backup"

    def __init__(self, task_id: str, endpoints: ClusterEndpoints, options: BackupOptions):
        super().__init__(task_id)
        self.eps = endpoints
        self.opts = options
        self.storage = open_storage(options, create=None)  # made when the task claims it
        self.catalog = Catalog(self.storage)
        self.cp = Checkpoint()
        self.gtid_state = G.GtidPosition()
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
        self.gtid_state = G.position(self.cp.gtid)
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
        """The storage's lock: one backup task per storage, for this process's
        life; under a shared coordinator the task's ownership lease instead
        (fenced publishes, ``publishing.py``)."""
        if self._lock_file is not None or self.leased:
            return

        def running(holder: str, pid: int | None) -> UserError:
            by = f" (pid {pid})" if pid else ""
            if holder == self._lock_owner:
                return UserError(f"backup {self.task_id} is already running{by}: stop it first "
                                 f"(it holds {self.storage.describe()})")
            return UserError(f"backup storage {self.storage.describe()} is in use by {holder or 'another process'}"
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
            return self.gtid_state.text()
        _, _, theirs = client.master_status()
        missing = missing_from(self.gtid_state.text(), theirs)
        if missing:
            raise DumpError(f"{self.source.label} lacks backed-up transactions {missing} "
                            f"(it is at {theirs or 'nothing'}); not continuing there "
                            f"to avoid a gap", transient=True)
        return self.gtid_state.text()

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
                gtid=G.position(gtid).text(), source=self.source.address,
                started=now, updated=now))
            self.gtid_state = G.position(self.cp.gtid)

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
                events = reader.events(gtid=self.gtid_state.text(), pin=pin)
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

    def _close(self) -> None:
        c, self.client = self.client, None
        self._connected = False
        self._cur = []
        if c is not None:
            c.close()
