"""A ``migrate --execute`` run handed to a serving engine (the CLI beside
``serve`` or a console's background engine): inspected and checked exactly
as the CLI's own run (a refusal creates nothing), then added to the
engine and started as one of its tasks, so it outlives the command that
asked for it and every console sees and steers it.

It is not declared in the config: it lives as long as that engine does.
Its checkpoint (``STATE_DIR/tasks/<id>``) outlives the engine: after an
engine restart, ``migrate --resume --execute`` hands it over again."""

from __future__ import annotations

from console.engine.migration.taskid import migration_task_id
from console.engine.task import DONE, FAILED
from console.errors import CommandError
from console.kinds.migration import MigrationOptions
from console.mysql.connection import Endpoint


class AlreadyRuns(CommandError):
    """The engine already runs a migration of this table."""


def hand_over(engine, ep: Endpoint, opts: MigrationOptions, actor: str):
    """Inspect, add and start the migration of ``opts``' table on ``ep`` in
    ``engine``; returns the task.  Refused (nothing created) when the
    engine runs one of that table already, or by the inspection."""
    from console.engine.migration.task import MigrationTask

    task_id = migration_task_id(opts.database, opts.table)
    if task_id in engine.config.tasks:
        raise CommandError(f"{task_id} is a task declared in the config: start it there "
                           f"(POST /api/v1/tasks/{task_id}/start, or the console)")
    running = next((t for t in engine.tasks() if t.task_id == task_id), None)
    if running is not None and running.state not in (DONE, FAILED):
        raise AlreadyRuns(f"the engine already runs {task_id} ({running.state}, "
                          f"{running.phase or 'starting'})")
    task = MigrationTask(task_id, ep, opts, engine.state.task_path(task_id),
                         log=lambda m: engine.event(task_id, m))
    task.prepare()
    try:
        engine.state.task_dir(task_id)
        engine.add_task(task)   # a second hand-over that raced this one is refused here
    except BaseException:
        task.release()
        raise
    engine.start(task_id, actor=actor)
    return task
