"""Backup task kind: continuous log backup, snapshots, retention, verify, restore.

Storage layout (``storage`` directory of the task)::

    checkpoint.json                      what is durably backed up (never moves back)
    log/0000000001.binlog.zst            segment: zstd(binlog magic + FDE + transactions)
    log/0000000001.json                  its manifest (published after the data)
    snapshots/<id>/backup.xb.zst         mariadb-backup xbstream, or dump.sql.zst
    snapshots/<id>/manifest.json         method, GTID position, size, sha256
"""

from __future__ import annotations

from console.config import TaskConfig
from console.engine.backup.sources import ClusterEndpoints
from console.engine.engine import Engine
from console.errors import UserError
from console.kinds.backup import BackupOptions
from console.mysql.connection import Endpoint


def cluster_endpoints(engine: Engine, tc: TaskConfig) -> ClusterEndpoints:
    opts: BackupOptions = tc.options
    cluster = engine.config.cluster(tc.cluster)
    ops, dump = [], []
    for h in cluster.hosts:
        ep = Endpoint.from_host(h)
        ops.append(ep)
        dump.append(ep.with_credentials(cluster.replication) if cluster.replication else ep)
    preferred = 0
    if opts.host:
        names = [i for i, h in enumerate(cluster.hosts) if opts.host in (h.name, h.address)]
        if not names:
            known = ", ".join(h.name for h in cluster.hosts)
            raise UserError(f"task {tc.name}: host {opts.host!r} is not in cluster {cluster.name} "
                            f"(known: {known})")
        preferred = names[0]
    if opts.snapshot_host and cluster.host(opts.snapshot_host) is None:
        raise UserError(f"task {tc.name}: snapshot_host {opts.snapshot_host!r} is not in cluster "
                        f"{cluster.name}")
    return ClusterEndpoints(tuple(ops), tuple(dump), preferred)


def make_backup_task(engine: Engine, tc: TaskConfig):
    from console.engine.backup.logtask import BackupTask

    return BackupTask(tc.name, cluster_endpoints(engine, tc), tc.options)


