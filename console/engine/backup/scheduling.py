"""The backup's snapshot schedule and retention: a base snapshot every
``snapshot_interval_hours`` (checked from the sessions), ``snapshot-now``
(the snapshot runs in a thread beside the log backup, ``snapshot.py``), and
``apply-retention`` after each snapshot or on request (``retention.py``).

``SnapshotSchedule`` is mixed into ``BackupTask`` (``logtask.py``); the
engine finds its ``@command`` methods on the task's class."""

from __future__ import annotations

import threading
import time

from console.engine.task import command
from console.errors import CommandError, UserError


class SnapshotSchedule:
    """Snapshots and retention of ``BackupTask``."""

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

