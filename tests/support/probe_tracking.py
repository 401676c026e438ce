"""Catches a pymysql connection used by two threads at once in discovery.

``track_probes(monkeypatch)`` wraps the probe that discovery runs on each
pooled connection; the returned list collects the address of every probe
that started while another probe of the same connection was still running.
The probe is held a little longer than it takes, so an overlap, if the code
allows one, is not left to luck."""

from __future__ import annotations

import threading
import time

from console.engine.topology import discovery


def track_probes(monkeypatch, hold: float = 0.03) -> list[str]:
    overlaps: list[str] = []
    in_use: dict[int, int] = {}
    lock = threading.Lock()
    real = discovery.probe

    def tracking(ep, conn, *args, **kwargs):
        with lock:
            if in_use.get(id(conn)):
                overlaps.append(ep.address)
            in_use[id(conn)] = in_use.get(id(conn), 0) + 1
        try:
            time.sleep(hold)
            return real(ep, conn, *args, **kwargs)
        finally:
            with lock:
                in_use[id(conn)] -= 1

    monkeypatch.setattr(discovery, "probe", tracking)
    return overlaps
