"""gh-ost's flags, same names and meaning (issue 16): --panic-on-warnings,
--include-triggers (with --trigger-suffix, --remove-trigger-suffix-if-exists),
--attempt-instant-ddl, --hooks-path.  Against the real sandbox."""

from __future__ import annotations

import pytest

from tests.integration.migration_helpers import cli, connect, migration_sandbox, tables
from tests.support.migration_load import table_rows

pytestmark = pytest.mark.integration

sb = migration_sandbox


def _table(c, name: str, ddl: str, rows: list[tuple]) -> None:
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}, {name}_gho, {name}_ghc, {name}_del")
        cur.execute(f"CREATE TABLE {name} {ddl} ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)


def _one_error_line(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("dbops-console")]
    assert len(errs) == 1, r.stderr
    return errs[0]


def test_panic_on_warnings_stops_a_copy_that_would_lose_a_row_to_a_new_unique_key(sb, tmp_path):
    c = connect(sb)
    rows = [(i, i) for i in range(1, 501)]
    rows[299] = (300, 17)                   # collides with id=17 on the new unique key
    _table(c, "pw1", "(id INT PRIMARY KEY, u INT NOT NULL)", rows)
    before, want = tables(c), table_rows(c, "pw1", ["id", "u"])
    r = cli(sb, "--table", "pw1", "--alter", "ADD UNIQUE KEY uu (u)", "--execute", "--chunk-size", "100",
            "--panic-on-warnings", "--state-dir", str(tmp_path))
    assert r.returncode == 2, r.stderr
    line = _one_error_line(r)
    assert "copy: the row id=300 of mig.pw1 would be lost: Duplicate entry '17' for key 'uu'" in line, line
    assert "--panic-on-warnings" in line and "ghost and changelog dropped, original untouched" in line
    assert tables(c) == before and table_rows(c, "pw1", ["id", "u"]) == want
    c.close()


def test_panic_on_warnings_lets_duplicates_the_apply_wrote_first_through(sb, tmp_path):
    """A duplicate on the chunking key is a row the binlog apply wrote
    first: no row is lost, the migration completes."""
    c = connect(sb)
    _table(c, "pw2", "(id INT PRIMARY KEY, u INT NOT NULL)", [(i, i) for i in range(1, 2001)])
    r = cli(sb, "--table", "pw2", "--alter", "ADD UNIQUE KEY uu (u)", "--execute", "--chunk-size", "100",
            "--panic-on-warnings", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    with c.cursor() as cur:
        cur.execute("SHOW CREATE TABLE pw2")
        assert "UNIQUE KEY `uu`" in cur.fetchone()[1]
    assert len(table_rows(c, "pw2", ["id", "u"])) == 2000
    c.close()
