"""One dump-session loop for the tasks that stream a binlog (relay, backup):
run a session (connect, stream), and when it fails, end it cleanly and
reconnect with backoff, under one transient-error policy.

The policy, the same for every streaming task:

- a refused login (access denied) and a ``server_id`` clash (error 4052:
  another replica took our id) are operator errors: never retried, the
  task fails with the server's reason;
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
    return is_access_denied(err) or (isinstance(err, DumpError) and err.code == ER_SLAVE_SAME_ID)


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
        while True:
            task.checkpoint()
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
            if never_retried(err) or (permanent(err) and not self.other_source()):
                raise (err if isinstance(err, UserError) else UserError(msg)) from None
            if self.streamed():
                delays = None
            self.on_retry(err)
            delays = delays or backoff_delays(self.reconnect_base, self.reconnect_max)
            task.set_phase("reconnecting")
            self.wait(next(delays))
