"""``dbops-console topology VERB``: operator actions on a cluster's topology
(relocate, start-replica, stop-replica, read-only, downtime, recovery,
reattach) and the recovery history.  Thin calls into
``console/engine/topology/actions/``."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

from console.commands.common import config_from_args, print_json
from console.errors import UserError

VERBS = ("relocate", "start-replica", "stop-replica", "read-only", "downtime", "recovery",
         "reattach", "acknowledge", "history")
CHANGING = ("relocate", "start-replica", "stop-replica", "read-only", "reattach")


def register(sub) -> None:
    p = sub.add_parser("topology", help="topology actions: relocate, start/stop-replica, read-only, "
                                        "downtime, recovery on|off, reattach, acknowledge, history")
    v = p.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=type(p))

    def verb(name, help_, host=True):
        q = v.add_parser(name, help=help_)
        q.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help="console config (TOML)")
        q.add_argument("--cluster", metavar="NAME", help="cluster (needed when the config has several)")
        q.add_argument("--json", action="store_true", help="print the report as JSON")
        if name in CHANGING:
            q.add_argument("--dry-run", action="store_true", help="print the exact statements; change nothing")
            q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if host:
            q.add_argument("host", metavar="HOST", help="a host name from the config, or HOST:PORT")
        q.set_defaults(func=run, verb=name)
        return q

    r = verb("relocate", "replicate HOST from TARGET (another replica or the primary), by GTID")
    r.add_argument("--below", metavar="TARGET", required=True, help="the new source")
    r.add_argument("--wait-timeout", type=float, default=10.0, metavar="S",
                   help="how long TARGET may take to reach HOST's position (default 10)")
    verb("start-replica", "START SLAVE on HOST")
    verb("stop-replica", "STOP SLAVE on HOST")
    ro = verb("read-only", "SET GLOBAL read_only on HOST")
    ro.add_argument("state", choices=("on", "off"))
    d = verb("downtime", "no recovery acts on HOST for a while (state directory)")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 90s, 15m, 2h, 1h30m, 1d")
    g.add_argument("--end", action="store_true", help="end HOST's downtime now")
    d.add_argument("--reason", default="", help="shown with the downtime")
    rc = verb("recovery", "automatic recovery of the cluster on or off (state directory)", host=False)
    rc.add_argument("state", choices=("on", "off"))
    ra = verb("reattach", "re-attach an old primary below the current primary")
    ra.add_argument("--flashback", action="store_true",
                    help="roll back (mariadb-binlog --flashback) the transactions it holds that the "
                         "primary lacks, then re-attach; without it such a host is refused, its GTIDs listed")
    ra.add_argument("--wait-timeout", type=float, default=30.0, metavar="S",
                    help="how long it may take to reach the primary's position (default 30)")
    verb("acknowledge", "acknowledge the cluster's recoveries (lifts the anti-flapping block)", host=False)
    verb("history", "every past recovery with its step journal and acknowledgement", host=False)


def run(args) -> int:
    cfg = config_from_args(args)
    cluster = cfg.cluster(args.cluster)
    verb = args.verb
    if verb == "history":
        return _history(args, cfg, cluster)
    if verb in ("downtime", "recovery", "acknowledge"):
        return _flags(args, cfg, cluster)
    from console.engine.failover.context import ClusterOps
    from console.engine.topology.actions import reattach, replica

    if not args.dry_run and not args.yes and not sys.stdin.isatty():
        raise UserError(f"topology {verb} on cluster {cluster.name} needs confirmation: pass --yes "
                        f"(stdin is not a terminal), or --dry-run to see the statements")
    if not args.dry_run and not args.yes:
        typed = input(f"type the cluster name ({cluster.name}) to run topology {verb}: ").strip()
        if typed != cluster.name:
            raise UserError(f"confirmation did not match {cluster.name!r}: nothing was done")
    ops = ClusterOps(cluster, cfg.state_dir)
    try:
        if verb == "relocate":
            rep = replica.relocate(ops, args.host, args.below, dry_run=args.dry_run,
                                   wait_timeout=args.wait_timeout)
        elif verb in ("start-replica", "stop-replica"):
            rep = replica.replication(ops, args.host, verb == "start-replica", dry_run=args.dry_run)
        elif verb == "read-only":
            rep = replica.read_only(ops, args.host, args.state == "on", dry_run=args.dry_run)
        else:
            rep = reattach.reattach(ops, args.host, flashback=args.flashback, dry_run=args.dry_run,
                                    wait_timeout=args.wait_timeout)
    finally:
        ops.close()
    if not args.dry_run and rep.outcome != "refused":  # a refusal leaves nothing behind
        _audit(cfg, "cli", f"topology {verb}", f"{cluster.name}/{rep.host}", rep.outcome,
               rep.error or rep.detail)
    if args.json:
        print_json(asdict(rep))
    elif rep.outcome == "refused":
        print(f"dbops-console: {rep.error}", file=sys.stderr)
    else:
        print(report_text(rep))
    return {"ok": 0, "planned": 0, "refused": 2}.get(rep.outcome, 1)


def report_text(rep) -> str:
    head = f"topology {rep.action} {rep.host}" + (f" -> {rep.target}" if rep.target else "")
    lines = [f"{head} (cluster {rep.cluster}): {rep.outcome.upper()}"
             + (" (dry run: nothing was changed)" if rep.dry_run else "")]
    if rep.error:
        lines.append(f"  error: {rep.error}")
    if rep.errant:
        lines.append(f"  transactions the primary lacks: {', '.join(rep.errant)}")
    for s in rep.steps:
        t = "" if rep.dry_run else f" {s.ms:7.1f} ms"
        lines.append(f"  [{s.outcome:<7}]{t} {s.name:<28} {s.target}" + (f"  {s.detail}" if s.detail else ""))
        if rep.dry_run or s.outcome == "failed":
            lines += [f"      {q}" for q in s.sql]
    if rep.rolled_back:
        lines.append(f"  rolled back: {', '.join(rep.rolled_back)}")
    if rep.detail:
        lines.append(f"  {rep.detail}")
    if rep.journal:
        lines.append(f"  journal: {rep.journal}")
    return "\n".join(lines)


def _audit(cfg, actor, action, target, outcome, detail) -> None:
    from console.engine.state import AuditEntry, StateDir

    StateDir(cfg.state_dir).audit(AuditEntry(time.time(), actor, action, target, outcome, detail))


def _flags(args, cfg, cluster) -> int:
    from console.engine.failover import history
    from console.engine.topology.actions import flags
    from console.engine.topology.discovery import norm_address

    if args.verb == "recovery":
        flags.set_recovery(cfg.state_dir, cluster.name, args.state == "on", by="cli")
        out = {"cluster": cluster.name, "recovery_enabled": args.state == "on"}
        msg = f"automatic recovery of {cluster.name}: {args.state}"
        _audit(cfg, "cli", "topology recovery", cluster.name, "ok", args.state)
    elif args.verb == "acknowledge":
        n = history.acknowledge_local(cfg.state_dir, cluster.name, by="cli")
        out = {"cluster": cluster.name, "acknowledged": n}
        msg = f"acknowledged {n} recovery(ies) of {cluster.name}"
        _audit(cfg, "cli", "acknowledge", cluster.name, "ok", msg)
    else:
        h = cluster.host(args.host)
        if h is None:
            host, _, port = args.host.rpartition(":")
            h = next((x for x in cluster.hosts if port.isdigit() and norm_address(x.host, x.port)
                      == norm_address(host, port)), None)
        if h is None:
            raise UserError(f"host {args.host!r}: no host of that name in cluster {cluster.name} "
                            f"(known: {', '.join(x.name for x in cluster.hosts)})")
        addr = norm_address(h.host, h.port)
        if args.end:
            gone = flags.clear_downtime(cfg.state_dir, cluster.name, addr)
            out = {"cluster": cluster.name, "host": addr, "downtime": None}
            msg = f"downtime of {h.name} ({addr}) " + ("ended" if gone else "was not set")
        else:
            secs = flags.parse_duration(args.duration)
            rec = flags.set_downtime(cfg.state_dir, cluster.name, addr, secs, reason=args.reason, by="cli")
            out = {"cluster": cluster.name, "host": addr, "downtime": rec}
            msg = (f"{h.name} ({addr}) downtimed until "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(rec['until']))}: no recovery acts on it")
        _audit(cfg, "cli", "topology downtime", f"{cluster.name}/{addr}", "ok", msg)
    if args.json:
        print_json(out)
    else:
        print(msg)
    return 0


def _history(args, cfg, cluster) -> int:
    from console.engine.topology.actions.history import recoveries

    items = recoveries(cfg.state_dir, cluster.name)
    if args.json:
        print_json({"cluster": cluster.name, "recoveries": [r.to_dict() for r in items]})
        return 0
    if not items:
        print(f"no recovery of {cluster.name} recorded in {cfg.state_dir}")
        return 0
    for r in items:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        ack = {None: "", True: f" acknowledged by {r.acknowledged_by or '?'}", False: " NOT acknowledged"}[r.acknowledged]
        print(f"{when} {r.kind} {r.old_primary or '?'} -> {r.new_primary or '?'}: {r.outcome or '?'}"
              f"{ack}" + (f" (by {r.actor})" if r.actor else ""))
        for key in ("lost", "salvaged", "errant", "rolled_back", "error"):
            if r.summary.get(key):
                print(f"    {key}: {r.summary[key]}")
        for s in r.steps:
            print(f"    [{s.get('outcome', ''):<7}] {float(s.get('ms') or 0):7.1f} ms {s.get('name', ''):<28} "
                  f"{s.get('target', '')}" + (f"  {s['detail']}" if s.get("detail") else ""))
        if r.journal:
            print(f"    journal: {r.journal}")
    return 0
