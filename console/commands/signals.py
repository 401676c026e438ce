"""How every foreground command stops: SIGINT, SIGTERM and SIGHUP all mean
"stop cleanly" (Ctrl-C, a service manager's stop, a closed terminal).

A long-running command (``relay``, ``backup``, ``monitor``, ``migrate``)
polls the event ``stop_signals()`` yields and stops its tasks, which
checkpoint first; a one-shot command (``backup snapshot``, ``restore``) asks
for ``interrupt=True``: the first signal also raises ``StopRequested`` where
the main thread is, so the command's own cleanup runs (children killed, temp
files removed).  A second signal while stopping is ignored: the clean stop is
already under way.

Every foreground command stopped by a signal prints its one last line and
exits 128 + the signal number (the shell's convention): SIGINT 130, SIGTERM
143, SIGHUP 129.  A run that ended by itself (``--stop-at-end``, ``--once``,
a finished migration) exits 0 even when a signal came as it ended.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(KeyboardInterrupt):
    """A stop signal interrupted a one-shot command."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)


def signal_exit_code(signum: int) -> int:
    """The exit code of a command a signal stopped: 128 + its number."""
    return 128 + int(signum)


class StopEvent(threading.Event):
    """Set by the first stop signal; ``signum`` says which one (0: none yet)."""

    signum = 0

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextlib.contextmanager
def stop_signals(*, interrupt: bool = False) -> Iterator[StopEvent]:
    """Install the stop handler for the block (main thread); the previous
    handlers come back after it."""
    stop = StopEvent()

    def on_signal(signum, frame):
        first = not stop.is_set()
        if first:
            stop.signum = signum
        stop.set()
        if interrupt and first:
            raise StopRequested(signum)

    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
