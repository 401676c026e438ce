"""Candidate ranking, with the reasons shown to the operator.

Order (best first) among eligible replicas:

1. a ``prefer`` promotion rule (host tag ``promotion = "prefer"`` or the
   task's ``prefer`` list);
2. the most transactions in the primary's GTID domain(s) (MySQL: the
   primary's uuids and everything replicated), after relay logs are applied;
3. the same data-centre tag (``dc``) as the old primary;
4. lower lag, then the name (stable).

A preferred replica that is behind is still chosen: salvage brings it to the
most advanced position before it takes writes.

Excluded (with the reason): unreachable, errant GTIDs, SQL thread stopped
or in error, ``SQL_Delay`` set, lag over ``max_lag_seconds`` (planned only;
in an emergency lag is what salvage fixes), binary log or
``log_slave_updates`` off, ``must_not`` rule, a replica of another source,
a downtimed host (``dbops-console topology downtime``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from console.engine.failover.errant import errant_gtids
from console.engine.failover.model import Candidate
from console.mysql import gtid as gtidmod
from console.mysql.gtid import GtidSet
from console.mysql.probe import HostState

PLANNED, EMERGENCY = "planned", "emergency"


@dataclass(frozen=True)
class RankRules:
    max_lag_seconds: float = 10.0
    prefer: frozenset[str] = frozenset()  # host names or addresses
    must_not: frozenset[str] = frozenset()
    tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # address -> tags
    downtimed: frozenset[str] = frozenset()  # addresses no recovery acts on (topology downtime)

    def rule_of(self, h: HostState) -> str:
        if h.name in self.must_not or h.address in self.must_not:
            return "must_not"
        tag = self.tags.get(h.address, {}).get("promotion", "")
        if tag == "must_not":
            return "must_not"
        if h.name in self.prefer or h.address in self.prefer or tag == "prefer":
            return "prefer"
        return "neutral"

    def dc_of(self, address: str) -> str:
        return self.tags.get(address, {}).get("dc", "")


def flavor_of(h: HostState) -> str:
    return gtidmod.MARIADB if h.flavor == "mariadb" else gtidmod.MYSQL


def executed(h: HostState) -> GtidSet:
    """What a host has applied or written, in its own notation."""
    fl = flavor_of(h)
    if fl == gtidmod.MARIADB:
        cur = gtidmod.parse(h.gtid_current_pos, fl)
        return cur.union(gtidmod.parse(h.gtid_binlog_pos, fl))
    return gtidmod.parse(h.gtid_executed, fl)


def primary_keys(primary: HostState | None, replicas: Iterable[HostState]) -> tuple:
    """The GTID domains (uuids) that count for "most advanced": those in the
    primary's (last known) position, else every domain the replicas share."""
    if primary is not None and (primary.gtid_binlog_pos or primary.gtid_executed):
        return executed(primary).keys()
    keys: set = set()
    for r in replicas:
        keys |= set(executed(r).keys())
    return tuple(sorted(keys, key=str))


def salvage_keys(primary: HostState | None, replicas: Iterable[HostState],
                 survivors: Mapping[str, GtidSet] | None = None) -> tuple:
    """``primary_keys``; when the primary's last position is unknown, the
    domains of the other survivors (relay tasks) count too: a domain only
    the relay holds is still the primary's."""
    keys = primary_keys(primary, replicas)
    if primary is not None and (primary.gtid_binlog_pos or primary.gtid_executed):
        return keys
    extra = {k for pos in (survivors or {}).values() for k in pos.keys()}
    return tuple(sorted(set(keys) | extra, key=str))


def lag_of(h: HostState) -> float | None:
    if h.heartbeat_lag is not None:
        return h.heartbeat_lag
    return None if h.seconds_behind is None else float(h.seconds_behind)


def relay_drained(h: HostState) -> bool:
    """The SQL thread has applied everything the IO thread received."""
    if not h.channels:
        return True
    c = h.channels[0]
    return (c.relay_source_log_file, c.exec_source_log_pos) == (c.source_log_file, c.read_source_log_pos)


