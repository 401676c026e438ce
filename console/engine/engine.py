"""Engine: owns tasks, dispatches commands, keeps the audit log and event feed.

The TUI, the headless CLI and the control sockets are three faces of the
same calls: ``engine.command(task_id, name, actor=..., **args)`` returns a
result or raises a one-line ``CommandError``; every call is audited.
"""

from __future__ import annotations

import collections
import inspect
import sys
import threading
import time
from typing import Any

from console.config import Config
from console.engine.coord.coordinator import Coordinator
from console.engine.coord.statedir import StateDirCoordinator
from console.engine.state import AuditEntry, StateDir
from console.engine.task import DONE, FAILED, NEW, Task, TaskStatus
from console.errors import CommandError, ConfirmationRequired, UserError
from console.kinds.registry import get as get_kind


class Engine:
    def __init__(self, config: Config, state: StateDir | None = None,
                 coordinator: Coordinator | None = None):
        self.config = config
        self.state = state or StateDir(config.state_dir)
        # who runs which task, checkpoints, pause flags, the fleet's audit log
        # (``coord/``): the state directory unless serve shares a fleet
        self.coordinator = coordinator or StateDirCoordinator(self.state)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.RLock()
        # (seq, entry, audited): the feed of the last 2000 entries, audited
        # (operator actions, state changes) or not (monitor observations)
        self._events: collections.deque[tuple[int, AuditEntry, bool]] = collections.deque(maxlen=2000)
        self._seq = 0

    # ---- tasks ---------------------------------------------------------------

    def add_task(self, task: Task) -> Task:
        with self._lock:
            if task.task_id in self._tasks and self._tasks[task.task_id].state not in (DONE, FAILED):
                raise CommandError(f"a task named {task.task_id!r} already runs")
            task.engine = self
            self._tasks[task.task_id] = task
        self.audit("engine", "add", task.task_id, "ok", task.kind)
        return task

    def create_configured(self, name: str) -> Task:
        """Build (not start) the task declared as ``[tasks.NAME]`` in the config."""
        tc = self.config.task(name)
        return self.add_task(get_kind(tc.kind).make_task(self, tc))

    def start_declared(self, name: str, actor: str = "operator") -> Task:
        """Start the task declared as ``[tasks.NAME]``: built from the config
        when the engine does not have it or it ended (done, failed); refused
        in one line when it already runs.  Talks to the servers (see
        ``start``): call it from an engine thread or a worker."""
        with self._lock:
            have = self._tasks.get(name)
            if have is not None and have.state not in (DONE, FAILED, NEW):
                raise CommandError(f"task {name} is already {have.state}")
            t = have if have is not None and have.state == NEW else None
        c = self.coordinator
        if c.shared and not c.claim(name):  # a fleet's task runs under its lease, once
            owner = c.owners().get(name, "another engine")
            raise CommandError(f"task {name} runs on engine {owner} of the fleet, not this one "
                               f"({c.engine_id})")
        if t is None:
            t = self.create_configured(name)
        self.start(t.task_id, actor=actor)
        return t

    def start_autostart_tasks(self, actor: str = "autostart", *,
                              retry_failed: bool = False) -> dict[str, str]:
        """Create and start every task declared with ``autostart = true`` that
        the engine does not have yet (with ``retry_failed``, also those that
        failed: built again from the config as it is now): {name: "" when
        started, else the one-line reason}.  One refusal does not keep the
        others from starting.  The start checks talk to servers: call it from
        an engine thread or a worker (the console does, when it opens)."""
        out: dict[str, str] = {}
        for name, tc in self.config.tasks.items():
            have = self._tasks.get(name)
            if not tc.autostart or (have is not None and not (retry_failed and have.state == FAILED)):
                continue
            try:
                task = self.create_configured(name)
            except UserError as e:
                self.audit(actor, "start", name, "refused", str(e))
                out[name] = str(e)
                continue
            try:
                self.start(task.task_id, actor=actor)  # audited either way
                out[name] = ""
            except UserError as e:
                out[name] = str(e)
        return out

    def remove_task(self, task_id: str, actor: str = "operator", wait: float = 30.0) -> bool:
        """Stop a task (it checkpoints first) and take it out of the engine.
        False when it did not stop within ``wait`` seconds: it stays (still
        stopping) and a later call takes it out."""
        t = self.task(task_id)
        t.stop(actor=actor, wait=wait)
        if not t.join(0):
            self.audit(actor, "remove", task_id, "failed", f"still stopping after {wait:g} s")
            return False
        with self._lock:
            if self._tasks.get(task_id) is t:
                del self._tasks[task_id]
        self.audit(actor, "remove", task_id, "ok", t.state)
        return True

    def set_config(self, config: Config) -> None:
        """The config from now on (a reload): tasks created later are built
        from it; running tasks keep what they were started with."""
        if config.state_dir.expanduser() != self.state.root:
            raise UserError(f"the state directory cannot change under a running engine "
                            f"({self.state.root} -> {config.state_dir})")
        self.config = config

    def task(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            owner = self.coordinator.owners().get(task_id) if self.coordinator.shared else None
            if owner:
                raise CommandError(f"task {task_id} runs on engine {owner} of the fleet, not this "
                                   f"one ({self.coordinator.engine_id}): send the command to "
                                   f"that engine") from None
            known = ", ".join(self._tasks) or "none"
            raise CommandError(f"no task {task_id!r} (running tasks: {known})") from None

    def tasks(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def statuses(self) -> list[TaskStatus]:
        return [t.status() for t in self.tasks()]

    def start(self, task_id: str, actor: str = "operator") -> None:
        """Start a new task after its pre-start checks (``Task.preflight``: a
        refused login or a replica server_id that a server of the cluster has
        is refused: one line, the task failed with it, nothing streamed).
        Talks to the servers: call it from an engine thread or worker, never
        from a screen."""
        t = self.task(task_id)
        try:
            if t.state == NEW:
                t.preflight()
        except UserError as e:
            t.refuse_start(str(e), actor)
            self.audit(actor, "start", task_id, "refused", str(e))
            raise
        t.start()
        self.audit(actor, "start", task_id, "ok")

    # ---- commands ------------------------------------------------------------

    def command(self, task_id: str, name: str, actor: str = "operator", **args: Any) -> Any:
        """Run an operator command on a task; audited whatever the outcome."""
        try:
            t = self.task(task_id)
            cmds = t.commands()
            if name not in cmds:
                raise CommandError(f"task {task_id} ({t.kind}) has no command {name!r}; "
                                   f"try one of: {', '.join(sorted(cmds))}")
            fn, dangerous, _ = cmds[name]
            confirm = args.pop("confirm", None)
            if dangerous and confirm != t.confirm_target():
                raise ConfirmationRequired(
                    f"{name} on {task_id} is dangerous: confirm by typing {t.confirm_target()!r}")
            params = inspect.signature(fn).parameters
            if "actor" in params:
                args["actor"] = actor
            unknown = [a for a in args if a not in params and not any(
                p.kind == p.VAR_KEYWORD for p in params.values())]
            if unknown:
                raise CommandError(f"command {name} takes no argument {unknown[0]!r}")
            result = fn(**args)
        except UserError as e:
            self.audit(actor, name, task_id, "refused", str(e))
            raise
        except Exception as e:
            self.audit(actor, name, task_id, "failed", f"{type(e).__name__}: {e}")
            raise
        if name in ("pause", "resume") and self.coordinator.shared:
            try:  # the flag outlives this engine: a takeover starts the task paused
                self.coordinator.set_paused(task_id, name == "pause")
            except UserError as e:
                self.audit(actor, name, task_id, "failed", f"pause flag not stored: {e}")
        shown = {k: v for k, v in args.items() if k != "actor"}
        self.audit(actor, name, task_id, "ok", " ".join(f"{k}={v}" for k, v in shown.items()))
        return result

    # ---- one host, for the console's drill-down -----------------------------------

    def host_info(self, cluster: str, host: str, what: str, session: int | None = None) -> Any:
        """Processlist, locks, replication, variables, status or a running
        statement's plan of one host (``topology/hostinfo.py``).  Talks to
        the server: call it from a worker or the API's thread pool."""
        from console.engine.topology import hostinfo

        return hostinfo.report(self.config.cluster(cluster), host, what, session)

    def kill_session(self, cluster: str, host: str, session: int, *, query_only: bool,
                     confirm: str | None = None, actor: str = "operator") -> str:
        """KILL [QUERY] a session of a host; the operator confirms by typing
        the session id.  Audited whatever the outcome."""
        from console.engine.topology import hostinfo

        what = "kill-query" if query_only else "kill-connection"
        target = f"{cluster}/{host}/{session}"
        try:
            if confirm != str(session):
                raise ConfirmationRequired(f"{what} {session} on {host} is dangerous: confirm by "
                                           f"typing {str(session)!r}")
            out = hostinfo.kill(hostinfo.endpoint_of(self.config.cluster(cluster), host), session,
                                query_only=query_only)
        except UserError as e:
            self.audit(actor, what, target, "refused", str(e))
            raise
        self.audit(actor, what, target, "ok", out)
        return out

    # ---- recovery history, for the console's history screen ------------------------

    def recoveries(self, cluster: str) -> list:
        """Every past recovery of ``cluster`` with its steps, oldest first
        (``topology/actions/history.py``: PastRecovery); a running one too,
        its journal is written after every step.  Reads the state directory:
        call it from a worker or the API's thread pool."""
        from console.engine.topology.actions.history import recoveries

        self.config.cluster(cluster)  # an unknown cluster: one line
        return recoveries(self.state.root, cluster)

    def acknowledge(self, cluster: str, *, confirm: str | None = None, actor: str = "operator") -> str:
        """Acknowledge the cluster's recoveries (the cluster's name typed)."""
        from console.engine.topology.actions.acknowledge import acknowledge

        return acknowledge(self, cluster, confirm, actor)

    # ---- audit and events ------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        entry = AuditEntry(time.time(), actor, action, target, outcome, detail)
        try:
            self.state.audit(entry)
        except (OSError, UserError) as e:  # never let audit failure kill a task, but say so
            print(f"dbops-console: cannot write audit log: {e}", file=sys.stderr)
        if self.coordinator.shared:
            self.coordinator.audit(entry)  # queued: never waits on the coordinator
        self._push(entry, audited=True)

    def event(self, source: str, message: str, level: str = "info") -> None:
        """A monitor observation for the event log pane (not an operator action)."""
        self._push(AuditEntry(time.time(), "monitor", level, source, message))

    def _push(self, entry: AuditEntry, audited: bool = False) -> None:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, entry, audited))

    def events_since(self, seq: int, *, audited_only: bool = False) -> list[tuple[int, AuditEntry]]:
        """The feed's entries after ``seq`` (all, or only those written to
        the audit log)."""
        with self._lock:
            return [(s, e) for s, e, a in self._events if s > seq and (a or not audited_only)]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def log_exception(self, source: str, text: str) -> None:
        p = self.state.ensure() / "errors.log"
        with open(p, "a") as f:
            f.write(f"--- {time.strftime('%F %T')} {source}\n{text}\n")

    # ---- shutdown ----------------------------------------------------------------

    def shutdown(self, timeout: float = 10.0) -> None:
        for t in self.tasks():
            if t.state not in (DONE, FAILED, NEW):
                t.stop(actor="engine", wait=None)
            elif t.state == NEW:
                t.stop(actor="engine")
        deadline = time.monotonic() + timeout
        for t in self.tasks():
            t.join(max(0.0, deadline - time.monotonic()))


__all__ = ["Engine", "NEW"]
