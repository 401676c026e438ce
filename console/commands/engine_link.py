"""Headless commands beside a running engine (``serve``, or a console's
background engine): when one serves the config's state directory, the
commands talk to it through its API instead of acting alone.

- ``status`` prints the engine's snapshots (no probe of its own);
- ``relay --task`` / ``backup run --task`` start the task in the engine
  (it outlives this command) instead of running a second copy that the
  engine's directory locks would refuse;
- ``backup snapshot --task`` asks the engine's running backup task;
- ``switchover`` / ``failover`` run here as before, and the relay tasks
  the engine runs follow the new primary through the API (their
  ``switch-master`` command), as when the engine itself recovers.

With no engine serving, every command works standalone, as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from console.api.client import ApiError, EngineClient, connect
from console.config import Config

ACTOR = "cli"


def served(cfg: Config) -> EngineClient | None:
    """A client of the engine serving ``cfg``'s state directory, or None."""
    return connect(cfg.state_dir, actor=f"{ACTOR}:{os.getpid()}")


def _state_of(client: EngineClient, name: str) -> str:
    try:
        return client.task(name)["state"]
    except ApiError as e:
        if e.status == 404:
            return ""
        raise


def run_in_engine(client: EngineClient, name: str, command: str) -> int:
    """Start the declared task ``name`` in the engine (unless it runs there
    already); one line says where it runs and how to see or stop it."""
    info = client.info()
    where = f"the engine serving {info['state_dir']} (pid {info['pid']})"
    state = _state_of(client, name)
    if state in ("running", "paused"):
        print(f"{command}: {name} already runs in {where} ({state}); see it with "
              f"`dbops-console status` or the console", file=sys.stderr)
        return 0
    st = client.start(name)
    print(f"{command}: started {name} in {where} ({st['state']}, {st['phase'] or 'starting'}); "
          f"it runs there after this command ends: see it with `dbops-console status` or the "
          f"console, stop it with the console or POST /api/v1/tasks/{name}/stop", file=sys.stderr)
    return 0


def runs_in_engine(client: EngineClient, name: str) -> bool:
    return _state_of(client, name) in ("running", "paused")


def relay_follower_via(client: EngineClient) -> Callable[[str, str], list[str]]:
    """After a recovery run here: each relay task of the cluster that the
    engine runs switches to the new primary (as ``relay_follower`` does
    inside the engine)."""

    def follow(cluster: str, new_primary: str) -> list[str]:
        out = []
        for t in client.tasks():
            if t["kind"] != "relay" or t["cluster"] != cluster or t["state"] not in ("running",
                                                                                    "paused"):
                continue
            try:
                res = client.command(t["task_id"], "switch-master", confirm=t["task_id"],
                                     target=new_primary)
                out.append(f"{t['task_id']} (in the engine): {res}")
            except ApiError as e:
                out.append(f"{t['task_id']} (in the engine): {e}")
        return out

    return follow
