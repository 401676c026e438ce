"""One dump-session loop for the tasks that stream a binlog (relay, backup):
run a session (connect, stream), and when it fails, end it cleanly and
reconnect with backoff, under one transient-error policy.

The policy, the same for every streaming task:

- a refused login (access denied) and a ``server_id`` clash (error 4052:
  another replica took our id) are operator errors: never retried, the
  task fails with the server's reason; but for a task of a shared fleet
  that still holds its ownership lease, a clash is retried for two lease
  periods (``clash_grace``): the other session is the task's previous
  owner, woken after a stop, which the lease fences within a period (a
  replica that keeps taking the id fails the task after those periods);
- before every session a task of a shared fleet checks it still holds its
  lease (``Task.guard_write``): a stale owner never opens a dump session,
  which would kick the new owner's out with error 4052;
- any other error a server marked permanent (e.g. 1236: the position is
  gone, or an upstream that lacks transactions we already hold) ends the
  task too, unless the task can try another source (a backup that follows
  the primary finds the new one);
- everything else (connection lost, timeouts, a server restarting) is
  retried with exponential backoff and jitter up to ``reconnect_max``; a
  session that streamed something starts the backoff over.

A session ends on purpose (pause, switch of source) by raising
``EndSession``: the next one starts at once, with no backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from console.engine.task import Task, TaskStopped
from console.errors import UserError
from console.mysql.binlog import events as E
from console.mysql.binlog.client import ER_SLAVE_SAME_ID, DumpError
from console.mysql.connection import DBError, is_access_denied
from console.mysql.retry import backoff_delays

RETRYABLE: tuple[type[BaseException], ...] = (DumpError, DBError, OSError, E.BinlogFormatError)


class EndSession(Exception):
    """The session ends on purpose: start the next one at once."""


def never_retried(err: BaseException) -> bool:
    """An operator error: a refused login or a server_id clash."""
    return is_access_denied(err) or same_id(err)


CLASH_STREAK = 10  # clashes this many grace periods after a streak's first start a new one


def same_id(err: BaseException) -> bool:
    """Error 4052: another replica registered with our server_id."""
    return isinstance(err, DumpError) and err.code == ER_SLAVE_SAME_ID


def clash_grace(task: Task) -> float:
    """How long a task retries server_id clashes (seconds since the first
    of a streak): two lease periods while it holds a shared fleet's lease,
    else none."""
    if not task.leased or not task.may_write():
        return 0.0
    return 2.0 * task.engine.coordinator.ttl


def permanent(err: BaseException) -> bool:
    """Retrying the same source cannot help."""
    return never_retried(err) or getattr(err, "transient", True) is False


def describe(err: BaseException) -> str:
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"


@dataclass
class SessionLoop:
    """``session()`` returns True when the task is done (a relay that caught
    up with ``stop_at_end``), False to start another session at once; it
    raises ``EndSession`` to end on purpose, an error of ``retryable`` when
    the session failed.  ``end()`` closes what a session left open (called
    after every session that did not return normally, before any wait).
    ``streamed()`` says whether the last session moved data (the backoff
    then starts over).  ``other_source()`` says whether a permanent error of
    this source may be cured by another one.  ``paused()`` says whether the
    task was paused (no backoff: the task's checkpoint waits).
    ``on_retry(err)`` counts the retry (and may raise to give up).
    ``wait(seconds)`` sleeps, returning early when the task is stopped or
    woken."""

    task: Task
    session: Callable[[], bool]
    end: Callable[[], None]
    wait: Callable[[float], object]
    reconnect_base: float
    reconnect_max: float
    streamed: Callable[[], bool] = lambda: False
    other_source: Callable[[], bool] = lambda: False
    paused: Callable[[], bool] = lambda: False
    on_retry: Callable[[BaseException], None] = lambda err: None
    retryable: tuple[type[BaseException], ...] = RETRYABLE

    def run(self) -> None:
        task = self.task
        delays = None
        clashed_at: float | None = None   # the first server_id clash of a streak
        while True:
            task.checkpoint()
            task.guard_write()   # a stale owner of a fleet's task opens no session
            try:
                if self.session():
                    return
                delays = None
                continue
            except TaskStopped:
                self.end()
                raise
            except EndSession:
                self.end()
                continue
            except self.retryable as e:
                self.end()
                err = e
            if task.stopping:
                raise TaskStopped() from None
            if self.paused():
                continue
            msg = describe(err)
            task.set_error(msg)
            if task.engine:  # the event log pane shows every failed session
                task.engine.event(task.task_id, msg, level="warn")
            if self.streamed():
                delays = None
            if same_id(err):
                now, grace = time.monotonic(), clash_grace(task)
                if clashed_at is None or now - clashed_at >= CLASH_STREAK * grace:
                    clashed_at = now   # a new streak (a later hand-over)
                if now - clashed_at >= grace:
                    raise UserError(msg) from None
            elif never_retried(err) or (permanent(err) and not self.other_source()):
                raise (err if isinstance(err, UserError) else UserError(msg)) from None
            self.on_retry(err)
            delays = delays or backoff_delays(self.reconnect_base, self.reconnect_max)
            task.set_phase("reconnecting")
            self.wait(next(delays))
