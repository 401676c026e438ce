"""The binlog apply's markers: a token written into the changelog now
(``write_marker``, by the checksum or the cut-over) is reached by the apply
once everything binlogged before it has been applied to the ghost.
``catch_up`` waits for that, with a fresh marker every 5 s and a stall
timeout; ``wait_marker`` waits for one marker and raises ``ApplyError`` at
once if the apply died.

``ApplyMarkers`` is mixed into ``Applier`` (``apply.py``): its reader
collects the markers of the stream, its executor signals them once the batch
holding them has committed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable


class ApplyError(Exception):
    pass


class ApplyMarkers:
    """Markers of ``Applier``: expect, wait for, catch up, signal."""

    def expect_marker(self) -> str:
        token = uuid.uuid4().hex
        with self._mlock:
            self._markers[token] = threading.Event()
        return token

    def wait_marker(self, token: str, timeout: float) -> bool:
        """True once the apply has committed everything up to the marker;
        raises ``ApplyError`` at once if the apply died."""
        ev = self._markers.get(token)
        deadline = time.monotonic() + timeout
        ok = False
        try:
            while ev is not None and time.monotonic() < deadline:
                if ev.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                    ok = True
                    break
                if self.fatal:
                    raise ApplyError(self.fatal)
                if not self.is_alive() and self.ident is not None:
                    raise ApplyError(f"binlog apply stopped: {self.error or 'no reason'}")
        finally:
            with self._mlock:
                self._markers.pop(token, None)
        return ok

    def catch_up(self, write_marker: Callable[[str], None], *, stall_timeout: float | None = None,
                 each_wait: Callable[[int], None] = lambda seconds: None) -> None:
        """Return once the apply has committed everything binlogged before a
        marker written now (``write_marker(token)``).  Waits in 5 s steps,
        each with a fresh marker, calling ``each_wait(seconds so far)`` after
        every step; a loaded apply may take long, so only one that makes no
        progress for ``stall_timeout`` seconds raises TimeoutError."""
        progress, since, waited = None, time.monotonic(), 0
        while True:
            token = self.expect_marker()
            write_marker(token)
            if self.wait_marker(token, 5.0):
                return
            waited += 5
            each_wait(waited)
            at = (self.applied_pos, self.events_applied)
            if at != progress:
                progress, since = at, time.monotonic()
            elif stall_timeout is not None and time.monotonic() - since > stall_timeout:
                raise TimeoutError(f"the binlog apply made no progress in {stall_timeout:.0f}s "
                                   f"(marker not reached)")

    def _signal(self, tokens: list[str]) -> None:
        with self._mlock:
            for t in tokens:
                ev = self._markers.get(t)
                if ev:
                    ev.set()

