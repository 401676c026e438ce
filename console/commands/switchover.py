"""``dbops-console switchover``: planned switchover of a cluster's primary."""

from __future__ import annotations

import sys

from console.commands.common import config_from_args, print_json
from console.commands.recovery_output import confirm_or_refuse, exit_code, report_dict, report_text


def add_common(p) -> None:
    p.add_argument("--cluster", metavar="NAME", help="cluster (needed when the config has several)")
    p.add_argument("--to", metavar="HOST", help="candidate: a host name from the config or HOST:PORT "
                   "(default: the best ranked replica)")
    p.add_argument("--yes", action="store_true", help="do not ask for typed confirmation")
    p.add_argument("--dry-run", action="store_true", help="print the exact plan; change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--wait-timeout", type=float, default=None, metavar="S",
                   help="how long a candidate may take to catch up (default: task option or 10)")


def register(sub) -> None:
    p = sub.add_parser("switchover", help="planned switchover to a replica (fence, catch up, promote)")
    add_common(p)
    p.set_defaults(func=run)


def recovery_options(args, cfg, cluster, **kw):
    from console.engine.failover.context import RecoveryOptions

    prefer, must_not, extra = frozenset(), frozenset(), {}
    for tc in cfg.tasks.values():  # a configured failover task's rules apply here too
        if tc.kind == "failover" and tc.cluster == cluster.name:
            o = tc.options
            prefer, must_not = frozenset(o.prefer), frozenset(o.must_not)
            extra = dict(wait_timeout=o.wait_timeout, relay_wait=o.relay_wait,
                         max_trx_seconds=o.max_trx_seconds)
    if args.wait_timeout is not None:
        extra["wait_timeout"] = args.wait_timeout
    return RecoveryOptions(to=args.to, dry_run=args.dry_run, actor="cli", prefer=prefer,
                           must_not=must_not, **extra, **kw)


def execute(args, kind: str, **kw) -> int:
    from console.engine.failover.context import ClusterOps
    from console.engine.failover.emergency import Failover
    from console.engine.failover.switchover import Switchover

    cfg = config_from_args(args)
    cluster = cfg.cluster(args.cluster)
    cls = Switchover if kind == "switchover" else Failover
    if kind == "failover":  # the cluster's configured relay tasks are salvage sources
        from console.engine.failover.salvage_relay import relay_dirs

        kw.setdefault("relay_dirs", relay_dirs(cfg, cluster.name))
    opts = recovery_options(args, cfg, cluster, **kw)
    if not args.dry_run and not args.yes:
        confirm_or_refuse(cluster.name, kind, check_only=True)
        plan = cls(ClusterOps(cluster, cfg.state_dir), opts.__class__(**{**opts.__dict__, "dry_run": True})).run()
        print(report_text(plan), file=sys.stderr)
        if plan.outcome != "planned":
            print(plan.error, file=sys.stderr)
            return exit_code(plan)
        confirm_or_refuse(cluster.name, kind)
    from console.commands.engine_link import relay_follower_via, served

    engine = None if args.dry_run else served(cfg)
    follow = relay_follower_via(engine) if engine else _relay_note(cfg)
    rep = cls(ClusterOps(cluster, cfg.state_dir), opts, relay_follow=follow).run()
    if args.json:
        print_json(report_dict(rep))
    elif rep.outcome == "refused":  # bad input or unsafe: one line, nothing changed
        print(f"dbops-console: {rep.error}", file=sys.stderr)
    else:
        print(report_text(rep))
    return exit_code(rep)


def _relay_note(cfg):
    """Headless: a relay task of the cluster runs in another process (the
    console, ``dbops-console relay --task``); say how to make it follow."""
    def note(cluster: str, new_primary: str) -> list[str]:
        return [f"{name}: not run by this command: switch it to {new_primary} (relay screen key m, "
                f"or the task's switch-master command)"
                for name, tc in cfg.tasks.items() if tc.kind == "relay" and tc.cluster == cluster]
    return note


def run(args) -> int:
    return execute(args, "switchover")
