"""What a recovery needs about one cluster: endpoints, connections,
dialects, rules, options, and the shared before/after steps (lease, hooks,
history, relay follow-up)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.config import ClusterConfig
from console.engine.failover.handlers import Handler, handler_for
from console.engine.failover.ranking import RankRules
from console.engine.topology.discovery import ConnPool, discover, norm_address
from console.engine.topology.model import Topology
from console.errors import UserError
from console.mysql.connection import Endpoint, connect
from console.mysql.flavor import detect


@dataclass(frozen=True)
class RecoveryOptions:
    to: str | None = None  # host name or address of the chosen candidate
    dry_run: bool = False
    actor: str = "operator"  # operator | cli | auto
    wait_timeout: float = 10.0  # planned: candidate catch-up under the fence
    relay_wait: float = 10.0  # emergency: seconds without SQL-thread progress before giving up
    salvage_timeout: float = 30.0
    max_trx_seconds: int = 30  # planned: refuse with an older transaction on the primary
    prefer: frozenset[str] = frozenset()
    must_not: frozenset[str] = frozenset()
    force: bool = False  # emergency: act even when detection does not confirm
    ignore_block: bool = False  # emergency (auto): ignore anti-flapping
    binlog_dirs: tuple[str, ...] = ()  # emergency: local binlog/relay files to salvage from
    relay_dirs: tuple[tuple[str, str], ...] = ()  # emergency: (relay task, directory) of the cluster


@dataclass
class ClusterOps:
    cluster: ClusterConfig
    state_dir: Path | None = None
    coordinator: Any = None  # the engine's (``engine/coord/``): the fleet's failover lease
    _conns: dict[str, object] = field(default_factory=dict)
    _handlers: dict[str, Handler] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ConnPool | None = None  # discovery connections, kept for the whole recovery

    # ---- endpoints and connections ------------------------------------------
    def endpoint(self, address: str) -> Endpoint:
        for h in self.cluster.hosts:
            if norm_address(h.host, h.port) == address or h.address == address:
                return Endpoint.from_host(h)
        host, _, port = address.rpartition(":")
        return Endpoint.from_host(self.cluster.hosts[0]).with_address(host, int(port), address)

    def conn(self, address: str, fresh: bool = False):
        with self._lock:
            c = None if fresh else self._conns.get(address)
        if c is not None:
            try:
                c.ping(reconnect=False)
                return c
            except Exception:  # noqa: BLE001 - reopen below
                pass
        c = connect(self.endpoint(address), connect_timeout=1.0, read_timeout=120.0, write_timeout=30.0)
        with self._lock:
            self._conns[address] = c
        return c

    def handler(self, address: str) -> Handler:
        with self._lock:
            h = self._handlers.get(address)
        if h is None:
            h = handler_for(detect(self.conn(address)))
            with self._lock:
                self._handlers[address] = h
        return h

    def close(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        for c in conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass

    # ---- facts --------------------------------------------------------------
    def discover(self, previous: Topology | None = None) -> Topology:
        """A fresh snapshot (connections are reused between calls: the second
        and later snapshots of a recovery take milliseconds)."""
        with self._lock:
            if self._pool is None:
                self._pool = ConnPool(connect_timeout=1.0, read_timeout=5.0)
            pool = self._pool
        return discover(self.cluster, pool, previous=previous)

    def rules(self, opts: RecoveryOptions) -> RankRules:
        tags = {norm_address(h.host, h.port): dict(h.tags) for h in self.cluster.hosts}
        from console.engine.topology.actions.flags import downtimed

        return RankRules(max_lag_seconds=self.cluster.max_lag_seconds, prefer=opts.prefer,
                         must_not=opts.must_not, tags=tags,
                         downtimed=downtimed(self.state_dir, self.cluster.name))

    def replication_user(self) -> tuple[str, str]:
        cred = self.cluster.replication
        if cred is None:
            raise UserError(f"cluster {self.cluster.name}: no [clusters.{self.cluster.name}.replication] "
                            f"credentials in the config: replicas cannot be repointed without them")
        return cred.user, cred.password.reveal()

    def resolve(self, topo: Topology, key: str) -> str:
        """A host name (config or topology) or host:port to a normalised address."""
        h = self.cluster.host(key)
        if h is not None:
            return norm_address(h.host, h.port)
        t = topo.host(key)
        if t is not None:
            return t.address
        host, _, port = key.rpartition(":")
        if host and port.isdigit():
            return norm_address(host, port)
        raise UserError(f"--to {key!r}: no host of that name in cluster {self.cluster.name} "
                        f"(known: {', '.join(h.name for h in topo.hosts)})")
