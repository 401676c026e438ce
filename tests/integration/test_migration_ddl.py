"""DDL detection during a migration, against the real sandbox: statements
that only name an object like the table (an event, a trigger, a table of
another database, the DROP EVENT MariaDB logs when an expiring event is
dropped) must not abort it; DDL on the table itself must, however it is
spelled."""

from __future__ import annotations

import time

import pytest

from tests.integration.migration_helpers import (
    DB,
    columns,
    connect,
    finish,
    start_task,
    tables,
    wait_phase,
    with_databases,
)
from tests.support.migration_load import table_rows

pytestmark = pytest.mark.integration

OTHER = "mig_other"


@pytest.fixture(scope="module")
def sb(sandbox):
    return with_databases(sandbox, OTHER)


def _table(c, name: str, n: int = 300) -> None:
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{name}`, `{name}_del`")
        cur.execute(f"CREATE TABLE `{name}` (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.executemany(f"INSERT INTO `{name}` VALUES (%s, %s)", [(i, i) for i in range(1, n + 1)])


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_statements_naming_other_objects_like_the_table_do_not_abort(sb, tmp_path):
    """ALTER EVENT dd DISABLE, DROP EVENT dd, DROP TRIGGER dd, DROP TABLE
    mig_other.dd (from the migration's database and from the other one),
    and the DROP EVENT MariaDB logs itself when an ON COMPLETION NOT
    PRESERVE event named dd expires: each counted as DDL on mig.dd and
    aborted a healthy migration.  It must complete, content equal."""
    c = connect(sb)
    _table(c, "dd")
    with c.cursor() as cur:
        cur.execute("DROP EVENT IF EXISTS dd")
        cur.execute("DROP TABLE IF EXISTS dd_log, dd_trig")
        cur.execute(f"DROP TABLE IF EXISTS {OTHER}.dd_child, {OTHER}.dd_child2")
        cur.execute("CREATE TABLE dd_log (n INT) ENGINE=InnoDB")
        cur.execute("CREATE TABLE dd_trig (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
        cur.execute("CREATE TRIGGER dd BEFORE INSERT ON dd_trig FOR EACH ROW SET NEW.v = 1")
        cur.execute("CREATE EVENT dd ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO dd_log VALUES (0)")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {OTHER}.dd (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("SELECT @@global.event_scheduler")
        scheduler = cur.fetchone()[0]
    _, task = start_task(sb, tmp_path, table="dd", chunk_size=100, postpone_cut_over=True,
                         alter="ADD COLUMN z INT NULL")
    wait_phase(task, ("postponed",))
    other = connect(sb, OTHER)
    try:
        with c.cursor() as cur:
            cur.execute("ALTER EVENT dd DISABLE")
            cur.execute("ALTER EVENT `dd` COMMENT 'still an event'")
            cur.execute("DROP EVENT dd")
            cur.execute("DROP TRIGGER /* not a table */ `dd`")
            cur.execute(f"DROP TABLE {OTHER}.dd")
            cur.execute(f"CREATE TABLE {OTHER}.dd (id INT PRIMARY KEY) ENGINE=InnoDB")
        with other.cursor() as cur:              # default database: the other one
            cur.execute("DROP TABLE dd")
            cur.execute("CREATE TABLE dd (id INT PRIMARY KEY) ENGINE=InnoDB")
            cur.execute("TRUNCATE TABLE dd")
            cur.execute("ALTER TABLE dd ADD COLUMN x INT")
            # indexes, triggers and foreign keys of other tables (the child
            # references mig_other.dd: InnoDB resolves it in the child's database)
            cur.execute("CREATE INDEX dd_x ON dd (x)")
            cur.execute("CREATE TABLE dd_child (id INT PRIMARY KEY, p INT, "
                        "FOREIGN KEY (p) REFERENCES dd (id)) ENGINE=InnoDB")
            cur.execute(f"CREATE TABLE {OTHER}.dd_child2 (id INT PRIMARY KEY, p INT) ENGINE=InnoDB")
            cur.execute(f"ALTER TABLE {OTHER}.dd_child2 ADD FOREIGN KEY (p) REFERENCES dd (id)")
        with c.cursor() as cur:
            cur.execute("CREATE TRIGGER dd_x BEFORE UPDATE ON dd_trig FOR EACH ROW SET NEW.v = 2")
            cur.execute("CREATE INDEX dd ON dd_log (n)")
            cur.execute("DROP INDEX dd ON dd_log")
        with c.cursor() as cur:                  # an event named like the table expires
            cur.execute("SET GLOBAL event_scheduler = ON")
            cur.execute("CREATE EVENT dd ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 SECOND "
                        "ON COMPLETION NOT PRESERVE DO INSERT INTO mig.dd_log VALUES (1)")

        def expired():
            with c.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
                            "AND EVENT_NAME = 'dd'", (DB,))
                return cur.fetchone()[0] == 0
        _wait(expired)
    finally:
        with c.cursor() as cur:
            cur.execute(f"SET GLOBAL event_scheduler = {scheduler}")
        other.close()
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM dd_log WHERE n = 1")
        assert cur.fetchone()[0] == 1          # the event ran (and was dropped by the server)
        cur.execute("UPDATE dd SET v = -1 WHERE id = 5")
    assert task.state == "running", task.status().last_error
    task.engine.command(task.task_id, "cut-over")
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    assert table_rows(c, "dd", ["id", "v"]) == table_rows(c, "dd_del", ["id", "v"])
    assert (5, -1) in table_rows(c, "dd", ["id", "v"])
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE {OTHER}.dd_child, {OTHER}.dd_child2")
    c.close()


@pytest.mark.parametrize("table, statement, default_db", [
    ("dd1", "ALTER TABLE /* why not */ `dd1` ADD COLUMN other INT", DB),
    ("dd2", "RENAME TABLE dd2 TO dd2_renamed", DB),
    ("dd3", f"DROP TABLE `{DB}` . `dd3`", OTHER),
    ("dd4", "TRUNCATE dd4", DB),
    ("dd5", "-- a comment\nTRUNCATE TABLE `mig`.`dd5`", None),
    ("dd6", "alter online table mig.dd6 add column other int", OTHER),
    # missed before: an index or a trigger added to the table was lost at the cut-over
    ("dd7", "CREATE INDEX dd7_v ON dd7 (v)", DB),
    ("dd8", "CREATE TRIGGER mig.dd8_bi BEFORE INSERT ON dd8 FOR EACH ROW SET NEW.v = 1", OTHER),
    ("dd9", "DROP INDEX `PRIMARY` ON dd9", DB),
])
def test_ddl_on_the_table_itself_aborts(sb, tmp_path, table, statement, default_db):
    c = connect(sb)
    _table(c, table)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}_renamed")
    _, task = start_task(sb, tmp_path, table=table, chunk_size=100, postpone_cut_over=True,
                         alter="ADD COLUMN z INT NULL")
    wait_phase(task, ("postponed",))
    d = connect(sb, default_db)
    with d.cursor() as cur:
        cur.execute(statement)
    d.close()
    finish(task, 60)
    st = task.status()
    assert st.state == "failed" and f"DDL on {DB}.{table} during the migration" in st.last_error, st.last_error
    assert f"{table}_del" not in tables(c)
    if "RENAME" not in statement and "DROP" not in statement:
        assert columns(c, table)[:2] == ["id", "v"]
    c.close()


@pytest.mark.parametrize("table, statements, expect", [
    # a new child's foreign key would follow the original to <t>_del
    ("df1", ["CREATE TABLE df1_child (id INT PRIMARY KEY, p INT, "
             "FOREIGN KEY (p) REFERENCES df1 (id)) ENGINE=InnoDB"], "a foreign key referencing mig.df1"),
    ("df2", ["CREATE TABLE df2_child (id INT PRIMARY KEY, p INT) ENGINE=InnoDB",
             "ALTER TABLE df2_child ADD CONSTRAINT fk_df2 FOREIGN KEY (p) REFERENCES df2 (id)"],
     "a foreign key referencing mig.df2"),
    # the migration's own tables
    ("df3", ["ALTER TABLE df3_gho ADD COLUMN extra INT NULL"], "DDL on the migration's own table mig.df3_gho"),
    ("df4", ["TRUNCATE TABLE df4_gho"], "DDL on the migration's own table mig.df4_gho"),
    ("df5", ["CREATE TABLE df5_del (id INT) ENGINE=InnoDB"], "DDL on the migration's own table mig.df5_del"),
    ("df6", ["CREATE INDEX df6_gho_v ON df6_gho (v)"], "DDL on the migration's own table mig.df6_gho"),
])
def test_ddl_whose_effect_the_cut_over_would_lose_aborts(sb, tmp_path, table, statements, expect):
    """CREATE INDEX / CREATE TRIGGER on the table, a new foreign key that
    references it, and DDL on the migration's own tables went unseen: the
    cut-over lost their effect (or swapped in a ghost someone changed)."""
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}_child")
    _table(c, table)
    _, task = start_task(sb, tmp_path, table=table, chunk_size=100, postpone_cut_over=True,
                         alter="ADD COLUMN z INT NULL")
    wait_phase(task, ("postponed",))
    with c.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
    finish(task, 60)
    st = task.status()
    assert st.state == "failed" and st.last_error.startswith(f"{expect} during the migration ("), \
        st.last_error
    assert statements[-1].split("(")[0].strip() in st.last_error      # names the statement
    assert "\n" not in st.last_error and "original untouched" in st.last_error
    assert columns(c, table)[:2] == ["id", "v"] and f"{table}_del" not in tables(c) or table == "df5"
    with c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}_child, {table}_del")
    c.close()
