"""Errant-transaction checks, per domain, in Python (MariaDB has no GTID_SUBTRACT).

An errant transaction is one a replica holds that did not come from the
primary: a write made on the replica itself.  Promoting such a replica would
ship that write to everybody; repointing it may break replication later.

MariaDB positions keep only the newest GTID per domain, so the checks use
what the position says: in a domain where the replica is *ahead of* (or has
diverged from) the primary, and whose newest GTID was not written by the
primary, the extra range is errant.  A replica whose newest GTID in a domain
carries its *own* server id wrote locally, whatever the primary says.

MySQL sets carry every transaction, so errant = replica - primary, minus the
primary's own uuid (a replica probed a moment after the primary may hold a
few newer primary transactions: those are not errant).
"""

from __future__ import annotations

from console.mysql.gtid import MARIADB, GtidSet


def errant_gtids(mine: GtidSet, reference: GtidSet | None, *, own_server_id: int,
                 primary_server_id: int | None, primary_uuid: str = "",
                 own_uuid: str = "") -> GtidSet:
    """GTIDs on a replica (``mine``) that are not explained by the primary.

    ``reference`` is the primary's executed set when it is reachable, or
    ``None`` (emergency: the primary is gone) in which case only
    self-written transactions are flagged."""
    flavor = mine.flavor or (reference.flavor if reference is not None else None)
    if flavor == MARIADB:
        return _mariadb(mine, reference, own_server_id, primary_server_id)
    return _mysql(mine, reference, primary_uuid, own_uuid)


def _mariadb(mine: GtidSet, ref: GtidSet | None, own_sid: int, primary_sid: int | None) -> GtidSet:
    bad: set[int] = set()
    for d in mine.keys():
        newest = mine.server_of(int(d))
        if newest == own_sid and own_sid != primary_sid:
            bad.add(int(d))
            continue
        if ref is None:
            continue
        ahead = mine.restrict([d]).subtract(ref).count() > 0
        diverged = d in ref.keys() and d in mine.diverged_domains(ref)
        if (ahead or diverged) and newest != primary_sid:
            bad.add(int(d))
    if not bad:
        return GtidSet.empty(MARIADB)
    sub = mine.restrict(bad)
    if ref is not None:
        extra = sub.subtract(ref)
        # diverged at the same seq: nothing is "extra", the whole domain is suspect
        return extra if not extra.is_empty() else sub
    return sub


def _mysql(mine: GtidSet, ref: GtidSet | None, primary_uuid: str, own_uuid: str) -> GtidSet:
    if ref is None:
        if not own_uuid:
            return GtidSet.empty(mine.flavor)
        return mine.restrict([k for k in mine.keys() if str(k).split(":")[0] == own_uuid])
    extra = mine.subtract(ref)
    keep = [k for k in extra.keys() if str(k).split(":")[0] != primary_uuid]
    return extra.restrict(keep)
