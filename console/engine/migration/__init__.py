"""Triggerless online schema change (gh-ost's algorithm, plus checksum
verification and crash resume).  Importing this package registers the
``migration`` task kind and its engine factory."""

from __future__ import annotations

from console.engine.migration import options  # noqa: F401  (registers the config kind)
from console.engine.migration.options import MigrationOptions


def _factory(engine, tc):
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


def _register() -> None:
    from console.engine.engine import register_task_factory

    register_task_factory("migration", _factory)


_register()
