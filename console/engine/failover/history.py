"""Recovery history, for anti-flapping: no second automatic recovery of a
cluster within its ``block_period`` unless the last one was acknowledged.

Kept in two places: the state dir (``failover/<cluster>/history.json``) and
on the cluster itself (``dbops.failover_history``, written on the new
primary, so it replicates and every console sees it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from console.engine.state import read_json, write_json_atomic
from console.mysql.connection import execute, query

TABLE = "dbops.failover_history"


@dataclass(frozen=True)
class Recovery:
    id: int
    kind: str
    at: float
    old_primary: str
    new_primary: str
    acknowledged: bool
    recovery_id: str = ""  # the recovery's id (journal, hooks' DBOPS_RECOVERY_ID)


def _path(state_dir: Path, cluster: str) -> Path:
    d = Path(state_dir) / "failover" / cluster
    d.mkdir(parents=True, exist_ok=True)
    return d / "history.json"


def load_local(state_dir: Path, cluster: str) -> list[Recovery]:
    return [Recovery(**r) for r in read_json(_path(state_dir, cluster), [])]


def record_local(state_dir: Path, cluster: str, kind: str, old: str, new: str,
                 recovery_id: str = "") -> Recovery:
    items = load_local(state_dir, cluster)
    rec = Recovery(len(items) + 1, kind, time.time(), old, new, False, recovery_id)
    items.append(rec)
    write_json_atomic(_path(state_dir, cluster), [r.__dict__ for r in items[-50:]])
    return rec


def acknowledged_at(state_dir: Path | None, cluster: str) -> float:
    """When this console last acknowledged the cluster's recoveries (0: never).
    Covers records on the cluster it could not update (the primary was down)."""
    if state_dir is None:
        return 0.0
    return float((read_json(_path(state_dir, cluster).with_name("ack.json"), {}) or {}).get("at", 0.0))


def acknowledge_local(state_dir: Path, cluster: str, by: str = "operator") -> int:
    write_json_atomic(_path(state_dir, cluster).with_name("ack.json"), {"at": time.time(), "by": by})
    items = load_local(state_dir, cluster)
    n = sum(1 for r in items if not r.acknowledged)
    items = [Recovery(**{**r.__dict__, "acknowledged": True}) for r in items]
    write_json_atomic(_path(state_dir, cluster), [r.__dict__ for r in items])
    return n


def ensure_table(conn) -> None:
    execute(conn, "CREATE DATABASE IF NOT EXISTS dbops")
    execute(conn, f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                  "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                  "cluster VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, "
                  "at DOUBLE NOT NULL, old_primary VARCHAR(255) NOT NULL, "
                  "new_primary VARCHAR(255) NOT NULL, acknowledged TINYINT NOT NULL DEFAULT 0, "
                  "recovery_id VARCHAR(64) NOT NULL DEFAULT '', "
                  "KEY (cluster, at)) ENGINE=InnoDB")
    # a table made before recovery ids (no ADD COLUMN IF NOT EXISTS on MySQL)
    if not query(conn, "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'dbops' "
                       "AND TABLE_NAME = 'failover_history' AND COLUMN_NAME = 'recovery_id'"):
        execute(conn, f"ALTER TABLE {TABLE} ADD COLUMN recovery_id VARCHAR(64) NOT NULL DEFAULT ''")


def record_remote(conn, cluster: str, kind: str, old: str, new: str, recovery_id: str = "") -> None:
    ensure_table(conn)
    execute(conn, f"INSERT INTO {TABLE} (cluster, kind, at, old_primary, new_primary, recovery_id) "
                  "VALUES (%s, %s, %s, %s, %s, %s)", (cluster, kind, time.time(), old, new, recovery_id))


def acknowledge_remote(conn, cluster: str) -> int:
    ensure_table(conn)
    return execute(conn, f"UPDATE {TABLE} SET acknowledged = 1 WHERE cluster = %s "
                         "AND acknowledged = 0", (cluster,))


def load_remote(conn, cluster: str) -> list[Recovery]:
    try:
        rows = query(conn, f"SELECT id, kind, at, old_primary, new_primary, acknowledged FROM {TABLE} "
                           "WHERE cluster = %s ORDER BY at DESC LIMIT 20", (cluster,))
    except Exception:  # noqa: BLE001 - no table yet: no history
        return []
    return [Recovery(int(r["id"]), r["kind"], float(r["at"]), r["old_primary"], r["new_primary"],
                     bool(r["acknowledged"])) for r in rows]


def blocking(recoveries: list[Recovery], block_period: float, now: float | None = None,
             acked_at: float = 0.0) -> Recovery | None:
    """The unacknowledged failover younger than ``block_period``, if any
    (records up to ``acked_at`` count as acknowledged; planned switchovers
    never block)."""
    now = time.time() if now is None else now
    for r in sorted(recoveries, key=lambda r: r.at, reverse=True):
        if r.kind == "failover" and not r.acknowledged and r.at > acked_at and now - r.at < block_period:
            return r
    return None
