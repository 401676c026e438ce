"""A fleet's status in one refresh (issue 17, item 6): how long a complete,
consistent status of N clusters of 3 hosts takes, for N = 1, 10, 100.

    python bench/fleet_status.py [--dir DIR] [--base-port P] [--clusters 1,10,100] [--rounds 5]

The clusters all point at the same 3-node sandbox (a config may name the
same servers many times): what is measured is the console's own work per
cluster (connections, probes, role assignment), not the servers'.

Two figures per N:
- ``status --json`` run headless (no engine): the wall time of the command;
- an engine with N cluster monitors (what `serve` and the console run):
  the time of one full round, i.e. from the start of a refresh until every
  cluster has a snapshot taken after it (median and worst of ``--rounds``).

No peer tool is compared: orchestrator and replication-manager are not
installed here.  The goal (the issue's): 100 clusters within one refresh
interval (1 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.config import load_config  # noqa: E402
from console.engine.engine import Engine  # noqa: E402
from console.engine.topology.monitor import MonitorTask  # noqa: E402
from console.sandbox import Sandbox  # noqa: E402


def fleet_config(base: Path, sandbox_cfg: Path, n: int, out: Path) -> Path:
    """The sandbox's cluster repeated ``n`` times (``c0`` .. ``c{n-1}``)."""
    text = sandbox_cfg.read_text()
    head, _, rest = text.partition("[clusters.sandbox]")
    cluster = "[clusters.sandbox]" + rest.split("\n# relay:", 1)[0].split("\n[tasks.", 1)[0]
    cluster = cluster.replace("heartbeat = true", "heartbeat = false")
    parts = [head.replace(f'state_dir = "{base}', f'state_dir = "{out.parent}')]
    for i in range(n):
        parts.append(cluster.replace("clusters.sandbox", f"clusters.c{i}"))
    out.write_text("\n".join(parts))
    return out


def headless_status(cfg: Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(cfg), "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    data = json.loads(p.stdout)["clusters"]
    bad = [c for c, d in data.items() if len(d["hosts"]) != 3 or not d["primary"]]
    if bad:
        raise SystemExit(f"incomplete status for {bad[:3]}")
    return took


def served_status(cfg: Path) -> float:
    """``status --json`` beside a serving engine (it prints the engine's
    snapshots): the best of three, once every cluster has one."""
    from console.api.client import connect

    state = load_config(cfg).state_dir
    serve = subprocess.Popen([sys.executable, "-m", "console", "serve", "--quiet", "--config",
                              str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            c = connect(state)
            if c and all(d["taken_at"] for d in c.clusters().values()):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("serve did not answer with every cluster within 120 s")
        return min(headless_status(cfg) for _ in range(3))
    finally:
        serve.terminate()
        serve.wait(60)


def engine_rounds(cfg_path: Path, rounds: int) -> tuple[list[float], float]:
    """Seconds from a moment until every cluster has a snapshot taken after
    it (the monitors run on their own 1 s cadence: at most one interval when
    they keep up), per round; and the engine's CPU (process time / wall)."""
    cfg = load_config(cfg_path)
    engine = Engine(cfg)
    monitors = [engine.add_task(MonitorTask(c, 1.0)) for c in cfg.clusters.values()]
    for m in monitors:
        engine.start(m.task_id)
    out = []
    cpu0 = wall0 = 0.0
    try:
        for i in range(rounds + 1):
            if i == 1:
                cpu0, wall0 = time.process_time(), time.monotonic()  # the first round opens the connections: not counted
            t0 = time.time()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                topos = [m.status().detail.topology for m in monitors]
                if all(t is not None and t.taken_at >= t0 and len(t.hosts) == 3 for t in topos):
                    break
                time.sleep(0.005)
            else:
                raise SystemExit("the monitors did not all complete a round within 60 s")
            out.append(max(t.taken_at for t in topos) - t0)
        busy = (time.process_time() - cpu0) / max(1e-6, time.monotonic() - wall0)
    finally:
        engine.shutdown(timeout=30)
    return out[1:], busy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--base-port", type=int, default=29306)
    ap.add_argument("--clusters", default="1,10,100")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    work = Path(a.dir or tempfile.mkdtemp(prefix="dbops-fleet-"))
    sb = Sandbox(work / "sb", base_port=a.base_port, redo_log_mb=16)
    info = sb.up(progress=lambda m: None)
    try:
        print(f"{'clusters':>8} {'status alone s':>15} {'status beside serve s':>22} "
              f"{'engine: all refreshed, median s':>32} {'worst s':>8} {'engine CPU':>11}"
              f"   goal: <= 1.0 s")
        for n in (int(x) for x in a.clusters.split(",")):
            (work / f"fleet{n}").mkdir(parents=True, exist_ok=True)
            cfg = fleet_config(work / "sb", Path(info.config), n, work / f"fleet{n}" / "dbops.toml")
            st = min(headless_status(cfg) for _ in range(3))
            served = served_status(cfg)
            r, busy = engine_rounds(cfg, a.rounds)
            print(f"{n:>8} {st:>15.2f} {served:>22.2f} {statistics.median(r):>32.3f} "
                  f"{max(r):>8.3f} {busy:>10.0%}", flush=True)
    finally:
        sb.down()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
