"""Checks before a topology action: which host is meant, cycles, and the
GTID safety checks (per domain, in Python: MariaDB has no GTID_SUBTRACT).

Every refusal is a ``UserError`` with one line naming what is wrong; it is
raised before any statement is issued."""

from __future__ import annotations

from console.engine.failover.errant import errant_gtids
from console.engine.failover.ranking import executed
from console.engine.topology.model import Topology
from console.errors import UserError
from console.mysql.gtid import GtidSet
from console.mysql.probe import HostState


def host_of(topo: Topology, cluster, key: str, what: str = "host") -> HostState:
    """A host of the cluster by config name, topology name or host:port."""
    h = topo.host(key)
    if h is None:
        ch = cluster.host(key)
        if ch is not None:
            h = topo.host(ch.name)
    if h is None:
        raise UserError(f"{what} {key!r}: no host of that name in cluster {cluster.name} "
                        f"(known: {', '.join(x.name for x in topo.hosts)})")
    return h


def reachable(h: HostState, what: str = "host") -> HostState:
    if not h.reachable:
        raise UserError(f"{what} {h.name} ({h.address}) is unreachable: {h.error}")
    return h


def the_primary(topo: Topology) -> HostState:
    p = topo.primary
    if p is None:
        roots = ", ".join(h.name for h in topo.primaries) or "none"
        raise UserError(f"cluster {topo.cluster}: no single primary (writable roots: {roots}); "
                        f"fix the topology first")
    return p


def upstream_chain(topo: Topology, h: HostState) -> list[str]:
    """Addresses from ``h`` up to its root (``h`` first)."""
    out, cur = [], h
    while cur is not None and cur.address not in out:
        out.append(cur.address)
        cur = topo.host(cur.upstream) if cur.upstream else None
    return out


def check_no_cycle(topo: Topology, host: HostState, target: HostState) -> None:
    if host.address == target.address:
        raise UserError(f"--below {target.name}: a host cannot replicate from itself")
    if host.address in upstream_chain(topo, target):
        raise UserError(f"--below {target.name}: {target.name} replicates (directly or not) from "
                        f"{host.name}: that would make a replication cycle")


def errant_on(host: HostState, primary: HostState) -> GtidSet:
    """What ``host`` holds that the primary does not explain."""
    return errant_gtids(executed(host), executed(primary), own_server_id=host.server_id,
                        primary_server_id=primary.server_id or None)


def check_no_errant(host: HostState, primary: HostState) -> None:
    err = errant_on(host, primary)
    if not err.is_empty():
        raise UserError(f"{host.name} holds errant GTIDs {err.describe()} (not on the primary "
                        f"{primary.name}): moving it would spread or lose them; fix them first")


def missing_on(target: HostState, host: HostState) -> GtidSet:
    """GTIDs ``host`` has executed that ``target`` lacks (empty: target has it all),
    and any domain where they diverged (same seq, other server)."""
    mine, theirs = executed(host), executed(target)
    miss = mine.subtract(theirs)
    div = [d for d in mine.diverged_domains(theirs) if d in theirs.keys()]
    if div:
        miss = miss.union(mine.restrict(div))
    return miss


def check_source_capable(target: HostState, is_primary: bool) -> None:
    if not target.log_bin:
        raise UserError(f"--below {target.name}: binary log is off there: a replica cannot read from it")
    if not is_primary and not target.log_slave_updates:
        raise UserError(f"--below {target.name}: log_slave_updates is off there: it does not "
                        f"log what it replicates, so a replica below it would miss the primary's writes")
