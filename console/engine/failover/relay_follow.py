"""After a recovery, relay tasks of the cluster follow the new primary
(the relay task's ``switch-master`` command, continuing by GTID)."""

from __future__ import annotations

from collections.abc import Callable


def relay_follower(engine) -> Callable[[str, str], list[str]]:
    def follow(cluster: str, new_primary: str) -> list[str]:
        out = []
        for t in engine.tasks():
            if t.kind != "relay" or t.state not in ("running", "paused"):
                continue
            tc = engine.config.tasks.get(t.task_id)
            if tc is None or tc.cluster != cluster:
                continue
            if "switch-master" not in t.commands():
                out.append(f"{t.task_id}: no switch-master command")
                continue
            try:
                res = engine.command(t.task_id, "switch-master", actor="failover",
                                     target=new_primary, confirm=t.confirm_target())
                out.append(f"{t.task_id}: {res}")
            except Exception as e:  # noqa: BLE001 - reported in the journal
                out.append(f"{t.task_id}: {e}")
        return out

    return follow
