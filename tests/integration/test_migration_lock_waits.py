"""A copy chunk that meets a row lock of the original gives its turn back
(copy.COPY_LOCK_WAIT_SECONDS): the binlog apply goes on meanwhile.  Before,
the chunk waited for the lock inside its turn for innodb_lock_wait_timeout
(50 s) with the apply queued behind it, and with a locked checksum pass and
a writer in between that was a cycle InnoDB cannot see: every writer of the
range stalled for 50 s (sysbench p95 98 s in the migration bench)."""

from __future__ import annotations

import time

import pytest

from tests.integration.migration_helpers import (
    connect,
    finish,
    migration_sandbox,
    start_task,
    wait_phase,
)

pytestmark = pytest.mark.integration

sb = migration_sandbox     # the module's sandbox fixture


def test_the_apply_goes_on_while_a_copy_chunk_waits_for_a_row_lock(sb, tmp_path):
    c = connect(sb)
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS lw")
        cur.execute("CREATE TABLE lw (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
        cur.execute("INSERT INTO lw (v) SELECT seq FROM seq_1_to_5000")
    holder = connect(sb)
    holder.autocommit(False)
    with holder.cursor() as cur:   # a writer's open transaction on a row of the first chunk
        cur.execute("SELECT v FROM lw WHERE id = 10 FOR UPDATE")
    try:
        _, task = start_task(sb, tmp_path, table="lw", chunk_size=1000, alter="ADD COLUMN w INT NULL")
        wait_phase(task, ("copying",))
        assert task.copier.turns.needed        # (MariaDB's autoinc lock mode 1: chunks and batches take turns)
        time.sleep(1.5)
        assert task.copier.rows_copied == 0    # the first chunk waits for the row
        with c.cursor() as cur:                # changes the apply must bring to the ghost meanwhile
            for i in range(20):
                cur.execute("INSERT INTO lw (id, v) VALUES (%s, %s)", (9000 + i, i))
        deadline = time.monotonic() + 15
        while task.applier.events_applied < 20:
            assert time.monotonic() < deadline, (
                f"the apply waited behind the blocked chunk: {task.applier.events_applied} events applied")
            time.sleep(0.1)
        assert task.copier.rows_copied == 0    # still blocked: the apply did not wait for it
    finally:
        holder.rollback()
        holder.close()
    wait_phase(task, ("cutting-over", "cleaning-up", "complete"), timeout=120)
    finish(task)
    st = task.status()
    assert st.state == "done" and st.phase == "complete", st.last_error
    with c.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(v) FROM lw")
        assert cur.fetchone() == (5020, sum(range(1, 5001)) + sum(range(20)))
    c.close()
