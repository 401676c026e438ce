"""``dbops-console backup``: run a backup task headless, or inspect its storage.

::

    dbops-console backup --config FILE --task NAME              # run in the foreground
    dbops-console backup status   --config FILE --task NAME [--json]
    dbops-console backup snapshot --config FILE --task NAME [--method M] [--json]
    dbops-console backup verify   --config FILE --task NAME [--quick] [--json]
    dbops-console backup list     --config FILE --task NAME [--json]
    dbops-console backup retention --config FILE --task NAME

The foreground run first checks that every account of the task may log in
(a refused login: one line, exit 2, nothing created) and takes the storage's
lock (a second run of the same backup: "backup X is already running (pid
N)", exit 2).  It stops cleanly on SIGINT/SIGTERM/SIGHUP (complete
transactions received so far are stored first) and exits 128 + the signal
number (130, 143, 129).  ``verify`` exits 1 when it finds a problem.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from console.commands.common import config_from_args, print_json, run_foreground
from console.commands.signals import stop_signals
from console.errors import UserError

ACTIONS = ("run", "status", "snapshot", "verify", "list", "retention")


def register(sub) -> None:
    p = sub.add_parser("backup", help="continuous binlog backup and snapshots (run, status, "
                                      "snapshot, verify, list, retention)")
    p.add_argument("action", nargs="?", default="run", choices=ACTIONS, metavar="ACTION",
                   help=f"one of {', '.join(ACTIONS)} (default: run in the foreground)")
    p.add_argument("--task", metavar="NAME", required=True, help="a backup task declared in the config")
    p.add_argument("--method", choices=("auto", "mariadb-backup", "mariadb-dump"),
                   help="snapshot: how to take it (default: the task's snapshot_method)")
    p.add_argument("--quick", action="store_true", help="verify: checksums and manifests only, "
                                                        "do not decompress segments")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="run: no progress lines on stderr")
    p.set_defaults(func=run)


def load_task_config(args, kind: str = "backup"):
    cfg = config_from_args(args)
    tc = cfg.task(args.task)
    if tc.kind != kind:
        raise UserError(f"task {args.task!r} is a {tc.kind} task, not a {kind} task")
    return cfg, tc


def run(args) -> int:
    cfg, tc = load_task_config(args)
    if args.action in ("run", "snapshot"):
        from console.commands.engine_link import run_in_engine, runs_in_engine, served

        client = served(cfg)  # an engine serves this state directory: the task runs there
        if client and args.action == "run":
            return run_in_engine(client, tc.name, "backup")
        if client and runs_in_engine(client, tc.name):
            out = client.command(tc.name, "snapshot-now", method=args.method or "")
            if args.json:
                print_json({"task": tc.name, "in_engine": True, "result": out})
            else:
                print(f"backup: the engine runs {tc.name}: {out}")
            return 0
    if args.action == "run":
        return _run(cfg, tc, args)
    from console.engine.backup.catalog import Catalog
    from console.engine.backup.location import open_storage

    # only status and snapshot may meet a backup not made yet; the others read one
    catalog = Catalog(open_storage(tc.options, create=args.action in ("status", "snapshot")))
    if args.action == "status":
        return _status(cfg, tc, catalog, args)
    if args.action == "list":
        return _list(catalog, args)
    if args.action == "verify":
        from console.engine.backup.verify import verify

        r = verify(catalog, deep=not args.quick)
        if args.json:
            print_json({**asdict(r), "ok": r.ok})
        else:
            print(f"{r.segments} segment(s), {r.transactions} transaction(s) "
                  f"from {r.first_gtid or 'the start'} to {r.last_gtid or '-'}, "
                  f"{r.snapshots} snapshot(s)")
            for p in r.problems:
                print(f"PROBLEM: {p}")
            print("verify: OK" if r.ok else f"verify: {len(r.problems)} problem(s)")
        return 0 if r.ok else 1
    if args.action == "snapshot":
        from console.engine.backup import cluster_endpoints
        from console.engine.backup.snapshot import take_snapshot
        from console.engine.backup.sources import find_primary
        from console.engine.engine import Engine

        eps = cluster_endpoints(Engine(cfg), tc)
        o = tc.options
        if o.snapshot_host:
            ep = eps.ops_for(o.snapshot_host)
        elif o.host:
            ep = eps.ops[eps.preferred]
        else:
            ep = find_primary(eps) or eps.ops[eps.preferred]
        with stop_signals(interrupt=True):  # SIGTERM/SIGHUP: the half-taken snapshot is removed
            m = take_snapshot(catalog.storage, ep, args.method or o.snapshot_method)
        if args.json:
            print_json(asdict(m))
        else:
            print(f"snapshot {m.id}: {m.method} of {m.source} at GTID {m.gtid} "
                  f"({m.stored_bytes / 1e6:.1f} MB, {m.finished - m.started:.1f}s)")
        return 0
    if args.action == "retention":
        from console.engine.backup.retention import apply_retention

        print(apply_retention(catalog, tc.options.keep_snapshots, tc.options.keep_days).describe())
        return 0
    raise UserError(f"backup: unknown action {args.action!r}")


def _list(catalog, args) -> int:
    snaps = catalog.snapshots()
    cp = catalog.load_checkpoint()
    if args.json:
        print_json({"snapshots": [asdict(s) for s in snaps], "checkpoint": asdict(cp) if cp else None})
        return 0
    if not snaps:
        print("no snapshots")
    for s in snaps:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.finished))
        print(f"{s.id}  {t}  {s.method:<14} {s.stored_bytes / 1e6:8.1f} MB  gtid {s.gtid}  "
              f"({s.binlog_file}:{s.binlog_pos})")
    if cp:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cp.last_event_ts)) if cp.last_event_ts else "-"
        print(f"log backup up to GTID {cp.gtid or '-'} (last commit {t}), {cp.seq} segment(s) written")
    return 0


def _status(cfg, tc, catalog, args) -> int:
    from console.engine.backup import cluster_endpoints
    from console.engine.backup.sources import find_primary
    from console.engine.engine import Engine
    from console.mysql import gtid as G
    from console.mysql.connection import DBError, connect, scalar

    cp = catalog.load_checkpoint()
    segs, seg_b, snap_b = catalog.stored_bytes()
    snaps = catalog.snapshots()
    source, source_gtid, caught_up = "", "", None
    try:
        eps = cluster_endpoints(Engine(cfg), tc)
        ep = find_primary(eps) or eps.ops[eps.preferred]
        c = connect(ep, connect_timeout=2, read_timeout=5)
        try:
            source_gtid = str(scalar(c, "SELECT @@gtid_binlog_pos") or "")
        finally:
            c.close()
        source = ep.label
        caught_up = G.position(source_gtid) <= G.position(cp.gtid if cp else "")
    except (DBError, UserError) as e:
        source = f"unreachable: {e}"
    out = {
        "task": tc.name, "storage": str(tc.options.storage), "source": source,
        "source_gtid": source_gtid, "caught_up": caught_up,
        "checkpoint": asdict(cp) if cp else None, "segments": segs, "segment_bytes": seg_b,
        "snapshot_bytes": snap_b,
        "snapshots": [{"id": s.id, "method": s.method, "finished": s.finished,
                       "bytes": s.stored_bytes, "gtid": s.gtid} for s in snaps],
    }
    if args.json:
        print_json(out)
        return 0
    t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cp.last_event_ts)) if cp and cp.last_event_ts else "-"
    print(f"backup {tc.name} in {tc.options.storage}")
    print(f"  checkpoint: GTID {cp.gtid if cp else '-'} (last commit {t})")
    print(f"  source:     {source} at {source_gtid or '-'}"
          + ("" if caught_up is None else (" (caught up)" if caught_up else " (behind)")))
    print(f"  stored:     {segs} segment(s), {seg_b / 1e6:.1f} MB; {len(snaps)} snapshot(s), "
          f"{snap_b / 1e6:.1f} MB")
    return 0


def _run(cfg, tc, args) -> int:
    from console.engine.backup import make_backup_task
    from console.engine.engine import Engine

    engine = Engine(cfg)
    task = make_backup_task(engine, tc)  # run_foreground checks it, then adds it

    def progress(d) -> str:
        lag = "?" if d.lag_seconds is None else f"{d.lag_seconds:.1f}s"
        return f"checkpoint {d.checkpoint_gtid or '-'} lag {lag} segments {d.segments} source {d.source}"

    return run_foreground(engine, task, name="backup", quiet=args.quiet, progress=progress,
                          final=lambda d: f"stopped at GTID {d.checkpoint_gtid or '-'} "
                                          f"({d.transactions} transactions stored by this run)")
