"""``dbops-console failover``: emergency failover of a dead primary."""

from __future__ import annotations

from console.commands.switchover import add_common, execute


def register(sub) -> None:
    p = sub.add_parser("failover", help="emergency failover: promote the best replica of a dead primary")
    add_common(p)
    p.add_argument("--force", action="store_true",
                   help="fail over even when the replicas do not confirm the primary is dead")
    p.add_argument("--binlog-dir", action="append", default=[], metavar="DIR",
                   help="salvage also from binlog or relay files in DIR (e.g. the dead primary's "
                        "binlogs copied here, or a relay task's directory); repeatable")
    p.set_defaults(func=run)


def run(args) -> int:
    return execute(args, "failover", force=args.force, binlog_dirs=tuple(args.binlog_dir))
