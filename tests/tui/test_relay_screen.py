"""Pilot tests of the relay screen against a real sandbox."""

from dataclasses import replace

import pytest
from textual.widgets import DataTable

from console.engine.engine import Engine
from console.engine.relay.store import RelayStore
from console.mysql import gtid as G
from console.tui.app import ConsoleApp
from console.tui.screens.relay import RelayScreen, TargetPicker
from console.tui.widgets.confirm import ConfirmDialog
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


def text(screen, wid) -> str:
    return str(screen.query_one(wid).render())


async def test_relay_screen_positions_actions_and_switch(sandbox, tmp_path):
    h = sandbox
    cfg = replace(h.config, state_dir=tmp_path / "state", ui=replace(h.config.ui, refresh_interval=0.3))
    tc = cfg.task("sandbox-relay")
    tc = replace(tc, options=replace(tc.options, relay_dir=tmp_path / "relay", heartbeat=0.5))
    cfg = replace(cfg, tasks={**cfg.tasks, "sandbox-relay": tc})
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            # the configured relay task is on the dashboard's task list: start it, open it
            table = app.screen.query_one("#tasks", DataTable)
            assert await wait_until(pilot, lambda: "sandbox-relay" in table.rows, 10)
            assert str(table.get_cell("sandbox-relay", "kind")) == "relay"
            table.focus()
            table.move_cursor(row=table.get_row_index("sandbox-relay"))
            await pilot.press("s")
            assert await wait_until(pilot, lambda: any(
                t.task_id == "sandbox-relay" and t.state == "running" for t in engine.tasks()), 10)
            task = engine.task("sandbox-relay")
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, RelayScreen), 5)
            screen = app.screen
            # the console's monitor writes heartbeats on the primary: its GTID keeps moving
            gtid = G.parse(h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0], G.MARIADB)
            assert await wait_until(pilot, lambda: task.meta is not None and G.parse(
                task.meta.gtid, G.MARIADB).contains(gtid), 20)
            assert await wait_until(pilot, lambda: task.meta.gtid.split("-")[0] in text(screen, "#relayed")
                                    and f"{task.meta.file}:" in text(screen, "#relayed"), 5)
            assert await wait_until(pilot, lambda: "caught up" in text(screen, "#gauge")
                                    or "behind" in text(screen, "#gauge"), 10)
            assert screen.query_one("#upstream").parent.border_title == "Upstream"
            assert "node1" in text(screen, "#upstream")
            assert "MB/s" in text(screen, "#rates") and "retries" in text(screen, "#rates")

            await pilot.press("p")
            assert await wait_until(pilot, lambda: task.state == "paused", 5)
            await pilot.press("u")
            assert await wait_until(pilot, lambda: task.state == "running", 5)

            await pilot.press("g")                       # purge needs the typed name
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 5)
            await pilot.press("escape")
            assert isinstance(app.screen, RelayScreen)

            await pilot.press("m")                       # switch-master: pick node2, confirm
            assert await wait_until(pilot, lambda: isinstance(app.screen, TargetPicker), 5)
            picker = app.screen
            names = [o.id for o in picker.query_one("OptionList")._options]
            assert "node2" in names and "node1" not in names
            picker.dismiss("node2")
            assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), 5)
            for ch in "sandbox-relay":
                await pilot.press(ch)
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: "node2" in text(screen, "#upstream")
                                    and len(RelayStore(tmp_path / "relay").subdirs()) == 2, 20)
    finally:
        engine.shutdown()
    audit = (tmp_path / "state" / "audit.log").read_text()
    assert '"action": "pause"' in audit and '"action": "switch-master"' in audit
