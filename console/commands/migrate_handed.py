"""``migrate --execute`` beside a serving engine: the run is handed to the
engine (``POST /api/v1/migrations`` on its unix socket) and becomes one of
its tasks, so it outlives this command and every console sees and steers it
(throttle, cut-over, panic).  This command follows it: the task's lines and
a progress line every ``--status-interval``, and ends with its result and
exit code, as a standalone run does.

- SIGINT / SIGTERM stop the migration at a safe point (the engine keeps the
  ghost table and checkpoint; ``--resume --execute`` continues), exit 130 /
  143, as standalone;
- SIGHUP (the terminal went away) and ``--detach`` leave it running in the
  engine: this command ends, the migration does not;
- a refusal by the inspection is one line, exit 2, nothing created (the
  engine inspects before it makes anything, as the CLI does).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from console.api.client import ApiError, EngineClient
from console.commands.engine_follow import Follower, task_in
from console.kinds.migration import MigrationOptions
from console.mysql.connection import Endpoint
from console.options import options_of

ENDED = ("done", "failed")


def options_json(opts: MigrationOptions) -> dict:
    """The options as a ``[tasks.NAME]``-style JSON object; file names made
    absolute here (the engine's working directory is not this one)."""
    out = {}
    for o in options_of(MigrationOptions):
        v = getattr(opts, o.name)
        if v is None or not o.spec.config:
            continue
        if o.is_path:
            v = str(Path(v).expanduser().absolute())
        out[o.name] = list(v) if isinstance(v, tuple) else v
    return out


def hand_over(client: EngineClient, ep: Endpoint, opts: MigrationOptions, task_id: str, *,
              detach: bool, status_interval: float, stop, log) -> int:
    info = client.info()
    where = f"the engine serving {info['state_dir']} (pid {info['pid']})"
    body = {"host": ep.host, "port": ep.port, "user": ep.user, "password": ep.password.reveal(),
            "options": options_json(opts)}
    try:
        res = client.post("/api/v1/migrations", body, timeout=3600)
    except ApiError as e:
        print(f"dbops-console: migrate: {e}" + (
            f" in {where}: see it with `dbops-console status` or the console" if e.status == 409
            else ""), file=sys.stderr)
        return 2
    log(f"handed to {where} as task {task_id}: it runs there, not in this command "
        f"(SIGHUP or --detach leave it running; Ctrl-C / SIGTERM stop it, resumable)")
    if detach:
        print(f"migrate: {task_id} runs in {where}; see it with `dbops-console status` or the "
              f"console, stop it with POST /api/v1/tasks/{task_id}/stop", file=sys.stderr)
        return 0
    return _follow(client, task_id, res["seq"], where, status_interval, stop, log)


def _follow(client: EngineClient, task_id: str, seq: int, where: str, status_interval: float,
            stop, log) -> int:
    follower = Follower(client, seq)
    last_line = time.monotonic()
    asked_stop = False
    task: dict | None = None
    while True:
        if stop.is_set() and not asked_stop:
            asked_stop = True
            if stop.signum == signal.SIGHUP:
                log(f"{stop.name}: this command ends; {task_id} keeps running in {where}")
                return stop.exit_code
            log(f"{stop.name}: stopping {task_id} at a safe point")
            try:
                client.post(f"/api/v1/tasks/{task_id}/stop")
            except (ApiError, OSError) as e:
                log(f"could not ask the engine to stop it: {e}")
        for name, data in follower.take(0.2):
            if name == "event" and data.get("target") == task_id:
                log(data.get("outcome", ""))
            elif name == "audit" and data.get("target") == task_id:   # a console's or API's action
                log(f"{data.get('actor')}: {data.get('action')} {data.get('outcome')}"
                    + (f" {data['detail']}" if data.get("detail") else ""))
            elif name == "snapshot":
                task = task_in(data, task_id) or task
            elif name == "ended":
                log(f"lost the engine ({data}): the migration's checkpoint is kept; when an engine "
                    f"serves again, rerun with --resume --execute")
                return 1
        if task is not None and task["state"] in ENDED:
            return _result(task, asked_stop, stop, log)
        if status_interval > 0 and task is not None and time.monotonic() - last_line >= status_interval:
            log(task.get("summary", ""))
            last_line = time.monotonic()


def _result(task: dict, asked_stop: bool, stop, log) -> int:
    d = task.get("detail") or {}
    completed = task["state"] == "done" and task.get("phase") == "complete"   # the swap is made
    if asked_stop and not completed:
        log("interrupted: ghost table and checkpoint kept; rerun with --resume --execute")
        return stop.exit_code
    if task["state"] == "failed":
        print(f"dbops-console: migrate: {task.get('last_error', '')}", file=sys.stderr)
        return d.get("exit_code") or 1
    phases = [(k, v) for k, v in d.get("phase_seconds", ()) if k != "complete"]
    log(f"migration of {d.get('database')}.{d.get('table')} complete in "
        f"{sum(v for _, v in phases):.2f}s (" + ", ".join(f"{k} {v:.2f}s" for k, v in phases) + ")")
    return 0
