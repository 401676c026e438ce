"""Online schema change against the real sandbox under concurrent writes:
after the cut-over the new table equals the expected content on the shared
columns (inserts, updates, unique-key updates and deletes during the copy and
through the cut-over), for the column types and keys the issue lists."""

from __future__ import annotations

import datetime as dt
import json
import random
import time

import pytest

from tests.integration.migration_helpers import (
    assert_replicas_equal,
    columns,
    connect,
    finish,
    migration_sandbox,
    start_task,
    tables,
    wait_phase,
)
from tests.support.migration_load import Load, table_rows

pytestmark = pytest.mark.integration


sb = migration_sandbox     # the module's sandbox fixture


def _types_row(rng: random.Random) -> dict:
    return {
        "n": None if rng.random() < 0.2 else rng.randint(-1000, 1000),
        "doc": None if rng.random() < 0.1 else json.dumps({"v": rng.randint(0, 99), "t": ["x", 1]}),
        "ts": dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10**13)),
        "st": rng.choice(["new", "old", "gone", None]),
        "name": rng.choice(["café", "naïve", "plain", None, ""]) ,
    }


def test_composite_key_types_reorder_charset_10k_rows_writes_through_cutover(sb, tmp_path):
    """Composite PK, JSON, DATETIME(6), ENUM, NULLs, latin1 -> utf8mb4, added,
    dropped and reordered columns; 10,000 rows; writers run during the copy,
    the checksum and the cut-over and must see no error and lose no write."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS s1")
        cur.execute("CREATE TABLE s1 (a INT NOT NULL, b VARCHAR(16) NOT NULL, n INT NULL, doc JSON NULL, "
                    "ts DATETIME(6) NULL, st ENUM('new','old','gone') NULL, "
                    "name VARCHAR(40) CHARACTER SET latin1 NULL, junk VARCHAR(10) NULL, "
                    "PRIMARY KEY (a, b)) ENGINE=InnoDB")
        rng = random.Random(7)
        rows = {}
        for batch in range(10):
            vals = []
            for i in range(batch * 1000, batch * 1000 + 1000):
                key = (i // 100, f"k{i % 100:03d}")
                r = _types_row(rng)
                rows[key] = {"a": key[0], "b": key[1], **r}
                vals.append(list(key) + list(r.values()) + ["junk"])
            cur.executemany("INSERT INTO s1 (a, b, n, doc, ts, st, name, junk) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s, %s)", vals)
    load = Load(lambda: connect(sb), "s1", ["a", "b"], rows, threads=3,
                owner=lambda k: k[0] % 3, new_key=lambda t, n: (t + 3 * (10000 + n // 50), f"n{n}"),
                make_row=_types_row).start()
    try:
        _, task = start_task(sb, tmp_path, table="s1", chunk_size=500, copy_threads=2,
                             copy_binlog_format="statement", checksum_chunk_size=2000,
                             alter="ADD COLUMN extra INT NOT NULL DEFAULT 5, DROP COLUMN junk, "
                                   "MODIFY name VARCHAR(40) CHARACTER SET utf8mb4 NULL, "
                                   "MODIFY n INT NULL AFTER st")
        wait_phase(task, ("cutting-over", "cleaning-up", "complete"))
        finish(task)
    finally:
        load.stop()
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert not load.errors, load.errors[:3]
    assert load.ops > 100
    assert columns(c, "s1") == ["a", "b", "doc", "ts", "st", "n", "name", "extra"]
    shared = ["a", "b", "n", "doc", "ts", "st", "name"]
    assert table_rows(c, "s1", shared) == load.expected(shared)
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM s1 WHERE extra <> 5")
        assert cur.fetchone()[0] == 0
        cur.execute("SHOW CREATE TABLE s1")
        assert "latin1" not in cur.fetchone()[1]
    assert {"s1_del"} <= tables(c) and not {"s1_gho", "s1_ghc"} & tables(c)
    d = task.detail()
    assert d.events_applied > 0 and d.checksum.startswith("verified")
    # not postponed: chunks were checked during the copy (consecutive chunks
    # of two copy threads, committed out of order, gathered into ranges of
    # ~2000 rows), then only the rows of the keys the writers touched
    # (composite key) were checked again
    cs = task.checksummer.progress
    assert 2 <= cs.chunks < task.copier.chunks and cs.dirty_batches >= 1 and cs.keys_rechecked > 0
    assert cs.remaining_mismatches == 0
    # the chunks were binlogged as statements: the replicas re-ran them on
    # their own copy and hold exactly the primary's rows
    assert task.copy_format == "statement"
    assert_replicas_equal(sb, "s1", ["a", "b", "doc", "ts", "st", "n", "name", "extra"])
    c.close()


def test_overlapped_checksum_tracks_dirty_keys_and_recopies_their_mismatches(sb, tmp_path):
    """The plain index on v is built after the copy (the default).
    The apply records every key a row event touched (before and after
    images of a key update, deleted keys too); checking those keys again
    finds a ghost row corrupted or lost after its chunk was checked, copies
    it again, and the cut-over then yields equal content."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS s4")
        cur.execute("CREATE TABLE s4 (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL, KEY (v)) "
                    "ENGINE=InnoDB")
        cur.executemany("INSERT INTO s4 VALUES (%s, %s)", [(i, f"v{i}") for i in range(1, 2001)])
    _, task = start_task(sb, tmp_path, table="s4", chunk_size=250, postpone_cut_over=True,
                         copy_binlog_format="row", checksum_chunk_size=500,
                         alter="ADD COLUMN w INT NULL")
    wait_phase(task, ("postponed",))
    # the changelog holds the migration's state (the heartbeat writes it)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with c.cursor() as cur:
            cur.execute("SELECT value FROM s4_ghc WHERE hint = 'state'")
            state = (cur.fetchone() or [None])[0]
        if state == "postponed":
            break
        time.sleep(0.05)
    assert state == "postponed"
    cs = task.checksummer
    # 8 copy chunks, checked two at a time (--checksum-chunk-size 500)
    assert task.copier.chunks == 8 and cs.progress.chunks == 4 and cs.progress.rows == 2000
    assert cs.progress.mismatches == 0
    with c.cursor() as cur:
        cur.execute("UPDATE s4 SET v = 'changed' WHERE id IN (5, 7)")
        cur.execute("UPDATE s4 SET id = 10009 WHERE id = 9")
        cur.execute("DELETE FROM s4 WHERE id = 11")
    wait_for_apply(task, c)
    keys = task.applier.take_dirty()
    assert keys == {(5,), (7,), (9,), (10009,), (11,)}
    assert task.applier.take_dirty() == set()          # taken: tracking goes on empty
    with c.cursor() as cur:                             # damage the ghost behind the apply's back
        cur.execute("UPDATE s4_gho SET v = 'bad' WHERE id = 5")
        cur.execute("DELETE FROM s4_gho WHERE id = 10009")
    conns = cs.open_conns()
    try:
        cs.verify_keys(conns, sorted(keys), batch=2)
    finally:
        for x in conns:
            x.close()
    p = cs.progress
    assert p.dirty_batches == 3 and p.keys_rechecked == 3     # 9 and 11 are gone
    assert p.mismatches == 2 and p.recopied == 2 and p.remaining_mismatches == 0
    assert table_rows(c, "s4_gho", ["id", "v"]) == table_rows(c, "s4", ["id", "v"])
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    assert task.status().state == "done", task.status().last_error
    assert table_rows(c, "s4", ["id", "v"]) == table_rows(c, "s4_del", ["id", "v"])
    with c.cursor() as cur:       # the index deferred during the copy is back
        cur.execute("SHOW INDEX FROM s4 WHERE Key_name = 'v'")
        assert cur.fetchall()
    assert task.copy_format == "row"   # copied as row events, like gh-ost
    assert_replicas_equal(sb, "s4", ["id", "v", "w"])
    c.close()


