"""Task base: lifecycle, pause/resume/stop, frozen status snapshots, commands.

A task is a state machine::

    new -> running <-> paused -> done | failed      (stopped = done by request)

plus a task-specific ``phase``.  Subclasses implement ``run()`` in an engine
thread and call ``self.checkpoint()`` often: it blocks while paused and
raises ``TaskStopped`` when a stop was requested.  ``status()`` returns a
frozen ``TaskStatus`` whose ``detail`` is the kind's own frozen dataclass.
Commands are methods decorated with ``@command``; the engine dispatches and
audits them.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.errors import CommandError, UserError

NEW, RUNNING, PAUSED, DONE, FAILED = "new", "running", "paused", "done", "failed"
STATES = (NEW, RUNNING, PAUSED, DONE, FAILED)
_ALLOWED = {
    NEW: {RUNNING, FAILED, DONE},
    RUNNING: {PAUSED, DONE, FAILED},
    PAUSED: {RUNNING, DONE, FAILED},
    DONE: set(),
    FAILED: set(),
}


class TaskStopped(Exception):
    """Raised inside ``run()`` by ``checkpoint()`` when a stop was requested."""


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    kind: str
    state: str
    phase: str
    since: float
    last_error: str
    throttle_reason: str
    summary: str
    detail: Any = None  # the kind's own frozen dataclass
    engine: str = ""    # the engine that runs it, as the API says (a shared fleet's consoles)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict, is_dataclass

        d = {k: getattr(self, k) for k in ("task_id", "kind", "state", "phase", "since",
                                           "last_error", "throttle_reason", "summary")}
        d["detail"] = asdict(self.detail) if is_dataclass(self.detail) else self.detail
        return d


def command(name: str | None = None, *, dangerous: bool = False, help: str = ""):
    """Mark a Task method as an operator command.  ``dangerous`` commands need
    ``confirm=<task target>`` (see ``Task.confirm_target``)."""

    def deco(fn: Callable) -> Callable:
        fn._command = (name or fn.__name__.replace("_", "-"), dangerous, help or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return deco


class Task:
    kind = "task"
    report_host = ""  # a task that reads a binlog as a replica: the host it registers as

    def __init__(self, task_id: str):
        self.task_id = task_id
        self.engine: Any = None  # the Engine that owns it (audit log, events)
        self._state = NEW
        self._phase = ""
        self._since = time.time()
        self._phase_started = time.monotonic()
        self._phase_seconds: dict[str, float] = {}
        self._last_error = ""
        self._throttle_reason = ""
        self._lock = threading.RLock()
        self._resume = threading.Event()
        self._resume.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checked = False                     # preflight() passed
        self.failure: BaseException | None = None  # what ended run() when it failed

    # ---- lifecycle ---------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def phase(self) -> str:
        return self._phase

    def _transition(self, new: str, actor: str = "engine", detail: str = "") -> None:
        with self._lock:
            old = self._state
            if new == old:
                return
            if new not in _ALLOWED[old]:
                raise CommandError(f"task {self.task_id} is {old}; cannot become {new}")
            self._state = new
            self._since = time.time()
        if self.engine:
            self.engine.audit(actor, "state", self.task_id, new, f"from {old}" + (f": {detail}" if detail else ""))

    def set_phase(self, phase: str) -> None:
        with self._lock:
            if phase != self._phase:
                now = time.monotonic()
                if self._phase:
                    self._phase_seconds[self._phase] = (self._phase_seconds.get(self._phase, 0.0)
                                                        + now - self._phase_started)
                self._phase = phase
                self._phase_started = now
                self._since = time.time()
                if self.engine:
                    self.engine.audit("engine", "phase", self.task_id, phase)

    def phase_seconds(self) -> dict[str, float]:
        """Seconds spent in each phase so far, in the order first entered (a
        phase entered twice, e.g. ``postponed``, adds up); the current phase
        counts up to now."""
        with self._lock:
            out = dict(self._phase_seconds)
            if self._phase:
                out[self._phase] = out.get(self._phase, 0.0) + time.monotonic() - self._phase_started
            return out

    def set_error(self, msg: str) -> None:
        self._last_error = msg

    def set_throttle(self, reason: str) -> None:
        self._throttle_reason = reason

    def start(self) -> None:
        with self._lock:
            if self._state != NEW:
                raise CommandError(f"task {self.task_id} is {self._state}; only a new task can start")
            self._transition(RUNNING)
            self._thread = threading.Thread(target=self._main, name=f"task-{self.task_id}", daemon=True)
            self._thread.start()

    def preflight(self) -> None:
        """The checks before a start (``Engine.start`` runs them; a foreground
        command runs them first, before anything is created): raise a one-line
        ``UserError`` when the task cannot run as configured (a login refused,
        a server_id in use, its directory locked by another process).  Only
        talks to servers and, last, takes what the task must own alone
        (``claim``).  Runs once; a failed one runs again next time."""
        if self._checked:
            return
        self.start_checks()
        self.claim()
        self._checked = True

    def refuse_start(self, reason: str, actor: str = "engine") -> None:
        """A new task that must not start (a failed pre-start check): failed,
        with the reason as its last error, so every face shows why."""
        with self._lock:
            if self._state != NEW:
                return
            self._last_error = reason
            self._transition(FAILED, actor, reason)
        self.release()

    def _main(self) -> None:
        try:
            self.run()
        except TaskStopped:
            self._finish(DONE, "stopped")
        except UserError as e:
            self._last_error = str(e)
            self.failure = e
            self._finish(FAILED, str(e))
        except Exception as e:  # noqa: BLE001 - a task must never die silently
            self._last_error = f"{type(e).__name__}: {e}"
            self.failure = e
            if self.engine:
                self.engine.log_exception(self.task_id, traceback.format_exc())
            self._finish(FAILED, self._last_error)
        else:
            self._finish(DONE)
        finally:
            self.cleanup()

    def _finish(self, state: str, detail: str = "") -> None:
        with self._lock:
            if self._state in (DONE, FAILED):
                return
            self._resume.set()
            self._transition(state, detail=detail)

    def pause(self, actor: str = "operator") -> None:
        with self._lock:
            if self._state != RUNNING:
                raise CommandError(f"task {self.task_id} is {self._state}; only a running task can pause")
            self._resume.clear()
            self._transition(PAUSED, actor)

    def resume(self, actor: str = "operator") -> None:
        with self._lock:
            if self._state != PAUSED:
                raise CommandError(f"task {self.task_id} is {self._state}; only a paused task can resume")
            self._transition(RUNNING, actor)
            self._resume.set()

    def stop(self, actor: str = "operator", wait: float | None = 10.0) -> None:
        with self._lock:
            if self._state in (DONE, FAILED):
                return
            self._stop.set()
            self._resume.set()
            if self._state == NEW:
                self._transition(DONE, actor, "stopped before start")
                self.release()
                return
        self.on_stop_requested()
        if wait and self._thread and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def checkpoint(self) -> None:
        """Call often from ``run()``: waits while paused, raises when stopping."""
        while not self._resume.is_set():
            self._resume.wait(0.2)
        if self._stop.is_set():
            raise TaskStopped()

    def sleep(self, seconds: float) -> None:
        """Interruptible sleep: returns early (raising) on stop."""
        if self._stop.wait(seconds):
            raise TaskStopped()
        self.checkpoint()

    # ---- to override -------------------------------------------------------

    def run(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Called once when ``run`` ends, however it ends."""

    def on_stop_requested(self) -> None:
        """Called (from the operator's thread) when stop is requested: close
        sockets here so a blocking read returns."""

    def detail(self) -> Any:
        return None

    def summary(self) -> str:
        return ""

    def start_checks(self) -> None:
        """Pre-start checks (``preflight``): by default, no account of
        ``login_endpoints()`` is refused (error 1045: never retried, so never
        started) and the ``dump_registration()`` server_id is no server's."""
        from console.engine.preflight import check_logins
        from console.engine.server_id import check_server_id

        check_logins(self.login_endpoints())
        reg = self.dump_registration()
        if reg is not None:
            sid, endpoints, setting = reg
            check_server_id(self.task_id, sid, endpoints, setting, own_report_host=self.report_host)

    def login_endpoints(self) -> tuple:
        """The endpoints (with the credentials) the task logs in to."""
        return ()

    def claim(self) -> None:
        """Take what the task must own alone (a directory lock), the last
        step of ``preflight``; raise a one-line ``UserError`` when another
        process has it.  Released by ``release``."""

    def release(self) -> None:
        """Give back what ``claim`` took (a task that never ran; ``cleanup``
        releases it for a task that ran)."""

    def dump_registration(self) -> tuple[int, tuple, str] | None:
        """For a task that connects as a replica (binlog dump): its server_id,
        the endpoints of every server that must not have it, and the setting
        that sets it (checked by ``Engine.start``).  None otherwise."""
        return None

    # ---- coordination (``engine/coord/``) ------------------------------------

    @property
    def leased(self) -> bool:
        """True when the task runs under a shared coordinator's ownership
        lease: the lease, not a directory lock, keeps one writer (another
        engine on this machine may take the task over from a stopped one)."""
        return self.engine is not None and self.engine.coordinator.shared

    def may_write(self) -> bool:
        """False once this engine lost the task's lease (fenced)."""
        return self.engine is None or self.engine.coordinator.holds(self.task_id)

    def guard_write(self) -> None:
        """Call before every durable write: raises ``Fenced`` (one line) when
        the task's ownership lease is lost, so a stale owner writes nothing."""
        if self.engine is not None:
            self.engine.coordinator.guard(self.task_id)

    def publish_checkpoint(self, name: str, order, value, lineage: str = "") -> None:
        """Tell the coordinator a checkpoint that is durable already; it
        refuses one that moves backwards or comes from a stale owner."""
        if self.engine is None or not self.engine.coordinator.shared:
            return
        from console.engine.coord.etcdkv import CoordinatorDown

        try:
            self.engine.coordinator.publish_checkpoint(self.task_id, name, order, value, lineage)
        except CoordinatorDown as e:  # unreachable for now: the lease's deadline fences
            self.set_error(f"checkpoint {name} not published: {e}")

    def confirm_target(self) -> str:
        """What an operator must type to confirm a dangerous command."""
        return self.task_id

    # ---- status and commands ------------------------------------------------

    def status(self) -> TaskStatus:
        with self._lock:
            return TaskStatus(
                task_id=self.task_id, kind=self.kind, state=self._state, phase=self._phase,
                since=self._since, last_error=self._last_error,
                throttle_reason=self._throttle_reason, summary=self.summary(),
                detail=self.detail(),
            )

    def commands(self) -> dict[str, tuple[Callable, bool, str]]:
        out = {
            "pause": (lambda actor="operator": self.pause(actor), False, "pause the task"),
            "resume": (lambda actor="operator": self.resume(actor), False, "resume a paused task"),
            "stop": (lambda actor="operator": self.stop(actor), False, "stop the task"),
        }
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            meta = getattr(fn, "_command", None)
            if meta:
                name, dangerous, help_ = meta
                out[name] = (getattr(self, attr), dangerous, help_)
        return out
