"""The backup's status: the frozen ``BackupStatus``, the source poller
(its GTID position, oldest binlog and retention, every 0.5 s), the recovery
point lag, the stored sizes, and ``BackupStatusReport`` (mixed into
``BackupTask``, ``logtask.py``), which builds the detail and summary."""

from __future__ import annotations

import time
from dataclasses import dataclass

from console.engine.backup.storage import StorageError
from console.mysql import gtid as G
from console.mysql.connection import connect, query, query_one


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


class BackupStatusReport:
    """Status of ``BackupTask``: source polling, lag, detail, summary."""

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
                self._samples.append((time.time(), G.position(self._source_gtid)))
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
        while self._samples and self._samples[0][1] <= self.gtid_state:
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
            source=self.source.label, connected=self._connected, storage=self.storage.describe(),
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
