"""ALTERs that change which columns and keys the old and new table share,
against the real sandbox with writes during the copy: a column dropped and
added again under its name is a new column; a new primary key that
contains the old one still migrates, chunked by the old key."""

from __future__ import annotations

import random

import pytest

from tests.integration.migration_helpers import (
    DB,
    columns,
    connect,
    finish,
    start_task,
    wait_phase,
)
from tests.support.migration_load import Load, table_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sb(sandbox):
    c = connect(sandbox, None)
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    c.close()
    return sandbox


def _run_with_writes(sb, tmp_path, table: str, rows: dict, make_row, alter: str, **kw):
    """Migrate under two writers that run through the copy and the
    postponement; they stop before the cut-over.  Returns (task, load)."""
    load = Load(lambda: connect(sb), table, ["id"], rows, threads=2, owner=lambda k: k[0] % 2,
                new_key=lambda t, n: (100_000 + 2 * n + t,), make_row=make_row).start()
    try:
        _, task = start_task(sb, tmp_path, table=table, chunk_size=100, postpone_cut_over=True,
                             alter=alter, **kw)
        wait_phase(task, ("postponed",))
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert task.applier.events_applied > 0
    return task, load


def _c1_row(rng: random.Random) -> dict:
    return {"c1": None if rng.random() < 0.5 else rng.randint(0, 9), "v": rng.randint(0, 10**6)}


def test_a_column_dropped_and_added_again_is_a_new_column(sb, tmp_path):
    """DROP COLUMN c1, ADD COLUMN c1 INT NOT NULL DEFAULT 47 was taken as a
    shared column: the apply wrote the old NULLs into the new NOT NULL
    column (1048, exit 1).  It is a new column: not copied, not compared,
    47 in every row.  CHANGE COLUMN v v ... (same name) stays shared."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS rd, _rd_del")
        cur.execute("CREATE TABLE rd (id INT NOT NULL PRIMARY KEY, c1 INT NULL, v INT NOT NULL) ENGINE=InnoDB")
        rng = random.Random(4)
        rows = {}
        for i in range(1, 1201):
            r = _c1_row(rng)
            rows[(i,)] = {"id": i, **r}
            cur.execute("INSERT INTO rd VALUES (%s, %s, %s)", (i, r["c1"], r["v"]))
    task, load = _run_with_writes(sb, tmp_path, "rd", rows, _c1_row,
                                  "DROP COLUMN c1, ADD COLUMN c1 INT NOT NULL DEFAULT 47, "
                                  "CHANGE COLUMN v v BIGINT NOT NULL")
    assert ("c1", "c1") not in task.ins.shared and ("v", "v") in task.ins.shared
    assert columns(c, "rd") == ["id", "v", "c1"]
    assert table_rows(c, "rd", ["id", "v"]) == load.expected(["id", "v"])
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(c1 = 47) FROM rd")
        n, fortyseven = cur.fetchone()
    assert n == len(load.model) and fortyseven == n
    assert task.checksummer.progress.remaining_mismatches == 0
    c.close()
