"""Pilot test of the migration screen against a real sandbox: progress,
throttle and chunk-size keys, the typed confirmations of panic (cancelled)
and cut-over (confirmed), all through the engine."""

from dataclasses import replace

import pytest

from console.engine.engine import Engine
from console.engine.migration.task import MigrationTask
from console.kinds.migration import MigrationOptions
from console.tui.app import ConsoleApp
from console.tui.screens.migration import MigrationScreen
from console.tui.screens.registry import screen_for
from console.tui.widgets.confirm import ConfirmDialog
from tests.integration.migration_helpers import DB, connect, endpoint
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


def text(screen, wid):
    return str(screen.query_one(f"#mig-{wid}").render())


async def test_migration_screen_actions(sandbox, tmp_path):
    c = connect(sandbox, None)
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"DROP TABLE IF EXISTS {DB}.ui1, {DB}.ui1_del, {DB}.ui1_gho, {DB}.ui1_ghc")
        cur.execute(f"CREATE TABLE {DB}.ui1 (id INT PRIMARY KEY, v INT)")
        cur.executemany(f"INSERT INTO {DB}.ui1 VALUES (%s, %s)", [(i, i) for i in range(1, 3001)])
    cfg = replace(sandbox.config, state_dir=tmp_path / "state", ui=replace(sandbox.config.ui, refresh_interval=0.2))
    engine = Engine(cfg)
    task = MigrationTask("mig-ui1", endpoint(sandbox),
                         MigrationOptions(database=DB, table="ui1", alter="ADD COLUMN w INT",
                                          chunk_size=100, postpone_cut_over=True),
                         engine.state.task_dir("mig-ui1"))
    engine.add_task(task)
    engine.start("mig-ui1")
    app = ConsoleApp(engine, start_monitors=False)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            app.push_screen(screen_for(engine, "mig-ui1"))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, MigrationScreen)
            assert await wait_until(pilot, lambda: "postponed" in text(screen, "title"))
            assert "rows 3,000 / " in text(screen, "rows")
            await pilot.press("t")
            assert await wait_until(pilot, lambda: "manual throttle" in text(screen, "throttle"))
            await pilot.press("n")
            assert await wait_until(pilot, lambda: text(screen, "throttle") == "throttle: no")
            await pilot.press("plus")
            assert await wait_until(pilot, lambda: task.chunk_size == 200)
            await pilot.press("minus")
            assert await wait_until(pilot, lambda: task.chunk_size == 100)
            await pilot.press("P")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("escape")          # cancelled: nothing happens
            await pilot.pause(0.3)
            assert task.state == "running" and task.phase == "postponed"
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            for ch in "ui1":
                await pilot.press(ch)
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: task.phase == "complete", 60)
            assert await wait_until(pilot, lambda: "complete" in text(screen, "title"))
    finally:
        engine.shutdown()
    with c.cursor() as cur:
        cur.execute(f"SHOW COLUMNS FROM {DB}.ui1")
        assert [r[0] for r in cur.fetchall()] == ["id", "v", "w"]
    c.close()
