"""Rows whose replayed statement is 16 MiB or more (a 0xFFFFFF-byte packet is
the protocol's limit: bigger statements go as several packets): a restore
past them gives byte-exact content."""

import hashlib
import random

import pytest

from console.engine.backup.restore import restore
from tests.support.backup_helpers import running_backup, take_snapshot, wait_backed_up
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DB = "bk_big"
MiB = 1 << 20


def test_restore_past_rows_over_16_mib_is_byte_exact(sandbox, tmp_path):
    rng = random.Random(12)
    # sizes around the limit: the row event's base64 statement is 4/3 of the
    # row (an UPDATE with the full row image carries it twice); one statement
    # of exactly 0xFFFFFF-1 bytes would need an empty last packet
    rows = {1: rng.randbytes(12 * MiB), 2: rng.randbytes(20 * MiB), 3: rng.randbytes(100)}
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}",
                f"CREATE TABLE IF NOT EXISTS {DB}.t (id INT PRIMARY KEY, b LONGBLOB)",
                f"DELETE FROM {DB}.t")
    with running_backup(sandbox, tmp_path, start_from="now") as (engine, task):
        take_snapshot(engine, task, "mariadb-dump")
        c = sandbox.connect("node1", max_allowed_packet=64 * MiB)
        try:
            with c.cursor() as cur:
                for i, b in rows.items():
                    cur.execute(f"INSERT INTO {DB}.t VALUES (%s, %s)", (i, b))
                rows[3] = rng.randbytes(13 * MiB)          # a 26 MiB before+after image
                cur.execute(f"UPDATE {DB}.t SET b = %s WHERE id = 3", (rows[3],))
        finally:
            c.close()
        gtid = wait_backed_up(sandbox, task)
    r = restore(tmp_path / "store", tmp_path / "restored", port=free_port_block(1), to_gtid=gtid,
                keep_running=True)
    try:
        c = r.server.connect()
        try:
            with c.cursor() as cur:
                cur.execute(f"SELECT id, LENGTH(b), SHA2(b, 256) FROM {DB}.t ORDER BY id")
                got = cur.fetchall()
        finally:
            c.close()
    finally:
        r.stop()
    assert r.restored_gtid == gtid and r.transactions >= 4
    assert got == tuple((i, len(b), hashlib.sha256(b).hexdigest()) for i, b in sorted(rows.items()))
