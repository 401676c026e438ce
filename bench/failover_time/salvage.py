"""Emergency failover when the relay is the only witness: how long the salvage takes.

    python bench/failover_time/salvage.py [--dir DIR] [--base-port P] [--transactions 300]
                                          [--big-mib 0]

A three-node sandbox, the sandbox's relay task as a semi-sync replica (so
every commit waited for the relay's fsync), both replicas' IO threads
stopped; then ``--transactions`` single-row transactions on the primary
(plus, with ``--big-mib N``, one row of N MiB), which only the relay holds.
kill -9 of the primary, then an emergency failover by the engine's failover
task.  Prints the time of the salvage step (relay transactions applied to
the candidate, each keeping its GTID), the time until the new primary is
writable, and checks that the new primary holds every transaction.

Twice in one run, on the same transactions: ours (the restore's pipelined
replayer), and the way MHA and our previous round applied them
(``mariadb-binlog`` of the relay files piped into the ``mariadb`` client)
into a throw-away copy of the candidate taken before the failover, so both
start from the same state.  The ratio is theirs / ours (> 1: ours faster).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.config import load_config  # noqa: E402
from console.engine.engine import Engine  # noqa: E402
from console.engine.relay.store import RelayStore  # noqa: E402
from console.mysql import gtid as G  # noqa: E402
from console.mysql.tools import client_options, need  # noqa: E402
from console.sandbox import Sandbox  # noqa: E402


def wait(pred, timeout=60.0, what=""):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/dbops-bench-salvage")
    ap.add_argument("--base-port", type=int, default=27620)
    ap.add_argument("--transactions", type=int, default=300)
    ap.add_argument("--big-mib", type=int, default=0, help="also one row of this many MiB (0: none)")
    a = ap.parse_args()
    sb = Sandbox(a.dir, replicas=2, base_port=a.base_port)
    sb.destroy()
    info = sb.up()
    pw = sb.secret_path("dbops").read_text().strip()
    ports = {n.name: n.port for n in info.nodes}

    def sql(node, *stmts):
        c = pymysql.connect(host="127.0.0.1", port=ports[node], user="dbops", password=pw,
                            autocommit=True, max_allowed_packet=1 << 30)
        try:
            with c.cursor() as cur:
                for s in stmts:
                    cur.execute(s)
                return cur.fetchall()
        finally:
            c.close()

    def status(node, var):
        return int(sql(node, f"SHOW GLOBAL STATUS LIKE '{var}'")[0][1])

    scratch = Path(tempfile.mkdtemp(prefix="salvage-peer-", dir=a.dir))
    engine = None
    try:
        sql("node1", "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v LONGTEXT)")
        text = Path(info.config).read_text().replace(
            "[tasks.sandbox-relay]\n", "[tasks.sandbox-relay]\nsemi_sync = true\nreconnect_max = 1.0\n")
        cfg_path = Path(info.config).with_name("dbops-salvage.toml")
        cfg_path.write_text(text)
        cfg = load_config(cfg_path)
        relay_dir = cfg.tasks["sandbox-relay"].options.relay_dir
        engine = Engine(cfg)
        relay = engine.create_configured("sandbox-relay")
        relay.start()
        fo = engine.create_configured("failover")
        fo.start()
        sql("node1", "SET GLOBAL rpl_semi_sync_master_timeout = 60000",
            "SET GLOBAL rpl_semi_sync_master_enabled = ON")
        relay.pause()
        relay.resume()
        wait(lambda: status("node1", "Rpl_semi_sync_master_clients") >= 1, what="the relay as semi-sync client")
        wait(lambda: fo.status().detail.verdict and fo.status().detail.verdict.state == "healthy",
             what="a healthy verdict")
        # the peer's copy of a candidate, taken before the relay-only writes
        durability = sql("node3", "SELECT @@sync_binlog, @@innodb_flush_log_at_trx_commit")[0]
        copy_datadir(sb, info, scratch)
        wait(lambda: sql("node3", "SHOW SLAVE STATUS")[0][10] == "Yes", what="node3 replicating again")
        for n in ("node2", "node3"):
            sql(n, "STOP SLAVE IO_THREAD")
        before = sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        t = time.monotonic()
        for i in range(a.transactions):
            sql("node1", f"INSERT INTO app.t VALUES ({i}, REPEAT('r', 200))")
        if a.big_mib:
            sql("node1", f"INSERT INTO app.t VALUES (-1, REPEAT('b', {a.big_mib} * 1024 * 1024))")
        write_s = time.monotonic() - t
        after = sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        want = G.parse(after, G.MARIADB)
        wait(lambda: G.parse(RelayStore(relay_dir).load_meta().gtid, G.MARIADB).contains(want),
             what="the relay to hold everything")
        n_tx = G.parse(after, G.MARIADB).subtract(G.parse(before, G.MARIADB)).count()

        # ---- the peer way, into a copy of a candidate taken now ---------------------
        peer_s = peer_apply(info, relay_dir, before, scratch, pw, durability)

        # ---- ours: kill -9 and the engine's emergency failover ---------------------
        sb.stop_node("node1", signal.SIGKILL)
        wait(lambda: fo.status().detail.verdict.state == "dead", what="the dead verdict")
        t0 = time.monotonic()
        engine.command(fo.task_id, "failover", confirm="sandbox")
        wait(lambda: fo.status().detail.last_report is not None and not fo.status().detail.recovering,
             120, "the failover")
        total_s = time.monotonic() - t0
        rep = fo.status().detail.last_report
        if rep.outcome != "ok":
            print(f"failover {rep.outcome}: {rep.error}")
            return 1
        step = next(s for s in rep.steps if s.name == "salvage: apply relay events")
        new = "node2" if rep.new_primary.endswith(f":{ports['node2']}") else "node3"
        ok = want.subtract(G.parse(sql(new, "SELECT @@gtid_binlog_pos")[0][0], G.MARIADB)).is_empty()
        count = sql(new, "SELECT COUNT(*) FROM app.t")[0][0]
        print(f"{n_tx} transactions held only by the relay (written in {write_s:.1f} s"
              f"{f', one row of {a.big_mib} MiB' if a.big_mib else ''}); failover to {rep.new_primary}")
        print(f"salvage step (ours, replay keeping GTIDs)   : {step.ms / 1000:6.2f} s")
        print(f"salvage apply (mariadb-binlog | mariadb)    : {peer_s:6.2f} s   "
              f"ratio theirs / ours: {peer_s * 1000 / max(step.ms, 1):.1f}")
        print(f"failover command -> new primary writable    : {rep.promoted_ms / 1000:6.2f} s "
              f"(whole recovery {total_s:.2f} s)")
        print(f"new primary holds every relayed transaction : {ok} ({count} rows)")
        return 0 if ok else 1
    finally:
        if engine is not None:
            engine.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
        sb.down()
        sb.destroy()


def copy_datadir(sb: Sandbox, info, scratch: Path) -> None:
    node = next(n for n in info.nodes if n.name == "node3")
    sb.stop_node("node3", signal.SIGTERM)
    shutil.copytree(node.datadir, scratch / "data")
    sb.start_node("node3")


def peer_apply(info, relay_dir: Path, before: str, scratch: Path, pw: str, durability) -> float:
    """``mariadb-binlog --start-position=BEFORE relay files | mariadb`` into a
    private server started on the copy of node3's data directory, with
    node3's durability settings."""
    node = next(n for n in info.nodes if n.name == "node3")
    data = scratch / "data"
    port = node.port + 50
    sock = scratch / "s.sock"
    proc = subprocess.Popen([need("mariadbd", "mysqld"), "--no-defaults", "--user=root",
                             f"--datadir={data}", f"--port={port}", f"--socket={sock}",
                             "--skip-slave-start", "--log-bin=peer-bin", "--server-id=99",
                             f"--sync-binlog={durability[0]}",
                             f"--innodb-flush-log-at-trx-commit={durability[1]}",
                             "--max-allowed-packet=1G", "--bind-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: sock.exists(), 60, "the peer copy to start")
        files = sorted(p for d in sorted(Path(relay_dir).iterdir()) if d.is_dir()
                       for p in d.iterdir() if p.name[-6:].isdigit())
        from console.mysql.connection import Endpoint
        from console.secret import Secret

        ep = Endpoint("127.0.0.1", port, "dbops", Secret(pw))
        t = time.monotonic()
        text = subprocess.run([need("mariadb-binlog"), "--skip-gtid-strict-mode",
                               f"--start-position={before}", *map(str, files)],
                              capture_output=True, check=True).stdout
        with client_options(ep) as cred:
            subprocess.run([need("mariadb"), cred.arg, "--binary-mode"], pass_fds=cred.pass_fds,
                           input=text, check=True, capture_output=True)
        return time.monotonic() - t
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    sys.exit(main())