def _uk_row(rng: random.Random) -> dict:
    return {"qty": rng.randint(0, 10**6), "val": rng.choice(["a", "b", None]), "id": rng.randint(1, 50)}


def test_unique_key_chunking_renamed_column_then_corrupted_ghost_is_recopied(sb, tmp_path):
    """No primary key: the NOT NULL unique key chunks.  A renamed column
    (approved) carries its data.  The plain index on id is filled during the
    copy (--no-defer-secondary-indexes).  Writers stop during the postponement; a
    row of the ghost is then corrupted by hand: the checksum finds it, copies
    the chunk again, and the cut-over proceeds with equal content."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS s2")
        cur.execute("CREATE TABLE s2 (id INT NULL, code VARCHAR(20) NOT NULL, qty INT NOT NULL, "
                    "val CHAR(1) NULL, UNIQUE KEY uk_code (code), KEY (id)) ENGINE=InnoDB")
        rng = random.Random(3)
        rows = {}
        vals = []
        for i in range(3000):
            r = _uk_row(rng)
            rows[(f"c{i:05d}",)] = {"code": f"c{i:05d}", **r}
            vals.append([f"c{i:05d}", r["qty"], r["val"], r["id"]])
        cur.executemany("INSERT INTO s2 (code, qty, val, id) VALUES (%s, %s, %s, %s)", vals)
    load = Load(lambda: connect(sb), "s2", ["code"], rows, threads=2,
                owner=lambda k: int(k[0][1:]) % 2 if k[0][0] == "c" else int(k[0][1]),
                new_key=lambda t, n: (f"n{t}-{n:06d}",), make_row=_uk_row).start()
    try:
        _, task = start_task(sb, tmp_path, table="s2", chunk_size=300, postpone_cut_over=True,
                             copy_binlog_format="statement", defer_secondary_indexes=False,
                             approve_renamed_columns=True,
                             alter="CHANGE COLUMN qty quantity INT NOT NULL, ADD COLUMN note VARCHAR(5) NULL")
        wait_phase(task, ("postponed",))
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    assert task.detail().unique_key.startswith("uk_code")
    # let the apply drain the last writes, then corrupt one ghost row by hand
    wait_for_apply(task, c)
    with c.cursor() as cur:
        cur.execute("UPDATE s2_gho SET quantity = quantity + 1 ORDER BY code LIMIT 1")
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done", st.last_error
    cs = task.checksummer.progress
    assert cs.mismatches >= 1 and cs.recopied >= 1 and cs.remaining_mismatches == 0
    expected = [(r[0], r[1], r[2], r[3]) for r in load.expected(["code", "qty", "val", "id"])]
    assert table_rows(c, "s2", ["code", "quantity", "val", "id"]) == expected
    assert table_rows(c, "s2_del", ["code", "qty", "val", "id"]) == expected
    # string chunk bounds in statement-binlogged chunks replay alike on replicas
    assert_replicas_equal(sb, "s2", ["code", "quantity", "val", "id", "note"])
    with c.cursor() as cur:
        cur.execute("SHOW INDEX FROM s2 WHERE Key_name = 'id'")
        assert cur.fetchall()
    c.close()


def wait_for_apply(task, conn) -> None:
    from console.engine.migration.tables import write_changelog

    token = task.applier.expect_marker()
    write_changelog(conn, task.ins, "marker", token)
    assert task.applier.wait_marker(token, 30)


def test_column_type_changes_verify_by_the_new_types_text(sb, tmp_path):
    """A checksum compares each row's text: DATETIME -> DATETIME(6), FLOAT ->
    DOUBLE, a DECIMAL scale change, a string of digits -> INT and back again
    print differently on the two sides although the copy converted every
    value right.  Compared through a CAST to the ghost's type, they verify
    with no mismatch (before, every chunk mismatched, was re-copied three
    times and the cut-over was refused)."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS s5")
        cur.execute("CREATE TABLE s5 (id INT PRIMARY KEY, a DATETIME NULL, b FLOAT, c DECIMAL(8,3), "
                    "d VARCHAR(12), e DATETIME(6), f DOUBLE, g TIME(3), h INT UNSIGNED)")
        cur.executemany("INSERT INTO s5 VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(i, None if i % 50 == 0 else f"2024-02-03 04:05:{i % 60:02d}", i * 1.1,
                          i / 7, str(i * 3), f"2024-02-03 04:05:06.{i:06d}", i / 3,
                          f"01:02:03.{i % 1000:03d}", i) for i in range(1, 1201)])
        # what each value must become: the server's own conversion
        cur.execute("SELECT id, CAST(a AS DATETIME(6)), CAST(b AS DOUBLE), CAST(c AS DECIMAL(10,4)), "
                    "CAST(d AS SIGNED), CAST(e AS DATETIME(0)), CAST(f AS FLOAT), CAST(g AS TIME(0)), "
                    "h FROM s5 ORDER BY id")
        want = cur.fetchall()
    _, task = start_task(sb, tmp_path, table="s5", chunk_size=300,
                         alter="MODIFY a DATETIME(6) NULL, MODIFY b DOUBLE, MODIFY c DECIMAL(10,4), "
                               "MODIFY d BIGINT, MODIFY e DATETIME, MODIFY f FLOAT, MODIFY g TIME, "
                               "MODIFY h BIGINT UNSIGNED")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    p = task.checksummer.progress
    assert p.rows == 1200 and p.mismatches == 0 and p.recopied == 0, p
    with c.cursor() as cur:
        cur.execute("SELECT * FROM s5 ORDER BY id")
        assert cur.fetchall() == want
    c.close()


