"""``dbops-console monitor``: watch clusters headless (detection and ranking);
with ``--auto-failover`` (or ``auto_failover = true`` in a cluster's config)
fail over automatically when the primary is dead.

Beside a serving engine (``monitor_engine``), a cluster the engine has a
failover task for is watched by that task (started there if needed;
``--auto-failover`` turns its automatic failover on) and this command only
prints what it sees; the others are watched here, and the engine's relays
follow a recovery run here."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from console.commands.common import config_from_args, last_line
from console.commands.recovery_output import candidates_text, report_dict, report_text
from console.commands.signals import stop_signals
from console.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("monitor", help="watch clusters; optionally fail over automatically")
    p.add_argument("--cluster", metavar="NAME", help="only this cluster")
    p.add_argument("--auto-failover", action="store_true",
                   help="fail over automatically (default: each cluster's auto_failover setting)")
    p.add_argument("--once", action="store_true", help="one check, print it, exit")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--standalone", action="store_true",
                   help="watch here even when an engine serves the state directory (default: "
                        "the engine's failover tasks are the watchers)")
    p.set_defaults(func=run)


def _line(d, as_json: bool) -> str:
    """One cluster's verdict line from a failover task's detail (ours, or
    the engine's typed again)."""
    v = d.verdict
    if as_json:
        return json.dumps({"ts": time.time(), "cluster": d.cluster, "state": v.state if v else None,
                           "primary": v.primary if v else None, "reason": v.reason if v else "",
                           "auto": d.auto, "recovering": d.recovering, "blocked": d.blocked,
                           "advice": list(d.advice),
                           "candidates": [asdict(c) for c in d.candidates]}, default=str)
    head = f"{time.strftime('%H:%M:%S')} {d.cluster}: {v.state if v else '?'}: {v.reason if v else ''}"
    advice = [f"advice: {a}" for a in d.advice]
    return "\n".join([head, *candidates_text(d.candidates), *advice]) if v else head


def _report(rep, as_json: bool) -> str:
    return json.dumps(report_dict(rep), default=str) if as_json else report_text(rep)


def run(args) -> int:
    from console.commands.engine_link import relay_follower_via, served
    from console.commands.monitor_engine import engine_watchers, once, start_watchers, watch
    from console.engine.engine import Engine
    from console.engine.failover.task import FailoverTask

    cfg = config_from_args(args)
    clusters = [cfg.cluster(args.cluster)] if args.cluster else list(cfg.clusters.values())
    client = None if args.standalone else served(cfg)
    watchers = engine_watchers(client, clusters) if client else {}
    # the clusters the engine does not watch (or all, with no engine): watched
    # here; beside an engine, its relays follow a recovery run here
    follow = relay_follower_via(client) if client else None
    here = [c for c in clusters if c.name not in watchers or args.once]
    tasks = [FailoverTask(c, cfg.state_dir, relay_follow=follow,
                          auto=False if c.name in watchers else True if args.auto_failover else None)
             for c in here]
    for t in tasks:  # a refused login: one line, exit 2, before anything is created
        try:
            t.preflight()
        except UserError as e:
            raise UserError(f"monitor: {e}", exit_code=e.exit_code) from None
    engine = Engine(cfg)
    for t in tasks:
        engine.add_task(t)
    if args.once:
        engine_lines = once(client, watchers, lambda d: _line(d, args.json)) if client else {}
        for t in tasks:
            if t.cluster.name in engine_lines:
                print(engine_lines[t.cluster.name])
            else:
                t.check_once()
                print(_line(t.detail(), args.json))
        return 0
    if client is not None:
        where = f"the engine serving {cfg.state_dir} (pid {client.info()['pid']})"
        for c in here:
            last_line(f"monitor: {where} has no failover task for {c.name}: watching it here; "
                      f"its relay tasks follow a recovery")
        start_watchers(client, watchers, args.auto_failover, last_line)
    with stop_signals() as stop:  # SIGINT, SIGTERM, SIGHUP: stop the tasks, the last line, 128 + signal
        try:
            for t in tasks:
                t.start()
            if watchers:
                import threading

                threading.Thread(target=watch, args=(client, watchers, stop, args.json,
                                                     lambda d: _line(d, args.json),
                                                     lambda r: _report(r, args.json)),
                                 name="engine-watch", daemon=True).start()
            _watch(tasks, stop, args.json)
        finally:
            engine.shutdown()
    if watchers:
        last_line(f"monitor: stopped; {', '.join(watchers.values())} keep(s) watching in the engine")
    else:
        last_line("monitor: stopped")
    return stop.exit_code if stop.signum else 1   # no signal: the engine was lost


def _watch(tasks, stop, as_json: bool) -> None:
    """Print each cluster's verdict when it changes, and each recovery report."""
    seen: dict[str, tuple] = {}
    reported: dict[str, object] = {}
    while not stop.is_set():
        for t in tasks:
            d = t.detail()
            key = (d.verdict.state if d.verdict else None, d.recovering, d.blocked)
            if d.verdict and seen.get(t.task_id) != key:
                seen[t.task_id] = key
                print(_line(d, as_json), flush=True)
            if d.last_report is not None and reported.get(t.task_id) is not d.last_report:
                reported[t.task_id] = d.last_report
                print(_report(d.last_report, as_json), flush=True)
        stop.wait(0.2)
