"""Benchmark: our online schema change vs pt-online-schema-change vs the
server's own blocking ``ALTER TABLE ... ALGORITHM=COPY``, in one run.

    python -m bench.migration_vs_ptosc.run [--rows 500000] [--rate 100]
        [--dir /tmp/bench-mig] [--port 26550] [--chunk-size 10000] [--copy-threads 1,2,4]
        [--shapes autoinc,plain] [--rounds 3] [--no-checksum-run]

A private sandbox (primary only, ROW binlog) is started, ``sysbench
oltp_common`` prepares ``sbtest.sbtest1``; each tool adds a column (a full
table rebuild), first idle, then under ``sysbench oltp_write_only`` at a
fixed rate.  Tools: the native ALTER; pt-osc with its defaults (chunks
sized to ``--chunk-time 0.5`` s: 60-93k rows here); pt-osc with our chunk
size (``--chunk-size N --chunk-time 0``); ours with each ``--copy-threads``
count; ours with ``--no-verify-checksum`` (one thread; ``--no-checksum-run``
drops it); and, idle only, the floor of the chunked-copy
algorithm itself: the same ``INSERT IGNORE ... SELECT ... LOCK IN SHARE
MODE`` chunks issued bare from one connection, the secondary index built
after, a RENAME (no change capture: not online-safe, a reference only).
Data shapes (``--shapes``), each a whole run of the phases on the same
table: ``autoinc`` is sysbench's table (``id`` AUTO_INCREMENT: under
MariaDB's ``innodb_autoinc_lock_mode=1`` every ``INSERT ... SELECT`` holds
the ghost's AUTO-INC lock, so parallel chunks serialize); ``plain`` is the
same table with the AUTO_INCREMENT attribute dropped (chunks run in
parallel).  Printed per shape: wall times, ratios, copy rows/s per thread
count, what ``--copy-threads 0`` (the default) chooses there, and sysbench p95
latency (per-second p95, median and max over the run of each tool).  Idle
runs verify content by a checksum of the original columns before and after.
Passwords go to tools through 0600 files or the environment, never argv.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from bench import compile_console
from console.engine.migration import copythreads
from console.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]


def secret_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Bench:
    FLOOR = "floor: bare chunked copy"     # idle only: see ``floor``
    def __init__(self, args):
        self.args = args
        self.dir = Path(args.dir)
        self.sb = Sandbox(self.dir, replicas=0, base_port=args.port)
        self.port = args.port
        self.results: dict[str, dict] = {}
        self.n_runs = 0
        self.threads = args.threads

    def up(self) -> None:
        self.sb.up()
        self.pw = self.sb.secret_path("dbops").read_text().strip()
        self.sysbench_cfg = secret_file(self.dir / "sysbench.cfg",
                                        f"mysql-host=127.0.0.1\nmysql-port={self.port}\nmysql-user=dbops\n"
                                        f"mysql-password={self.pw}\nmysql-db=sbtest\ndb-driver=mysql\n")
        self.client_cnf = secret_file(self.dir / "client.cnf",
                                      f"[client]\nuser=dbops\npassword={self.pw}\nhost=127.0.0.1\n"
                                      f"port={self.port}\n")

    def conn(self):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="dbops", password=self.pw,
                               autocommit=True, database="sbtest", read_timeout=3600)

    def prepare(self) -> None:
        c = pymysql.connect(host="127.0.0.1", port=self.port, user="dbops", password=self.pw,
                            autocommit=True)
        with c.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS sbtest")
            cur.execute("CREATE DATABASE sbtest")
        c.close()
        t = time.monotonic()
        subprocess.run(["sysbench", f"--config-file={self.sysbench_cfg}", "oltp_write_only",
                        "--tables=1", f"--table-size={self.args.rows}", "prepare"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"prepared {self.args.rows} rows in {time.monotonic() - t:.1f}s", flush=True)

    def checksum(self) -> tuple:
        c = self.conn()
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', id, k, c, pad))) FROM sbtest1")
            r = cur.fetchone()
        c.close()
        return tuple(r)

    def settle(self, timeout: float = 30.0) -> None:
        """Put the table back in sysbench's shape and let InnoDB flush the
        previous run's dirty pages, so no tool pays for the one before it (the
        sandbox's buffer pool is only 128M).

        Each run adds a column; left in place, every later run would copy and
        (ours) checksum a wider table than the earlier ones.  The previous
        run's column is dropped with ``ALGORITHM=INSTANT`` (metadata only, not
        timed); the next run's rebuild, whichever tool, writes rows without
        it."""
        c = self.conn()
        deadline = time.monotonic() + timeout
        with c.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                        "'sbtest' AND table_name = 'sbtest1' AND column_name LIKE 'bench\\_%'")
            extra = [r[0] for r in cur.fetchall()]
            if extra:
                cur.execute("ALTER TABLE sbtest1 " + ", ".join(f"DROP COLUMN `{x}`" for x in extra)
                            + ", ALGORITHM=INSTANT")
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            while time.monotonic() < deadline:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                if int(cur.fetchone()[1]) < 50:
                    break
                time.sleep(0.5)
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 90")
        c.close()

    # ---- tools ---------------------------------------------------------------

    def native(self, col: str) -> None:
        c = self.conn()
        with c.cursor() as cur:
            cur.execute(f"ALTER TABLE sbtest1 ADD COLUMN {col} INT, ALGORITHM=COPY")
        c.close()

    def ptosc(self, col: str, extra: tuple[str, ...] = ()) -> None:
        r = subprocess.run(
            ["pt-online-schema-change", f"--alter=ADD COLUMN {col} INT", "--execute",
             "--recursion-method=none", "--no-check-alter", "--set-vars=lock_wait_timeout=10",
             *extra, f"D=sbtest,t=sbtest1,F={self.client_cnf}"],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pt-online-schema-change failed: {r.stderr.strip()[-500:]}")

    def ptosc_chunked(self, col: str) -> None:
        """pt-osc with our chunk size (its defaults size chunks to 0.5 s)."""
        self.ptosc(col, ("--chunk-size", str(self.args.chunk_size), "--chunk-time", "0"))

    def floor(self, col: str) -> None:
        """The chunked copy alone, the lower bound of any tool built on it:
        ``--chunk-size`` id ranges (sysbench's ids are dense) copied with the
        statement ours and pt-osc use, autocommit, into a table without the
        secondary index, which is built after; then a RENAME.  Nothing
        captures concurrent writes, so it runs idle only."""
        c = self.conn()
        with c.cursor() as cur:
            cur.execute("SHOW COLUMNS FROM sbtest1")
            cols = ", ".join(f"`{r[0]}`" for r in cur.fetchall())
            cur.execute("DROP TABLE IF EXISTS _sbtest1_floor")
            cur.execute("CREATE TABLE _sbtest1_floor LIKE sbtest1")
            cur.execute(f"ALTER TABLE _sbtest1_floor ADD COLUMN {col} INT, DROP INDEX k_1")
            cur.execute("SELECT MIN(id), MAX(id) FROM sbtest1")
            lo, hi = cur.fetchone()
            n = self.args.chunk_size
            for a in range(lo, hi + 1, n):
                cur.execute(f"INSERT IGNORE INTO _sbtest1_floor ({cols}) SELECT {cols} FROM sbtest1 "
                            f"FORCE INDEX(PRIMARY) WHERE id BETWEEN {a} AND {a + n - 1} LOCK IN SHARE MODE")
            cur.execute("ALTER TABLE _sbtest1_floor ADD INDEX k_1 (k), ALGORITHM=INPLACE, LOCK=NONE")
            cur.execute("RENAME TABLE sbtest1 TO _sbtest1_floor_old, _sbtest1_floor TO sbtest1")
            cur.execute("DROP TABLE _sbtest1_floor_old")
        c.close()

    def ours_nocheck(self, col: str) -> None:
        self.ours(col, checksum=False)

    def ours(self, col: str, checksum: bool = True, threads: int = 1) -> None:
        env = dict(os.environ, BENCH_PW=self.pw)
        r = subprocess.run(
            [sys.executable, "-m", "console", "migrate", "--host", "127.0.0.1", "--port", str(self.port),
             "--user", "dbops", "--password-env", "BENCH_PW", "--database", "sbtest",
             "--table", "sbtest1", "--alter", f"ADD COLUMN {col} INT", "--execute",
             "--ok-to-drop-table", "--initially-drop-ghost-table", "--initially-drop-old-table",
             "--chunk-size", str(self.args.chunk_size), "--copy-threads", str(threads),
             "--state-dir", str(self.dir / "state"),
             "--status-interval", "1"] + ([] if checksum else ["--no-verify-checksum"]),
            capture_output=True, text=True, env=env, cwd=ROOT)
        (self.dir / f"ours-{col}-t{threads}{'' if checksum else '-nocheck'}.log").write_text(r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"dbops-console migrate failed: {r.stderr.strip()[-800:]}")

    # ---- load ------------------------------------------------------------------

    def run_with_load(self, fn, col: str) -> tuple[float, list[float]]:
        proc = subprocess.Popen(
            ["sysbench", f"--config-file={self.sysbench_cfg}", "oltp_write_only", "--tables=1",
             f"--table-size={self.args.rows}", "--threads=4", f"--rate={self.args.rate}",
             "--time=0", "--report-interval=1", "--percentile=95", "--mysql-ignore-errors=all", "run"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        p95: list[tuple[float, float]] = []

        def reader():
            for line in proc.stdout:
                m = re.search(r"lat \(ms,95%\): ([\d.]+)", line)
                if m:
                    p95.append((time.monotonic(), float(m.group(1))))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            time.sleep(3)
            t0 = time.monotonic()
            fn(col)
            t1 = time.monotonic()
            time.sleep(1.2)
        finally:        # a failing tool must not leave the load running
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            th.join(5)
        during = [v for ts, v in p95 if t0 <= ts <= t1 + 1.0] or [v for _, v in p95[-1:]]
        return t1 - t0, during

    def baseline_load(self) -> list[float]:
        _, lat = self.run_with_load(lambda col: time.sleep(5), "none")
        return lat

    # ---- main ---------------------------------------------------------------------

    def ours_tools(self) -> list[tuple[str, object]]:
        return [(self.ours_name(n), lambda col, n=n: self.ours(col, threads=n)) for n in self.threads]

    @staticmethod
    def ours_name(n: int) -> str:
        return f"dbops-console migrate -t{n}"

    def shape(self, name: str) -> None:
        """Put the table in the shape ``name`` (not timed)."""
        c = self.conn()
        with c.cursor() as cur:
            if name == "plain":
                cur.execute("ALTER TABLE sbtest1 MODIFY id INT NOT NULL")
            elif name == "autoinc":
                cur.execute("ALTER TABLE sbtest1 MODIFY id INT NOT NULL AUTO_INCREMENT")
            cur.execute("SELECT @@thread_pool_size, @@innodb_autoinc_lock_mode")
            cores, mode = cur.fetchone()
        c.close()
        n, why = copythreads.choose(0, cores, name == "autoinc", mode)
        self.auto[name] = f"{n} ({why})"

    def main(self) -> None:
        self.up()
        self.auto: dict[str, str] = {}
        try:
            self.prepare()
            for shape in self.args.shapes.split(","):
                self.shape(shape)
                self.run_shape(shape)
        finally:
            self.sb.down()

    def run_shape(self, shape: str) -> None:
        tools = [("native ALTER ALGORITHM=COPY", self.native), ("pt-online-schema-change", self.ptosc),
                 ("pt-osc --chunk-size N", self.ptosc_chunked)] + self.ours_tools()
        if not self.args.no_checksum_run:
            tools.append(("ours --no-verify-checksum", self.ours_nocheck))
        floor = (self.FLOOR, self.floor)
        self.results = {}
        print(f"\n######## shape {shape}: --copy-threads 0 chooses {self.auto[shape]}", flush=True)
        print(f"\n== idle ({self.args.rounds} round(s), tool order rotated each round) ==", flush=True)
        for name, fn, col in self._runs(tools + [floor]):
            before = self.checksum()
            t = time.monotonic()
            fn(col)
            wall = time.monotonic() - t
            ok = before == self.checksum()
            self.results.setdefault(("idle", name), []).append({"wall": wall, "ok": ok})
            print(f"{name:30s} {wall:7.2f}s  content {'equal' if ok else 'DIFFERENT'}", flush=True)
        print(f"\n== under sysbench oltp_write_only --rate={self.args.rate} --threads=4 ==", flush=True)
        base = self.baseline_load()
        print(f"{'no migration (baseline)':30s}          p95 median {statistics.median(base):7.2f}ms "
              f"max {max(base):7.2f}ms", flush=True)
        for name, fn, col in self._runs(tools):
            wall, lat = self.run_with_load(fn, col)
            self.results.setdefault(("load", name), []).append(
                {"wall": wall, "p95_med": statistics.median(lat), "p95_max": max(lat)})
            print(f"{name:30s} {wall:7.2f}s  p95 median {statistics.median(lat):7.2f}ms "
                  f"max {max(lat):7.2f}ms", flush=True)
        c = self.conn()
        with c.cursor() as cur:
            cur.execute("SHOW TABLES")
            left = [r[0] for r in cur.fetchall()]
        c.close()
        self.report(shape, left)

    def _runs(self, tools):
        """One phase's runs, ``--rounds`` times every tool, the order rotated
        each round: (name, fn, the new column's name), the table settled
        before each.  Column names stay unique over phases."""
        for rnd in range(self.args.rounds):
            k = rnd % len(tools)
            for name, fn in tools[k:] + tools[:k]:
                self.n_runs += 1
                self.settle()
                yield name, fn, f"bench_c{self.n_runs}"

    def report(self, shape: str, left) -> None:
        r = self.results

        def med(phase, name, key="wall"):
            return statistics.median(x[key] for x in r[(phase, name)])

        def best(phase, name):
            return min(x["wall"] for x in r[(phase, name)])

        print(f"\n== shape {shape}: wall time per tool: median (best; all rounds) ==")
        for (phase, name), xs in r.items():
            ok = "" if phase == "load" else ("  content equal" if all(x["ok"] for x in xs)
                                             else "  content DIFFERENT")
            print(f"{phase:4s} {name:30s} {med(phase, name):6.2f}s ({best(phase, name):.2f}; "
                  + " ".join(f"{x['wall']:.2f}" for x in xs) + f"){ok}")
        print(f"\n== shape {shape}: ratios (wall time of ours / theirs): median (best) ==")
        peers = ("pt-online-schema-change", "pt-osc --chunk-size N", "native ALTER ALGORITHM=COPY")
        floor = self.FLOOR
        mine_all = tuple(self.ours_name(n) for n in self.threads) + (
            () if self.args.no_checksum_run else ("ours --no-verify-checksum",))
        for phase in ("idle", "load"):
            for mine in mine_all + ((floor,) if phase == "idle" else ()):
                parts = [f"vs {peer} {med(phase, mine) / med(phase, peer):.2f}x "
                         f"({best(phase, mine) / best(phase, peer):.2f}x)"
                         for peer in peers + ((floor,) if phase == "idle" and mine != floor else ())]
                print(f"{phase}: {mine}: " + ", ".join(parts))
        print(f"shape {shape}: rows/s of the whole migration (rows / median wall) per --copy-threads:")
        for phase in ("idle", "load"):
            print(f"  {phase}: " + ", ".join(
                f"{n} thread(s) {self.args.rows / med(phase, self.ours_name(n)):,.0f}" for n in self.threads)
                + f"; pt-osc {self.args.rows / med(phase, 'pt-online-schema-change'):,.0f}")
        print(f"shape {shape}: --copy-threads 0 (the default) chooses {self.auto[shape]}")
        print("load p95 (sysbench, per second) median / max over the rounds:")
        for name in ("pt-online-schema-change", "pt-osc --chunk-size N") + mine_all:
            xs = r[("load", name)]
            print(f"  {name:30s} {statistics.median(x['p95_med'] for x in xs):8.2f}ms "
                  f"{max(x['p95_max'] for x in xs):8.2f}ms")
        print(f"tables left in sbtest: {', '.join(left)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=500000)
    p.add_argument("--rate", type=int, default=100, help="sysbench transactions/s under load")
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "bench-migration"))
    p.add_argument("--port", type=int, default=26550)
    p.add_argument("--chunk-size", type=int, default=10000)
    p.add_argument("--copy-threads", default="1,2,4", help="comma-separated thread counts, one run of ours each")
    p.add_argument("--shapes", default="autoinc,plain", help="comma-separated: autoinc, plain (see the doc)")
    p.add_argument("--no-checksum-run", action="store_true", help="skip ours with --no-verify-checksum")
    p.add_argument("--rounds", type=int, default=3,
                   help="runs of every tool per phase (order rotated each round); medians are compared")
    args = p.parse_args(argv)
    try:
        threads = [int(x) for x in args.copy_threads.split(",")]
        if not threads or min(threads) < 1:
            raise ValueError
    except ValueError:
        p.error(f"--copy-threads: comma-separated counts of at least 1, got {args.copy_threads!r}")
    bad = set(args.shapes.split(",")) - {"autoinc", "plain"}
    if bad:
        p.error(f"--shapes: unknown shape(s) {', '.join(sorted(bad))}: use autoinc and/or plain")
    args.threads = threads
    compile_console()
    Bench(args).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
