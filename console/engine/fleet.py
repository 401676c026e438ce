"""One engine of a shared fleet (``serve --coordinator``): which tasks it
takes, when it lets one go, what it tells the others.

Every ``interval`` the service's loop calls ``Fleet.tick``:

1. **fence**: a task whose ownership lease this engine no longer holds (its
   local deadline passed: etcd unreachable, the process was stopped) is
   stopped at once (its writes are refused already: ``Task.guard_write``),
   then taken out of the engine and its lease given back;
2. **tell**: each owned task's state, phase, last error and summary go to
   the coordinator (for every engine's console);
3. **adopt**: the fleet's task definitions (each engine publishes its
   config file's whole ``[tasks.NAME]`` tables) that this engine's file
   lacks are read as the file's are and join its config, when it knows
   their cluster (the hosts and passwords stay in each engine's file, never
   in etcd); one it cannot read is said once and left out.  A definition
   its declarer took out of its file is forgotten in etcd, and an engine
   running it stops it;
4. **take**: the autostart tasks of the config that nobody owns are taken,
   one per tick, while this engine runs fewer than its share (the tasks
   divided by the engines alive, rounded up); the pick is spread by a hash
   of the engine and the task.  A task left free for ``ORPHAN_AFTER``
   seconds is taken past the share: the engines under their share cannot
   run it (their files lack its cluster) or are stuck, and a task nobody
   runs is worse than an uneven spread.  A task taken over starts from its stored
   checkpoint (relay.meta, the backup catalog: shared storage), paused when
   its pause flag says so.  A start refused gives the lease back and is
   not tried again by this engine for ``RETRY_AFTER`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import replace

from console.config import Config, parse_task_table, task_table
from console.engine.coord.coordinator import Fenced
from console.engine.task import DONE, FAILED, NEW
from console.errors import UserError

ACTOR = "coordinator"
RETRY_AFTER = 30.0
STATUS_EVERY = 5.0  # a status unchanged is told again this often
ORPHAN_AFTER = 5.0  # a task free this long is taken by an engine past its share


def share(tasks: int, engines: int) -> int:
    """How many of ``tasks`` one of ``engines`` engines runs at most."""
    return math.ceil(tasks / max(1, engines)) if tasks else 0


def spread_order(engine_id: str, names: list[str]) -> list[str]:
    """``names`` in an order of this engine's own (engines pick different ones first)."""
    return sorted(names, key=lambda n: hashlib.sha1(f"{engine_id}/{n}".encode()).digest())


