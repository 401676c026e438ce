"""Relay task kind: engine factory, reader API (options: ``console.kinds.relay``).

``RelayReader`` (reader.py) is the API other tasks use to read relayed
events; ``RelayStore`` (store.py) owns the directory layout, meta and purge.
"""

from __future__ import annotations

from console.config import TaskConfig
from console.engine.engine import Engine
from console.engine.relay.reader import RelayEvent, RelayReader  # noqa: F401
from console.engine.relay.status import RelayStatus
from console.engine.relay.store import RelayMeta, RelayStore  # noqa: F401
from console.engine.relay.task import RelayTask
from console.errors import UserError
from console.kinds.relay import RelayOptions
from console.mysql.connection import Endpoint


def cluster_endpoints(engine: Engine, tc: TaskConfig):
    """(upstream endpoint, resolver for switch-master targets) of a configured relay."""
    opts: RelayOptions = tc.options
    cluster = engine.config.cluster(tc.cluster)
    host = cluster.host(opts.host) if opts.host else cluster.hosts[0]
    if host is None:
        known = ", ".join(h.name for h in cluster.hosts)
        raise UserError(f"task {tc.name}: host {opts.host!r} is not in cluster {cluster.name} "
                        f"(known: {known})")

    def endpoint_of(h) -> Endpoint:
        ep = Endpoint.from_host(h)
        return ep.with_credentials(cluster.replication) if cluster.replication else ep

    def resolve(target: str) -> Endpoint | None:
        h = cluster.host(target)
        if h is not None:
            return endpoint_of(h)
        hp, _, port = target.rpartition(":")
        if hp and port.isdigit():
            return endpoint_of(host).with_address(hp, int(port))
        return None

    return endpoint_of(host), resolve


def make_relay_task(engine: Engine, tc: TaskConfig) -> RelayTask:
    ep, resolve = cluster_endpoints(engine, tc)
    task = RelayTask(tc.name, ep, tc.options, resolve_target=resolve)
    cluster = engine.config.cluster(tc.cluster)
    task.cluster = cluster.name
    task.cluster_hosts = tuple(Endpoint.from_host(h) for h in cluster.hosts)
    return task


__all__ = ["RelayTask", "RelayStatus", "RelayReader", "RelayEvent", "RelayStore", "RelayMeta",
           "RelayOptions"]
