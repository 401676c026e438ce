"""``dbops-console status``: the dashboard's snapshot, for scripts."""

from __future__ import annotations

import time

from console.api.snapshots import topology_dict
from console.commands.common import config_from_args, print_json


def register(sub) -> None:
    p = sub.add_parser("status", help="print hosts, roles, positions, lags and errors")
    p.add_argument("--cluster", metavar="NAME", help="only this cluster")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_from_args(args)
    clusters = [cfg.cluster(args.cluster)] if args.cluster else list(cfg.clusters.values())
    from console.commands.engine_link import served

    client = served(cfg)
    if client:  # an engine serves this state directory: its snapshots, no probe of ours
        every = client.clusters()
        snaps = {c.name: every[c.name] for c in clusters if c.name in every}
        info = client.info()
        pid = info["pid"]
        tasks = [{k: t.get(k) for k in ("task_id", "kind", "state", "phase", "last_error", "engine")}
                 for t in client.tasks()]
    else:
        from console.engine.topology.monitor import one_shot_all

        snaps = {t.cluster: topology_dict(t) for t in one_shot_all(clusters)}
        pid, info, tasks = None, {}, None
    from console.engine.topology.actions.flags import flags_dict

    snaps = {n: {**d, **flags_dict(cfg.state_dir, n)} for n, d in snaps.items()}
    if args.json:
        extra = {"engine_pid": pid, "engine": info.get("engine"),
                 "coordinator": info.get("coordinator"), "tasks": tasks} if pid else {}
        print_json({"clusters": snaps, **extra})
        return 0
    for d in snaps.values():
        print(render_text(d, engine_pid=pid))
    if tasks and str(info.get("coordinator", "")).startswith("etcd"):
        print(render_tasks(tasks))
    return 0


def render_tasks(tasks: list[dict]) -> str:
    """The engine's tasks (the fleet's, with a shared coordinator) and who runs each."""
    lines = [f"tasks  {'name':<16} {'kind':<10} {'state':<12} engine"]
    for t in tasks:
        lines.append(f"       {t['task_id']:<16} {t['kind'] or '-':<10} {t['state']:<12} "
                     f"{t.get('engine') or '-'}")
    return "\n".join(lines)


def fmt_lag(h: dict) -> str:
    if h.get("heartbeat_lag") is not None:
        return f"{h['heartbeat_lag'] * 1000:.0f}ms"
    if h.get("seconds_behind") is not None:
        return f"{h['seconds_behind']}s"
    return "-"


def render_text(t: dict, engine_pid: int | None = None) -> str:
    """One cluster (``topology_dict``'s shape) as the status table."""
    head = f"cluster {t['cluster']}"
    if engine_pid:
        when = time.strftime("%H:%M:%S", time.localtime(t["taken_at"])) if t["taken_at"] else "-"
        head += f" (the engine's snapshot, pid {engine_pid}, taken {when})"
    lines = [head]
    hdr = f"  {'host':<10} {'address':<16} {'role':<12} {'ro':<3} {'binlog':<24} {'io/sql':<9} {'lag':<8} gtid"
    lines.append(hdr)
    for h in t["hosts"]:
        if not h["reachable"]:
            lines.append(f"  {h['name']:<10} {h['address']:<16} {h['role']:<12} {'-':<3} "
                         f"UNREACHABLE: {h['error']}")
            continue
        iosql = f"{h['io_thread'] or '-'}/{h['sql_thread'] or '-'}" if h["channels"] else "-"
        lines.append(f"  {h['name']:<10} {h['address']:<16} {h['role']:<12} "
                     f"{'on' if h['read_only'] else 'off':<3} {h['position']:<24} {iosql:<9} "
                     f"{fmt_lag(h):<8} {h['gtid']}")
    for p in t["problems"]:
        lines.append(f"  ! {p}")
    for addr, dt in (t.get("downtime") or {}).items():
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(dt["until"]))
        lines.append(f"  downtime: {addr} until {until}" + (f" ({dt['reason']})" if dt.get("reason") else ""))
    if t.get("recovery_enabled") is False:
        lines.append("  automatic recovery: OFF (dbops-console topology recovery on)")
    if t.get("taken_at") is None:
        lines.append("  (no snapshot yet: the engine's monitor has not probed this cluster)")
    return "\n".join(lines)
