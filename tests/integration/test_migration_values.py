"""Values through the binlog apply: every column type a row event carries
must reach the ghost as the same value (python-mysql-replication decodes
BIT as a string of '0'/'1', YEAR 0000 as 1900, an empty SET as None...),
and the migration's sessions must keep values whatever the server's
sql_mode (NO_AUTO_VALUE_ON_ZERO, zero dates)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time

import pytest

from tests.integration.migration_helpers import (
    cli,
    columns,
    connect,
    finish,
    migration_sandbox,
    start_task,
    tables,
    wait_phase,
    zero_dates_refused,
)
from tests.support.migration_load import Load, table_rows

pytestmark = pytest.mark.integration


sb = migration_sandbox     # the module's sandbox fixture
no_zero_dates = zero_dates_refused


TYPES_DDL = (
    "(id BIGINT UNSIGNED NOT NULL PRIMARY KEY, bits BIT(10) NULL, b1 BIT(1) NOT NULL DEFAULT b'0', "
    "b64 BIT(64) NULL, doc JSON NULL, e ENUM('a','b','c') NULL, st SET('x','y','z') NOT NULL DEFAULT '', "
    "sn SET('p','q') NULL, d DECIMAL(20,6) NULL, tm TIME(3) NULL, dtm DATETIME(6) NULL, "
    "ts TIMESTAMP(3) NULL DEFAULT NULL, dte DATE NULL, bl BLOB NULL, vb VARBINARY(16) NULL, "
    "y YEAR NULL, u8 TINYINT UNSIGNED NOT NULL DEFAULT 0, u32 INT UNSIGNED NULL, "
    "u24 MEDIUMINT UNSIGNED NULL, i16 SMALLINT NULL, f FLOAT NULL, g DOUBLE NULL, "
    "txt VARCHAR(40) CHARACTER SET utf8mb4 NULL, l1 CHAR(8) CHARACTER SET latin1 NULL, geo GEOMETRY NULL) ENGINE=InnoDB")
TYPE_COLS = ["id", "bits", "b1", "b64", "doc", "e", "st", "sn", "d", "tm", "dtm", "ts", "dte", "bl", "vb",
             "y", "u8", "u32", "u24", "i16", "f", "g", "txt", "l1", "geo"]


def _types_row(rng: random.Random) -> dict:
    def maybe(v):
        return None if rng.random() < 0.1 else v

    return {
        "bits": maybe(rng.randint(0, 1023)),
        "b1": rng.randint(0, 1),
        "b64": maybe(rng.choice([0, 1, 2**63, 2**64 - 1, rng.getrandbits(64)])),
        "doc": maybe(json.dumps({"k": rng.randint(0, 9), "s": "é☃", "a": [1, None, True]})),
        "e": maybe(rng.choice(["a", "b", "c"])),
        "st": rng.choice(["", "x", "x,z", "x,y,z", "y"]),
        "sn": rng.choice([None, "", "p", "p,q"]),
        "d": maybe(rng.choice(["-12345678901234.123456", "0.000001", "99999999999999.999999", "-0.5"])),
        "tm": maybe(rng.choice(["-838:59:59.000", "-00:00:01.250", "12:34:56.789", "00:00:00.000",
                                "100:00:00.001"])),
        "dtm": maybe(dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10**13))),
        "ts": maybe(rng.choice(["1970-01-01 00:00:01.000", "2038-01-19 03:14:07.999",
                                "2024-06-30 23:59:59.123"])),
        "dte": maybe(rng.choice(["1000-01-01", "2024-02-29", "9999-12-31"])),
        "bl": maybe(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))),
        "vb": maybe(rng.choice([b"", b"\x00", b"\xff\xfe\x00\x80", bytes(range(16))])),
        "y": maybe(rng.choice([0, 1901, 2000, 2155])),
        "u8": rng.choice([0, 255]),
        "u32": maybe(rng.choice([0, 4294967295, 2147483648])),
        "u24": maybe(rng.choice([0, 16777215, 8388608])),
        "i16": maybe(rng.choice([-32768, 32767, 0])),
        "f": maybe(rng.choice([1.1, -3.4e38, 0.0, 1e-30])),
        "g": maybe(rng.choice([0.1, -1.7976931348623157e308, 5e-324, 2.0 / 3])),
        "txt": maybe(rng.choice(["😀 emoji", "日本語", "", "a'b\"c\\d"])),
        "l1": maybe(rng.choice(["café", "naïve", "", "plain"])),
        "geo": maybe(rng.choice([b"\x00\x00\x00\x00\x01\x01\x00\x00\x00" + bytes(16),
                                 b"\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0?"
                                 b"\x00\x00\x00\x00\x00\x00\x00@"])),
    }


def _exact(conn, table: str) -> list[tuple]:
    """Every column's exact text (BIT and binary as hex): the comparison of
    the old and the new table."""
    exprs = [f"HEX(`{c}`)" if c in ("bits", "b1", "b64", "bl", "vb", "geo") else f"`{c}`" for c in TYPE_COLS]
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(exprs)} FROM `{table}` ORDER BY id")
        return list(cur.fetchall())


def test_every_column_type_round_trips_through_the_binlog_apply(sb, tmp_path):
    """BIT(n) (python-mysql-replication decodes it to '0'/'1' text: the
    apply failed with 1406 Data too long), JSON, ENUM, SET (empty too),
    DECIMAL, TIME/DATETIME/TIMESTAMP with fractions and negative TIMEs,
    binary BLOB/VARBINARY, YEAR (0000 too), unsigned ints at their maximum,
    FLOAT/DOUBLE extremes, utf8mb4 and latin1 text, GEOMETRY: written by concurrent
    writers during the copy and the postponement, so every row event goes
    through the decode -> apply path.  No checksum (it would re-copy what
    the apply got wrong): after the cut-over the new table must equal the
    old one, value for value."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS v1, v1_del")
        cur.execute(f"CREATE TABLE v1 {TYPES_DDL}")
        rng = random.Random(11)
        rows = {}
        for i in range(1, 1501):
            key = (2**63 + i if i % 2 else i,)
            r = _types_row(rng)
            rows[key] = {"id": key[0], **r}
            cur.execute(f"INSERT INTO v1 (id, {', '.join(r)}) VALUES (%s{', %s' * len(r)})",
                        [key[0], *r.values()])
    load = Load(lambda: connect(sb), "v1", ["id"], rows, threads=2,
                owner=lambda k: k[0] % 2, new_key=lambda t, n: (10**6 + 2 * n + t,),
                make_row=_types_row).start()
    try:
        _, task = start_task(sb, tmp_path, table="v1", chunk_size=100, postpone_cut_over=True,
                             verify_checksum=False, alter="ADD COLUMN extra INT NULL")
        wait_phase(task, ("postponed",), timeout=180)
        start = task.applier.events_applied   # writes go on through the postponement
        deadline = time.monotonic() + 60
        while task.applier.events_applied < start + 200 and task.state == "running" \
                and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        load.stop()
    assert not load.errors, load.errors[:3]
    assert task.state == "running", task.status().last_error
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert task.applier.events_applied > 200
    old, new = _exact(c, "v1_del"), _exact(c, "v1")
    assert len(new) == len(old) == len(load.model)
    diff = {(col, a[i], b[i]) for a, b in zip(old, new, strict=True)
            for i, col in enumerate(TYPE_COLS) if a[i] != b[i]}
    assert not diff, f"{len(diff)} values differ (column, old, new): {sorted(diff, key=repr)[:8]}"
    c.close()


