"""Helpers shared by subcommands: loading the config, printing JSON, running
a task in the foreground."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.commands.signals import stop_signals
from console.config import DEFAULT_STATE_DIR, Config, find_config, load_config
from console.errors import UserError


def config_from_args(args) -> Config:
    return load_config(find_config(getattr(args, "config", None)))


def default_state_dir(args) -> Path:
    """The configured state dir when there is a config, else the default.
    No config at all is fine; a config that does not load is an error (one
    that holds settings but no cluster is fine: ``migrate`` needs none)."""
    try:
        path = find_config(getattr(args, "config", None))
    except UserError:
        return Path(DEFAULT_STATE_DIR).expanduser()
    return load_config(path, require_clusters=False).state_dir


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def last_line(text: str) -> None:
    """The last status line on stderr; after a SIGHUP the terminal may be
    gone (EIO), which must not turn a clean stop into a traceback."""
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def run_foreground(engine, task, *, name: str, quiet: bool,
                   progress: Callable[[Any], str], final: Callable[[Any], str]) -> int:
    """Check, then run a task in the foreground until it ends or a stop
    signal (SIGINT, SIGTERM, SIGHUP: ``stop_signals``), printing
    ``progress(detail)`` every 5 s and ``final(detail)`` at the end on stderr.

    The checks (``Task.preflight``: logins, server_id, the task's directory
    lock) run before the task joins the engine: an operator error is one
    line, exit 2, and nothing is created.  A stop by a signal is clean (the
    task flushes what it holds) and exits 128 + the signal number; a task
    that failed prints one line and exits with its error's code (2 for an
    operator error, 1 for anything else)."""
    from console.engine.task import DONE, FAILED  # lazy: keeps other subcommands' startup short

    try:
        task.preflight()
    except UserError as e:
        raise UserError(f"{name}: {e}", exit_code=e.exit_code) from None
    engine.add_task(task)
    with stop_signals() as stop:
        engine.start(task.task_id, actor="cli")
        last = time.monotonic()
        while not stop.is_set() and task.state not in (DONE, FAILED):
            task.join(0.2)  # wakes as soon as the task thread ends; a signal within 0.2 s
            if not quiet and time.monotonic() - last >= 5:
                last = time.monotonic()
                d = task.status().detail
                print(f"{name}: {progress(d)}" + (f" last error: {d.last_error}" if getattr(d, "last_error", "") else ""),
                      file=sys.stderr)
        signalled = stop.is_set() and task.state not in (DONE, FAILED)
        if signalled:
            task.stop(actor="cli", wait=30)
    st = task.status()
    if st.state == FAILED:
        raise UserError(f"{name} failed: {st.last_error}",
                        exit_code=getattr(task.failure, "exit_code", 1))
    if not quiet or signalled:
        last_line(f"{name}: {final(st.detail)}")
    return stop.exit_code if signalled else 0
