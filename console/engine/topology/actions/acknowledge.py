"""Acknowledging a cluster's recoveries from any client (console, API):
lifts the anti-flapping block.  The operator confirms by typing the
cluster's name.  When the engine runs the cluster's failover task, its
``acknowledge`` command does it (it also marks the records on the
primary and clears its own block); otherwise the state directory's
records are marked here.  Audited as ``acknowledge`` either way (the
history reads who acknowledged from the audit log)."""

from __future__ import annotations

from console.engine.failover import history
from console.errors import ConfirmationRequired, UserError


def failover_task_of(engine, cluster: str):
    """The engine's running (or paused) failover task of ``cluster``, or None."""
    for t in engine.tasks():
        if t.kind != "failover" or t.state not in ("running", "paused"):
            continue
        detail = t.status().detail
        if getattr(detail, "cluster", None) == cluster:
            return t
    return None


def acknowledge(engine, cluster: str, confirm: str | None, actor: str) -> str:
    engine.config.cluster(cluster)  # an unknown cluster: one line
    try:
        if confirm != cluster:
            raise ConfirmationRequired(f"acknowledging the recoveries of {cluster} lifts the "
                                       f"anti-flapping block: confirm by typing {cluster!r}")
    except UserError as e:
        engine.audit(actor, "acknowledge", cluster, "refused", str(e))
        raise
    task = failover_task_of(engine, cluster)
    if task is not None:
        return engine.command(task.task_id, "acknowledge", actor)
    n = history.acknowledge_local(engine.state.root, cluster, by=actor)
    msg = f"acknowledged {n} recovery(ies) of {cluster}"
    engine.audit(actor, "acknowledge", cluster, "ok", msg)
    return msg
