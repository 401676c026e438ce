"""Retrying, in one place: the backoff every retry loop uses and a bounded
retry of one call.  (The streaming tasks' reconnect loop, with its error
policy, is ``console/engine/dumpsession.py``; it takes its delays from here.)"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from console.mysql.connection import is_transient

T = TypeVar("T")

LOCK_ERRORS = (1205, 1213)  # lock wait timeout, deadlock


def is_lock_conflict(err: BaseException) -> bool:
    code = err.args[0] if getattr(err, "args", None) else None
    return code in LOCK_ERRORS


def backoff_delays(base: float = 0.2, cap: float = 10.0, rng: random.Random | None = None):
    """Exponential backoff with full jitter: an endless iterator of delays."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        yield rng.uniform(base / 2, min(cap, base * (2 ** attempt)))
        attempt += 1


def with_retries(fn: Callable[[], T], *, attempts: int = 3, base: float = 0.2, cap: float = 10.0,
                 retry_if: Callable[[BaseException], bool] = is_transient,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, tried up to ``attempts`` times while its error is one that
    ``retry_if`` accepts, with backoff from ``base`` seconds."""
    delays = backoff_delays(base, cap)
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            if i == attempts - 1 or not retry_if(e):
                raise
            sleep(next(delays))
    raise AssertionError("unreachable")