def rank(primary: HostState | None, replicas: Iterable[HostState], rules: RankRules,
         mode: str = PLANNED, survivors: Mapping[str, GtidSet] | None = None) -> tuple[Candidate, ...]:
    """``survivors``: other holders of the primary's transactions (relay tasks:
    name -> durable position); in an emergency a candidate short of them is
    told so (salvage applies the difference before it takes writes)."""
    replicas = list(replicas)
    primary_addr = primary.address if primary is not None else ""
    keys = salvage_keys(primary, [r for r in replicas if r.reachable], survivors)
    surv = {n: p.restrict(keys) for n, p in (survivors or {}).items()} if mode == EMERGENCY else {}
    ref = executed(primary) if (primary is not None and primary.reachable and mode == PLANNED) else None
    primary_sid = primary.server_id if primary is not None and primary.server_id else None
    primary_dc = rules.dc_of(primary_addr) if primary_addr else ""
    out: list[Candidate] = []
    for h in replicas:
        why: list[str] = []
        rule = rules.rule_of(h)
        lag = lag_of(h) if h.reachable else None
        if not h.reachable:
            out.append(Candidate(h.name, h.address, False, (h.error if h.access_denied else f"unreachable: {h.error}",), -1, ""))
            continue
        mine = executed(h)
        err = errant_gtids(mine, ref, own_server_id=h.server_id, primary_server_id=primary_sid)
        advanced = mine.restrict(keys).subtract(err).count()
        if primary_addr and h.upstream and h.upstream != primary_addr:
            why.append(f"replicates from {h.upstream}, not the primary")
        if not err.is_empty():
            why.append(f"errant GTIDs {err.describe()}")
        ch = h.channels[0] if h.channels else None
        if ch is None:
            why.append("not a replica")
        else:
            if not ch.sql_ok:
                why.append(f"SQL thread {ch.sql_running or 'stopped'}"
                           + (f": {ch.last_sql_error}" if ch.last_sql_error else ""))
            if ch.sql_delay > 0:
                why.append(f"delayed replica (SQL_Delay={ch.sql_delay}s)")
        if mode == PLANNED and lag is not None and lag > rules.max_lag_seconds:
            why.append(f"lag {lag:.1f}s over max_lag_seconds={rules.max_lag_seconds:g}")
        if mode == EMERGENCY and not relay_drained(h):
            why.append("relay log not applied yet")
        if not h.log_bin:
            why.append("log_bin off")
        elif not h.log_slave_updates:
            why.append("log_slave_updates off")
        if rule == "must_not":
            why.append("promotion rule must_not")
        if h.address in rules.downtimed:
            why.append("downtimed (topology downtime): no recovery acts on it")
        eligible = not why
        if eligible:
            if rule == "prefer":
                why.append("promotion rule prefer")
            same_dc = bool(primary_dc) and rules.dc_of(h.address) == primary_dc
            if same_dc:
                why.append(f"same dc {primary_dc}")
            why.append(f"{advanced} transactions in the primary's domains")
            for sname, spos in surv.items():
                short = spos.subtract(mine.restrict(keys)).count()
                if short:
                    why.append(f"{short} short of {sname} (salvaged from it before promotion)")
            if lag is not None:
                why.append(f"lag {lag:.1f}s")
        else:
            same_dc = False
        out.append(Candidate(
            name=h.name, address=h.address, eligible=eligible, reasons=tuple(why),
            advanced=advanced, gtid=mine.format(), errant=err.describe() if err else "",
            prefer=rule == "prefer", same_dc=same_dc, lag=lag,
        ))
    ordered = sorted(out, key=lambda c: (
        not c.eligible, not c.prefer, -c.advanced, not c.same_dc,
        c.lag if c.lag is not None else 0.0, c.name))
    final = []
    n = 0
    for c in ordered:
        if c.eligible:
            n += 1
            final.append(Candidate(**{**c.__dict__, "rank": n}))
        else:
            final.append(c)
    return tuple(final)


def best(candidates: Iterable[Candidate]) -> Candidate | None:
    for c in candidates:
        if c.eligible:
            return c
    return None


def most_advanced(candidates: Iterable[Candidate]) -> Candidate | None:
    """The reachable replica holding the most primary transactions
    (eligible or not, errant ones excluded): the salvage donor."""
    pool = [c for c in candidates if c.advanced >= 0 and not c.errant]
    return max(pool, key=lambda c: (c.advanced, c.name), default=None)
