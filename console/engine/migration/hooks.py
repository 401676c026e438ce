"""gh-ost's hooks (``--hooks-path``): executables named ``gh-ost-on-<event>*``
in one directory, run synchronously and in name order at the points gh-ost
runs them, with its ``GH_OST_*`` environment, so existing hook scripts work
unchanged.  A hook that exits non-zero fails the step (the migration) as in
gh-ost, except ``on-status``, ``on-interactive-command`` and ``on-failure``,
whose failures are logged (the migration is not failed by its status
report, and has failed already)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from console.errors import UserError

EVENTS = ("startup", "validated", "rowcount-complete", "before-row-copy", "status",
          "interactive-command", "row-copy-complete", "stop-replication", "start-replication",
          "begin-postponed", "before-cut-over", "success", "failure")
ADVISORY = frozenset({"status", "interactive-command", "failure"})


class HookFailed(UserError):
    """A hook exited non-zero: the migration fails (exit code 1)."""

    exit_code = 1


class Hooks:
    def __init__(self, path: str | None, context: Callable[[], dict[str, str]],
                 log: Callable[[str], None] = lambda m: None):
        self.path = Path(path).expanduser() if path else None
        self.context = context      # the GH_OST_* variables of every hook, as of now
        self.log = log

    def find(self, event: str) -> list[Path]:
        """The hooks of an event, found anew each time (gh-ost: hooks may be
        added or removed while it runs)."""
        if self.path is None or not self.path.is_dir():
            return []
        prefix = f"gh-ost-on-{event}"
        return sorted(p for p in self.path.iterdir()
                      if p.name.startswith(prefix) and p.is_file() and os.access(p, os.X_OK)
                      # gh-ost-on-start* must not run gh-ost-on-startup: the next
                      # character may not continue a longer event's name
                      and not any(e != event and e.startswith(event) and p.name.startswith(f"gh-ost-on-{e}")
                                  for e in EVENTS))

    def run(self, event: str, **extra: str) -> None:
        assert event in EVENTS, event
        hooks = self.find(event)
        if not hooks:
            return
        env = dict(os.environ)
        env.update(self.context())
        env.update(extra)
        for h in hooks:
            try:
                r = subprocess.run([str(h)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, errors="replace")
            except OSError as e:
                rc, why = None, e.strerror
            else:
                rc = r.returncode
                tail = (r.stderr.strip() or r.stdout.strip()).splitlines()
                why = tail[-1] if tail else ""
            if rc == 0:
                self.log(f"hook {h.name} done")
                continue
            msg = (f"hook {h.name} ({event}) failed"
                   + (f" with exit code {rc}" if rc is not None else "") + (f": {why}" if why else ""))
            if event in ADVISORY:
                self.log(msg)
                continue
            raise HookFailed(msg)
