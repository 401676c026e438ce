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
    task_dir = engine.state.task_dir(tc.name)
    if opts.execute and not opts.resume:
        from console.engine.migration.checkpoint import Checkpoint
        from console.engine.migration.fleet_resume import take_fleet_checkpoint

        if owner := take_fleet_checkpoint(engine, tc.name, Checkpoint(task_dir / "checkpoint.json")):
            engine.event(tc.name, f"taken over in the fleet: resuming the run of engine {owner} from "
                                  f"its last published checkpoint")
    if opts.execute and not opts.resume and (task_dir / "checkpoint.json").exists():
        # an engine's migration starts again where its earlier run stopped (a
        # stop, the engine's SIGTERM, a kill -9, a failed cut-over): the
        # checkpoint holds only what was committed, and it must match this
        # table and ALTER or the start is refused in one line
        import dataclasses

        opts = dataclasses.replace(opts, resume=True)
        engine.event(tc.name, f"resuming from the checkpoint of its earlier run "
                              f"({task_dir / 'checkpoint.json'})")
    return MigrationTask(tc.name, Endpoint.from_host(host), opts, task_dir,
                         log=lambda m, name=tc.name: engine.event(name, m),
                         cluster=tuple(Endpoint.from_host(h) for h in cluster.hosts))
