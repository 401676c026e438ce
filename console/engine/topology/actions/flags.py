"""Per-cluster operator flags kept in the state directory:

* downtime: ``STATE_DIR/topology/<cluster>/downtime.json`` -- host address ->
  {until, reason, by}.  No recovery acts on a downtimed host: the failover
  ranking excludes it, and an automatic failover of a downtimed primary is
  not started.
* recovery: ``STATE_DIR/topology/<cluster>/recovery.json`` -- {enabled, at,
  by}.  When disabled, the failover task starts no automatic recovery
  (operator-started switchovers/failovers still run).

Both are read on every check (a few hundred bytes), so a change made by the
CLI is seen by a running engine without a restart.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from console.engine.state import read_json, write_json_atomic
from console.errors import UserError

_DUR = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1h30m``, ``1d`` -> seconds (> 0)."""
    t = (text or "").strip().lower()
    pos, total = 0, 0.0
    for m in _DUR.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise UserError(f"--for {text!r}: not a duration (use e.g. 90s, 15m, 2h, 1h30m, 1d; more than 0)")
    return total


def _dir(state_dir: Path | None, cluster: str) -> Path | None:
    return None if state_dir is None else Path(state_dir) / "topology" / cluster


# ---- downtime -----------------------------------------------------------------
def downtimes(state_dir: Path | None, cluster: str, now: float | None = None) -> dict[str, dict]:
    """Active downtimes: address -> {until, reason, by} (expired ones dropped)."""
    d = _dir(state_dir, cluster)
    if d is None:
        return {}
    now = time.time() if now is None else now
    items = read_json(d / "downtime.json", {}) or {}
    return {a: v for a, v in items.items() if float(v.get("until", 0)) > now}


def downtimed(state_dir: Path | None, cluster: str) -> frozenset[str]:
    return frozenset(downtimes(state_dir, cluster))


def set_downtime(state_dir: Path, cluster: str, address: str, seconds: float, *,
                 reason: str = "", by: str = "operator") -> dict:
    d = _dir(state_dir, cluster)
    items = downtimes(state_dir, cluster)
    rec = {"until": time.time() + seconds, "reason": reason, "by": by, "at": time.time()}
    items[address] = rec
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / "downtime.json", items)
    return rec


def clear_downtime(state_dir: Path, cluster: str, address: str) -> bool:
    d = _dir(state_dir, cluster)
    items = downtimes(state_dir, cluster)
    if address not in items:
        return False
    del items[address]
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / "downtime.json", items)
    return True


# ---- automatic recovery switch -------------------------------------------------------
def recovery_enabled(state_dir: Path | None, cluster: str) -> bool:
    d = _dir(state_dir, cluster)
    if d is None:
        return True
    return bool((read_json(d / "recovery.json", {}) or {}).get("enabled", True))


def set_recovery(state_dir: Path, cluster: str, enabled: bool, by: str = "operator") -> None:
    d = _dir(state_dir, cluster)
    d.mkdir(parents=True, exist_ok=True)
    write_json_atomic(d / "recovery.json", {"enabled": bool(enabled), "at": time.time(), "by": by})


def flags_dict(state_dir: Path | None, cluster: str) -> dict:
    """For status JSON: {"recovery_enabled": bool, "downtime": {address: {...}}}."""
    return {"recovery_enabled": recovery_enabled(state_dir, cluster),
            "downtime": downtimes(state_dir, cluster)}
