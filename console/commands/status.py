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
        pid = client.info()["pid"]
    else:
        from console.engine.topology.monitor import one_shot_all

        snaps = {t.cluster: topology_dict(t) for t in one_shot_all(clusters)}
        pid = None
    if args.json:
        print_json({"clusters": snaps, **({"engine_pid": pid} if pid else {})})
        return 0
    for d in snaps.values():
        print(render_text(d, engine_pid=pid))
    return 0


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
    if t.get("taken_at") is None:
        lines.append("  (no snapshot yet: the engine's monitor has not probed this cluster)")
    return "\n".join(lines)
