"""``dbops-console migrate``: the headless online schema change, with
gh-ost's flag names.  Without ``--execute`` it is a dry run: everything is
validated (the ALTER is tried on a temporary copy) and nothing changes.

Exit codes: 0 done (or dry run passed), 2 refused / bad input, 3 panic,
4 aborted on critical load, 1 any other failure, 128 + the signal number when
a signal stopped it (SIGINT 130, SIGTERM 143, SIGHUP 129: the ghost and
checkpoint are kept, rerun with ``--resume``).

Beside a serving engine (``serve``, or a console's background engine, on
the same state directory) ``--execute`` hands the run to that engine
(``migrate_handed``): it becomes one of its tasks and outlives this
command, which follows it (``--detach``: ends at once; ``--standalone``:
run here anyway)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from console.commands.common import default_state_dir
from console.commands.signals import stop_signals
from console.config import DEFAULT_STATE_DIR, Config, Secret, UIConfig, find_config, load_config
from console.errors import UserError
from console.kinds.migration import MigrationOptions
from console.options import add_arguments, values


def register(sub) -> None:
    p = sub.add_parser("migrate", help="online schema change (gh-ost style, triggerless)",
                       description="Change a live table's schema without blocking writes: ghost "
                                   "table, chunked copy, binlog apply, checksum, atomic cut-over. "
                                   "Dry run unless --execute.")
    a = p.add_argument
    a("--host", default="127.0.0.1")
    a("--port", type=int, default=3306)
    a("--user", default=os.environ.get("USER", "root"))
    a("--password", help="password (visible in `ps`: prefer --password-file or --password-env)")
    a("--password-file", metavar="FILE", help="file holding the password")
    a("--password-env", metavar="NAME", help="environment variable holding the password")
    # every option of the migration, as declared once (console/kinds/migration.py)
    add_arguments(p, MigrationOptions, defaults={"execute": False, "postpone_cut_over": False})
    a("--state-dir", metavar="DIR", help=f"checkpoints and audit log (default: the --config's "
      f"state_dir, else {DEFAULT_STATE_DIR})")
    a("--status-interval", type=float, default=5.0, metavar="S", help="progress line every S seconds")
    a("--detach", action="store_true", help="beside a serving engine: hand the migration to it and "
      "end at once (it keeps running there)")
    a("--standalone", action="store_true", help="run here even when an engine serves the state "
      "directory (default: --execute hands the run to that engine)")
    p.set_defaults(func=run)


def _secret(args) -> Secret:
    given = [n for n in ("password", "password_file", "password_env") if getattr(args, n)]
    if len(given) > 1:
        raise UserError("give only one of --password, --password-file, --password-env")
    if args.password_file:
        try:
            with open(args.password_file):
                pass
        except OSError as e:
            raise UserError(f"--password-file {args.password_file}: {e.strerror}") from None
        return Secret(file=args.password_file)
    if args.password_env:
        if args.password_env not in os.environ:
            raise UserError(f"--password-env: environment variable {args.password_env} is not set")
        return Secret(env=args.password_env)
    if args.password is not None:
        print("dbops-console: warning: --password is visible in `ps`; prefer --password-file",
              file=sys.stderr)
        return Secret(args.password)
    return Secret("")


def options_from_args(args) -> MigrationOptions:
    """The declared options given as flags; a CLI run is a dry run unless
    --execute, and never waits for a cut-over command (gh-ost's semantics:
    --postpone-cut-over-flag-file postpones)."""
    given = values(args, MigrationOptions)
    given["execute"] = bool(given.get("execute"))
    given["postpone_cut_over"] = False
    return MigrationOptions(**given).validate()


def run(args) -> int:
    from console.engine.engine import Engine
    from console.engine.migration.task import MigrationTask
    from console.engine.migration.taskid import migration_task_id
    from console.engine.state import StateDir, task_path
    from console.engine.task import FAILED
    from console.mysql.connection import Endpoint

    opts = options_from_args(args)
    if args.resume and not args.execute:
        raise UserError("--resume needs --execute (a dry run has nothing to resume)")
    ep = Endpoint(args.host, args.port, args.user, _secret(args), f"{args.host}:{args.port}")
    if args.state_dir:
        state_dir = Path(args.state_dir).expanduser()
    elif getattr(args, "config", None):     # given explicitly: it must load (no cluster needed)
        state_dir = load_config(find_config(args.config), require_clusters=False).state_dir
    else:
        state_dir = default_state_dir(args)
    cfg = Config(path=None, state_dir=state_dir, ui=UIConfig(), clusters={}, tasks={})
    task_id = migration_task_id(args.database, args.table)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    if opts.execute and not args.standalone:
        from console.api.client import connect

        client = connect(state_dir, actor=f"cli:{os.getpid()}")
        if client is not None:  # an engine serves the state directory: the run becomes its task
            from console.commands.migrate_handed import hand_over

            with stop_signals() as stop:
                return hand_over(client, ep, opts, task_id, detach=args.detach,
                                 status_interval=args.status_interval, stop=stop, log=log)
    if args.detach:
        raise UserError("--detach needs --execute and an engine serving the state directory "
                        f"({state_dir}): start one with `dbops-console serve`")

    # inspection first: a refused run creates nothing (no state directory,
    # task directory or audit entry; it created all three).  The stop
    # signals are caught from here on: a stop during the inspection ends the
    # run with its last line before anything is made.
    task = MigrationTask(task_id, ep, opts, task_path(state_dir, task_id), log=log)
    with stop_signals() as stop:  # SIGINT, SIGTERM, SIGHUP: stop at a safe point, resumable
        try:
            task.prepare()
        except UserError as e:
            print(f"dbops-console: migrate: {e}", file=sys.stderr)
            return e.exit_code
        if stop.is_set():
            task.release()
            log("interrupted before the migration started: nothing was created")
            return stop.exit_code
        try:
            engine = Engine(cfg, StateDir(state_dir))
            engine.state.task_dir(task_id)
            engine.add_task(task)
        except BaseException:
            task.release()
            raise
        engine.start(task_id, actor="cli")
        last = time.monotonic()
        while not task.join(0.2):
            if stop.is_set() and not task.stopping:
                task.stop(actor="cli", wait=None)
            if args.status_interval > 0 and time.monotonic() - last >= args.status_interval:
                log(task.summary())
                last = time.monotonic()
    st = task.status()
    if stop.is_set() and not task.completed:    # a stop that came after the swap changes nothing
        log("interrupted: ghost table and checkpoint kept; rerun with --resume --execute")
        return stop.exit_code
    if st.state == FAILED:
        print(f"dbops-console: migrate: {st.last_error}", file=sys.stderr)
        return task.exit_code or 1
    if opts.execute:
        phases = {k: v for k, v in task.phase_seconds().items() if k != "complete"}
        log(f"migration of {args.database}.{args.table} complete in {sum(phases.values()):.2f}s ("
            + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()) + ")")
    return 0