@pytest.mark.parametrize("table, ddl, row", [
    ("s6", "(id INT PRIMARY KEY, body TEXT, FULLTEXT KEY fb (body))", lambda i: (i, f"word{i} text")),
    ("s7", "(id INT PRIMARY KEY, v INT) PARTITION BY HASH(id) PARTITIONS 3", lambda i: (i, i)),
])
def test_fulltext_and_partitioned_tables_migrate(sb, tmp_path, table, ddl, row):
    """Neither can be a temporary table, on which the inspection tries the
    ALTER: it tries it on a real empty table, unlogged and dropped (before,
    both failed with the server's raw error).  The session's binlog is back
    on for the migration itself: the replicas get the new table."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} {ddl}")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [row(i) for i in range(1, 601)])
    want = table_rows(c, table, ["id", columns(c, table)[1]])
    _, task = start_task(sb, tmp_path, table=table, chunk_size=200, alter="ADD COLUMN z INT NULL")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert any(f"checked on a real empty table {table}_gck" in n and "not binlogged" in n
               for n in task.ins.notes), task.ins.notes
    assert table_rows(c, table, ["id", columns(c, table)[1]]) == want
    assert f"{table}_gck" not in tables(c)
    with c.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE {table}")
        assert ("FULLTEXT" if table == "s6" else "PARTITION") in cur.fetchone()[1]
    assert_replicas_equal(sb, table, ["id", "z"])     # the ghost's DDL was binlogged
    c.close()


@pytest.mark.parametrize("autoinc", [False, True], ids=["plain-key", "auto-increment"])
def test_copy_threads_chosen_from_the_server_under_writes(sb, tmp_path, autoinc):
    """--copy-threads left at 0 (the default): the server's cores
    (thread_pool_size) copy in parallel a table without AUTO_INCREMENT; one
    connection copies an AUTO_INCREMENT table (its chunks would serialize on
    the AUTO-INC lock under MariaDB's innodb_autoinc_lock_mode=1); writers
    run throughout and nothing is lost."""
    c = connect(sb)
    table = f"ct_{'ai' if autoinc else 'pk'}"
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id INT NOT NULL {'AUTO_INCREMENT ' if autoinc else ''}PRIMARY KEY, "
                    f"n INT NULL, name VARCHAR(40) NULL) ENGINE=InnoDB")
        rows = {(i,): {"id": i, "n": i % 97, "name": f"r{i}"} for i in range(1, 20001)}
        cur.executemany(f"INSERT INTO {table} (id, n, name) VALUES (%s, %s, %s)",
                        [(r["id"], r["n"], r["name"]) for r in rows.values()])
        cur.execute("SELECT @@thread_pool_size, @@innodb_autoinc_lock_mode")
        cores, mode = cur.fetchone()
    rng = random.Random(3)
    load = Load(lambda: connect(sb), table, ["id"], rows, threads=2, owner=lambda k: k[0] % 2,
                new_key=lambda t, n: (100000 + 2 * n + t,),
                make_row=lambda r: {"n": rng.randint(0, 9), "name": rng.choice(["a", None, "é"])}).start()
    try:
        _, task = start_task(sb, tmp_path, table=table, chunk_size=500, alter="ADD COLUMN extra INT NULL")
        wait_phase(task, ("cutting-over", "cleaning-up", "complete"))
        finish(task)
    finally:
        load.stop()
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert not load.errors, load.errors[:3]
    want = 1 if autoinc and mode != 2 else min(cores, 4)
    assert task.copy_threads == want, (task.copy_threads, cores, mode)
    assert task.copier.turns.needed == (autoinc and mode != 2)
    assert table_rows(c, table, ["id", "n", "name"]) == load.expected(["id", "n", "name"])
    assert_replicas_equal(sb, table, ["id", "n", "name", "extra"])
    c.close()
