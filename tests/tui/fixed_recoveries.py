"""A fixed recovery history in a state directory (journals, the
anti-flapping records, the acknowledgement) for the history screen's
snapshot and Pilot tests: a failover acknowledged by a console, a
switchover not acknowledged, a reattach (no anti-flapping record)."""

import json
import os
import time
from pathlib import Path

from tests.tui.fixed_tasks import T0


def _step(name, target, start, ms, outcome="ok", detail="", sql=()):
    return {"name": name, "target": target, "sql": list(sql), "started": start, "ms": ms,
            "outcome": outcome, "detail": detail}


FAILOVER = {"kind": "failover", "cluster": "prod", "started": T0 + 100, "recovery_id": "20231114T221500Z-a1b2c3",
            "outcome": "ok", "actor": "auto", "old_primary": "127.0.0.1:3306", "new_primary": "127.0.0.1:3307",
            "lost": "", "salvaged": "0-1-1235", "total_ms": 1840.0, "error": "",
            "steps": [_step("lease", "", T0 + 100, 3.0, sql=["SELECT GET_LOCK('dbops_prod', 0)"]),
                      _step("stop replication", "127.0.0.1:3307", T0 + 100.1, 41.0, sql=["STOP SLAVE"]),
                      _step("salvage", "127.0.0.1:3307", T0 + 100.2, 820.0, detail="0-1-1235 from db3"),
                      _step("promote", "127.0.0.1:3307", T0 + 101.1, 30.0,
                            sql=["RESET SLAVE ALL", "SET GLOBAL read_only = 0"]),
                      _step("repoint", "127.0.0.1:3308", T0 + 101.2, 55.0,
                            sql=["CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307"]),
                      _step("history", "127.0.0.1:3307", T0 + 101.8, 12.0,
                            detail="recovery 20231114T221500Z-a1b2c3")]}
SWITCHOVER = {"kind": "switchover", "cluster": "prod", "started": T0 + 300,
              "recovery_id": "20231114T221820Z-d4e5f6", "outcome": "ok", "actor": "console:4242",
              "old_primary": "127.0.0.1:3307", "new_primary": "127.0.0.1:3306", "total_ms": 412.0,
              "write_block_ms": 42.0,
              "steps": [_step("lease", "", T0 + 300, 2.0),
                        _step("fence", "127.0.0.1:3307", T0 + 300.01, 12.0, sql=["SET GLOBAL read_only = 1"]),
                        _step("wait caught up", "127.0.0.1:3306", T0 + 300.03, 25.0),
                        _step("promote", "127.0.0.1:3306", T0 + 300.06, 30.0),
                        _step("repoint", "127.0.0.1:3307", T0 + 300.1, 60.0)]}
REATTACH = {"kind": "reattach", "cluster": "prod", "started": T0 + 400, "outcome": "failed",
            "actor": "cli", "error": "3 errant transactions on 127.0.0.1:3307 and no --flashback",
            "steps": [_step("divergence", "127.0.0.1:3307", T0 + 400, 80.0, detail="0-2-1..3 errant"),
                      _step("reattach", "127.0.0.1:3307", T0 + 400.1, 1.0, "failed",
                            detail="refused: errant transactions")]}


def write_journal(state: Path, j: dict, name: str, mtime: float | None = None) -> Path:
    d = state / "failover" / j["cluster"] / "journal"
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(json.dumps(j))
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


def write_recoveries(state: Path) -> None:
    """The three recoveries of cluster prod (finished: nothing depends on the clock)."""
    for j, name in ((FAILOVER, "20231114T221500-000-failover.json"),
                    (SWITCHOVER, "20231114T221820-000-switchover.json"),
                    (REATTACH, "20231114T222000-000-reattach.json")):
        write_journal(state, j, name, mtime=T0 + 500)
    d = state / "failover" / "prod"
    (d / "history.json").write_text(json.dumps([
        {"id": 1, "kind": "failover", "at": T0 + 101.9, "old_primary": "127.0.0.1:3306",
         "new_primary": "127.0.0.1:3307", "acknowledged": False, "recovery_id": FAILOVER["recovery_id"]},
        {"id": 2, "kind": "switchover", "at": T0 + 300.3, "old_primary": "127.0.0.1:3307",
         "new_primary": "127.0.0.1:3306", "acknowledged": False, "recovery_id": SWITCHOVER["recovery_id"]}]))
    (d / "ack.json").write_text(json.dumps({"at": T0 + 200, "by": "console:4242"}))


def running_journal(state: Path, steps: int) -> Path:
    """A switchover that runs now: ``steps`` done, the next one running."""
    now = time.time()
    done = [_step(n, "127.0.0.1:3306", now - 1 + i * 0.1, 10.0) for i, n in
            enumerate(("lease", "fence", "wait caught up", "promote", "repoint")[:steps])]
    running = [_step(("fence", "wait caught up", "promote", "repoint", "history")[min(steps, 4)],
                     "127.0.0.1:3306", now, 0.0, "running")]
    j = {"kind": "switchover", "cluster": "prod", "started": now - 1, "recovery_id": "live-switchover",
         "steps": done + running}
    return write_journal(state, j, "29991231T000000-000-switchover.json")
