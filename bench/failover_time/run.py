"""Failover timing under sysbench write load, on a local sandbox.

    python bench/failover_time/run.py [--dir DIR] [--base-port P] [--switchovers N]

1. Planned switchovers (sysbench oltp_write_only on the primary plus an
   acknowledged-writes probe): the write-block window as the engine measures
   it (fence -> candidate writable) and as a client sees it (largest gap
   between two acknowledged writes of the probe across the switchover).
2. kill -9 of the primary with the failover task watching (automatic
   failover on, check_interval from the config): time to detection, to a
   writable new primary, to all replicas repointed; acknowledged writes lost.

Peer tools (orchestrator, MHA, replication-manager) are not installed here,
so no same-run ratio can be printed; the goal and the peers' published
figures are printed beside ours, labelled as such.  sysbench's password is
passed in a 0600 config file, never on its command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.config import load_config  # noqa: E402
from console.engine.engine import Engine  # noqa: E402
from console.engine.failover.context import ClusterOps, RecoveryOptions  # noqa: E402
from console.engine.failover.switchover import Switchover  # noqa: E402
from console.engine.failover.task import FailoverTask  # noqa: E402
from console.sandbox import Sandbox  # noqa: E402

APP, APP_PW = "bench", "bench-pw-local-only"


class Probe(threading.Thread):
    """One acknowledged insert every ~2 ms on whichever node is writable."""

    def __init__(self, ports):
        super().__init__(daemon=True)
        self.ports, self.acked, self.stop_ev = ports, [], threading.Event()
        self.t_acked: list[float] = []
        self.n = 0

    def run(self):
        conn = None
        while not self.stop_ev.is_set():
            if conn is None:
                for p in self.ports:
                    try:
                        c = pymysql.connect(host="127.0.0.1", port=p, user=APP, password=APP_PW,
                                            autocommit=True, connect_timeout=0.3, read_timeout=3)
                        with c.cursor() as cur:
                            cur.execute("SELECT @@global.read_only")
                            if cur.fetchone()[0] == 0:
                                conn = c
                                break
                        c.close()
                    except pymysql.MySQLError:
                        pass
                if conn is None:
                    time.sleep(0.01)
                    continue
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO bench.probe VALUES (%s)", (self.n + 1,))
                self.n += 1
                self.acked.append(self.n)
                self.t_acked.append(time.monotonic())
            except pymysql.MySQLError as e:
                if e.args and e.args[0] == 1062:
                    self.n += 1
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            time.sleep(0.002)

    def max_gap_ms(self, t0, t1):
        ts = [t for t in self.t_acked if t0 - 1 <= t <= t1 + 1]
        return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=float("nan")) * 1000


RATE = [300]


def sysbench(port: int, cnf: Path, seconds: int, prepare: bool = False):
    cmd = ["sysbench", f"--config-file={cnf}", f"--mysql-port={port}", "oltp_write_only",
           "--tables=4", "--table-size=10000"]
    if prepare:
        return subprocess.run(cmd + ["prepare"], capture_output=True, text=True, check=True)
    return subprocess.Popen(cmd + ["--threads=4", f"--time={seconds}", "--report-interval=0",
                                   f"--rate={RATE[0]}", "--mysql-ignore-errors=all", "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def writable(sb_ports, h_sql):
    for p in sb_ports:
        try:
            if h_sql(p, "SELECT @@global.read_only")[0][0] == 0:
                return p
        except pymysql.MySQLError:
            pass
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/work/scratch-failover/bench")
    ap.add_argument("--base-port", type=int, default=27520)
    ap.add_argument("--switchovers", type=int, default=3)
    ap.add_argument("--rate", type=int, default=300,
                    help="sysbench transactions/s (0 = unthrottled; on 2 shared cores the "
                         "sandbox replicas' single SQL thread falls behind an unthrottled load)")
    a = ap.parse_args()
    RATE[0] = a.rate
    sb = Sandbox(a.dir, replicas=2, base_port=a.base_port)
    sb.destroy()
    info = sb.up()
    ops_pw = sb.secret_path("dbops").read_text().strip()
    ports = [n.port for n in info.nodes]

    def sql(port, *stmts):
        c = pymysql.connect(host="127.0.0.1", port=port, user="dbops", password=ops_pw, autocommit=True)
        try:
            with c.cursor() as cur:
                for s in stmts:
                    cur.execute(s)
                return cur.fetchall()
        finally:
            c.close()

    sql(ports[0], "CREATE DATABASE sbtest", "CREATE DATABASE bench",
        "CREATE TABLE bench.probe (id INT PRIMARY KEY)",
        f"CREATE USER '{APP}'@'127.0.0.1' IDENTIFIED BY '{APP_PW}'",
        f"GRANT ALL ON sbtest.* TO '{APP}'@'127.0.0.1'",
        f"GRANT SELECT, INSERT ON bench.* TO '{APP}'@'127.0.0.1'")
    fd, name = tempfile.mkstemp(prefix="sysbench-", suffix=".cnf", dir=a.dir)
    os.write(fd, f"mysql-host=127.0.0.1\nmysql-user={APP}\nmysql-password={APP_PW}\nmysql-db=sbtest\n".encode())
    os.close(fd)
    cnf = Path(name)
    cfg = load_config(info.config)
    cluster = cfg.cluster("sandbox")
    try:
        sysbench(ports[0], cnf, 0, prepare=True)
        print(f"sandbox {a.dir}: primary {ports[0]}, replicas {ports[1:]}; load: sysbench "
              f"oltp_write_only 4 threads at {a.rate or 'unthrottled'} tps + acknowledged-insert probe")
        probe = Probe(ports)
        probe.start()
        # ---- planned switchovers ----------------------------------------------
        blocks, gaps = [], []
        for i in range(a.switchovers):
            prim = writable(ports, sql)
            sb_proc = sysbench(prim, cnf, 30)
            time.sleep(2.0)
            t0 = time.monotonic()
            rep = Switchover(ClusterOps(cluster, cfg.state_dir), RecoveryOptions(actor="bench")).run()
            t1 = time.monotonic()
            time.sleep(0.5)
            sb_proc.send_signal(signal.SIGTERM)
            sb_proc.wait()
            if rep.outcome != "ok":
                print(f"switchover {i + 1}: {rep.outcome}: {rep.error}")
                continue
            blocks.append(rep.write_block_ms)
            gaps.append(probe.max_gap_ms(t0, t1))
            print(f"switchover {i + 1}: {rep.old_primary} -> {rep.new_primary}: write block "
                  f"{rep.write_block_ms:.0f} ms (engine), {gaps[-1]:.0f} ms (largest gap between "
                  f"acknowledged probe writes), total {rep.total_ms:.0f} ms")
        # ---- kill -9 ------------------------------------------------------------
        prim = writable(ports, sql)
        sb_proc = sysbench(prim, cnf, 30)
        engine = Engine(cfg)
        task = FailoverTask(cluster, cfg.state_dir, auto=True)
        engine.add_task(task)
        task.start()
        time.sleep(3.0)
        node = next(n for n in sb.load().nodes if n.port == prim)
        t_kill = time.time()
        sb.stop_node(node.name, signal.SIGKILL, wait=False)
        deadline = time.monotonic() + 60
        while task.detail().last_report is None and time.monotonic() < deadline:
            time.sleep(0.02)
        rep = task.detail().last_report
        time.sleep(1.0)
        probe.stop_ev.set()
        probe.join(5)
        sb_proc.send_signal(signal.SIGTERM)
        sb_proc.wait()
        task.stop()
        for _, e in engine.events_since(0):
            if e.ts >= t_kill - 0.5 and e.action != "phase":
                print(f"  {(e.ts - t_kill) * 1000:+7.0f} ms {e.actor} {e.action} {e.outcome} {e.detail}"[:160])
        if rep is None or rep.outcome != "ok":
            d = task.detail()
            why = rep.error if rep else f"timed out ({d.verdict}; blocked: {d.blocked or 'no'})"
            print(f"failover: {rep.outcome if rep else 'none'}: {why}")
            return 1
        detect = (task.dead_seen_at or rep.started) - t_kill
        promoted = rep.started + rep.promoted_ms / 1000 - t_kill
        repointed = rep.started + rep.repointed_ms / 1000 - t_kill
        new_port = int(rep.new_primary.rpartition(":")[2])
        have = {r[0] for r in sql(new_port, "SELECT id FROM bench.probe")}
        lost = [i for i in probe.acked if i not in have]
        print(f"kill -9 of {prim} (check_interval {cluster.check_interval:g}s): detected after "
              f"{detect * 1000:.0f} ms, new primary {rep.new_primary} writable after "
              f"{promoted * 1000:.0f} ms, all {len(rep.repointed)} replicas repointed after "
              f"{repointed * 1000:.0f} ms; acknowledged probe writes lost: {len(lost)} of "
              f"{len(probe.acked)}; lost by the report: {rep.lost or 'nothing'}")
        print()
        print(f"{'figure':<40} {'measured':>10} {'goal':>10}   published peers (not measured here)")
        print(f"{'failure -> all replicas repointed':<40} {repointed:>9.2f}s {'<= 5 s':>10}   "
              f"orchestrator 10-13 s, MHA 10-30 s")
        if blocks:
            print(f"{'switchover write block (median)':<40} {statistics.median(blocks) / 1000:>9.3f}s "
                  f"{'< 1 s':>10}")
            print(f"{'switchover client-seen gap (median)':<40} {statistics.median(gaps) / 1000:>9.3f}s "
                  f"{'< 1 s':>10}")
        else:
            print(f"{'switchover':<40} {'refused':>10} {'< 1 s':>10}   (candidate could not catch up)")
        print(f"{'acknowledged writes lost':<40} {len(lost):>10} {'0':>10}")
        print("no peer tool (orchestrator, MHA, replication-manager) is installed on this machine: "
              "no same-run ratio")
        return 0
    finally:
        cnf.unlink(missing_ok=True)
        sb.down()


if __name__ == "__main__":
    sys.exit(main())
