"""Pilot test of the failover screen against a real sandbox: ranking shown,
`s` needs the cluster name typed, then the switchover runs and its steps show."""

from dataclasses import replace

import pytest

from console.engine.engine import Engine
from console.engine.failover.task import FailoverTask
from console.tui.app import ConsoleApp
from console.tui.screens.failover import FailoverScreen
from console.tui.widgets.confirm import ConfirmDialog
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


async def test_failover_screen_switchover_with_typed_confirmation(make_sandbox, tmp_path):
    sb = make_sandbox(replicas=2)
    cfg = replace(sb.config, state_dir=tmp_path / "state", ui=replace(sb.config.ui, refresh_interval=0.3))
    engine = Engine(cfg)
    task = FailoverTask(cfg.cluster("sandbox"), cfg.state_dir)
    engine.add_task(task)
    task.start()
    app = ConsoleApp(engine, start_monitors=False)
    try:
        async with app.run_test(size=(200, 50)) as pilot:
            app.push_screen(FailoverScreen(engine, task.task_id))
            await pilot.pause()
            screen = app.screen
            cands = screen.query_one("#fo-candidates")
            assert await wait_until(pilot, lambda: cands.row_count == 2, 10)
            assert "same dc local" in str(cands.get_cell_at((0, 3)))
            hosts = screen.query_one("#fo-hosts")
            assert await wait_until(pilot, lambda: hosts.row_count == 3, 5)
            tree = screen.query_one("#fo-tree")
            assert "node1 primary" in str(tree.root.children[0].label)
            assert len(tree.root.children[0].children) == 2
            # a wrong name does nothing
            await pilot.press("S")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press(*"wrong", "enter")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("escape")
            await pilot.pause()
            assert task.detail().last_report is None and not task.detail().recovering
            # the selected (first) candidate, confirmed by typing the cluster name
            target = screen.selected_candidate()
            await pilot.press("S")
            await pilot.pause()
            await pilot.press(*"sandbox", "enter")
            assert await wait_until(pilot, lambda: task.detail().last_report is not None, 30)
            rep = task.detail().last_report
            assert rep.outcome == "ok", rep.error
            assert rep.new_primary == target
            steps = screen.query_one("#fo-steps")
            assert await wait_until(pilot, lambda: steps.row_count >= 6, 5)
            names = [str(steps.get_cell_at((i, 2))) for i in range(steps.row_count)]
            assert "fence" in names and "promote" in names
            report = screen.query_one("#fo-report")
            assert await wait_until(pilot, lambda: "write block" in str(report.render()), 5)
    finally:
        engine.shutdown()
