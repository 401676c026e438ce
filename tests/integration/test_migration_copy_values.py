"""The row copy never changes a value silently.  Its ``INSERT IGNORE``
turned the strict session's errors into warnings: a partial zero date
became 0000-00-00, a narrowing MODIFY truncated strings and clipped
integers; the checksum then refused the cut-over naming only a key, and the
ghost stayed behind.  Now the copy stops at the chunk, in one line naming
the table, the row's key and the server's error, and drops the
migration's own tables.  A checksum refusal says which column differs and
how."""

from __future__ import annotations

import pytest

from tests.integration.migration_helpers import (
    cli,
    connect,
    finish,
    migration_sandbox,
    start_task,
    tables,
    zero_dates_refused,
)
from tests.support.migration_load import table_rows

pytestmark = pytest.mark.integration

sb = migration_sandbox
no_zero_dates = zero_dates_refused


def _table(c, name: str, ddl: str, rows: list[tuple]) -> None:
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")        # let the odd values in
        cur.execute(f"DROP TABLE IF EXISTS {name}, {name}_gho, {name}_ghc, {name}_del")
        cur.execute(f"CREATE TABLE {name} {ddl} ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)


def _refused(sb, tmp_path, table: str, alter: str, *extra: str) -> str:
    r = cli(sb, "--table", table, "--alter", alter, "--execute", "--chunk-size", "100",
            "--state-dir", str(tmp_path), *extra)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(errs) == 1, r.stderr
    return errs[0]


def test_a_partial_zero_date_stops_the_copy_and_the_migration_drops_its_tables(sb, tmp_path, no_zero_dates):
    c = connect(sb)
    rows = [(i, f"2020-01-{i % 28 + 1:02d}") for i in range(1, 301)]
    rows[149] = (150, "2020-00-01")
    _table(c, "cz1", "(id INT PRIMARY KEY, d DATE NULL)", rows)
    before = tables(c)
    want = table_rows(c, "cz1", ["id", "d"])
    line = _refused(sb, tmp_path, "cz1", "ADD COLUMN c INT NULL")
    assert "the row id=150 of mig.cz1 cannot be copied unchanged" in line, line
    assert "Incorrect date value: '2020-00-01'" in line and "--allow-zero-in-date" in line, line
    assert "ghost and changelog dropped, original untouched" in line, line
    assert tables(c) == before and table_rows(c, "cz1", ["id", "d"]) == want
    # as the line says: sessions that allow zero dates copy it as it is
    r = cli(sb, "--table", "cz1", "--alter", "ADD COLUMN c INT NULL", "--execute",
            "--allow-zero-in-date", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert table_rows(c, "cz1", ["id", "d"]) == want
    c.close()


def _all(c, table: str) -> list[tuple]:
    with c.cursor() as cur:
        cur.execute(f"SELECT * FROM `{table}` ORDER BY 1, 2")
        return list(cur.fetchall())


@pytest.mark.parametrize("table, ddl, rows, alter, key, error", [
    ("cn1", "(id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
     [(i, "abcdefghij" if i == 177 else "x") for i in range(1, 301)],
     "MODIFY v VARCHAR(5) NOT NULL", "id=177", "Data too long for column 'v'"),
    ("cn2", "(id INT PRIMARY KEY, v INT NOT NULL)", [(i, 300 if i in (5, 250) else i % 100) for i in range(1, 301)],
     "MODIFY v TINYINT NOT NULL", "id=5", "Out of range value for column 'v'"),
    ("cn3", "(a INT NOT NULL, b VARCHAR(8) NOT NULL, v INT NULL, PRIMARY KEY (a, b))",
     [(i, k, -1 if (i, k) == (120, "k") else i) for i in range(1, 151) for k in ("j", "k")],
     "MODIFY v INT UNSIGNED NULL", "a=120, b='k'", "Out of range value for column 'v'"),
])
def test_a_narrowing_modify_stops_the_copy_at_the_first_value_that_does_not_fit(
        sb, tmp_path, table, ddl, rows, alter, key, error):
    c = connect(sb)
    _table(c, table, ddl, rows)
    before = tables(c)
    want = _all(c, table)
    line = _refused(sb, tmp_path, table, alter)
    assert f"the row {key} of mig.{table} cannot be copied unchanged: {error}" in line, line
    assert "ghost and changelog dropped, original untouched: fix the row(s) or the ALTER" in line
    assert "zero dates" not in line
    assert tables(c) == before and _all(c, table) == want
    c.close()


def test_a_checksum_refusal_names_the_column_and_both_values(sb, tmp_path):
    """A change no CAST expresses (ZEROFILL: '5' becomes '00005') copies
    without a warning and the checksum refuses the cut-over: it said only
    'id=1 differs'."""
    c = connect(sb)
    _table(c, "cs1", "(id INT PRIMARY KEY, v INT NOT NULL)", [(i, i) for i in range(1, 51)])
    _, task = start_task(sb, tmp_path, table="cs1", chunk_size=100, alter="MODIFY v INT(5) ZEROFILL NOT NULL")
    finish(task)
    st = task.status()
    assert st.state == "failed" and "cut-over refused" in st.last_error, st.last_error
    assert "id=1 differs in column v: '1' in the original, '00001' in the ghost" in st.last_error, \
        st.last_error
    c.close()
