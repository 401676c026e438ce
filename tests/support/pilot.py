"""Waiting in Pilot tests without fixed sleeps."""

from __future__ import annotations

import time


async def wait_until(pilot, pred, timeout: float = 30.0) -> float | None:
    """Poll ``pred`` between Pilot pauses; the seconds it took (always > 0,
    so it reads as true), or None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return max(time.monotonic() - t0, 1e-6)
        await pilot.pause(0.1)
    return None
