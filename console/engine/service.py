"""The engine as a service (``dbops-console serve``): one engine over one
state directory, headless, for as long as the process lives.

``Service`` runs every configured cluster's monitor (as the console does)
and every ``autostart = true`` task until asked to stop, then stops them
(each checkpoints first).  A reload (SIGHUP) reads the config again and
applies the difference: new clusters and tasks appear (the autostart ones
start, and so do autostart tasks that had failed, built again from the new
config), removed ones stop and leave the engine; a task that runs keeps
running as it was started when its declaration (or its cluster) changed:
the change is reported (one line and an audit entry) and applies at its
next start.  A config that does not load, or that moves the state
directory, is reported in one line and the old config stays in force.

One engine per state directory: ``claim`` takes an exclusive ``flock`` on
``STATE_DIR/engine.lock`` for the life of the process (the kernel drops it
however the process ends); a second service on the same directory is
refused with one line naming the pid that serves it, having changed
nothing.

Lines for the operator go to ``say`` (always: what the service did, what
it refused) and to ``show`` (the engine's event feed: monitor observations,
task state changes, operator actions; None for ``--quiet``).  systemd
hears READY, RELOADING, STOPPING, STATUS and the watchdog through
``sdnotify.Notifier``.  Signals are the caller's (the ``serve`` command):
it turns them into ``Requests``.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO

from console.config import ClusterConfig, Config, TaskConfig
from console.engine.coord.coordinator import Coordinator
from console.engine.dirlock import lock_dir
from console.engine.engine import Engine
from console.engine.fleet import Fleet
from console.engine.sdnotify import Notifier
from console.engine.state import AuditEntry
from console.engine.task import FAILED, PAUSED, RUNNING
from console.engine.topology.monitor import MonitorTask, monitor_id
from console.errors import UserError

ENGINE_LOCK = "engine.lock"
ACTOR = "serve"
STOP_TIMEOUT = 30.0  # seconds every task gets to checkpoint and stop
TICK = 0.2           # the main loop's period: events shown, requests seen
_SAID = ("reload", "config-changed", "stop")  # our own audit entries, already said in a line


class Requests:
    """What the signal handlers ask of the main loop: stop (the first stop
    signal's number is kept) or reload.  Safe to call from a handler."""

    def __init__(self):
        self.wake = threading.Event()
        self.stop_signal = ""
        self.reloads = 0

    def stop(self, name: str) -> None:
        if not self.stop_signal:
            self.stop_signal = name
        self.wake.set()

    def reload(self) -> None:
        self.reloads += 1
        self.wake.set()


# ---- what a reload changes (pure: two configs in, the difference out) ---------


def _changed_fields(old, new, skip: tuple[str, ...] = ()) -> list[str]:
    return [f.name for f in fields(old) if f.name not in skip
            and getattr(old, f.name) != getattr(new, f.name)]


def task_changes(old: TaskConfig, new: TaskConfig) -> list[str]:
    """The keys of ``[tasks.NAME]`` whose value differs (``kind`` alone when
    the kind changed: its options are another kind's)."""
    if old.kind != new.kind:
        return ["kind"]
    keys = [k for k in ("cluster", "autostart") if getattr(old, k) != getattr(new, k)]
    return keys + _changed_fields(old.options, new.options)


def cluster_changes(old: ClusterConfig, new: ClusterConfig) -> list[str]:
    return _changed_fields(old, new, skip=("name",))


@dataclass(frozen=True)
class ReloadPlan:
    clusters_added: tuple[str, ...] = ()
    clusters_removed: tuple[str, ...] = ()
    clusters_changed: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, keys)
    tasks_added: tuple[str, ...] = ()
    tasks_removed: tuple[str, ...] = ()
    tasks_changed: tuple[tuple[str, tuple[str, ...]], ...] = ()     # (name, keys)
    refresh_interval: float | None = None  # the monitors' new interval, None: unchanged

    @property
    def empty(self) -> bool:
        return not any((self.clusters_added, self.clusters_removed, self.clusters_changed,
                        self.tasks_added, self.tasks_removed, self.tasks_changed,
                        self.refresh_interval is not None))

    def summary(self) -> str:
        parts = [f"+cluster {n}" for n in self.clusters_added]
        parts += [f"-cluster {n}" for n in self.clusters_removed]
        parts += [f"~cluster {n} ({', '.join(k)})" for n, k in self.clusters_changed]
        parts += [f"+task {n}" for n in self.tasks_added]
        parts += [f"-task {n}" for n in self.tasks_removed]
        parts += [f"~task {n} ({', '.join(k)})" for n, k in self.tasks_changed]
        if self.refresh_interval is not None:
            parts.append(f"refresh interval {self.refresh_interval:g} s")
        return ", ".join(parts) or "no change"


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """What changes from ``old`` to ``new``; raises a one-line ``UserError``
    for a change a running service cannot make (its state directory)."""
    if new.state_dir != old.state_dir:
        raise UserError(f"state_dir changed ({old.state_dir} -> {new.state_dir}): one engine "
                        f"serves one state directory; restart serve to move it")
    return ReloadPlan(
        clusters_added=tuple(n for n in new.clusters if n not in old.clusters),
        clusters_removed=tuple(n for n in old.clusters if n not in new.clusters),
        clusters_changed=tuple((n, tuple(k)) for n in new.clusters if n in old.clusters
                               and (k := cluster_changes(old.clusters[n], new.clusters[n]))),
        tasks_added=tuple(n for n in new.tasks if n not in old.tasks),
        tasks_removed=tuple(n for n in old.tasks if n not in new.tasks),
        tasks_changed=tuple((n, tuple(k)) for n in new.tasks if n in old.tasks
                            and (k := task_changes(old.tasks[n], new.tasks[n]))),
        refresh_interval=(new.ui.refresh_interval
                          if new.ui.refresh_interval != old.ui.refresh_interval else None),
    )


