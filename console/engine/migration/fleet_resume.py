"""A migration taken over in a shared fleet (``serve --coordinator``)
resumes the run of the engine that died: its checkpoint record, published
to the coordinator with every save (fenced, never backwards within the
run), is written into this engine's task directory, where the start finds
it as after a local crash (``make_migration_task``).  A run that completed
published ``complete``: nothing is resumed."""

from __future__ import annotations

from console.engine.migration.checkpoint import Checkpoint


def take_fleet_checkpoint(engine, task_id: str, checkpoint: Checkpoint) -> str:
    """Write the fleet's unfinished record of ``task_id`` into ``checkpoint``
    when this engine has none; returns the engine that wrote it ("" when
    nothing was taken)."""
    coord = engine.coordinator
    if not coord.shared or checkpoint.exists():
        return ""
    cp = coord.checkpoint(task_id, "migration")
    value = (cp or {}).get("value") or {}
    rec = value.get("record")
    if not rec or value.get("complete"):
        return ""
    checkpoint.write(rec)
    return cp.get("engine") or "another engine"
