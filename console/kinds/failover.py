"""``kind = "failover"``: watch a cluster, switch over, fail over.

::

    [tasks.failover-main]
    kind = "failover"
    cluster = "main"
    prefer = ["db2"]             # candidates to promote first
    must_not = ["db9"]           # never promote these
"""

from __future__ import annotations

from dataclasses import dataclass

from console.kinds.kind import TaskKind
from console.options import opt


@dataclass(frozen=True)
class FailoverOptions:
    prefer: tuple[str, ...] = opt((), "hosts to promote first")
    must_not: tuple[str, ...] = opt((), "hosts never to promote")
    wait_timeout: float = opt(10.0, "switchover: how long the candidate may take to converge "
                                    "before the fence",
                              minimum=0.1, maximum=3600, unit="s")
    relay_wait: float = opt(10.0, "failover: give up on a replica whose SQL thread makes no "
                                  "progress this long",
                            minimum=0.1, maximum=3600, unit="s")
    max_trx_seconds: int = opt(30, "switchover: refuse while a transaction is older than this",
                               minimum=0, unit="s")
    confirm_rounds: int = opt(1, "consecutive dead verdicts before an automatic failover",
                              minimum=1, maximum=1000)


FAILOVER = TaskKind(
    name="failover",
    doc="discover the topology, detect a dead primary, switchover and emergency failover",
    options=FailoverOptions,
    factory="console.engine.failover.task:make_failover_task",
    screen="console.tui.screens.failover:FailoverScreen",
    detail="console.engine.failover.task:FailoverDetail",
)
