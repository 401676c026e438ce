"""Lease deadline arithmetic (pure): when may an owner still write?

etcd counts a lease's TTL from the moment it receives a keepalive, which is
after we sent it; so a lease renewed by a request sent at monotonic time
``t0`` with ``ttl`` seconds granted lives on the server at least until
``t0 + ttl``.  The owner stops writing earlier, at ``t0 + ttl * (1 -
SAFETY)``: the margin covers clock rate differences and the time between a
check and the write it guards.  CLOCK_MONOTONIC runs on while a process is
stopped (SIGSTOP), so after SIGCONT the check fails at once."""

from __future__ import annotations

from dataclasses import dataclass

SAFETY = 0.25  # the part of the TTL given up as a margin


@dataclass
class LeaseClock:
    """The local deadline of one lease (monotonic seconds); 0: never held."""

    deadline: float = 0.0
    lost: bool = False  # the server said the lease is gone: never valid again

    def renewed(self, sent_at: float, ttl: float) -> None:
        """A grant or keepalive sent at ``sent_at`` was answered with ``ttl``
        seconds (<= 0: the lease is gone)."""
        if ttl <= 0:
            self.lost = True
            return
        self.deadline = max(self.deadline, sent_at + ttl * (1.0 - SAFETY))

    def valid(self, now: float) -> bool:
        return not self.lost and now < self.deadline

    def left(self, now: float) -> float:
        """Seconds of writing left (0 when none)."""
        return 0.0 if self.lost else max(0.0, self.deadline - now)


def keepalive_period(ttl: float) -> float:
    """How often an owner renews: four times per safe life of the lease."""
    return max(0.05, ttl * (1.0 - SAFETY) / 4)
