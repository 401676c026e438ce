"""``dbops-console failover``: emergency failover of a dead primary."""

from __future__ import annotations

from console.commands.switchover import add_common, execute


def register(sub) -> None:
    p = sub.add_parser("failover", help="emergency failover: promote the best replica of a dead primary")
    add_common(p)
    p.add_argument("--force", action="store_true",
                   help="fail over even when the replicas do not confirm the primary is dead")
    p.set_defaults(func=run)


def run(args) -> int:
    return execute(args, "failover", force=args.force)
