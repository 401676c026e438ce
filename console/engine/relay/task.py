"""The relay task: stream an upstream's binlog into local relay files.

One engine thread runs sessions (connect, dump, write) until stopped; a
session ends on EOF (``stop_at_end``), pause, switch-master, or an error.
After any session the relay directory is cut back to ``relay.meta`` (the last
fsynced transaction boundary) and the next session resumes from there:
from the upstream ``file:pos`` while the upstream is the same server, by GTID
into a new subdirectory when it is another one.  Transient errors retry with
exponential backoff and jitter; the read watchdog is the socket timeout
(3 x heartbeat + 1 s).
(3 x heartbeat + 1 s).

This module holds the task's run and its sessions (connect, the start
position, the dump read into a pipe); ``RelayTask`` mixes in the writer side
(``writer.py``: relay files, fsync, relay.meta), the operator commands
(``commands.py``: switch-master, purge) and the status (``status.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pymysql

from console.engine.dumpsession import EndSession, SessionLoop, describe
from console.engine.relay.commands import RelayCommands
from console.engine.relay.pipe import BytePipe
from console.engine.relay.startcheck import AdHoc, meta_upstream, start_checks
from console.engine.relay.status import RateMeter, RelayStatusReport, UpstreamPoller
from console.engine.relay.store import RelayMeta, RelayStore
from console.engine.relay.writer import RelayWriter
from console.engine.task import Task, TaskStopped
from console.errors import UserError
from console.kinds.relay import RelayOptions
from console.mysql import gtid as G
from console.mysql.binlog.client import DumpClient, DumpError, ServerIdentity
from console.mysql.binlog.writer import BinlogFileWriter
from console.mysql.connection import (
    Endpoint,
    describe_error,
    query,
    query_one,
)


class RelayTask(RelayWriter, RelayCommands, RelayStatusReport, Task):
    kind = "relay"
    report_host = "dbops-relay"

    def __init__(self, task_id: str, endpoint: Endpoint, options: RelayOptions,
                 resolve_target=None, *, adhoc: AdHoc | None = None,
                 log: Callable[[str], None] | None = None):
        super().__init__(task_id)
        self.endpoint = endpoint
        self.opts = options
        self.store = RelayStore(options.relay_dir)
        self.resolve_target = resolve_target  # name -> Endpoint (cluster hosts)
        self.cluster: str | None = None          # config cluster, when declared in a config
        self.cluster_hosts: tuple[Endpoint, ...] = ()  # its hosts (ops accounts): server_id check
        self.adhoc = adhoc                       # the upstream was given on the command line
        self.log = log or (lambda msg: None)     # lines for the operator (the foreground command)
        self._start_note = ""
        self._lock_file = None
        self.meta: RelayMeta | None = None
        self.client: DumpClient | None = None
        self.writer: BinlogFileWriter | None = None
        self._writer_key: tuple[str, str] | None = None
        self._cand: tuple[str, int, int, str] | None = None
        self._last_flush = 0.0
        self._switch: tuple[Endpoint, bool] | None = None
        self._force_start: str | None = None
        self._retries = 0
        self._events = 0
        self._bytes = 0
        self._meter = RateMeter()
        self._recv = ("", 0)
        self._last_ts = 0
        self._connected = False
        self._identity = ""
        self._poll_stop = threading.Event()
        self._poller = UpstreamPoller(lambda: self.endpoint, self._poll_stop, f"relay-poll-{task_id}")
        self._last_purge = 0.0
        self._io_lock = threading.Lock()
        self._werr: BaseException | None = None
        self._wake = threading.Event()
        self._ack_pending = False
        self._acks = 0
        self._last_publish = 0.0  # the last position told to the coordinator

    # ---- main loop ---------------------------------------------------------------

    def run(self) -> None:
        self.set_phase("recovering")
        self.claim()  # (done already when started through preflight)
        self.meta = self.store.recover()
        if self.adhoc is None:
            self._follow_meta_upstream()
        elif self._start_note:
            self.log(self._start_note)
            if self.engine:
                self.engine.audit("engine", "relay-upstream", self.task_id, "ok", self._start_note)
        self._poller.start()

        def retry(err: BaseException) -> None:
            self._retries += 1
            if self.opts.stop_at_end and self._retries > 5:
                raise UserError(f"{describe(err)} (gave up after {self._retries - 1} retries)") from None

        def wait(seconds: float) -> None:
            self._wake.clear()
            if self._wake.wait(seconds) or self.stopping:  # switch-master or stop wakes us
                self.checkpoint()

        SessionLoop(self, session=self._session, end=self._end_after_failure, wait=wait,
                    reconnect_base=0.5, reconnect_max=self.opts.reconnect_max,
                    paused=lambda: bool(self._switch) or not self._resume.is_set(),
                    on_retry=retry).run()
        self.set_phase("caught-up")  # (stop_at_end: the upstream's end reached)

    def _end_after_failure(self) -> None:
        try:
            self._flush()  # everything up to the last boundary was written whole
        except OSError:
            pass
        self._end_session()

    def _follow_meta_upstream(self) -> None:
        """After a switch-master the relay keeps its new upstream across
        restarts: relay.meta names it, whatever the config still says."""
        ep = meta_upstream(self.meta, self.endpoint, self.resolve_target)
        if ep is None:
            return
        self.endpoint = ep
        if self.engine:
            self.engine.audit("engine", "relay-upstream", self.task_id, "ok",
                              f"following {self.endpoint.label} from relay.meta (switched earlier)")

    def start_checks(self) -> None:
        """Login, privileges, start position, the upstream relay.meta follows
        (``startcheck``) and the server_id, before anything is created."""
        self._start_note = start_checks(self)

    def dump_registration(self, upstream: Endpoint | None = None) -> tuple[int, tuple[Endpoint, ...], str]:
        up = upstream or self.endpoint
        eps = [up, *(h for h in self.cluster_hosts if h.address != up.address)]
        return self.opts.server_id, tuple(eps), f"tasks.{self.task_id}.server_id" if self.cluster else "--server-id"

    def claim(self) -> None:
        """The relay directory's lock: one relay per directory, for this
        process's life.  Under a shared coordinator the task's ownership lease
        is the one-writer rule instead (fenced writes, ``writer.py``): a flock
        held by a stopped engine would keep the taker-over out."""
        if self._lock_file is None and not self.leased:
            self._lock_file = self.store.lock(f"relay task {self.task_id}")

    def release(self) -> None:
        lf, self._lock_file = self._lock_file, None
        if lf is not None:
            lf.close()

    def cleanup(self) -> None:
        self._poll_stop.set()
        self._end_session()
        self.release()

    def pause(self, actor: str = "operator") -> None:
        """Pause: the stream is closed at once (the upstream must not wait on
        us); the durable position stays in relay.meta for resume."""
        super().pause(actor)
        c = self.client
        if c is not None:
            c.shutdown()

    def on_stop_requested(self) -> None:
        self._wake.set()
        c = self.client
        if c is not None:
            c.shutdown()

    # ---- one session -----------------------------------------------------------------

    def _session(self) -> bool:
        if self._switch:
            self.endpoint, force = self._switch
            self._switch = None
            self._force_start = "force" if force else None
        self.set_phase("connecting")
        client = DumpClient(self.endpoint, server_id=self.opts.server_id,
                            heartbeat=self.opts.heartbeat, stop_at_end=self.opts.stop_at_end,
                            gtid_strict=self.opts.gtid_strict, semi_sync=self.opts.semi_sync)
        self.client = client
        ident = client.connect()
        self._identity = ident.key
        if self.stopping:
            raise TaskStopped()
        meta = self._prepare_meta(client, ident)
        if meta.file:
            client.open(file=meta.file, pos=meta.pos, gtid_state=G.position(meta.gtid),
                        need_fde=meta.relay_pos <= 4 and meta.pos > 4)
        else:
            client.open(gtid=meta.gtid)
        self._connected = True
        self.set_phase("streaming")
        self._last_flush = time.monotonic()
        # Writing (pwrite, fsync, meta) runs in its own thread so that disk I/O
        # overlaps with reading and splitting the stream.
        q = BytePipe(64 << 20)
        self._werr = None
        wt = threading.Thread(target=self._write_loop, args=(q,), daemon=True,
                              name=f"relay-write-{self.task_id}")
        wt.start()
        reason = ""
        try:
            for batch in client.batches():
                if not q.put(batch, len(batch.data)):
                    break  # the writer failed: its error is raised below
                if batch.eof:
                    reason = "eof"
                elif self.stopping:
                    reason = "stop"
                elif not self._resume.is_set() or self._switch:
                    reason = "session"
                if reason:
                    break
        finally:
            q.put(None)
            wt.join()
        if self._werr is not None:
            raise self._werr
        self._flush()
        if reason == "eof":
            self._end_session()
            return True
        if reason == "stop":
            raise TaskStopped()
        if reason == "session":
            raise EndSession()  # pause, switch: the next session at once
        return False

    def _prepare_meta(self, client: DumpClient, ident: ServerIdentity) -> RelayMeta:
        meta = self.meta
        server = self.endpoint.address
        if meta is None:
            sub = self.store.new_subdir(ident.key)
            file, pos, gtid = self._fresh_start(client)
            # a file start inside a file begins a new relay file: magic + FDE, then events
            meta = RelayMeta(sub, ident.key, server, file, pos, 4 if file else 0, gtid, time.time())
            self.store.save_meta(meta)
        elif meta.identity != ident.key:
            gtid = self._check_continuity(client, meta)
            sub = self.store.new_subdir(ident.key)
            meta = RelayMeta(sub, ident.key, server, "", 0, 0, gtid, time.time())
            self.store.save_meta(meta)
            if self.engine:
                self.engine.audit("engine", "relay-subdir", self.task_id, "ok",
                                  f"{sub} for {self.endpoint.label} from GTID {gtid or 'start'}")
        elif meta.server != server:
            meta = RelayMeta(**{**meta.__dict__, "server": server})
            self.store.save_meta(meta)
        self._force_start = None
        self.meta = meta
        return meta

    def _fresh_start(self, client: DumpClient) -> tuple[str, int, str]:
        sf = self.opts.start_from
        if sf.startswith("gtid:"):
            return "", 0, sf[5:]
        if sf.startswith("file:"):
            name, _, pos = sf[5:].rpartition(":")
            return name, int(pos), ""
        c = client.conn  # the dump connection, before the dump starts
        assert c is not None
        try:
            if sf == "now":
                return "", 0, str(query_one(c, "SELECT @@gtid_binlog_pos AS g")["g"] or "")
            logs = query(c, "SHOW BINARY LOGS")
        except pymysql.MySQLError as e:
            raise describe_error(e, self.endpoint) from None
        if not logs:
            raise DumpError(f"{self.endpoint.label}: binary logging is off", transient=False)
        return str(logs[0]["Log_name"]), 4, ""

    def _check_continuity(self, client: DumpClient, meta: RelayMeta) -> str:
        """The GTID to continue from on another upstream; refuses a gap."""
        _, _, theirs_text = client.master_status()
        ours = G.parse(meta.gtid, G.MARIADB)
        theirs = G.parse(theirs_text, G.MARIADB)
        missing = ours.subtract(theirs)
        if missing.is_empty():
            return meta.gtid
        if self._force_start:
            # forced: continue from the new upstream's own position where it is behind
            return G.position(meta.gtid).common(G.position(theirs_text)).text()
        raise DumpError(f"{self.endpoint.label} lacks relayed transactions {missing.describe()} "
                        f"(its GTID position is {theirs_text or 'empty'}); refusing to continue "
                        f"there: use switch-master with force to accept the gap", transient=False)
