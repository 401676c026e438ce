"""``dbops-console migrate``: the headless online schema change, with
gh-ost's flag names.  Without ``--execute`` it is a dry run: everything is
validated (the ALTER is tried on a temporary copy) and nothing changes.

Exit codes: 0 done (or dry run passed), 2 refused / bad input, 3 panic,
4 aborted on critical load, 1 any other failure, 128 + the signal number when
a signal stopped it (SIGINT 130, SIGTERM 143, SIGHUP 129: the ghost and
checkpoint are kept, rerun with ``--resume``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from console.commands.common import default_state_dir
from console.commands.signals import stop_signals
from console.config import DEFAULT_STATE_DIR, Config, Secret, UIConfig, find_config, load_config
from console.errors import UserError


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
    a("--database", required=True)
    a("--table", required=True)
    a("--alter", required=True, help='the ALTER clauses, e.g. "ADD COLUMN c INT"')
    a("--execute", action="store_true", help="really migrate (default: dry run)")
    a("--chunk-size", type=int, default=2000, help="rows per copy chunk (default 2000)")
    a("--dml-batch-size", type=int, default=50, help="row events per apply transaction")
    a("--nice-ratio", type=float, default=0.0, help="sleep this x chunk time after each chunk")
    a("--max-lag-millis", type=int, default=1500, help="replica lag that throttles (default 1500)")
    a("--throttle-control-replicas", default="", metavar="H:P,...",
      help="replicas whose lag throttles (default: the replicas found)")
    a("--max-load", default="", metavar="VAR=N,...", help="e.g. Threads_running=25")
    a("--critical-load", default="", metavar="VAR=N,...", help="abort (or hibernate) above these")
    a("--critical-load-hibernate-seconds", type=float, default=0.0,
      help="on critical load, pause this long instead of aborting")
    a("--throttle-query", default="", help="throttle while this query returns > 0")
    a("--throttle-flag-file", metavar="FILE", help="throttle while this file exists")
    a("--postpone-cut-over-flag-file", metavar="FILE",
      help="do not cut over while this file exists")
    a("--panic-flag-file", metavar="FILE", help="panic (stop, drop ghost) when this file appears")
    a("--serve-socket-file", metavar="FILE", help="interactive control socket (unix)")
    a("--cut-over-lock-timeout-seconds", type=int, default=3)
    a("--default-retries", type=int, default=60, help="cut-over attempts (default 60)")
    a("--ok-to-drop-table", action="store_true", help="drop the old table after the cut-over")
    a("--initially-drop-ghost-table", action="store_true")
    a("--initially-drop-old-table", action="store_true")
    a("--approve-renamed-columns", action="store_true")
    a("--allow-foreign-keys", action="store_true", help="migrate a table with foreign keys anyway")
    a("--allow-triggers", action="store_true", help="migrate a table with triggers anyway")
    a("--allow-zero-in-date", action="store_true",
      help="the migration's sessions allow zero dates (sql_mode without NO_ZERO_DATE, "
           "NO_ZERO_IN_DATE): for tables whose dates default to or hold 0000-00-00")
    a("--resume", action="store_true", help="continue an interrupted migration from its checkpoint")
    a("--no-verify-checksum", action="store_true", help="skip the checksum before cut-over")
    a("--checksum-chunk-size", type=int, default=10000)
    a("--defer-secondary-indexes", action=argparse.BooleanOptionalAction, default=True,
      help="build the ghost's plain (non-unique) secondary indexes after the copy, in one "
           "sorted online build (default; --no-defer-secondary-indexes fills them row by row)")
    a("--copy-threads", type=int, default=1,
      help="copy chunks in parallel on this many connections (default 1)")
    a("--copy-binlog-format", choices=("row", "statement"), default="row",
      help="binlog the row copy as row events (default, like gh-ost) or as statements that "
           "replicas re-run (faster; only for identical replicas and a deterministic ALTER: "
           "see docs/migration.md)")
    a("--checksum-threads", type=int, default=4,
      help="check chunks in parallel on this many connection pairs, during the copy and in a "
           "full pass (default 4; each mostly waits for the apply to pass its marker)")
    a("--state-dir", metavar="DIR", help=f"checkpoints and audit log (default: the --config's "
      f"state_dir, else {DEFAULT_STATE_DIR})")
    a("--status-interval", type=float, default=5.0, metavar="S", help="progress line every S seconds")
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


def options_from_args(args):
    from console.kinds.migration import MigrationOptions

    reps = tuple(r.strip() for r in args.throttle_control_replicas.split(",") if r.strip())
    for r in reps:
        host, _, port = r.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--throttle-control-replicas: {r!r} is not host:port")
    return MigrationOptions(
        database=args.database, table=args.table, alter=args.alter, execute=args.execute,
        chunk_size=args.chunk_size, dml_batch_size=args.dml_batch_size, nice_ratio=args.nice_ratio,
        max_lag_millis=args.max_lag_millis, throttle_control_replicas=reps, max_load=args.max_load,
        critical_load=args.critical_load,
        critical_load_hibernate_seconds=args.critical_load_hibernate_seconds,
        throttle_query=args.throttle_query, throttle_flag_file=args.throttle_flag_file,
        postpone_cut_over_flag_file=args.postpone_cut_over_flag_file, postpone_cut_over=False,
        panic_flag_file=args.panic_flag_file, serve_socket_file=args.serve_socket_file,
        cut_over_lock_timeout_seconds=args.cut_over_lock_timeout_seconds,
        default_retries=args.default_retries, ok_to_drop_table=args.ok_to_drop_table,
        initially_drop_ghost_table=args.initially_drop_ghost_table,
        initially_drop_old_table=args.initially_drop_old_table,
        approve_renamed_columns=args.approve_renamed_columns,
        allow_foreign_keys=args.allow_foreign_keys, allow_triggers=args.allow_triggers,
        allow_zero_in_date=args.allow_zero_in_date,
        resume=args.resume, verify_checksum=not args.no_verify_checksum,
        checksum_chunk_size=args.checksum_chunk_size, copy_threads=args.copy_threads,
        defer_secondary_indexes=args.defer_secondary_indexes,
        checksum_threads=args.checksum_threads, copy_binlog_format=args.copy_binlog_format,
    ).validate()


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

    # inspection first: a refused run creates nothing (no state directory,
    # task directory or audit entry; it created all three)
    task = MigrationTask(task_id, ep, opts, task_path(state_dir, task_id), log=log)
    try:
        task.prepare()
    except UserError as e:
        print(f"dbops-console: migrate: {e}", file=sys.stderr)
        return e.exit_code
    try:
        engine = Engine(cfg, StateDir(state_dir))
        engine.state.task_dir(task_id)
        engine.add_task(task)
    except BaseException:
        task.release()
        raise
    with stop_signals() as stop:  # SIGINT, SIGTERM, SIGHUP: stop at a safe point, resumable
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
