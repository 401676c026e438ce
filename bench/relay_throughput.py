"""Relay throughput vs ``mariadb-binlog --read-from-remote-server --raw``.

    python -m bench.relay_throughput [--shape oltp|bulk] [--dir DIR] [--port P] [--mb N]
                                     [--rounds 3] [--keep]

Starts a one-node sandbox (or reuses DIR), fills its binlog with at least
``--mb`` MB of one shape of binlog, then in the same run times the C tool and
``dbops-console relay --stop-at-end`` reading all of it from the server
(alternating rounds, best time of each), and prints both MB/s, the ratio
(ours / C) and CPU seconds per GB of each.  The FLUSH before timing closes
every file, so both copies must be byte-identical to each other.

Shapes:

- ``oltp`` (default 250 MB): sysbench writes (prepare + oltp_write_only),
  small events.
- ``bulk`` (default 1100 MB): bulk ``INSERT ... SELECT`` of ~4 KB rows (row
  events of up to ``binlog_row_event_max_size``) and one row of 17 MiB (an
  event over 16 MiB, sent as several packets).  Needs no sysbench.
Passwords go to both tools through a 0600 file, never argv.

Both tools are measured the same way: one untimed warm-up run of each first
(the server's binlog files and both programs are in the page cache), then
in every round the order alternates (C first, then ours first), and before
each timed run ``sync`` writes back whatever the previous run left dirty, so
neither tool pays for the other's writeback.  Both write into the same
directory on the same disk.  The C tool leaves its output in the page cache;
our relay fsyncs its files (and relay.meta) before it reports a position, so
the C tool's time plus an fsync of its output is printed too, as context.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

from bench import compile_console
from console.sandbox import Sandbox


def binlog_bytes(conn) -> tuple[int, list[tuple[str, int]]]:
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        logs = [(r[0], int(r[1])) for r in cur.fetchall()]
    return sum(s for _, s in logs), logs


def fill(sb: Sandbox, port: int, pw_file: Path, target_mb: int) -> None:
    pw = pw_file.read_text().strip()
    conn = pymysql.connect(host="127.0.0.1", port=port, user="dbops", password=pw, autocommit=True)
    total, _ = binlog_bytes(conn)
    if total >= target_mb * 1e6:
        return
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS sbtest")
    env = dict(os.environ)
    # sysbench has no password file option: connect as root over the sandbox's
    # unix socket (socket authentication, no password at all)
    sock = sb.load().nodes[0].socket
    common = ["--db-driver=mysql", f"--mysql-socket={sock}", "--mysql-user=root",
              "--mysql-db=sbtest", "--tables=4", "--table-size=50000"]
    subprocess.run(["sysbench", "oltp_write_only", *common, "prepare"], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    while binlog_bytes(conn)[0] < target_mb * 1e6:
        subprocess.run(["sysbench", "oltp_write_only", *common, "--threads=4", "--time=20",
                        "run"], check=True, stdout=subprocess.DEVNULL, env=env)
        print(f"  binlog now {binlog_bytes(conn)[0] / 1e6:.0f} MB", file=sys.stderr)
    with conn.cursor() as cur:
        cur.execute("FLUSH BINARY LOGS")
    conn.close()


def fill_bulk(port: int, pw_file: Path, target_mb: int) -> None:
    pw = pw_file.read_text().strip()
    conn = pymysql.connect(host="127.0.0.1", port=port, user="dbops", password=pw, autocommit=True,
                           max_allowed_packet=64 << 20)
    if binlog_bytes(conn)[0] >= target_mb * 1e6:
        return
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS bulk")
        cur.execute("CREATE TABLE IF NOT EXISTS bulk.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "k INT NOT NULL, pad VARCHAR(4096) NOT NULL)")
        cur.execute("CREATE TABLE IF NOT EXISTS bulk.big (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute("REPLACE INTO bulk.big VALUES (1, REPEAT('x', 17 * 1024 * 1024))")
        while binlog_bytes(conn)[0] < target_mb * 1e6:
            cur.execute("INSERT INTO bulk.t (k, pad) SELECT seq, REPEAT(MD5(seq), 120) "
                        "FROM bulk.seq_1_to_20000")
            print(f"  binlog now {binlog_bytes(conn)[0] / 1e6:.0f} MB", file=sys.stderr)
        cur.execute("FLUSH BINARY LOGS")
    conn.close()


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_c_tool(port: int, pw: str, first: str, out: Path) -> tuple[float, float]:
    """(seconds until the C tool exits, seconds until its output is also fsynced)."""
    out.mkdir(parents=True, exist_ok=True)
    cnf = out.parent / "client.cnf"
    fd = os.open(cnf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[client]\npassword={pw}\n")
    os.sync()  # same start for both tools: nothing left dirty by the previous run
    t = time.perf_counter()
    subprocess.run(["mariadb-binlog", f"--defaults-extra-file={cnf}", "--read-from-remote-server",
                    "--raw", "--host=127.0.0.1", f"--port={port}", "--user=dbops",
                    f"--result-file={out}/", "--to-last-log", first], check=True)
    done = time.perf_counter() - t
    for p in out.iterdir():
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return done, time.perf_counter() - t


def time_ours(port: int, pw_file: Path, out: Path) -> float:
    os.sync()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "console", "relay", "--host", "127.0.0.1", "--port",
                    str(port), "--user", "dbops", "--password-file", str(pw_file), "--relay-dir",
                    str(out), "--stop-at-end", "--quiet", "--server-id", "7771"], check=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/dbops-bench-relay")
    ap.add_argument("--port", type=int, default=25550)
    ap.add_argument("--shape", choices=("oltp", "bulk"), default="oltp")
    ap.add_argument("--mb", type=int, help="binlog size to fill (default oltp 250, bulk 1100)")
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best is kept)")
    args = ap.parse_args()
    compile_console()
    sb = Sandbox(args.dir, replicas=0, base_port=args.port)
    sb.up(progress=lambda m: print(m, file=sys.stderr))
    try:
        pw_file = sb.secret_path("dbops")
        if args.shape == "bulk":
            fill_bulk(args.port, pw_file, args.mb or 1100)
        else:
            fill(sb, args.port, pw_file, args.mb or 250)
        pw = pw_file.read_text().strip()
        conn = pymysql.connect(host="127.0.0.1", port=args.port, user="dbops", password=pw)
        total, logs = binlog_bytes(conn)
        conn.close()
        c_times, c_sync, o_times, c_cpu, o_cpu = [], [], [], [], []
        same = True
        # warm-up (untimed): binlog files, both programs and their libraries in the page cache
        warm = Path(tempfile.mkdtemp(prefix="relaybench-warm-", dir=args.dir))
        try:
            time_c_tool(args.port, pw, logs[0][0], warm / "c")
            time_ours(args.port, pw_file, warm / "ours")
        finally:
            shutil.rmtree(warm, ignore_errors=True)
        for rnd in range(args.rounds):  # alternating order; best and median of each
            work = Path(tempfile.mkdtemp(prefix="relaybench-", dir=args.dir))
            try:
                for tool in (("c", "ours") if rnd % 2 == 0 else ("ours", "c")):
                    cpu0 = child_cpu()
                    if tool == "c":
                        raw_s, sync_s = time_c_tool(args.port, pw, logs[0][0], work / "c")
                        c_times.append(raw_s)
                        c_sync.append(sync_s)
                        c_cpu.append(child_cpu() - cpu0)
                    else:
                        o_times.append(time_ours(args.port, pw_file, work / "ours"))
                        o_cpu.append(child_cpu() - cpu0)
                c_bytes = sum(p.stat().st_size for p in (work / "c").iterdir())
                sub = work / "ours" / (work / "ours" / "server-uuid.index").read_text().split()[0]
                o_bytes = sum(p.stat().st_size for p in sub.iterdir())
                same = same and c_bytes == o_bytes and all(
                    (sub / n).read_bytes() == (work / "c" / n).read_bytes() for n, _ in logs)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        c_s, cs_s, ours_s = min(c_times), min(c_sync), min(o_times)
        c_med, cs_med, o_med = (statistics.median(x) for x in (c_times, c_sync, o_times))
        c_mbs, o_mbs = c_bytes / c_s / 1e6, o_bytes / ours_s / 1e6
        mb = c_bytes / 1e6

        def all_of(ts):
            return ", ".join(f"{t:.2f}" for t in ts)

        print(f"shape {args.shape}: binlog {total / 1e6:.1f} MB in {len(logs)} files, {args.rounds} alternating rounds "
              f"after one warm-up run of each, sync before every timed run")
        print(f"mariadb-binlog --raw : best {c_s:5.2f} s {c_mbs:6.1f} MB/s   median {c_med:5.2f} s "
              f"{mb / c_med:6.1f} MB/s   (all: {all_of(c_times)})")
        print(f"dbops-console relay  : best {ours_s:5.2f} s {o_mbs:6.1f} MB/s   median {o_med:5.2f} s "
              f"{mb / o_med:6.1f} MB/s   (all: {all_of(o_times)})")
        print(f"ratio (ours / C)     : best {o_mbs / c_mbs:.2f}   median {c_med / o_med:.2f}   "
              f"files identical: {same}")
        print(f"context: C + fsync of its output: best {cs_s:.2f} s, median {cs_med:.2f} s "
              f"(ratio ours / that: best {cs_s / ours_s:.2f}, median {cs_med / o_med:.2f})")
        gb = c_bytes / 1e9
        print(f"CPU seconds (user+sys, least of the rounds): C {min(c_cpu):.2f}, ours {min(o_cpu):.2f}"
              f"   per GB: C {min(c_cpu) / gb:.2f}, ours {min(o_cpu) / gb:.2f}"
              f"   load average now {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            sb.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
