"""systemd's notification protocol (``sd_notify(3)``), spoken directly: each
message is one datagram of ``KEY=VALUE`` lines sent to the unix socket named
by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).

``READY=1`` tells a ``Type=notify`` unit that the service runs,
``RELOADING=1`` (with ``MONOTONIC_USEC``) and ``READY=1`` frame a reload,
``STOPPING=1`` starts a stop, ``WATCHDOG=1`` keeps ``WatchdogSec=`` from
killing the service (``$WATCHDOG_USEC``: the period; ping at half of it),
``STATUS=`` is the line ``systemctl status`` shows.

Without ``$NOTIFY_SOCKET`` (not run by systemd) every call does nothing.
The variables are taken out of the environment when read, so children
(hooks, ``mariadb-backup``) do not inherit them and cannot speak for us.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import MutableMapping

_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # empty, or a vsock address: not spoken here


def _watchdog_period(env: MutableMapping[str, str]) -> float | None:
    """Seconds between two WATCHDOG=1 pings (half of $WATCHDOG_USEC), None
    when no watchdog is asked of this process."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2e6


class Notifier:
    def __init__(self, environ: MutableMapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_period = _watchdog_period(env) if self.address else None
        for k in _VARIABLES:
            env.pop(k, None)
        self.last_error = ""
        self._next_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """One datagram of ``lines``; False (and ``last_error``) when it could
        not be sent: the service runs on, a notification is never fatal."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall("\n".join(lines).encode())
        except OSError as e:
            self.last_error = f"cannot notify {self.address.lstrip(chr(0))}: {e.strerror or e}"
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """WATCHDOG=1 when one is due (call it from the loop whose liveness
        it vouches for); False when none is asked or none is due yet."""
        if self.watchdog_period is None:
            return False
        now = time.monotonic()
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_period
        return self.send("WATCHDOG=1")

    def until_next_ping(self) -> float | None:
        if self.watchdog_period is None:
            return None
        return max(0.0, self._next_ping - time.monotonic())
