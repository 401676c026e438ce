"""A writer in a process of its own (no GIL shared with the engine under
test): ``Load`` with one thread that owns the keys ``k % procs == me``.
Runs until SIGTERM, then writes its part of the model (the acknowledged
content of its keys) as JSON to ``out``.

    python -m tests.support.load_process PORT DATABASE TABLE ROWS ME PROCS OUT PAUSE

The password comes from $DBOPS_TEST_PW.  The table is the one
``fill_table`` made: ``id BIGINT PRIMARY KEY, v INT, s VARCHAR(30)`` with
rows 1..ROWS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pymysql

from tests.support.migration_load import Load


def initial_rows(n: int) -> dict[tuple, dict]:
    return {(i,): {"id": i, "v": i % 97, "s": f"row {i}"} for i in range(1, n + 1)}


def fill_table(conn, table: str, n: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL, "
                    f"s VARCHAR(30) NULL) ENGINE=InnoDB")
        rows = list(initial_rows(n).values())
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", [(r["id"], r["v"], r["s"]) for r in rows])


def start(port: int, password: str, db: str, table: str, rows: int, procs: int,
          out_dir: Path, pause: float = 0.0) -> list[subprocess.Popen]:
    """``procs`` writer processes, each sleeping ``pause`` seconds between statements."""
    return [subprocess.Popen([sys.executable, "-m", "tests.support.load_process", str(port), db, table,
                              str(rows), str(me), str(procs), str(out_dir / f"model{me}.json"),
                              str(pause)],
                             env=dict(os.environ, DBOPS_TEST_PW=password))
            for me in range(procs)]


def stop(procs: list[subprocess.Popen], out_dir: Path) -> tuple[list[tuple], list[str]]:
    """(expected rows sorted as ``table_rows`` sorts them, writer errors)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(60)
    rows, errors = [], []
    for me in range(len(procs)):
        part = json.loads((out_dir / f"model{me}.json").read_text())
        rows += [tuple(r) for r in part["rows"]]
        errors += part["errors"]
    return sorted(rows, key=repr), errors


def main(argv: list[str]) -> None:
    port, db, table, n, me, procs, out, pause = argv
    me_i, procs_i = int(me), int(procs)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    def connect():
        return pymysql.connect(host="127.0.0.1", port=int(port), user="dbops", password=os.environ["DBOPS_TEST_PW"],
                               database=db, autocommit=True, connect_timeout=5, read_timeout=120)

    load = Load(connect, table, ["id"], initial_rows(int(n)), threads=1,
                owner=lambda k: 0 if k[0] % procs_i == me_i else 1,
                new_key=lambda t, i: (10_000_000 + procs_i * i + me_i,),
                make_row=lambda r: {"v": r.randint(0, 10**6), "s": r.choice(["x", None])},
                rate_sleep=float(pause))
    load.model = {k: v for k, v in load.model.items() if k[0] % procs_i == me_i}
    load.start()
    done.wait()
    load.stop()
    Path(out).write_text(json.dumps({"rows": load.expected(["id", "v", "s"]), "errors": load.errors,
                                     "ops": load.ops}))


if __name__ == "__main__":
    main(sys.argv[1:])
