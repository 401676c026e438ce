"""``[tasks.NAME] kind = "relay"`` options.

::

    [tasks.relay-main]
    kind = "relay"
    cluster = "main"
    host = "db1"                 # upstream: a host of the cluster (default: its first host)
    relay_dir = "/var/lib/dbops/relay-main"
    server_id = 4242             # our replica server_id (unique in the topology)
    heartbeat = 1.0              # seconds; read watchdog = 3 x heartbeat + 1
    flush_interval = 0.5         # max seconds between fsync + meta when busy
    start_from = "oldest"        # oldest | now | "gtid:0-1-100" | "file:mysql-bin.000003:4"
    max_age_hours = 0            # purge relay files older than this (0: keep)
    max_size_mb = 0              # keep the relay under this size (0: no limit)
    gtid_strict = true           # refuse to continue if the upstream lacks our GTIDs
    reconnect_max = 30.0         # cap of the reconnect backoff, seconds
    semi_sync = false            # act as a semi-sync replica: ACK after fsync
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.config import SERVER_ID_MAX, Table, register_task_kind


@dataclass(frozen=True)
class RelayOptions:
    relay_dir: Path
    host: str = ""
    server_id: int = 4242
    heartbeat: float = 1.0
    flush_interval: float = 0.5
    start_from: str = "oldest"
    max_age_hours: float = 0.0
    max_size_mb: float = 0.0
    gtid_strict: bool = True
    reconnect_max: float = 30.0
    stop_at_end: bool = False
    semi_sync: bool = False


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


def parse_relay(t: Table) -> RelayOptions:
    start_from = t.get("start_from", str, "oldest")
    why = check_start_from(start_from)
    if why:
        raise t.error("start_from", why)
    return RelayOptions(
        relay_dir=t.path_value("relay_dir"),
        host=t.get("host", str, ""),
        server_id=t.get("server_id", int, 4242, minimum=1, maximum=SERVER_ID_MAX),
        heartbeat=t.get("heartbeat", float, 1.0, minimum=0.1),
        flush_interval=t.get("flush_interval", float, 0.5, minimum=0.01),
        start_from=start_from,
        max_age_hours=t.get("max_age_hours", float, 0.0, minimum=0),
        max_size_mb=t.get("max_size_mb", float, 0.0, minimum=0),
        gtid_strict=t.get("gtid_strict", bool, True),
        reconnect_max=t.get("reconnect_max", float, 30.0, minimum=0.5),
        semi_sync=t.get("semi_sync", bool, False),
    )


register_task_kind("relay", parse_relay)
