"""ALTERs that change which columns and keys the old and new table share,
against the real sandbox with writes during the copy: a column dropped and
added again under its name is a new column; a new primary key that
contains the old one still migrates, chunked by the old key."""

from __future__ import annotations

import random

import pytest

from tests.integration.migration_helpers import (
    columns,
    connect,
    finish,
    migration_sandbox,
    start_task,
    wait_phase,
)
from tests.support.migration_load import Load, table_rows

pytestmark = pytest.mark.integration


sb = migration_sandbox     # the module's sandbox fixture


def _run_with_writes(sb, tmp_path, table: str, rows: dict, make_row, alter: str, postponed=None, **kw):
    """Migrate under two writers that run through the copy and the
    postponement; they stop before the cut-over (``postponed(task, load)``
    runs then).  Returns (task, load)."""
    load = Load(lambda: connect(sb), table, ["id"], rows, threads=2, owner=lambda k: k[0] % 2,
                new_key=lambda t, n: (100_000 + 2 * n + t,), make_row=make_row).start()
    try:
        _, task = start_task(sb, tmp_path, table=table, chunk_size=100, postpone_cut_over=True,
                             alter=alter, **kw)
        wait_phase(task, ("postponed",))
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    if postponed is not None:
        postponed(task, load)
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
        cur.execute("DROP TABLE IF EXISTS rd, rd_del")
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


def _i_row(rng: random.Random) -> dict:
    return {"i": rng.randint(0, 3), "v": rng.randint(0, 10**6)}


def test_a_new_primary_key_containing_the_old_one_migrates(sb, tmp_path):
    """DROP PRIMARY KEY, ADD PRIMARY KEY (id, i) was refused ("no shared
    unique key"): (id) is unique in the old table, and in the ghost the new
    key starts with it, so the copy and the checksum range over id there
    too.  id identifies a row in the ghost but is no unique index there:
    the copy replaces its range, the apply deletes by id before it inserts
    (a REPLACE would keep (5, 1) beside (5, 2)).  Writers change i (part
    of the new key) and id during the copy."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS sk, sk_del")
        cur.execute("CREATE TABLE sk (id INT NOT NULL PRIMARY KEY, i INT NOT NULL, v INT NULL) ENGINE=InnoDB")
        rng = random.Random(5)
        rows = {}
        for n in range(1, 1501):
            r = _i_row(rng)
            rows[(n,)] = {"id": n, **r}
            cur.execute("INSERT INTO sk VALUES (%s, %s, %s)", (n, r["i"], r["v"]))
    def copy_raced_the_apply(task, load):
        """The apply behind a copy chunk that already holds a later state of
        a row: insert (k, 1) then set i = 9 in the original while the ghost
        is locked, and put (k, 9) into the ghost as the chunk would have.
        A plain REPLACE of (k, 1) then sat beside (k, 9), and the UPDATE
        to i = 9 failed with a duplicate key: the apply kept failing."""
        lock = connect(sb)
        try:
            with lock.cursor() as lc:
                lc.execute("LOCK TABLES sk_gho WRITE")
                with c.cursor() as cur:
                    cur.execute("INSERT INTO sk VALUES (5000, 1, 50)")
                    cur.execute("UPDATE sk SET i = 9 WHERE id = 5000")
                lc.execute("INSERT INTO sk_gho (id, i, v) VALUES (5000, 9, 50)")
                lc.execute("UNLOCK TABLES")
        finally:
            lock.close()
        load.model[(5000,)] = {"id": 5000, "i": 9, "v": 50}

    task, load = _run_with_writes(sb, tmp_path, "sk", rows, _i_row,
                                  "DROP PRIMARY KEY, ADD PRIMARY KEY (id, i), ADD COLUMN w INT NULL",
                                  postponed=copy_raced_the_apply)
    assert task.ins.key.name == "PRIMARY" and task.ins.key.columns == ("id",)
    assert not task.ins.key.ghost_unique
    want = load.expected(["id", "i", "v"])
    assert table_rows(c, "sk", ["id", "i", "v"]) == want == table_rows(c, "sk_del", ["id", "i", "v"])
    with c.cursor() as cur:
        cur.execute("SHOW INDEX FROM sk WHERE Key_name = 'PRIMARY'")
        assert [r[4] for r in cur.fetchall()] == ["id", "i"]
    p = task.checksummer.progress
    assert p.remaining_mismatches == 0 and (p.rows > 0 or p.keys_rechecked > 0)
    c.close()
