"""``kind = "backup"``: continuous binlog backup, snapshots, retention, restore.

::

    [tasks.backup-main]
    kind = "backup"
    cluster = "main"
    storage = "/var/backups/dbops/main"   # local directory (created if missing)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.kinds.kind import TaskKind
from console.kinds.relay import SERVER_ID_MAX
from console.kinds.relay import check_start_from as relay_check_start_from
from console.options import opt

METHODS = ("auto", "mariadb-backup", "mariadb-dump")


def check_start_from(value: str) -> str | None:
    """As for a relay, but no file:NAME:POS (a backup always resumes by GTID)."""
    return relay_check_start_from(value, allow_file=False)


@dataclass(frozen=True)
class BackupOptions:
    storage: Path = opt(doc="storage directory (created if missing)")
    host: str = opt("", "where to start streaming (default: the cluster's primary)", flag=None)
    follow_primary: bool = opt(True, "after a failover, continue from the new primary by GTID")
    server_id: int = opt(4243, "our replica server_id for the binlog dump (unique)", minimum=1,
                         maximum=SERVER_ID_MAX)
    heartbeat: float = opt(0.5, "an idle source sends a heartbeat this often", minimum=0.1,
                           maximum=3600, unit="s")
    flush_interval: float = opt(0.5, "most time a complete transaction waits before it is stored",
                                minimum=0.05, maximum=3600, unit="s")
    segment_max_mb: float = opt(16.0, "a segment is closed at this raw size", minimum=0.01,
                                maximum=4096, unit="MB")
    start_from: str = opt("oldest", "first start only: oldest | now | gtid:D-S-N",
                          check=check_start_from)
    snapshot_method: str = opt("auto", "how snapshots are taken", choices=METHODS)
    snapshot_host: str = opt("", "host to snapshot (default: the streaming source)", flag=None)
    snapshot_interval_hours: float = opt(0.0, "take snapshots on this period while running "
                                              "(0: on request)", minimum=0, unit="h")
    keep_snapshots: int = opt(0, "retention: keep the newest N snapshots (0: no count limit)",
                              minimum=0)
    keep_days: float = opt(0.0, "retention: keep snapshots younger than this (0: no age limit)",
                           minimum=0, unit="days")
    reconnect_max: float = opt(10.0, "cap of the reconnect backoff", minimum=0.5, maximum=3600,
                               unit="s")
    relay_dir: Path | None = opt(None, "read a relay task's files instead of opening our own dump")


BACKUP = TaskKind(
    name="backup",
    doc="continuous binlog backup with a durable checkpoint, snapshots and point-in-time restore",
    options=BackupOptions,
    factory="console.engine.backup:make_backup_task",
    screen="console.tui.screens.backup:BackupScreen",
    detail="console.engine.backup.status:BackupStatus",
)
