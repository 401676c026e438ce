"""Triggerless online schema change (gh-ost's algorithm, plus checksum
verification and crash resume); its options are ``console.kinds.migration``."""

from __future__ import annotations

from console.kinds.migration import MigrationOptions


def make_migration_task(engine, tc):
    from console.engine.migration.task import MigrationTask
    from console.errors import UserError
    from console.mysql.connection import Endpoint

    cluster = engine.config.cluster(tc.cluster)
    opts: MigrationOptions = tc.options
    host = cluster.host(opts.host) if opts.host else cluster.hosts[0]
    if host is None:
        raise UserError(f"task {tc.name}: no host {opts.host!r} in cluster {cluster.name}")
    return MigrationTask(tc.name, Endpoint.from_host(host), opts, engine.state.task_dir(tc.name),
                         log=lambda m, name=tc.name: engine.event(name, m))
