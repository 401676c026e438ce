"""``dbops-console monitor``: watch clusters headless (detection and ranking);
with ``--auto-failover`` (or ``auto_failover = true`` in a cluster's config)
fail over automatically when the primary is dead."""

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
    p.set_defaults(func=run)


def _line(task, as_json: bool) -> str:
    d = task.detail()
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


def run(args) -> int:
    from console.engine.engine import Engine
    from console.engine.failover.task import FailoverTask

    cfg = config_from_args(args)
    clusters = [cfg.cluster(args.cluster)] if args.cluster else list(cfg.clusters.values())
    tasks = [FailoverTask(c, cfg.state_dir, auto=True if args.auto_failover else None)
             for c in clusters]
    for t in tasks:  # a refused login: one line, exit 2, before anything is created
        try:
            t.preflight()
        except UserError as e:
            raise UserError(f"monitor: {e}", exit_code=e.exit_code) from None
    engine = Engine(cfg)
    for t in tasks:
        engine.add_task(t)
    if args.once:
        for t in tasks:
            t.check_once()
            print(_line(t, args.json))
        return 0
    with stop_signals() as stop:  # SIGINT, SIGTERM, SIGHUP: stop the tasks, the last line, 128 + signal
        try:
            for t in tasks:
                t.start()
            _watch(tasks, stop, args.json)
        finally:
            engine.shutdown()
    last_line("monitor: stopped")
    return stop.exit_code


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
                print(_line(t, as_json), flush=True)
            if d.last_report is not None and reported.get(t.task_id) is not d.last_report:
                reported[t.task_id] = d.last_report
                print(json.dumps(report_dict(d.last_report), default=str) if as_json
                      else report_text(d.last_report), flush=True)
        stop.wait(0.2)