def test_a_zero_id_keeps_its_value_under_no_auto_value_on_zero(sb, tmp_path):
    """A row with AUTO_INCREMENT id 0 (written under NO_AUTO_VALUE_ON_ZERO)
    got a new id in the ghost, from the copy and from the apply's REPLACE,
    and the checksum refused the cut-over without saying why.  The
    migration's sessions set NO_AUTO_VALUE_ON_ZERO (as gh-ost does): id 0
    stays 0, copied and re-inserted through the binlog during the
    postponement."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS z1, z1_del")
        cur.execute("CREATE TABLE z1 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
        cur.execute("SET SESSION sql_mode = CONCAT(@@session.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
        cur.executemany("INSERT INTO z1 VALUES (%s, %s)", [(i, i * 10) for i in range(0, 600)])
    _, task = start_task(sb, tmp_path, table="z1", chunk_size=100, postpone_cut_over=True,
                         alter="ADD COLUMN w INT NULL")
    wait_phase(task, ("postponed",))
    with c.cursor() as cur:         # through the binlog apply: delete and insert id 0 again
        cur.execute("DELETE FROM z1 WHERE id = 0")
        cur.execute("INSERT INTO z1 VALUES (0, -1)")
        cur.execute("UPDATE z1 SET v = -2 WHERE id = 0")
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    rows = table_rows(c, "z1", ["id", "v"])
    assert rows == table_rows(c, "z1_del", ["id", "v"]) and len(rows) == 600
    assert (0, -2) in rows
    c.close()


def _zero_date_table(c, table: str) -> None:
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"DROP TABLE IF EXISTS {table}, {table}_del, {table}_gho, {table}_ghc")
        cur.execute(f"CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, "
                    f"dt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00', d DATE NULL) ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)",
                        [(i, "0000-00-00 00:00:00" if i % 3 else f"2024-01-{i % 28 + 1:02d} 10:00:00",
                          "0000-00-00" if i % 5 == 0 else None) for i in range(1, 301)])


def test_a_zero_date_default_is_refused_at_inspection_unless_allowed(sb, tmp_path, no_zero_dates):
    """dt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00' on a server whose
    sql_mode refuses zero dates: the migration failed with the driver's
    "OperationalError: (1067, Invalid default value for 'dt')", exit 1.  The
    inspection (dry run too) refuses it in one line naming the column and
    --allow-zero-in-date, exit 2, nothing created; with the flag it
    migrates, zero dates and all."""
    c = connect(sb)
    _zero_date_table(c, "zd1")
    before = tables(c)
    want = table_rows(c, "zd1", ["id", "dt", "d"])
    for extra in ((), ("--execute",)):
        r = cli(sb, "--table", "zd1", "--alter", "ADD COLUMN c INT NULL", "--state-dir", str(tmp_path), *extra)
        assert r.returncode == 2, r.stderr
        err = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
        assert len(err) == 1 and "column dt" in err[0] and "--allow-zero-in-date" in err[0], r.stderr
        assert "Traceback" not in r.stderr and "OperationalError" not in r.stderr
        assert tables(c) == before
    r = cli(sb, "--table", "zd1", "--alter", "ADD COLUMN c INT NULL", "--state-dir", str(tmp_path),
            "--execute", "--allow-zero-in-date")
    assert r.returncode == 0, r.stderr
    assert table_rows(c, "zd1", ["id", "dt", "d"]) == want
    c.close()


def test_zero_dates_written_during_the_migration_reach_the_ghost(sb, tmp_path, no_zero_dates):
    """With --allow-zero-in-date the apply writes zero dates too (the row
    events decode them as None: sent as the zero date, not NULL)."""
    c = connect(sb)
    _zero_date_table(c, "zd2")
    _, task = start_task(sb, tmp_path, table="zd2", chunk_size=100, postpone_cut_over=True,
                         allow_zero_in_date=True, alter="ADD COLUMN c INT NULL")
    wait_phase(task, ("postponed",))
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO zd2 VALUES (1000, '0000-00-00 00:00:00', '0000-00-00'), (1001, DEFAULT, NULL)")
        cur.execute("UPDATE zd2 SET dt = '0000-00-00 00:00:00', d = '0000-00-00' WHERE id = 3")
        cur.execute("UPDATE zd2 SET dt = '2020-02-02 02:02:02' WHERE id = 1")
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert task.applier.events_applied >= 4
    rows = table_rows(c, "zd2", ["id", "dt", "d"])
    assert rows == table_rows(c, "zd2_del", ["id", "dt", "d"]) and len(rows) == 302
    c.close()


def test_a_zero_date_the_session_refuses_fails_the_apply_at_once_with_what_to_do(sb, tmp_path, no_zero_dates):
    """A zero date written during the migration (the inspection cannot see
    it coming; one already in the table stops the copy, see
    test_migration_copy_values.py) on a server that refuses them: the apply's REPLACE fails
    with 1292.  That is no transient error: it failed after ~35 s of
    retries with the driver's raw error; now at once, in one line naming
    --allow-zero-in-date."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("DROP TABLE IF EXISTS zd3, zd3_del, zd3_gho, zd3_ghc")
        cur.execute("CREATE TABLE zd3 (id INT PRIMARY KEY, dt DATETIME NULL) ENGINE=InnoDB")
        cur.execute("INSERT INTO zd3 VALUES (1, '2021-01-01 00:00:00'), (2, '2020-01-01 00:00:00')")
    _, task = start_task(sb, tmp_path, table="zd3", postpone_cut_over=True, alter="ADD COLUMN c INT NULL")
    wait_phase(task, ("postponed",))
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO zd3 VALUES (3, '0000-00-00 00:00:00')")
    finish(task, 30)
    st = task.status()
    assert st.state == "failed", st
    assert "zero date" in st.last_error and "--allow-zero-in-date" in st.last_error, st.last_error
    assert "\n" not in st.last_error and task.applier.reconnects == 1
    assert columns(c, "zd3") == ["id", "dt"]
    # as the line says: resumed with the flag, it completes with every row
    _, task = start_task(sb, tmp_path, table="zd3", resume=True, allow_zero_in_date=True,
                         alter="ADD COLUMN c INT NULL")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert table_rows(c, "zd3", ["id", "dt"]) == table_rows(c, "zd3_del", ["id", "dt"])
    assert len(table_rows(c, "zd3", ["id"])) == 3
    c.close()


