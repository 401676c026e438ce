"""``kind = "relay"``: stream an upstream's binlog into local relay files.

::

    [tasks.relay-main]
    kind = "relay"
    cluster = "main"
    host = "db1"                 # upstream: a host of the cluster (default: its first host)
    relay_dir = "/var/lib/dbops/relay-main"
    server_id = 4242             # our replica server_id (unique in the topology)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.kinds.kind import TaskKind
from console.options import opt

SERVER_ID_MAX = 0xFFFFFFFF  # server_id is a 32-bit unsigned integer


def check_start_from(value: str, allow_file: bool = True) -> str | None:
    """None when fine, else the reason (``allow_file``: file:NAME:POS is allowed)."""
    if value in ("oldest", "now"):
        return None
    if value.startswith("gtid:"):
        from console.mysql.gtid import GtidError, parse

        try:
            parse(value[5:], "mariadb")
        except GtidError as e:
            return str(e)
        return None
    if allow_file and value.startswith("file:"):
        name, _, pos = value[5:].rpartition(":")
        if name and pos.isdigit() and int(pos) >= 4:
            return None
        return "file start must look like file:mysql-bin.000003:4"
    if not allow_file:
        return 'must be "oldest", "now" or "gtid:D-S-N[,...]"'
    return 'must be "oldest", "now", "gtid:D-S-N[,...]" or "file:NAME:POS"'


@dataclass(frozen=True)
class RelayOptions:
    relay_dir: Path = opt(doc="relay directory (created if missing)", flag="--relay-dir")
    host: str = opt("", "upstream: a host of the cluster (default: its first host)", flag=None)
    server_id: int = opt(4242, "our replica server_id (unique in the topology)", minimum=1,
                         maximum=SERVER_ID_MAX)
    heartbeat: float = opt(1.0, "heartbeat period; read watchdog = 3 x heartbeat + 1", minimum=0.1,
                           maximum=3600, unit="s", flag=None)
    flush_interval: float = opt(0.5, "most time between fsync + meta when busy", minimum=0.01,
                                maximum=60, unit="s", flag=None)
    start_from: str = opt("oldest", "first start: oldest | now | gtid:D-S-N | file:NAME:POS",
                          check=check_start_from)
    max_age_hours: float = opt(0.0, "purge relay files older than this (0: keep)", minimum=0,
                               unit="h", flag=None)
    max_size_mb: float = opt(0.0, "keep the relay under this size (0: no limit)", minimum=0,
                             unit="MB", flag=None)
    gtid_strict: bool = opt(True, "refuse to continue if the upstream lacks our GTIDs", flag=None)
    reconnect_max: float = opt(30.0, "cap of the reconnect backoff", minimum=0.5, maximum=3600,
                               unit="s", flag=None)
    stop_at_end: bool = opt(False, "exit once caught up with the upstream's current end",
                            config=False)
    semi_sync: bool = opt(False, "act as a semi-sync replica: ACK after fsync")


RELAY = TaskKind(
    name="relay",
    doc="stream an upstream's binlog into local relay files, byte-exact and crash-safe",
    options=RelayOptions,
    factory="console.engine.relay:make_relay_task",
    screen="console.tui.screens.relay:RelayScreen",
    detail="console.engine.relay.status:RelayStatus",
)
