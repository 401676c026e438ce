"""Discover a replication tree from any seed host.

Upstream comes from replica status, downstream from ``SHOW SLAVE HOSTS`` /
``SHOW REPLICAS`` (replicas that set ``report_host``).  Hosts are probed in
parallel over pooled connections; a host that cannot be reached keeps the
role it had in the previous snapshot, or is a primary when reachable
replicas still point at it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from console.config import ClusterConfig
from console.engine.topology.model import Topology
from console.mysql.connection import DBError, Endpoint, connect, describe_error
from console.mysql.flavor import Dialect, detect
from console.mysql.probe import HostState, probe, unreachable

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def norm_address(host: str, port: int | str) -> str:
    h = "127.0.0.1" if host in LOCAL_NAMES else host
    return f"{h}:{port}"


def valid_address(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _norm(address: str) -> str:
    host, _, port = address.rpartition(":")
    return norm_address(host, port) if host else address


class ConnPool:
    """One open connection per address, reopened after any error."""

    def __init__(self, connect_timeout: float = 1.0, read_timeout: float = 5.0):
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._conns: dict[str, tuple[object, Dialect]] = {}
        self._lock = threading.Lock()

    def get(self, ep: Endpoint):
        key = _norm(ep.address)
        with self._lock:
            item = self._conns.get(key)
        if item:
            return item
        conn = connect(ep, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                       write_timeout=self.read_timeout)
        item = (conn, detect(conn))
        with self._lock:
            self._conns[key] = item
        return item

    def drop(self, address: str) -> None:
        with self._lock:
            item = self._conns.pop(_norm(address), None)
        if item:
            try:
                item[0].close()
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        with self._lock:
            items = list(self._conns.values())
            self._conns.clear()
        for conn, _ in items:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass


def seeds_for(cluster: ClusterConfig) -> list[Endpoint]:
    return [Endpoint.from_host(h) for h in cluster.hosts]


def probe_one(pool: ConnPool, ep: Endpoint, heartbeat_sid: int | None,
              binlog_sizes: bool = False) -> HostState:
    """Never raises: a round must not end while other probes still use
    their connections."""
    try:
        conn, dialect = pool.get(ep)
    except DBError as e:
        return unreachable(ep, str(e), e.code)
    except Exception as e:  # noqa: BLE001 - e.g. the flavor query failing on a fresh connection
        pool.drop(ep.address)
        err = describe_error(e, ep)
        return unreachable(ep, str(err), err.code)
    st = probe(ep, conn, dialect, heartbeat_sid, binlog_sizes=binlog_sizes)
    if not st.reachable:
        pool.drop(ep.address)
    return st


def discover(cluster: ClusterConfig, pool: ConnPool, *, previous: Topology | None = None,
             extra_seeds: Iterable[Endpoint] = (), heartbeat_sid: int | None = None,
             executor: ThreadPoolExecutor | None = None, binlog_sizes: bool = False) -> Topology:
    """The cluster's hosts from its seeds (and the hosts ``previous`` had),
    following replicas and sources; ``binlog_sizes``: also each host's
    binary logs' total size (one more query a host: the monitor's rounds,
    not the recoveries')."""
    names = {norm_address(h.host, h.port): h.name for h in cluster.hosts}
    seeds = seeds_for(cluster) + list(extra_seeds)
    template = seeds[0] if seeds else None
    todo: dict[str, Endpoint] = {}
    for ep in seeds:
        todo.setdefault(_norm(ep.address), ep)
    if previous:  # keep following hosts discovered before
        for h in previous.hosts:
            a = _norm(h.address)
            if a not in todo and template:
                host, _, port = a.rpartition(":")
                todo[a] = template.with_address(host, int(port), names.get(a, a))
    seen: dict[str, HostState] = {}
    own_exec = executor is None
    ex = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
    try:
        while todo:
            batch = [(a, ep) for a, ep in todo.items() if a not in seen]
            todo = {}
            results = list(ex.map(lambda item: probe_one(pool, item[1], heartbeat_sid,
                                                                    binlog_sizes), batch))
            for (a, _), st in zip(batch, results, strict=True):
                st = st.with_(address=a, upstream=_norm(st.upstream) if st.upstream else "")
                seen[a] = st
                found = []
                if st.upstream:
                    found.append(st.upstream)
                found += [norm_address(h, p) for h, p, _ in st.replica_hosts]
                for f in found:
                    if not valid_address(f):  # e.g. ":0" from an empty Master_Host
                        continue
                    if f not in seen and f not in todo and template:
                        host, _, port = f.rpartition(":")
                        todo[f] = template.with_address(host, int(port), names.get(f, f))
    finally:
        if own_exec:
            ex.shutdown(wait=False)
    return assign_roles(cluster.name, list(seen.values()), previous)


def assign_roles(cluster: str, hosts: list[HostState], previous: Topology | None) -> Topology:
    prev = {h.address: h for h in previous.hosts} if previous else {}
    pointed_at = {h.upstream for h in hosts if h.reachable and h.upstream}
    out: list[HostState] = []
    for h in hosts:
        has_children = any(o.upstream == h.address for o in hosts if o is not h)
        if h.reachable:
            if h.channels:
                role = "intermediate" if has_children else "replica"
            else:
                role = "primary"
        else:
            p = prev.get(h.address)
            if p is not None:
                # keep what we knew (upstream, last positions), marked unreachable
                h = p.with_(reachable=False, error=h.error, error_code=h.error_code,
                            probed_at=h.probed_at, heartbeat_lag=None, heartbeat_age=None)
            role = p.role if p and p.role != "unknown" else ("primary" if h.address in pointed_at else "unknown")
        out.append(h.with_(role=role))
    # heartbeat lag: replica age minus the primary's own age (removes the
    # writer's interval from the figure)
    prim = [h for h in out if h.role == "primary" and h.reachable]
    base = prim[0].heartbeat_age if len(prim) == 1 else None
    final = []
    for h in out:
        lag = None
        if h.role in ("replica", "intermediate") and h.heartbeat_age is not None and base is not None:
            lag = max(0.0, h.heartbeat_age - base)
        final.append(h.with_(heartbeat_lag=lag))
    problems = []
    if len([h for h in final if h.role == "primary"]) > 1:
        problems.append("more than one primary: " + ", ".join(h.name for h in final if h.role == "primary"))
    for h in final:
        if h.access_denied:  # the error names the host, the user and what to check
            problems.append(h.error)
        elif not h.reachable:
            problems.append(f"{h.name} unreachable: {h.error}")
        elif h.replication_error:
            problems.append(f"{h.name} replication error: {h.replication_error}")
        elif h.channels and not (h.channels[0].io_ok and h.channels[0].sql_ok):
            problems.append(f"{h.name} replication threads IO={h.io_thread} SQL={h.sql_thread}")
    order = {"primary": 0, "intermediate": 1, "replica": 2, "unknown": 3}
    final.sort(key=lambda h: (order.get(h.role, 9), h.name))
    return Topology(cluster=cluster, hosts=tuple(final), problems=tuple(problems))
