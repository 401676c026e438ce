"""How every foreground command stops: SIGINT, SIGTERM and SIGHUP all mean
"stop cleanly" (Ctrl-C, a service manager's stop, a closed terminal).

A long-running command (``relay``, ``backup``, ``monitor``) polls the event
``stop_signals()`` yields and stops its tasks, which checkpoint first; a
one-shot command (``backup snapshot``) asks for ``interrupt=True``: the
first signal also raises ``StopRequested`` where the main thread is, so the
command's own cleanup runs (children killed, temp files removed).  A second
signal while stopping is ignored: the clean stop is already under way.
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
        return 128 + self.signum


@contextlib.contextmanager
def stop_signals(*, interrupt: bool = False) -> Iterator[threading.Event]:
    """Install the stop handler for the block (main thread); the previous
    handlers come back after it."""
    stop = threading.Event()

    def on_signal(signum, frame):
        first = not stop.is_set()
        stop.set()
        if interrupt and first:
            raise StopRequested(signum)

    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
