"""Stress of the migration's cut-over: many cut-overs in a row under write
load on a busy machine, each checked for lost and extra rows.

    python -m bench.cutover_stress [--rounds 50] [--writers 4] [--rows 2000]
        [--dir /tmp/bench-cutover] [--port 26700] [--burners 2] [--hold-ghost both|yes|no]

A private sandbox (primary and one replica) is started.  Each round creates
a fresh table, starts ``--writers`` threads that insert, update, change keys
and delete without pause (each owns a part of the key space and keeps a
model of every acknowledged write), runs a migration up to its postponed
cut-over, optionally opens a transaction that holds the ghost table (so
the RENAME has to wait for it with the writers queued), cuts over, lets the
writers go on against the new table for a moment, stops them and compares
the table with the model: a row in the model but not in the table is lost,
one in the table but not in the model is extra.  ``--burners`` processes
spin on the CPU meanwhile (a busy machine: the window that lost writes was
a descheduled RENAME thread).

The last line is the verdict: ``cut-overs: N, lost rows: L in R round(s),
extra rows: E, failed: F``; the exit code is 1 when anything was lost,
extra or failed.  Everything (sandbox, burners, data) is removed at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pymysql

DB = "stress"
TABLE = "ct"


def _burn() -> None:            # pragma: no cover - a CPU burner process
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not the parent's cleanup handler
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    while True:
        pass


def _fill(conn, n: int) -> dict:
    from console.engine.migration.inspect import table_names

    rows = {}
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}, " + ", ".join(table_names(TABLE)))
        cur.execute(f"CREATE TABLE {TABLE} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                    f"v INT NOT NULL, s VARCHAR(30) NULL) ENGINE=InnoDB")
        vals = [(i, i % 97, f"row {i}") for i in range(1, n + 1)]
        cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", vals)
        rows.update({(i,): {"id": i, "v": v, "s": s} for i, v, s in vals})
    return rows


def one_round(sb, state: Path, n: int, writers: int, hold_ghost: bool) -> tuple[int, int, str]:
    """(lost, extra, error) of one cut-over."""
    from console.engine.migration.inspect import table_names
    from tests.integration.migration_helpers import connect, finish, start_task, wait_phase
    from tests.support.migration_load import Load, table_rows

    c = connect(sb, DB)
    rows = _fill(c, n)
    load = Load(lambda: connect(sb, DB), TABLE, ["id"], rows, threads=writers,
                owner=lambda k: k[0] % writers,
                new_key=lambda t, i: (10_000_000 + writers * i + t,),
                make_row=lambda r: {"v": r.randint(0, 10**6), "s": r.choice(["x", None])},
                rate_sleep=0).start()
    blocker = connect(sb, DB)
    error = ""
    task = None
    try:
        engine, task = start_task(sb, state, database=DB, table=TABLE,
                                  alter="ADD COLUMN z INT NOT NULL DEFAULT 1",
                                  postpone_cut_over=True, cut_over_lock_timeout_seconds=6,
                                  # the replica falls behind writers without pause on a
                                  # busy machine: lag throttling would hold the copy (75 s
                                  # of lag seen); what is measured here is the cut-over
                                  max_lag_millis=3_600_000)
        wait_phase(task, ("postponed",), 300)
        if hold_ghost:
            with blocker.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(f"SELECT * FROM {table_names(TABLE)[0]} LIMIT 1")
        engine.command(task.task_id, "cut-over")
        if hold_ghost:
            wait_phase(task, ("cutting-over", "cleaning-up", "complete"), 60)
            time.sleep(1.0)         # the RENAME waits on the ghost; writers queue
            blocker.rollback()
        finish(task, 300)
        st = task.status()
        if st.state != "done":
            error = f"migration {st.state}: {st.last_error}"
    except AssertionError as e:     # a phase not reached in time: say where it stood
        error = f"{e}; " + (" | ".join(task.status_text().splitlines()[1:]) if task else "")
        time.sleep(0.3)             # writes go on into the new table
    except Exception as e:  # noqa: BLE001 - reported per round
        error = f"{type(e).__name__}: {e}"
    finally:
        load.stop()
        blocker.close()
        if task is not None and not task.join(0):
            task.stop(wait=60)          # a failed round's migration must not run on into the next
            if not task.join(60):
                raise RuntimeError(f"the migration of a failed round did not stop ({task.phase})")
    if load.errors:
        error = error or f"writer error: {load.errors[0]}"
    got = set(table_rows(c, TABLE, ["id", "v", "s"]))
    want = set(load.expected(["id", "v", "s"]))
    c.close()
    return len(want - got), len(got - want), error


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--burners", type=int, default=2, help="CPU-burning processes (0: none)")
    ap.add_argument("--hold-ghost", choices=("both", "yes", "no"), default="both",
                    help="a transaction holds the ghost during the cut-over: in every round, "
                         "none, or every other round (both)")
    ap.add_argument("--dir", default="/tmp/bench-cutover")
    ap.add_argument("--port", type=int, default=26700, help="first port to try for the sandbox")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.writers < 1 or a.rows < 1 or a.burners < 0:
        print("cutover_stress: --rounds, --writers and --rows must be at least 1, --burners at "
              "least 0", file=sys.stderr)
        return 2
    base = Path(a.dir)
    if base.exists() and any(base.iterdir()):
        print(f"cutover_stress: {base} is not empty: pass an empty or new --dir", file=sys.stderr)
        return 2
    os.environ["DBOPS_TEST_BASE_PORT"] = str(a.port)
    from tests.support.sandboxes import SandboxHandle

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)      # clean up the sandbox and burners
    signal.signal(signal.SIGHUP, interrupted)
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(a.burners)]
    for p in burners:
        p.start()
    sb = None
    totals = {"lost": 0, "extra": 0, "failed": 0, "lost_rounds": 0}
    try:
        sb = SandboxHandle(base / "sandbox", replicas=1)
        c = pymysql.connect(host="127.0.0.1", port=sb.primary_port, user="dbops",
                            password=sb.ops_password, autocommit=True)
        with c.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        c.close()
        print(f"cut-over stress: {a.rounds} rounds, {a.writers} writers without pause, "
              f"{a.rows} rows, {a.burners} CPU burner(s), ghost held: {a.hold_ghost}", flush=True)
        t0 = time.monotonic()
        for i in range(1, a.rounds + 1):
            hold = a.hold_ghost == "yes" or (a.hold_ghost == "both" and i % 2 == 0)
            r0 = time.monotonic()
            lost, extra, err = one_round(sb, base / f"state{i}", a.rows, a.writers, hold)
            totals["lost"] += lost
            totals["extra"] += extra
            totals["lost_rounds"] += 1 if lost else 0
            totals["failed"] += 1 if err else 0
            shutil.rmtree(base / f"state{i}", ignore_errors=True)
            print(f"round {i:3d} ghost held: {'yes' if hold else 'no '}  lost {lost}  extra {extra}"
                  f"  {time.monotonic() - r0:5.1f}s{'  ERROR ' + err if err else ''}", flush=True)
        print(f"elapsed {time.monotonic() - t0:.0f}s; load average {os.getloadavg()[0]:.1f}")
    finally:
        for p in burners:
            p.terminate()
        if sb is not None:
            sb.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"cut-overs: {a.rounds}, lost rows: {totals['lost']} in {totals['lost_rounds']} "
          f"round(s), extra rows: {totals['extra']}, failed: {totals['failed']}")
    return 1 if totals["lost"] or totals["extra"] or totals["failed"] else 0


if __name__ == "__main__":
    threading.current_thread().name = "cutover-stress"
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:      # SIGINT/SIGTERM/SIGHUP: cleaned up in main's finally
        print(f"cutover_stress: interrupted ({e or 'signal'}); sandbox and data removed", file=sys.stderr)
        sys.exit(130)
