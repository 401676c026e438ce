"""The host drill-down (issue 15, item 4) on the real sandbox: Enter on a
host opens it; a metadata-lock wait shows who blocks whom (an ALTER behind
an open transaction: what stalls a cut-over); `/` filters the processlist;
`k` kills the waiting statement's query after the session id is typed;
the replica status and the graphs with their scale are there."""

import threading

import pymysql
import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from console.engine.engine import Engine
from console.tui.app import ConsoleApp
from console.tui.screens.host import HostScreen, rate_series
from console.tui.widgets.confirm import ConfirmDialog
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


def test_rate_series_and_scale():
    samples = [(0.0, {"Questions": 10}), (2.0, {"Questions": 30}), (3.0, {"Questions": 30})]
    assert rate_series(samples, "Questions") == [10.0, 0.0]
    assert rate_series(samples[:1], "Questions") == []


def text_of(app, sel) -> str:
    return str(app.screen.query_one(sel, Static).render())


async def test_host_drill_down_locks_filter_kill(sandbox, tmp_path):
    from dataclasses import replace

    h = sandbox
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS hostscreen",
          "CREATE TABLE IF NOT EXISTS hostscreen.t (id INT PRIMARY KEY)",
          "REPLACE INTO hostscreen.t VALUES (1)")
    cfg = replace(h.config, state_dir=tmp_path / "state")
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    holder = pymysql.connect(host="127.0.0.1", port=h.port("node1"), user="dbops",
                             password=h.ops_password, autocommit=False)
    alter_error: list[Exception] = []

    def alter():
        c = pymysql.connect(host="127.0.0.1", port=h.port("node1"), user="dbops",
                            password=h.ops_password, autocommit=True)
        try:
            with c.cursor() as cur:
                cur.execute("ALTER TABLE hostscreen.t ADD COLUMN waits_here INT")
        except pymysql.MySQLError as e:
            alter_error.append(e)
        finally:
            c.close()

    try:
        with holder.cursor() as cur:  # an open transaction holds the table's metadata lock
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM hostscreen.t")
            cur.execute("SELECT CONNECTION_ID()")
            holder_id = cur.fetchone()[0]
        waiter = threading.Thread(target=alter, daemon=True)
        waiter.start()
        async with app.run_test(size=(160, 45)) as pilot:
            hosts = app.screen.query_one("#hosts", DataTable)
            key = f"sandbox/127.0.0.1:{h.port('node1')}"
            assert await wait_until(pilot, lambda: key in hosts.rows, 30)
            hosts.focus()
            hosts.move_cursor(row=hosts.get_row_index(key))
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, HostScreen), 10)
            table = app.screen.query_one("#host-processlist", DataTable)
            assert await wait_until(pilot, lambda: any(
                "ALTER TABLE hostscreen.t" in str(table.get_row(k)[-1]) for k in table.rows), 30)
            # locks: the ALTER waits, the open transaction blocks it
            app.screen.query_one("#host-tabs", TabbedContent).active = "tab-locks"
            assert await wait_until(pilot, lambda: f"blocked by session {holder_id}"
                                    in text_of(app, "#host-locks"), 30), text_of(app, "#host-locks")
            assert "open transaction" in text_of(app, "#host-locks")
            # filter, then kill the ALTER's query (the session id typed)
            app.screen.query_one("#host-tabs", TabbedContent).active = "tab-processlist"
            await pilot.pause(0.3)
            await pilot.press("slash")
            await pilot.press(*"ALTER")
            assert await wait_until(pilot, lambda: table.row_count == 1, 10)
            alter_id = table.get_row_at(0)[0]
            table.focus()
            await pilot.press("k")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 10)
            await pilot.press(*"99999", "enter")  # a wrong id does not kill
            await pilot.pause(0.3)
            assert isinstance(app.screen, ConfirmDialog) and waiter.is_alive()
            app.screen.query_one(Input).value = ""
            await pilot.press(*alter_id, "enter")
            waiter.join(30)
            assert not waiter.is_alive() and alter_error, "the ALTER's query was killed"
            assert "interrupted" in str(alter_error[0]).lower()
            audit = [e for _, e in engine.events_since(0) if e.action == "kill-query"]
            assert audit and audit[-1].outcome == "ok" and audit[-1].target.endswith(f"/{alter_id}")
            # replica status (node1: not a replica) and the graphs' scale
            app.screen.query_one("#host-tabs", TabbedContent).active = "tab-status"
            assert await wait_until(pilot, lambda: "queries" in text_of(app, "#host-qps-label")
                                    and "max" in text_of(app, "#host-qps-label"), 30)
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: not isinstance(app.screen, HostScreen), 10)
    finally:
        holder.rollback()
        holder.close()
        engine.shutdown()
