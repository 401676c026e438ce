"""The report of one topology action, and the runner that issues (or, in a
dry run, only lists) its statements through the failover journal."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.engine.failover.context import ClusterOps
from console.engine.failover.handlers import render
from console.engine.failover.journal import Journal
from console.engine.failover.model import StepRecord


@dataclass(frozen=True)
class ActionReport:
    action: str  # relocate | start-replica | stop-replica | read-only | reattach | downtime | recovery
    cluster: str
    dry_run: bool
    outcome: str  # ok | planned | refused | failed
    host: str = ""  # address acted on
    target: str = ""  # relocate: the new source; reattach: the primary
    steps: tuple[StepRecord, ...] = ()
    detail: str = ""
    error: str = ""
    errant: tuple[str, ...] = ()  # reattach: GTIDs the host holds that the primary lacks
    rolled_back: tuple[str, ...] = ()  # reattach --flashback: GTIDs undone
    journal: str = ""
    extra: dict = field(default_factory=dict)


class Runner:
    """Runs statements on a host as one journal step, or plans them."""

    def __init__(self, ops: ClusterOps, journal: Journal, dry_run: bool):
        self.ops, self.journal, self.dry_run = ops, journal, dry_run

    def sql(self, name: str, address: str, statements: list, detail: str = "") -> None:
        """``statements``: SQL strings or (sql, args, secret_index) tuples."""
        shown = [s if isinstance(s, str) else render(*s) for s in statements]
        if self.dry_run:
            self.journal.plan(name, address, shown, detail)
            return
        h = self.ops.handler(address)
        conn = self.ops.conn(address)
        with self.journal.step(name, address) as s:
            s.detail = detail
            for st in statements:
                if isinstance(st, str):
                    h._run(conn, st, log=s.sql)
                else:
                    sql, args, secret = st
                    h._run(conn, sql, args, log=s.sql, secret_index=secret)