def test_timestamps_written_during_the_migration_keep_their_instant_in_any_time_zone(sb, tmp_path):
    """The binlog carries a TIMESTAMP as seconds since the epoch, which the
    apply gets as a UTC datetime: written in a session of the server's time
    zone (here +05:00) it moved by five hours.  The migration's sessions
    run in UTC."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("SELECT @@global.time_zone")
        tz = cur.fetchone()[0]
        cur.execute("SET GLOBAL time_zone = '+05:00'")
    try:
        w = connect(sb)
        with w.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS tz1, tz1_del")
            cur.execute("CREATE TABLE tz1 (id INT PRIMARY KEY, ts TIMESTAMP(3) NULL) ENGINE=InnoDB")
            cur.executemany("INSERT INTO tz1 VALUES (%s, %s)",
                            [(i, f"2024-03-{i % 28 + 1:02d} 12:00:00.{i:03d}") for i in range(1, 201)])
        _, task = start_task(sb, tmp_path, table="tz1", postpone_cut_over=True, verify_checksum=False,
                             alter="ADD COLUMN c INT NULL")     # (the checksum would re-copy the rows)
        wait_phase(task, ("postponed",))
        with w.cursor() as cur:
            cur.execute("INSERT INTO tz1 VALUES (1000, '2024-06-01 08:30:00.250')")
            cur.execute("UPDATE tz1 SET ts = '2030-12-31 23:59:59.999' WHERE id = 7")
        w.close()
        task.engine.command(task.task_id, "cut-over")
        finish(task)
    finally:
        with c.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = %s", (tz,))
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    with c.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+05:00'")
        cur.execute("SELECT id, ts, UNIX_TIMESTAMP(ts) FROM tz1 ORDER BY id")
        new = cur.fetchall()
        cur.execute("SELECT id, ts, UNIX_TIMESTAMP(ts) FROM tz1_del ORDER BY id")
        assert new == cur.fetchall()
    assert new[-1][1] == dt.datetime(2024, 6, 1, 8, 30, 0, 250000)
    c.close()
