"""``dbops-console restore``: point-in-time restore into a new data directory.

::

    dbops-console restore --config FILE (--task NAME | --cluster C)
        (--to-time 'YYYY-MM-DD HH:MM:SS' | --to-gtid G) --target-dir DIR [--port P]
        [--keep-running] [--force] [--json]

The newest snapshot at or before the target is prepared in DIR/data, a
private mariadbd (DIR/my.cnf, its own port) replays the backed-up events up
to exactly the target, and is stopped again (by its pid) unless
``--keep-running``.  The running cluster is never touched.  Bad input is
refused before anything is created; SIGTERM, SIGHUP or SIGINT during the
restore stop its server and exit with 128 + the signal number (kill -9: the
kernel kills its children).  A restore that did not finish leaves DIR marked
incomplete (``RESTORE-INCOMPLETE``) and says so; ``--force`` replaces such a
directory (after stopping a server a dead restore left there).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from console.commands.common import config_from_args, print_json
from console.commands.signals import StopRequested, stop_signals
from console.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("restore", help="point-in-time restore from a backup task's storage "
                                       "into a new data directory")
    p.add_argument("--task", metavar="NAME", help="the backup task whose storage to restore from")
    p.add_argument("--cluster", metavar="C", help="the cluster (its backup task is used)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--to-time", metavar="'YYYY-MM-DD HH:MM:SS'",
                   help="restore every transaction committed at or before this local time")
    g.add_argument("--to-gtid", metavar="G", help="restore up to and including this GTID position")
    p.add_argument("--target-dir", metavar="DIR", required=True,
                   help="new directory for the restored server (must be empty or absent)")
    p.add_argument("--port", metavar="P", type=int, default=3307,
                   help="port of the restored server (default 3307)")
    p.add_argument("--force", action="store_true",
                   help="replace an incomplete restore in DIR (left by a restore that failed or "
                        "was killed); never a complete restore or any other directory")
    p.add_argument("--keep-running", action="store_true",
                   help="leave the restored server running (how to reach it is printed)")
    p.add_argument("--dry-run", action="store_true",
                   help="only show which snapshot and log segments the restore would use")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def _task(cfg, args):
    if args.task:
        tc = cfg.task(args.task)
        if tc.kind != "backup":
            raise UserError(f"restore: task {args.task!r} is a {tc.kind} task, not a backup task")
        return tc
    backups = [t for t in cfg.tasks.values() if t.kind == "backup"
               and (args.cluster is None or t.cluster == args.cluster)]
    if args.cluster and args.cluster not in cfg.clusters:
        cfg.cluster(args.cluster)  # raises the one-line error
    if len(backups) != 1:
        names = ", ".join(t.name for t in backups) or "none"
        raise UserError(f"restore: {len(backups)} backup tasks match ({names}); pass --task NAME")
    return backups[0]


def run(args) -> int:
    from console.engine.backup import incomplete
    from console.engine.backup.restore import parse_time, restore

    cfg = config_from_args(args)
    tc = _task(cfg, args)
    to_time = parse_time(args.to_time) if args.to_time else None
    if args.dry_run:
        return _dry_run(tc, to_time, args)
    quiet = args.json
    try:
        with stop_signals(interrupt=True):      # the restore's cleanup stops its server
            r = restore(tc.options, args.target_dir, port=args.port, to_time=to_time,
                        to_gtid=args.to_gtid, keep_running=args.keep_running, force=args.force,
                        progress=(lambda m: None) if quiet
                        else (lambda m: print(f"restore: {m}", file=sys.stderr)))
    except StopRequested as e:
        target = Path(args.target_dir).expanduser().resolve()
        left = f"; {incomplete.hint(target)}" if incomplete.marked(target) else ""
        raise UserError(f"restore interrupted by {signal.Signals(e.signum).name}: stopped, no "
                        f"restore server left running{left}", exit_code=e.exit_code) from None
    if args.json:
        print_json(r.to_dict())
        return 0
    print(f"restored {r.target} into {r.target_dir}: snapshot {r.snapshot} ({r.snapshot_method}, "
          f"GTID {r.snapshot_gtid}) + {r.transactions} transaction(s) replayed "
          f"-> GTID {r.restored_gtid}")
    print(f"prepare {r.prepare_seconds:.1f}s, replay {r.replay_seconds:.1f}s")
    print(r.how_to_reach())
    return 0


def _dry_run(tc, to_time, args) -> int:
    from console.engine.backup.catalog import Catalog
    from console.engine.backup.location import open_storage
    from console.engine.backup.restore import plan
    target, snap, segs, label = plan(Catalog(open_storage(tc.options, create=False)), to_time,
                                     args.to_gtid)
    out = {"target": label, "target_gtid": target.text(), "snapshot": snap.id,
           "snapshot_method": snap.method, "snapshot_gtid": snap.gtid,
           "segments": [m.seq for m in segs],
           "transactions_at_most": sum(m.transactions for m in segs)}
    if args.json:
        print_json(out)
        return 0
    span = f"{segs[0].seq}..{segs[-1].seq}" if segs else "none"
    print(f"restore to {label} = GTID {out['target_gtid']}: snapshot {snap.id} ({snap.method}, "
          f"GTID {snap.gtid}) + log segments {span} (at most {out['transactions_at_most']} "
          f"transactions); nothing was changed")
    return 0
