"""Holistic detection: the primary is dead only when the console cannot reach
it AND the replicas confirm it (their IO threads lost it).

An unreachable primary whose replicas still replicate (IO thread ``Yes``) is
a network problem between the console and the primary: reported, never
failed over.  With no reachable replica nobody can confirm, and there is
nobody to promote either.

Fast detection needs the replicas to notice quickly: advise
``MASTER_HEARTBEAT_PERIOD=1``, ``slave_net_timeout=4`` (so a silent primary
is noticed within seconds), ``MASTER_CONNECT_RETRY=1``.
"""

from __future__ import annotations

from console.engine.failover.model import Verdict
from console.engine.topology.model import Topology
from console.mysql.probe import HostState

ADVICE = ("replica settings for fast detection: MASTER_HEARTBEAT_PERIOD=1, "
          "slave_net_timeout=4 (SOURCE_HEARTBEAT_PERIOD / replica_net_timeout on MySQL), "
          "MASTER_CONNECT_RETRY=1, log_slave_updates=ON, gtid_strict_mode=ON")


def find_primary(topo: Topology, previous: Topology | None = None) -> HostState | None:
    """The primary of a snapshot: the single reachable primary, else the one
    host the reachable replicas point at (a dead primary; its last positions
    come from the previous snapshot when this one has none)."""
    live = [h for h in topo.primaries if h.reachable]
    if len(live) == 1:  # a dead former primary may linger in the snapshot
        return live[0]
    if len(live) > 1:
        return None
    ups = {h.upstream for h in topo.hosts if h.reachable and h.upstream}
    if len(ups) == 1:
        a = next(iter(ups))
        h = topo.host(a)
        if (h is None or not (h.gtid_binlog_pos or h.gtid_executed)) and previous is not None:
            p = previous.host(a)
            if p is not None and (h is None or not h.reachable):
                h = p.with_(reachable=False, error=h.error if h is not None else "not probed",
                            error_code=h.error_code if h is not None else None)
        if h is None:
            return HostState(name=a, address=a, reachable=False, error="not probed", role="primary")
        return h
    return topo.primary


def assess(topo: Topology, previous: Topology | None = None) -> Verdict:
    prims = [h for h in topo.hosts if h.role == "primary" and h.reachable]
    if len(prims) > 1:
        return Verdict("unknown", "", "more than one writable root: "
                       + ", ".join(h.name for h in prims) + " (split brain?); no automatic action")
    primary = find_primary(topo, previous)
    denied = [h for h in topo.hosts if h.access_denied]
    if primary is None:
        if denied:  # not "no primary": the hosts refuse our login
            return Verdict("unknown", "", _refused(denied))
        return Verdict("no-primary", "", "no primary found in the topology")
    if primary.reachable:
        return Verdict("healthy", primary.address, "primary reachable")
    if primary.access_denied:  # it answered: not dead, and never failed over for it
        return Verdict("unknown", primary.address,
                       _refused([primary, *(h for h in denied if h.address != primary.address)]))
    direct = [h for h in topo.hosts if h.upstream == primary.address and h.address != primary.address]
    reachable = [h for h in direct if h.reachable]
    if not reachable:
        return Verdict("primary-unreachable", primary.address,
                       "primary unreachable and no replica reachable to confirm it"
                       + (f" ({_refused(denied)})" if denied else ""))
    confirm, dissent = [], []
    for h in reachable:
        ch = h.channels[0] if h.channels else None
        if ch is not None and ch.io_running == "Yes" and not ch.last_io_errno:
            dissent.append(h.name)
        else:
            confirm.append(h.name)
    if dissent:
        return Verdict("primary-unreachable", primary.address,
                       f"primary unreachable from the console but {', '.join(dissent)} still "
                       f"replicate from it: not failing over (network partition?)",
                       tuple(confirm), tuple(dissent))
    return Verdict("dead", primary.address,
                   f"primary unreachable ({primary.error or 'no answer'}) and every reachable "
                   f"replica lost it ({', '.join(confirm)})", tuple(confirm))


def _refused(denied: list[HostState]) -> str:
    """The reason of a verdict the console cannot give: hosts refuse its login."""
    others = [h.name for h in denied[1:]]
    return denied[0].error + (f" (also refused by {', '.join(others)})" if others else "") + \
        "; no automatic action"


# ---- advice on replica settings ------------------------------------------------

FAST = {"heartbeat_period": 1.0, "net_timeout": 4, "connect_retry": 1}


def advise(name: str, heartbeat_period: float | None, net_timeout: int | None,
           connect_retry: int | None) -> list[str]:
    """What to change on one replica so a dead primary is noticed within seconds."""
    out = []
    if heartbeat_period is not None and (heartbeat_period <= 0 or heartbeat_period > FAST["heartbeat_period"]):
        out.append(f"{name}: heartbeat period {heartbeat_period:g}s; set MASTER_HEARTBEAT_PERIOD=1")
    if net_timeout is not None and net_timeout > FAST["net_timeout"]:
        out.append(f"{name}: slave_net_timeout={net_timeout}s; set it to 4 (a silent primary is "
                   f"noticed after this long)")
    if connect_retry is not None and connect_retry > FAST["connect_retry"]:
        out.append(f"{name}: connect retry {connect_retry}s; set MASTER_CONNECT_RETRY=1")
    return out


def replica_settings(conn, dialect) -> tuple[float | None, int | None, int | None]:
    """(heartbeat period, net timeout, connect retry) of a replica's first channel."""
    from console.mysql.connection import query, scalar

    if dialect.name == "mariadb":
        rows = query(conn, dialect.replica_status_sql)
        if not rows:
            return None, None, None
        r = rows[0]
        return (float(r.get("Slave_heartbeat_period") or 0), int(scalar(conn, "SELECT @@global.slave_net_timeout")),
                int(r.get("Connect_Retry") or 0))
    rows = query(conn, "SELECT HEARTBEAT_INTERVAL AS hb, CONNECTION_RETRY_INTERVAL AS cr "
                       "FROM performance_schema.replication_connection_configuration LIMIT 1")
    if not rows:
        return None, None, None
    return (float(rows[0]["hb"] or 0), int(scalar(conn, "SELECT @@global.replica_net_timeout")),
            int(rows[0]["cr"] or 0))
