"""``dbops-console status``: the dashboard's snapshot, for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.api.snapshots import topology_dict
from console.commands.common import config_from_args, print_json

if TYPE_CHECKING:  # lazy: keeps other subcommands' startup short
    from console.engine.topology.model import Topology


def register(sub) -> None:
    p = sub.add_parser("status", help="print hosts, roles, positions, lags and errors")
    p.add_argument("--cluster", metavar="NAME", help="only this cluster")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_from_args(args)
    clusters = [cfg.cluster(args.cluster)] if args.cluster else list(cfg.clusters.values())
    from console.engine.topology.monitor import one_shot

    topos = [one_shot(c) for c in clusters]
    if args.json:
        print_json({"clusters": {t.cluster: topology_dict(t) for t in topos}})
        return 0
    for t in topos:
        print(render_text(t))
    return 0


def fmt_lag(h) -> str:
    if h.heartbeat_lag is not None:
        return f"{h.heartbeat_lag * 1000:.0f}ms"
    if h.seconds_behind is not None:
        return f"{h.seconds_behind}s"
    return "-"


def render_text(t: Topology) -> str:
    lines = [f"cluster {t.cluster}"]
    hdr = f"  {'host':<10} {'address':<16} {'role':<12} {'ro':<3} {'binlog':<24} {'io/sql':<9} {'lag':<8} gtid"
    lines.append(hdr)
    for h in t.hosts:
        if not h.reachable:
            lines.append(f"  {h.name:<10} {h.address:<16} {h.role:<12} {'-':<3} UNREACHABLE: {h.error}")
            continue
        iosql = f"{h.io_thread or '-'}/{h.sql_thread or '-'}" if h.channels else "-"
        lines.append(f"  {h.name:<10} {h.address:<16} {h.role:<12} {'on' if h.read_only else 'off':<3} "
                     f"{h.position:<24} {iosql:<9} {fmt_lag(h):<8} {h.gtid}")
    for p in t.problems:
        lines.append(f"  ! {p}")
    return "\n".join(lines)