class Fleet:
    def __init__(self, engine, say: Callable[[str], None], interval: float = 1.0):
        self.engine = engine
        self.coord = engine.coordinator
        self.say = say
        self.interval = interval
        self._next = 0.0
        self._settle_until = 0.0
        self._told: dict[str, tuple[float, dict]] = {}
        self._refused: dict[str, float] = {}
        self._down = ""
        self._fenced: set[str] = set()  # said lost, not released yet
        self.own: set[str] = set(engine.config.tasks)   # the tasks this engine's config file declares
        self._forget: set[str] = set()    # declared by the file before, not any more: out of etcd
        self._file_tasks: set[str] | None = None   # the file's tasks after a reload, until define()
        self._unread: dict[str, str] = {}  # a fleet definition left out -> why (said once)
        self._parsed: dict[str, tuple[str, object, object]] = {}  # name -> (its table, clusters, TaskConfig)
        self._dropping: set[str] = set()  # adopted, then no longer declared: being taken out
        self._free_since: dict[str, float] = {}  # a task nobody owns -> since when (seen by _take)

    def start(self) -> None:
        """Publish the config's task definitions; take tasks after one interval
        (the engines started together see each other first)."""
        self.define()
        self._settle_until = time.monotonic() + 2 * self.interval
        self.say(f"serve: sharing the fleet through {self.coord.description} as engine "
                 f"{self.coord.engine_id}")

    def define(self) -> None:
        """Publish the config file's task definitions, whole; forget those it
        no longer declares (after a reload: ``merged``)."""
        tasks = self.engine.config.tasks
        if self._file_tasks is not None:
            self._forget |= self.own - self._file_tasks
            self.own, self._file_tasks = self._file_tasks, None
        self.coord.define_tasks({n: task_table(tasks[n]) for n in sorted(self.own) if n in tasks},
                                forget=sorted(self._forget))
        self._forget.clear()

    def merged(self, file_config: Config) -> Config:
        """A config read again from the file (a reload), with the fleet's
        definitions it lacks: what the engine runs once the reload applies
        (``define`` then makes the file's tasks this engine's own)."""
        self._file_tasks = set(file_config.tasks)
        return self._adopted(file_config, self._file_tasks, self.own - self._file_tasks)

    def cancel(self) -> None:
        """The reload ``merged`` read was refused: the file's tasks stay as they were."""
        self._file_tasks = None

    def _adopted(self, config: Config, own: set[str], dropped: set[str] = frozenset()) -> Config:
        """``config``'s tasks of the file (``own``) and the fleet's others,
        but for those this engine's file no longer declares (``dropped``)."""
        tasks = {n: tc for n, tc in config.tasks.items() if n in own}
        for name, table in sorted(self.coord.definitions().items()):
            if name in own or name in dropped or name in self._forget:
                continue
            text = json.dumps(table, sort_keys=True)
            cached = self._parsed.get(name)
            if cached and cached[0] == text and cached[1] is config.clusters:   # read once per definition
                tasks[name] = cached[2]
                continue
            try:
                tasks[name] = parse_task_table(table, name, config.clusters, "the fleet's definition")
                self._parsed[name] = (text, config.clusters, tasks[name])
                self._unread.pop(name, None)
            except UserError as e:
                if self._unread.get(name) != str(e):
                    self._unread[name] = str(e)
                    self.say(f"serve: fleet task {name} left out (this engine cannot run it): {e}")
        return replace(config, tasks=tasks)

    def _adopt(self) -> None:
        if self._file_tasks is not None:   # a reload applies (another thread): its define() comes
            return
        old = self.engine.config
        new = self._adopted(old, self.own)
        if new.tasks == old.tasks:
            return
        self.engine.set_config(new)
        for name in sorted(set(new.tasks) - set(old.tasks)):
            self.say(f"serve: task {name}: declared by another engine of the fleet, adopted")
        for name in sorted(set(old.tasks) - set(new.tasks)):
            self.say(f"serve: task {name}: no longer declared in the fleet")
            self._dropping.add(name)

    def _drop(self) -> None:
        """Take out the tasks the fleet no longer declares (a stop may take
        a few ticks; the lease goes back once it is out: ``_fence``)."""
        have = {t.task_id for t in self.engine.tasks()}
        for name in sorted(self._dropping):
            if name in self.engine.config.tasks:   # declared again
                self._dropping.discard(name)
            elif name not in have or self.engine.remove_task(name, actor=ACTOR, wait=0):
                self._dropping.discard(name)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.interval
        self._fence()
        try:
            self.coord.refresh()
        except UserError as e:
            if str(e) != self._down:
                self._down = str(e)
                self.say(f"serve: coordinator: {e}")
            return
        if self._down:
            self._down = ""
            self.say(f"serve: coordinator: {self.coord.description} answers again")
        self._tell()
        self._adopt()
        self._drop()
        if now >= self._settle_until:
            self._take()

    # ---- 1. fence ---------------------------------------------------------------------

    def _fence(self) -> None:
        have = {t.task_id: t for t in self.engine.tasks()}
        for task_id in self.coord.held():
            t = have.get(task_id)
            if t is None:  # taken out of the engine (a reload removed it): let it go
                self.coord.release(task_id)
                self._told.pop(task_id, None)
                continue
            fenced = not self.coord.holds(task_id)
            ended_fenced = t is not None and t.state in (DONE, FAILED) and isinstance(t.failure, Fenced)
            if not fenced and not ended_fenced:
                continue
            if task_id not in self._fenced:
                self._fenced.add(task_id)
                self.engine.audit(ACTOR, "lease-lost", task_id, "failed",
                                  f"engine {self.coord.engine_id} stops writing for it")
                self.say(f"serve: task {task_id}: ownership lease lost; stopped, this engine "
                         f"writes nothing more for it")
            if t is not None and t.state not in (DONE, FAILED):
                t.stop(actor=ACTOR, wait=None)
                if not t.join(0):
                    continue  # taken out at a later tick
            self.coord.release(task_id)
            self._fenced.discard(task_id)
            self._told.pop(task_id, None)
            if t is not None:
                self.engine.remove_task(task_id, actor=ACTOR, wait=0)

    # ---- 2. tell --------------------------------------------------------------------------

    def _tell(self) -> None:
        now = time.monotonic()
        have = {t.task_id: t for t in self.engine.tasks()}
        for task_id in self.coord.held():
            t = have.get(task_id)
            if t is None or not self.coord.holds(task_id):
                continue
            st = t.status()
            d = {"kind": st.kind, "state": st.state, "phase": st.phase, "since": st.since,
                 "last_error": st.last_error, "throttle_reason": st.throttle_reason,
                 "summary": st.summary}
            last = self._told.get(task_id)
            if last is not None and last[1] == d and now - last[0] < STATUS_EVERY:
                continue
            try:
                self.coord.publish_status(task_id, d)
                self._told[task_id] = (now, d)
            except UserError:
                pass

    # ---- 3. take ----------------------------------------------------------------------------

    def _take(self) -> None:
        config = self.engine.config
        wanted = [n for n, tc in config.tasks.items() if tc.autostart]
        owners = self.coord.owners()
        mine = [n for n in self.coord.held() if self.coord.holds(n)]
        now = time.monotonic()
        self._free_since = {n: self._free_since.get(n, now) for n in wanted if n not in owners}
        free = [n for n in wanted if n not in owners and self._refused.get(n, 0) <= now
                and not self._running(n)]
        if len(mine) >= share(len(wanted), len(self.coord.engines())):
            free = [n for n in free if now - self._free_since[n] >= ORPHAN_AFTER]   # orphans only
        for name in spread_order(self.coord.engine_id, free):
            if not self.coord.claim(name):
                continue
            self._run(name)
            return

    def _running(self, name: str) -> bool:
        t = next((t for t in self.engine.tasks() if t.task_id == name), None)
        return t is not None and t.state not in (DONE, FAILED, NEW)

    def _run(self, name: str) -> None:
        c = self.coord
        try:
            paused = c.paused(name)
            self.engine.audit(ACTOR, "take", name, "ok", f"engine {c.engine_id}")
            t = self.engine.start_declared(name, actor=ACTOR)
            if paused and t.state not in (DONE, FAILED):
                t.pause(actor=ACTOR)
            self.say(f"serve: task {name}: taken by this engine ({c.engine_id})"
                     + (", paused as its flag says" if paused else ""))
        except UserError as e:
            self._refused[name] = time.monotonic() + RETRY_AFTER
            c.release(name)
            self.say(f"serve: task {name} refused: {e}")
