"""``[tasks.NAME] kind = "backup"`` options.

::

    [tasks.backup-main]
    kind = "backup"
    cluster = "main"
    storage = "/var/backups/dbops/main"   # local directory (created if missing)
    host = ""                    # where to start streaming (default: the cluster's primary)
    follow_primary = true        # after a failover, continue from the new primary by GTID
    server_id = 4243             # our replica server_id for the binlog dump (unique)
    heartbeat = 0.5              # seconds; an idle source sends one this often
    flush_interval = 0.5         # max seconds a complete transaction waits before it is stored
    segment_max_mb = 16          # a segment is closed at this raw size
    start_from = "oldest"        # oldest | now | "gtid:0-1-100"  (first start only)
    snapshot_method = "auto"     # auto | mariadb-backup | mariadb-dump
    snapshot_host = ""           # host to snapshot (default: the streaming source)
    snapshot_interval_hours = 0  # take snapshots on this period while running (0: on request)
    keep_snapshots = 0           # retention: keep the newest N snapshots (0: no count limit)
    keep_days = 0                # retention: keep snapshots younger than D days (0: no age limit)
    reconnect_max = 10.0         # cap of the reconnect backoff, seconds
    relay_dir = ""               # read a relay task's files instead of opening our own dump
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.config import SERVER_ID_MAX, Table, register_task_kind
from console.engine.relay.options import check_start_from as relay_check_start_from

METHODS = ("auto", "mariadb-backup", "mariadb-dump")


@dataclass(frozen=True)
class BackupOptions:
    storage: Path
    host: str = ""
    follow_primary: bool = True
    server_id: int = 4243
    heartbeat: float = 0.5
    flush_interval: float = 0.5
    segment_max_mb: float = 16.0
    start_from: str = "oldest"
    snapshot_method: str = "auto"
    snapshot_host: str = ""
    snapshot_interval_hours: float = 0.0
    keep_snapshots: int = 0
    keep_days: float = 0.0
    reconnect_max: float = 10.0
    relay_dir: Path | None = None


def check_start_from(value: str) -> str | None:
    """None when fine, else the reason: as for a relay, but no file:NAME:POS
    (a backup always resumes by GTID)."""
    return relay_check_start_from(value, allow_file=False)


def parse_backup(t: Table) -> BackupOptions:
    start_from = t.get("start_from", str, "oldest")
    why = check_start_from(start_from)
    if why:
        raise t.error("start_from", why)
    return BackupOptions(
        storage=t.path_value("storage"),
        host=t.get("host", str, ""),
        follow_primary=t.get("follow_primary", bool, True),
        server_id=t.get("server_id", int, 4243, minimum=1, maximum=SERVER_ID_MAX),
        heartbeat=t.get("heartbeat", float, 0.5, minimum=0.1),
        flush_interval=t.get("flush_interval", float, 0.5, minimum=0.05),
        segment_max_mb=t.get("segment_max_mb", float, 16.0, minimum=0.01),
        start_from=start_from,
        snapshot_method=t.get("snapshot_method", str, "auto", choices=METHODS),
        snapshot_host=t.get("snapshot_host", str, ""),
        snapshot_interval_hours=t.get("snapshot_interval_hours", float, 0.0, minimum=0),
        keep_snapshots=t.get("keep_snapshots", int, 0, minimum=0),
        keep_days=t.get("keep_days", float, 0.0, minimum=0),
        reconnect_max=t.get("reconnect_max", float, 10.0, minimum=0.5),
        relay_dir=t.path_value("relay_dir", None),
    )


register_task_kind("backup", parse_backup)
