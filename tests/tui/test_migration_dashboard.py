"""Two configured migrations started from the dashboard run at once and both
show on its task list; Enter opens the migration screen."""

from dataclasses import replace

import pytest
from textual.widgets import DataTable

from console.config import TaskConfig
from console.engine.engine import Engine
from console.kinds.migration import MigrationOptions
from console.tui.app import ConsoleApp
from console.tui.screens.dashboard import DashboardScreen
from console.tui.screens.migration import MigrationScreen
from tests.integration.migration_helpers import DB, connect
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


async def test_two_configured_migrations_from_the_dashboard(sandbox, tmp_path):
    c = connect(sandbox, None)
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        for t in ("d1", "d2"):
            cur.execute(f"DROP TABLE IF EXISTS {DB}.{t}, {DB}.{t}_del, {DB}.{t}_gho, {DB}.{t}_ghc")
            cur.execute(f"CREATE TABLE {DB}.{t} (id INT PRIMARY KEY, v INT)")
            cur.executemany(f"INSERT INTO {DB}.{t} VALUES (%s, %s)", [(i, i) for i in range(1, 501)])
    tasks = {f"mig_{t}": TaskConfig(f"mig_{t}", "migration", "sandbox", False,
                                    MigrationOptions(database=DB, table=t, alter="ADD COLUMN w INT",
                                                     postpone_cut_over=True))
             for t in ("d1", "d2")}
    cfg = replace(sandbox.config, state_dir=tmp_path / "state", tasks=tasks,
                  ui=replace(sandbox.config.ui, refresh_interval=0.2))
    engine = Engine(cfg)
    app = ConsoleApp(engine, start_monitors=False)
    try:
        async with app.run_test(size=(180, 50)) as pilot:
            await pilot.pause()
            dash = app.screen
            assert isinstance(dash, DashboardScreen)
            table = dash.query_one("#tasks", DataTable)
            assert await wait_until(pilot, lambda: table.row_count == 2)
            table.focus()
            for row in range(2):
                table.move_cursor(row=row)
                await pilot.press("s")
                await pilot.pause(0.2)

            def phases():
                return {tid: str(table.get_cell(tid, "phase")) for tid in tasks if tid in table.rows}

            assert await wait_until(pilot, lambda: phases() == {"mig_d1": "postponed",
                                                                "mig_d2": "postponed"}), phases()
            table.move_cursor(row=0)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, MigrationScreen)
            for tid in tasks:
                engine.command(tid, "cut-over")
            assert await wait_until(pilot, lambda: all(engine.task(t).phase == "complete" for t in tasks))
    finally:
        engine.shutdown()
    with c.cursor() as cur:
        for t in ("d1", "d2"):
            cur.execute(f"SHOW COLUMNS FROM {DB}.{t}")
            assert [r[0] for r in cur.fetchall()] == ["id", "v", "w"]
    c.close()
