"""bench/backup_rpo_restore: recovery point under load, and replay speed vs the pipe.

    python -m bench.backup_rpo_restore [--dir D] [--port P] [--seconds S] [--threads N]

1. Starts a sandbox (primary + 1 replica), prepares sysbench tables, takes a
   mariadb-backup snapshot, then starts the backup task (start_from = now,
   so the log starts exactly at the snapshot).
2. Runs ``sysbench oltp_write_only`` for S seconds.  Every 0.2 s it notes the
   primary's gtid_binlog_pos; the recovery point of a sample is the time
   until the task's durable checkpoint covers that position.  Prints median,
   p95 and max.
3. Replays the same backed-up events twice onto the same prepared snapshot:
   with our restore (pipelined BINLOG statements) and with
   ``mariadb-binlog SEGMENTS | mariadb`` (segments pre-decompressed, not
   timed), and prints both rates and the ratio.  Both copies must end with
   identical table checksums.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from console.config import load_config
from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog
from console.engine.backup.mysqld import RESTORE_USER
from console.engine.backup.restore import restore
from console.engine.backup.segments import data_key
from console.engine.backup.snapshot import take_snapshot
from console.engine.backup.storage import LocalStorage
from console.engine.engine import Engine
from console.mysql import gtid as G
from console.mysql.connection import Endpoint
from console.mysql.gtid import GtidPosition
from console.mysql.tools import client_options
from console.sandbox import Sandbox


def sql(conn, q):
    with conn.cursor() as cur:
        cur.execute(q)
        return cur.fetchall()


def checksums(conn, tables):
    return sql(conn, "CHECKSUM TABLE " + ", ".join(f"sbtest.{t}" for t in tables))


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench.backup_rpo_restore")
    ap.add_argument("--dir", default="/tmp/dbops-bench-backup")
    ap.add_argument("--port", type=int, default=28520)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--table-size", type=int, default=20000)
    a = ap.parse_args()
    root = Path(a.dir)
    if root.exists():
        shutil.rmtree(root)
    os.environ.setdefault("TMPDIR", str(root / "tmp"))
    (root / "tmp").mkdir(parents=True)
    sb = Sandbox(root / "sandbox", replicas=1, base_port=a.port)
    info = sb.up(progress=lambda m: print(f"  {m}", file=sys.stderr))
    engine = None
    servers = []
    try:
        cfg_text = Path(info.config).read_text().replace(
            f'storage = "{sb.dir / "backup"}"', f'storage = "{root / "store"}"\nstart_from = "now"')
        (root / "bench.toml").write_text(cfg_text)
        cfg = load_config(root / "bench.toml")
        node1 = info.nodes[0]
        h = cfg.cluster("sandbox").hosts[0]
        ep = Endpoint.from_host(h)
        import pymysql

        def conn():
            return pymysql.connect(host="127.0.0.1", port=node1.port, user=h.user,
                                   password=h.password.reveal(), autocommit=True)

        c = conn()
        sql(c, "CREATE DATABASE IF NOT EXISTS sbtest")
        sb_args = ["sysbench", "oltp_write_only", f"--mysql-socket={node1.socket}",
                   "--mysql-user=root", "--mysql-db=sbtest", f"--tables={a.tables}",
                   f"--table-size={a.table_size}", "--db-ps-mode=disable"]
        print("preparing sysbench tables", file=sys.stderr)
        subprocess.run(sb_args + ["prepare"], check=True, capture_output=True)
        storage = LocalStorage(root / "store")
        snap = take_snapshot(storage, ep, "mariadb-backup")
        print(f"snapshot {snap.id} at {snap.gtid}", file=sys.stderr)
        engine = Engine(cfg)
        task = engine.create_configured("sandbox-backup")
        task.start()
        while task.status().phase != "streaming":
            time.sleep(0.05)

        # ---- recovery point under load ------------------------------------------------
        cps: list[tuple[float, GtidPosition]] = []
        stop = threading.Event()

        def watch_checkpoint():
            last = None
            while not stop.is_set():
                s = task.gtid_state.copy()
                if s != last:
                    cps.append((time.time(), s))
                    last = s
                time.sleep(0.005)

        samples: list[tuple[float, GtidPosition]] = []

        def sample_primary():
            sc = conn()
            while not stop.is_set():
                g = sql(sc, "SELECT @@gtid_binlog_pos")[0][0]
                samples.append((time.time(), G.position(g)))
                time.sleep(0.2)
            sc.close()

        threads = [threading.Thread(target=watch_checkpoint, daemon=True),
                   threading.Thread(target=sample_primary, daemon=True)]
        for t in threads:
            t.start()
        print(f"sysbench oltp_write_only, {a.threads} threads, {a.seconds}s", file=sys.stderr)
        r = subprocess.run(sb_args + [f"--threads={a.threads}", f"--time={a.seconds}",
                                      "--report-interval=0", "run"],
                           capture_output=True, text=True, check=True)
        tps = next((ln.split("(")[1].split()[0] for ln in r.stdout.splitlines()
                    if "transactions:" in ln), "?")
        final = G.position(sql(c, "SELECT @@gtid_binlog_pos")[0][0])
        deadline = time.time() + 60
        while not final <= task.gtid_state and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        lags = []
        for ts, st in samples:
            hit = next((t for t, s in cps if st <= s), None)
            if hit is not None:
                lags.append(max(0.0, hit - ts))
        lags.sort()
        st = task.status().detail
        engine.shutdown()
        engine = None

        # ---- replay: ours vs mariadb-binlog | mariadb ----------------------------------------
        cat = Catalog(storage)
        mans = cat.manifests()
        assert mans and mans[0].gtid_start == snap.gtid, "log must start at the snapshot"
        n_txn = sum(m.transactions for m in mans)
        raw_bytes = sum(m.raw_bytes for m in mans)
        target = final.text()
        ours = restore(root / "store", root / "r-ours", port=a.port + 10, to_gtid=target,
                       keep_running=True)
        servers.append(ours)
        peer = restore(root / "store", root / "r-pipe", port=a.port + 11, to_gtid=snap.gtid,
                       keep_running=True)
        servers.append(peer)
        segdir = Path(tempfile.mkdtemp(dir=root))
        files = []
        for m in mans:
            f = segdir / f"{m.seq:010d}.bin"
            f.write_bytes(zstd.decompress(storage.get(data_key(m.seq))))
            files.append(str(f))
        with client_options(socket=peer.socket, user=RESTORE_USER,
                            password=peer.server.password()) as cnf:
            t0 = time.monotonic()
            mb = subprocess.Popen(["mariadb-binlog", *files], stdout=subprocess.PIPE)
            cl = subprocess.run(["mariadb", cnf.arg, "--binary-mode"], pass_fds=cnf.pass_fds,
                                stdin=mb.stdout, capture_output=True)
            mb.stdout.close()
            mb.wait()
            pipe_s = time.monotonic() - t0
        if cl.returncode != 0:
            raise SystemExit(f"pipe replay failed: {cl.stderr.decode()[-300:]}")
        tables = [f"sbtest{i + 1}" for i in range(a.tables)]
        oc, pc = ours.server.connect(), peer.server.connect()
        same = checksums(oc, tables) == checksums(pc, tables)
        oc.close()
        pc.close()
        print()
        print(f"bench/backup_rpo_restore  (MariaDB {snap.server_version}, {os.cpu_count()} cores, "
              f"sysbench oltp_write_only {a.threads} threads {a.seconds}s, {tps} tps)")
        print(f"recovery point (checkpoint lag behind the primary), {len(lags)} samples every 0.2 s:")
        print(f"  median {statistics.median(lags):.3f} s   p95 {lags[int(len(lags) * .95) - 1]:.3f} s"
              f"   max {lags[-1]:.3f} s   (goal <= 1 s; BR documents ~5 min)")
        print(f"  stored {st.segments} segments, {st.segment_bytes / 1e6:.1f} MB compressed "
              f"({raw_bytes / 1e6:.1f} MB raw) for {n_txn} transactions")
        ours_rate = ours.transactions / ours.replay_seconds
        pipe_rate = n_txn / pipe_s
        print(f"replay of the same {n_txn} transactions ({raw_bytes / 1e6:.1f} MB of binlog):")
        print(f"  dbops restore:           {ours.replay_seconds:7.2f} s  {ours_rate:9.0f} txn/s  "
              f"{raw_bytes / 1e6 / ours.replay_seconds:6.1f} MB/s")
        print(f"  mariadb-binlog | mariadb: {pipe_s:7.2f} s  {pipe_rate:9.0f} txn/s  "
              f"{raw_bytes / 1e6 / pipe_s:6.1f} MB/s")
        print(f"  ratio (ours / pipe): {ours_rate / pipe_rate:.2f}x   "
              f"checksums identical: {same}")
        return 0 if same else 1
    finally:
        if engine is not None:
            engine.shutdown()
        for s in servers:
            s.stop()
        sb.down()


if __name__ == "__main__":
    sys.exit(main())