def event_line(e: AuditEntry) -> str:
    """One line of the engine's event feed (a monitor observation carries its
    level as the action and its message as the outcome)."""
    t = time.strftime("%H:%M:%S", time.localtime(e.ts))
    if e.actor == "monitor":
        level = "" if e.action == "info" else f" {e.action}"
        return f"{t} {e.target}{level}: {e.outcome}"
    return f"{t} {e.actor} {e.action} {e.target}: {e.outcome}" + (f" {e.detail}" if e.detail else "")


# ---- the service ------------------------------------------------------------------


class Service:
    def __init__(self, config: Config, *, load: Callable[[], Config],
                 say: Callable[[str], None], show: Callable[[str], None] | None = None,
                 notifier: Notifier | None = None, stop_timeout: float = STOP_TIMEOUT,
                 coordinator: Coordinator | None = None):
        """``load`` reads the config again (a reload); nothing is created yet
        (a state directory that could never be made is refused here).  With a
        shared ``coordinator`` (etcd, opened already) the autostart tasks are
        the fleet's: ``fleet.Fleet`` takes this engine's share of them."""
        self.engine = Engine(config, coordinator=coordinator)
        self.fleet = (Fleet(self.engine, say, interval=min(1.0, config.ui.refresh_interval))
                      if coordinator is not None and coordinator.shared else None)
        self.load = load
        self.say = say
        self.show = show
        self.notifier = notifier or Notifier({})
        self.stop_timeout = stop_timeout
        self._lock_file: IO[str] | None = None
        self._seq = 0
        self._reload_lock = threading.Lock()  # SIGHUP's and the API's reloads, one at a time

    @property
    def config(self) -> Config:
        return self.engine.config

    @property
    def state_dir(self) -> Path:
        return self.engine.state.root

    # ---- one engine per state directory ------------------------------------------

    def claim(self) -> None:
        """The state directory's engine lock, held until the process ends."""
        root = self.state_dir

        def served(holder: str, pid: int | None) -> UserError:
            return UserError(f"state directory {root} is served by "
                             + (f"pid {pid}" if pid else "another process"))

        self._lock_file = lock_dir(root, ACTOR, served, name=ENGINE_LOCK)

    # ---- start, run, stop ----------------------------------------------------------

    def start(self) -> None:
        """Monitors and autostart tasks (their start checks talk to the
        servers), then READY=1."""
        for cluster in self.config.clusters.values():
            self._start_monitor(cluster)
        if self.fleet is not None:
            self.fleet.start()
            refused = 0
        else:
            refused = self._autostart(retry_failed=False)
        self.pump()
        if self.show:
            self.say(f"serve: serving {self.state_dir} ({self._counts()})"
                     + (f"; {refused} autostart task(s) refused" if refused else ""))
        self.notifier.ready(self._counts())
        self._note_notify_error()

    def run(self, requests: Requests) -> int:
        """The main loop until a stop request; returns the exit code."""
        seen_reloads = requests.reloads
        while not requests.stop_signal:
            self.notifier.watchdog()
            if requests.reloads != seen_reloads:
                seen_reloads = requests.reloads
                self.reload()
            if self.fleet is not None:
                self.fleet.tick()
            self.pump()
            wait = TICK
            nxt = self.notifier.until_next_ping()
            if nxt is not None:
                wait = min(wait, nxt)
            requests.wake.wait(wait)
            requests.wake.clear()
        return self.stop(requests.stop_signal)

    def stop(self, why: str) -> int:
        """Every task checkpoints and stops; the one last line; 0 when all
        stopped in time, 1 when one did not (it is named)."""
        self.notifier.stopping(f"stopping ({why})")
        self.engine.audit(ACTOR, "stop", str(self.state_dir), "ok", why)
        tasks = self.engine.tasks()
        self.engine.shutdown(timeout=self.stop_timeout)
        if self.fleet is not None:
            self.engine.coordinator.close()  # the leases given back: others take over now
        self.pump()
        stuck = [t.task_id for t in tasks if not t.join(0)]
        stopped = [t for t in tasks if t.task_id not in stuck]
        what = ", ".join(f"{t.task_id} {t.state}" for t in stopped) or "no task"
        if stuck:
            self.say(f"serve: stopped by {why}: {what}; still running after "
                     f"{self.stop_timeout:g} s: {', '.join(stuck)}")
            return 1
        self.say(f"serve: stopped by {why}: {what}")
        return 0

    def pump(self) -> None:
        """Show the engine's events that came since the last call."""
        for seq, entry in self.engine.events_since(self._seq):
            self._seq = seq
            if self.show and not (entry.actor == ACTOR and entry.action in _SAID):
                self.show(f"serve: {event_line(entry)}")

    # ---- reload ---------------------------------------------------------------------

    def reload(self) -> ReloadPlan | None:
        """Read the config again and apply the difference (see the module's
        docstring); None when the new config was refused.  Safe from any
        thread (the API reloads after it edited the config)."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> ReloadPlan | None:
        self.notifier.reloading()
        try:
            try:
                new = self.load()
                if self.fleet is not None:  # the fleet's tasks other engines declare stay
                    new = self.fleet.merged(new)
                plan = plan_reload(self.config, new)
            except UserError as e:
                if self.fleet is not None:
                    self.fleet.cancel()
                self.engine.audit(ACTOR, "reload", self._config_name(), "refused", str(e))
                self.say(f"serve: reload refused, the old config stays in force: {e}")
                return None
            try:
                self._apply(plan, new)
            except Exception as e:  # noqa: BLE001 - a bug must not take the running tasks down
                self.engine.log_exception(ACTOR, traceback.format_exc())
                self.engine.audit(ACTOR, "reload", self._config_name(), "failed",
                                  f"{type(e).__name__}: {e}")
                self.say(f"serve: reload failed part way: {type(e).__name__}: {e} "
                         f"(traceback in {self.state_dir / 'errors.log'}); serving on")
            if self.fleet is not None:  # the file's definitions are the fleet's
                try:
                    self.fleet.define()
                except UserError as e:
                    self.say(f"serve: coordinator: the config's task definitions not published: {e}")
            return plan
        finally:
            self.notifier.ready(self._counts())
            self._note_notify_error()

    def _apply(self, plan: ReloadPlan, new: Config) -> None:
        self.engine.set_config(new)
        self.engine.audit(ACTOR, "reload", self._config_name(), "ok", plan.summary())
        self.say(f"serve: reloaded {self._config_name()}: {plan.summary()}")
        # tasks no longer declared (whatever the plan says: one that had not
        # stopped at a previous reload is taken out now)
        for t in self.engine.tasks():
            if isinstance(t, MonitorTask) or t.task_id in new.tasks:
                continue
            self.notifier.watchdog()  # a stop may take a while: this loop is alive
            was = t.state
            if self.engine.remove_task(t.task_id, actor=ACTOR, wait=self.stop_timeout):
                self.say(f"serve: task {t.task_id} is no longer in the config: "
                         + ("stopped" if was in (RUNNING, PAUSED) else f"removed ({was})"))
            else:
                self.say(f"serve: task {t.task_id} is no longer in the config; it did not stop "
                         f"within {self.stop_timeout:g} s and is still stopping")
        # monitors follow the clusters
        changed_clusters = dict(plan.clusters_changed)
        for t in self.engine.tasks():
            if isinstance(t, MonitorTask) and (t.cluster.name not in new.clusters
                                               or t.cluster.name in changed_clusters):
                self.engine.remove_task(t.task_id, actor=ACTOR, wait=self.stop_timeout)
        for name in (*plan.clusters_added, *changed_clusters):
            self._start_monitor(new.clusters[name])
        if plan.refresh_interval is not None:
            for t in self.engine.tasks():
                if isinstance(t, MonitorTask):
                    t.set_interval(plan.refresh_interval)
        # a running task keeps running as it was started: say what waits
        changed_tasks = dict(plan.tasks_changed)
        for t in self.engine.tasks():
            if isinstance(t, MonitorTask) or t.state not in (RUNNING, PAUSED):
                continue
            what = [", ".join(changed_tasks[t.task_id])] if t.task_id in changed_tasks else []
            tc = new.tasks.get(t.task_id)
            home = (tc.cluster if tc else None) or next(iter(new.clusters), None)
            if home in changed_clusters:
                what.append(f"its cluster {home}: {', '.join(changed_clusters[home])}")
            if what:
                detail = (f"changed in the config ({'; '.join(what)}): it keeps running as "
                          f"started; the change applies at its next start")
                self.engine.audit(ACTOR, "config-changed", t.task_id, "pending", detail)
                self.say(f"serve: task {t.task_id} {detail}")
        if self.fleet is None:
            self._autostart(retry_failed=True)

    # ---- helpers ------------------------------------------------------------------------

    def _start_monitor(self, cluster: ClusterConfig) -> None:
        task = MonitorTask(cluster, self.config.ui.refresh_interval)
        self.engine.add_task(task)
        self.engine.start(task.task_id, actor=ACTOR)

    def _autostart(self, *, retry_failed: bool) -> int:
        refused = 0
        for name, error in self.engine.start_autostart_tasks(actor=ACTOR,
                                                             retry_failed=retry_failed).items():
            if error:
                refused += 1
                self.say(f"serve: autostart task {name} refused: {error}")
        return refused

    def _counts(self) -> str:
        tasks = [t for t in self.engine.tasks() if not isinstance(t, MonitorTask)]
        running = sum(1 for t in tasks if t.state in (RUNNING, PAUSED))
        failed = sum(1 for t in tasks if t.state == FAILED)
        return (f"{len(self.config.clusters)} cluster(s) monitored, {running} task(s) running"
                + (f", {failed} failed" if failed else ""))

    def _config_name(self) -> str:
        return str(self.config.path) if self.config.path else "the config"

    def _note_notify_error(self) -> None:
        if self.notifier.last_error:
            self.say(f"serve: {self.notifier.last_error}")
            self.notifier.last_error = ""


__all__ = ["Service", "Requests", "ReloadPlan", "plan_reload", "monitor_id", "ENGINE_LOCK"]
