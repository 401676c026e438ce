"""Salvage: give the chosen candidate the transactions that another server
still holds before it takes writes.

Sources are tried in order; each says which of the missing GTIDs it holds
and applies them to the candidate:

* ``ReplicaDonor``: a more advanced replica (binary log and
  ``log_slave_updates`` on).  The candidate replicates from it by GTID until
  it reaches the donor's position in the primary's domains, then stops.
  Nothing is parsed by us: the server applies its own binlog events, so DDL,
  row events and any format are handled.
* ``RelaySource`` (salvage_relay.py): a relay task's directory, read with
  the relay reader API by GTID; the events are applied with their original
  GTIDs through ``mariadb-binlog`` and the ``mariadb`` client.
* ``BinlogFilesSource`` (salvage_binlog.py): binlog files given with
  ``--binlog-dir``.
* Anything else with the same two methods (``holds``, ``apply``), through
  ``Failover(extra_sources=...)``.

Whatever no source holds is reported as lost, by GTID range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from console.engine.failover.context import ClusterOps
from console.engine.failover.journal import Journal
from console.mysql.gtid import GtidSet


class SalvageSource(Protocol):
    name: str

    def holds(self, missing: GtidSet) -> GtidSet:
        """The part of ``missing`` this source can give."""

    def apply(self, ops: ClusterOps, candidate: str, wanted: GtidSet, journal: Journal,
              timeout: float) -> None:
        """Apply ``wanted`` to the candidate (raise on failure)."""

    def plan(self, ops: ClusterOps, candidate: str, missing: GtidSet, journal: Journal,
             timeout: float) -> None:
        """The step ``apply`` would run (a dry run): its name and statements."""


@dataclass
class ReplicaDonor:
    address: str
    position: GtidSet  # its applied set, restricted to the primary's domains

    @property
    def name(self) -> str:
        return f"replica {self.address}"

    def holds(self, missing: GtidSet) -> GtidSet:
        return missing.intersection(self.position)

    def plan(self, ops: ClusterOps, candidate: str, missing: GtidSet, journal: Journal,
             timeout: float) -> None:
        user, _ = ops.replication_user()
        h = ops.handler(candidate)
        host, _, port = self.address.rpartition(":")
        journal.plan("salvage: replicate from donor", candidate,
                     [*h.point_to_sql(host, int(port), user)[:-1], h.d.start_replica_sql(),
                      h.d.wait_for_gtid_sql() % (f"'{self.position.format()}'", timeout),
                      h.d.stop_replica_sql()],
                     f"{self.name} holds {self.holds(missing).describe() or 'nothing'} the candidate lacks")

    def apply(self, ops: ClusterOps, candidate: str, wanted: GtidSet, journal: Journal,
              timeout: float) -> None:
        user, password = ops.replication_user()
        h = ops.handler(candidate)
        conn = ops.conn(candidate)
        host, _, port = self.address.rpartition(":")
        with journal.step("salvage: replicate from donor", candidate) as s:
            h.point_to(conn, host, int(port), user, password, s.sql)
            ok = h.wait_gtid(conn, self.position, timeout, s.sql)
            h.stop(conn, s.sql)
            if not ok:
                st = h.replica_status(conn)
                err = (st[0].last_io_error or st[0].last_sql_error) if st else ""
                raise RuntimeError(f"candidate did not reach {self.position} from {self.address} "
                                   f"within {timeout:g}s{': ' + err if err else ''}")
            s.detail = f"applied {wanted.describe()} from {self.address}"


def salvage(ops: ClusterOps, candidate: str, have: GtidSet, known: GtidSet,
            sources: list[SalvageSource], journal: Journal, timeout: float,
            executed_of) -> tuple[GtidSet, GtidSet, list[tuple[str, GtidSet]]]:
    """Bring ``candidate`` (holding ``have``) as close to ``known`` as the
    sources allow.  ``executed_of(address)`` re-reads a server's position.
    Returns (salvaged, lost, [(source name, what it gave)])."""
    missing = known.subtract(have)
    saved = GtidSet.empty(known.flavor)
    by_source: list[tuple[str, GtidSet]] = []
    for src in sources:
        if missing.is_empty():
            break
        part = src.holds(missing)
        if part.is_empty():
            continue
        try:
            src.apply(ops, candidate, part, journal, timeout)
        except Exception as e:  # noqa: BLE001 - try the next source; report below
            journal.note("salvage", f"{src.name} failed: {e}", candidate, "failed")
            continue
        now = executed_of(candidate)
        got = missing.intersection(now)  # what the candidate now has, not what the source claimed
        if not got.is_empty():
            by_source.append((src.name, got))
        saved = saved.union(got)
        missing = missing.subtract(now)
    return saved, missing, by_source
