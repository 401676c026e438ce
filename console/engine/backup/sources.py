"""Which server to stream from and to snapshot: the cluster's primary.

After a failover the backup continues from whichever host is now writable
and replicates from nobody, provided its binlog holds every transaction the
backup already stored (no gap by GTID).
"""

from __future__ import annotations

from dataclasses import dataclass

from console.errors import UserError
from console.mysql import gtid as G
from console.mysql.connection import (
    ACCESS_DENIED_CODES,
    DBError,
    Endpoint,
    connect,
    query,
    query_one,
)


@dataclass(frozen=True)
class ClusterEndpoints:
    """Per host: the ops endpoint (probe, snapshot) and the dump endpoint."""

    ops: tuple[Endpoint, ...]
    dump: tuple[Endpoint, ...]
    preferred: int = 0           # index of the configured ``host``

    def dump_for(self, address: str) -> Endpoint:
        for o, d in zip(self.ops, self.dump, strict=True):
            if o.address == address:
                return d
        raise UserError(f"{address} is not a host of the cluster")

    def ops_for(self, name_or_address: str) -> Endpoint:
        for o in self.ops:
            if name_or_address in (o.name, o.address):
                return o
        known = ", ".join(o.name or o.address for o in self.ops)
        raise UserError(f"host {name_or_address!r} is not in the cluster (known: {known})")


def is_primary(ep: Endpoint) -> tuple[bool, str]:
    """(writable and not replicating, its gtid_binlog_pos)."""
    c = connect(ep, connect_timeout=2, read_timeout=5)
    try:
        row = query_one(c, "SELECT @@read_only AS ro, @@gtid_binlog_pos AS g")
        replicating = bool(query(c, "SHOW ALL SLAVES STATUS"))
    finally:
        c.close()
    return (not int(row["ro"]) and not replicating), str(row["g"] or "")


def find_primary(eps: ClusterEndpoints, prefer: str = "") -> Endpoint | None:
    """The writable host that replicates from nobody; None when no host is.
    A host that refused our login (wrong password) is not passed over in
    silence: with no primary found, its error is raised (it may be the one)."""
    order = list(eps.ops)
    if prefer:
        order.sort(key=lambda e: e.address != prefer)
    refused: DBError | None = None
    for ep in order:
        try:
            ok, _ = is_primary(ep)
        except DBError as e:
            if e.code in ACCESS_DENIED_CODES and refused is None:
                refused = e
            continue
        if ok:
            return ep
    if refused is not None:
        raise refused
    return None


def missing_from(ours: str, theirs: str) -> str:
    """Transactions in our GTID state that ``theirs`` lacks ("" when none)."""
    m = G.parse(ours, G.MARIADB).subtract(G.parse(theirs, G.MARIADB))
    return "" if m.is_empty() else m.describe()
