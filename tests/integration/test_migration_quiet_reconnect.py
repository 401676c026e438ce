"""The migration's binlog stream is cut (its dump thread killed on the
server) and reconnects (issue 12 review, item 5): python-mysql-replication's
own reconnect notice must not reach the operator; only our lines do, and
the migration completes with the rows written meanwhile."""

from __future__ import annotations

import pytest

from tests.support.backup_helpers import wait_for
from tests.support.foreground import Cli

pytestmark = pytest.mark.integration

DB, TABLE = "quiet_mig", "t"


def dump_threads(h) -> list[int]:
    return [int(r[0]) for r in h.sql("node1", "SELECT ID FROM information_schema.PROCESSLIST "
                                              "WHERE COMMAND LIKE 'Binlog Dump%' AND USER = 'dbops'")]


def test_stream_reconnect_prints_only_our_lines(sandbox, tmp_path):
    h = sandbox
    h.sql("node1", f"CREATE DATABASE IF NOT EXISTS {DB}", f"DROP TABLE IF EXISTS {DB}.{TABLE}",
          f"CREATE TABLE {DB}.{TABLE} (id INT PRIMARY KEY, v INT)",
          f"INSERT INTO {DB}.{TABLE} VALUES " + ",".join(f"({i}, {i})" for i in range(1, 101)))
    flag = tmp_path / "postpone.flag"
    flag.touch()
    before = set(dump_threads(h))
    cli = Cli("migrate", "--host", "127.0.0.1", "--port", str(h.primary_port), "--user", "dbops",
              "--password-file", str(h.sb.secret_path("dbops")), "--database", DB, "--table", TABLE,
              "--alter", "ADD COLUMN z INT", "--execute", "--state-dir", str(tmp_path / "state"),
              "--postpone-cut-over-flag-file", str(flag), "--status-interval", "0.5",
              "--initially-drop-ghost-table", "--initially-drop-old-table")
    try:
        wait_for(lambda: any(f"{DB}.{TABLE} postponed:" in ln for ln in cli.err) or cli.p.poll() is not None,
                 timeout=120, what="the postponed cut-over")
        ours = [t for t in dump_threads(h) if t not in before]
        assert ours, "no binlog dump of the migration on the server"
        for t in ours:
            h.sql("node1", f"KILL CONNECTION {t}")
        h.sql("node1", f"INSERT INTO {DB}.{TABLE} VALUES (1000, 1000), (1001, 1001)",
              f"UPDATE {DB}.{TABLE} SET v = -1 WHERE id = 1")
        wait_for(lambda: [t for t in dump_threads(h) if t not in before and t not in ours],
                 timeout=60, what="the stream to reconnect")
        flag.unlink()
        rc = cli.p.wait(300)
    finally:
        if cli.p.poll() is None:
            cli.p.kill()
            cli.p.wait()
    for t in cli._threads:
        t.join(10)
    text = "\n".join(cli.out + cli.err)
    assert rc == 0, text
    assert "Re-request" not in text and "OperationalError" not in text, text
    assert any("complete in" in ln for ln in cli.err), text
    rows = h.sql("node1", f"SELECT id, v, z FROM {DB}.{TABLE} WHERE id IN (1, 1000, 1001) ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, -1, None), (1000, 1000, None), (1001, 1001, None)]
