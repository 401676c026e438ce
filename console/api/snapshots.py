"""The JSON shapes of the engine's snapshots, one place for every face:
``status --json``, the API's clusters / tasks / audit, the live stream.

A cluster is its monitor's last ``Topology`` (hosts, roles, positions,
lags, problems); a task is its ``TaskStatus`` (``state``, ``phase``,
``since``, ``last_error``, ``throttle_reason``, ``summary`` and the kind's
``detail``), and a task declared in the config that the engine has not
built yet is ``state: "not started"``.  Every task says which ``engine``
runs it: this one's id for its own tasks; with a shared coordinator, a task
another engine of the fleet runs is that engine's last published status
(``detail`` null), its owner as ``engine``; "" when nobody runs it.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.errors import UserError

if TYPE_CHECKING:
    from console.engine.engine import Engine
    from console.engine.state import AuditEntry
    from console.engine.task import TaskStatus
    from console.engine.topology.model import Topology

NOT_STARTED = "not started"


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON values: dataclasses as dicts (properties not
    included), tuples as lists, paths and enums as strings, anything else
    unknown as its ``str``."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, (Path, bytes)):
        return str(obj) if isinstance(obj, Path) else obj.hex()
    return str(obj)


def host_dict(h) -> dict:
    d = jsonable(h)
    d["position"] = h.position
    d["gtid"] = h.gtid
    d["seconds_behind"] = h.seconds_behind
    d["io_thread"] = h.io_thread
    d["sql_thread"] = h.sql_thread
    d["replication_error"] = h.replication_error
    return d


def topology_dict(t: Topology) -> dict:
    return {
        "cluster": t.cluster,
        "taken_at": t.taken_at,
        "primary": t.primary.address if t.primary else None,
        "problems": list(t.problems),
        "hosts": [host_dict(h) for h in t.hosts],
    }


def cluster_dict(engine: Engine, name: str) -> dict:
    """The cluster's monitor snapshot; ``taken_at`` None before its first probe."""
    from console.engine.topology.monitor import monitor_id

    try:
        st = engine.task(monitor_id(name)).status()
    except UserError:  # no monitor: nothing seen yet
        st = None
    topo = st.detail.topology if st is not None and st.detail is not None else None
    if topo is None:
        return {"cluster": name, "taken_at": None, "primary": None, "problems": [], "hosts": [],
                "monitor": st.state if st else NOT_STARTED}
    d = topology_dict(topo)
    d["monitor"] = st.state
    d["lag_history"] = {a: list(v) for a, v in st.detail.lag_history}
    return d


def task_dict(st: TaskStatus) -> dict:
    d = jsonable(st)
    d["detail"] = jsonable(st.detail)
    return d


def declared_dict(engine: Engine, name: str) -> dict:
    """A task declared in the config that the engine has not built."""
    tc = engine.config.tasks[name]
    return {"task_id": name, "kind": tc.kind, "state": NOT_STARTED, "phase": "", "since": None,
            "last_error": "", "throttle_reason": "", "summary": "", "detail": None}


def fleet_dict(name: str, st: dict) -> dict:
    """A task another engine of the fleet runs, from its published status."""
    return {"task_id": name, "kind": st.get("kind", ""), "state": st.get("state", ""),
            "phase": st.get("phase", ""), "since": st.get("since"),
            "last_error": st.get("last_error", ""), "throttle_reason": st.get("throttle_reason", ""),
            "summary": st.get("summary", ""), "detail": None, "engine": st.get("engine", "")}


def tasks_list(engine: Engine, *, monitors: bool = False) -> list[dict]:
    """Every task the engine has (monitors only when asked) and every task
    declared in the config that it has not built, each with ``declared``,
    ``cluster`` and ``autostart`` from the config."""
    from console.engine.topology.monitor import MonitorTask

    out: dict[str, dict] = {}
    coord = engine.coordinator
    fleet = coord.fleet() if coord.shared else {}
    held = set(coord.held()) if coord.shared else None
    for t in engine.tasks():
        if isinstance(t, MonitorTask) and not monitors:
            continue
        if held is not None and t.task_id in fleet and t.task_id not in held:
            continue  # ended here, the fleet's record is newer
        out[t.task_id] = task_dict(t.status())
        out[t.task_id]["engine"] = coord.engine_id
    for name, st in fleet.items():
        if name not in out and st.get("engine"):
            out[name] = fleet_dict(name, st)
    owners = coord.owners() if coord.shared else {}
    for name in engine.config.tasks:
        if name not in out:
            out[name] = declared_dict(engine, name)
            out[name]["engine"] = owners.get(name, "")  # taken, its first status not told yet
    for name, d in out.items():
        tc = engine.config.tasks.get(name)
        d["declared"] = tc is not None
        d["cluster"] = tc.cluster if tc else None
        d["autostart"] = tc.autostart if tc else False
    return list(out.values())


def audit_dict(e: AuditEntry) -> dict:
    return dataclasses.asdict(e)


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` (values ``jsonable`` did not know as strings)."""
    import json

    return json.dumps(obj, default=str)
