"""``monitor`` beside a serving engine: never a second recoverer.

For each cluster watched:

- the engine has a failover task for it (declared ``kind = "failover"``):
  that task is the watcher.  ``monitor`` starts it in the engine when it
  does not run (and, with ``--auto-failover``, turns its automatic failover
  on, audited as this command), then prints what the engine's task sees
  (its verdict, candidates, advice, recovery reports) from the engine's
  live stream; it probes nothing itself.  Stopping ``monitor`` leaves the
  engine's watcher running.
- the engine has none (it only detects): ``monitor`` watches the cluster
  here as it does standalone, and after a recovery the relay tasks the
  engine runs follow the new primary through the API.  The cluster lease
  (a named lock on every host) keeps any two recoverers apart.
"""

from __future__ import annotations

import sys
import time

from console.api.client import ApiError, EngineClient
from console.api.remote import status_of
from console.commands.engine_follow import Follower
from console.config import ClusterConfig

RUNNING = ("running", "paused")


def engine_watchers(client: EngineClient, clusters: list[ClusterConfig]) -> dict[str, str]:
    """cluster -> the engine's failover task watching it (declared in the
    config the engine serves)."""
    out: dict[str, str] = {}
    names = {c.name for c in clusters}
    for t in client.tasks():
        if t["kind"] == "failover" and t.get("cluster") in names:
            out.setdefault(t["cluster"], t["task_id"])
    return out


def start_watchers(client: EngineClient, watchers: dict[str, str], auto: bool, say) -> None:
    """Each engine watcher running (started when it did not run); with
    ``auto``, its automatic failover on."""
    where = f"the engine (pid {client.info()['pid']})"
    for cluster, name in watchers.items():
        t = client.task(name)
        if t["state"] not in RUNNING:
            client.start(name)
            say(f"monitor: started {name} in {where}: it watches {cluster} there")
        else:
            say(f"monitor: {cluster} is watched by {name} in {where}")
        if auto and not ((t.get("detail") or {}).get("auto")):
            say(f"monitor: {client.command(name, 'auto', on=True)} (in {where})")


def watch(client: EngineClient, watchers: dict[str, str], stop, as_json: bool, line, report) -> None:
    """Print each engine watcher's verdict when it changes, and each recovery
    report, until ``stop``; ``line(detail)`` and ``report(rep)`` format them."""
    by_task = {v: k for k, v in watchers.items()}
    follower = Follower(client, None)
    seen: dict[str, tuple] = {}
    reported: dict[str, float] = {}
    started = time.time()
    while not stop.is_set():
        for name, data in follower.take(0.2):
            if name == "ended":
                print(f"monitor: lost the engine ({data}); the engine's watchers ran there, not "
                      f"here: start the engine again (or run monitor --standalone)",
                      file=sys.stderr, flush=True)
                stop.set()
                return
            if name != "snapshot":
                continue
            for t in data["tasks"]:
                if t["task_id"] not in by_task or t["state"] not in RUNNING:
                    continue
                d = status_of(t).detail
                if d is None or isinstance(d, dict) or d.verdict is None:
                    continue
                key = (d.verdict.state, d.recovering, d.blocked)
                if seen.get(t["task_id"]) != key:
                    seen[t["task_id"]] = key
                    print(line(d), flush=True)
                rep = d.last_report
                if rep is not None and not isinstance(rep, dict):
                    at = rep.started
                    if at >= started and reported.get(t["task_id"]) != at:
                        reported[t["task_id"]] = at
                        print(report(rep), flush=True)


def once(client: EngineClient, watchers: dict[str, str], line, timeout: float = 10.0) -> dict[str, str]:
    """The current line of each running engine watcher (waiting up to
    ``timeout`` for its first verdict); the clusters it could not give."""
    out: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    pending = dict(watchers)
    while pending and time.monotonic() < deadline:
        for cluster, name in list(pending.items()):
            try:
                t = client.task(name)
            except ApiError:
                pending.pop(cluster)
                continue
            if t["state"] not in RUNNING:
                pending.pop(cluster)
                continue
            d = status_of(t).detail
            if d is not None and not isinstance(d, dict) and d.verdict is not None:
                out[cluster] = line(d)
                pending.pop(cluster)
        if pending:
            time.sleep(0.2)
    return out

