"""``kind = "backup"``: continuous binlog backup, snapshots, retention, restore.

::

    [tasks.backup-main]
    kind = "backup"
    cluster = "main"
    storage = "/var/backups/dbops/main"   # local directory (created if missing)
    # or: storage = "s3://bucket/prefix" with s3_endpoint, credentials_file
    # encryption_key_file = "/etc/dbops/backup.key"   # client-side AES-256-GCM
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.kinds import storage_url
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
    storage: str = opt(doc="where backups go: a directory (created if missing), file:///path or "
                           "s3://bucket/prefix", path=True, check=storage_url.check)
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
    s3_endpoint: str = opt("", "s3:// storage: the S3 endpoint URL (default: AWS), e.g. "
                               "http://127.0.0.1:9000 for MinIO", check=storage_url.check_endpoint,
                           flag=None)
    s3_region: str = opt("us-east-1", "s3:// storage: the region to sign requests for", flag=None)
    credentials_file: Path | None = opt(None, "s3:// storage: an AWS-style credentials file "
                                              "(default: the environment, AWS_ACCESS_KEY_ID ...)",
                                        flag=None)
    encryption_key_file: Path | None = opt(None, "encrypt segments and snapshots (AES-256-GCM) "
                                                 "with the key in this file (64 hex digits or "
                                                 "base64)", flag=None)
    encryption_key_env: str = opt("", "as encryption_key_file, from this environment variable",
                                  flag=None)


def check_options(o: BackupOptions) -> list[tuple[str, str]]:
    """(key, reason) for what one option alone cannot check: the key and
    credentials files are readable and hold what they must, one key source."""
    from console.secret import read_key

    out: list[tuple[str, str]] = []
    if o.encryption_key_file and o.encryption_key_env:
        out.append(("encryption_key_env", "give only one of encryption_key_file, "
                                          "encryption_key_env"))
    elif o.encryption_key_file or o.encryption_key_env:
        key = "encryption_key_file" if o.encryption_key_file else "encryption_key_env"
        try:
            read_key(o.encryption_key_file, o.encryption_key_env)
        except ValueError as e:
            out.append((key, str(e)))
    if o.credentials_file:
        try:
            storage_url.read_credentials(str(o.credentials_file))
        except ValueError as e:
            out.append(("credentials_file", str(e)))
    return out


BACKUP = TaskKind(
    name="backup",
    doc="continuous binlog backup with a durable checkpoint, snapshots and point-in-time restore",
    options=BackupOptions,
    factory="console.engine.backup:make_backup_task",
    screen="console.tui.screens.backup:BackupScreen",
    detail="console.engine.backup.status:BackupStatus",
    check=check_options,
)
