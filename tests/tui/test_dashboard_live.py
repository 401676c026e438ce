"""Pilot tests of the dashboard against a real sandbox."""

from dataclasses import replace

import pytest

from console.engine.engine import Engine
from console.tui.app import ConsoleApp
from console.tui.screens.dashboard import DashboardScreen
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.help import HelpScreen
from console.tui.widgets.topology import HostTable
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


def cell_text(table, row, col) -> str:
    return str(table.get_cell(row, col))


async def test_dashboard_shows_stopped_replica_unreachable(make_sandbox, tmp_path):
    sb = make_sandbox(replicas=2)
    interval = 0.5
    cfg = replace(sb.config, state_dir=tmp_path / "state", ui=replace(sb.config.ui, refresh_interval=interval))
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(180, 45)) as pilot:
            table = app.screen.query_one(HostTable)
            key = f"sandbox/127.0.0.1:{sb.port('node3')}"
            assert await wait_until(pilot, lambda: key in table.rows and "up" in cell_text(table, key, "health"), 15)
            assert cell_text(table, f"sandbox/127.0.0.1:{sb.port('node1')}", "role") == "primary"
            sb.sb.stop_node("node3")
            # two refresh intervals (+ the time one probe and one screen refresh take)
            took = await wait_until(pilot, lambda: "UNREACHABLE" in cell_text(table, key, "health"), 2 * interval + 1.5)
            assert took is not None, "node3 not shown unreachable in time"
            assert cell_text(table, key, "error")  # the error is shown
            tree = app.screen.query_one("#tree-sandbox")
            labels = []

            def walk(n):
                labels.append(str(n.label))
                for c in n.children:
                    walk(c)

            walk(tree.root)
            assert any("node3" in lb and "unreachable" in lb for lb in labels)
    finally:
        engine.shutdown()


async def test_keys_help_and_refresh_interval(sandbox, tmp_path):
    cfg = replace(sandbox.config, state_dir=tmp_path / "state")
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(180, 45)) as pilot:
            await pilot.pause(0.3)
            assert isinstance(app.screen, DashboardScreen)
            assert app.screen.focused.id == "tasks"  # the operator acts on the task list
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert app.screen.focused.id == "tasks"
            before = app.refresh_interval
            await pilot.press("minus")
            await pilot.pause(0.1)
            assert app.refresh_interval == before * 2
            assert engine.task("monitor:sandbox").interval == before * 2
            await pilot.press("plus")
            await pilot.pause(0.1)
            assert app.refresh_interval == before
    finally:
        engine.shutdown()


async def test_confirm_dialog_needs_the_exact_name():
    from textual.app import App

    results = []

    class Host(App):
        def on_mount(self):
            self.push_screen(ConfirmDialog("Failover", "Promote a replica?", "sandbox"), results.append)

    async with Host().run_test() as pilot:
        await pilot.pause()
        await pilot.press(*"sandbx")
        await pilot.press("enter")
        await pilot.pause()
        assert results == []  # wrong name: still open
        for _ in range(6):
            await pilot.press("backspace")
        await pilot.press(*"sandbox", "enter")
        await pilot.pause()
        assert results == [True]

    results.clear()
    async with Host().run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert results == [False]


async def test_refresh_key_pressed_fast_keeps_the_monitor_sane(sandbox, tmp_path, monkeypatch):
    """Issue 12, item 21: `r` 15 times, 0.2 s apart, while the monitor's own
    loop refreshes: refreshes never share a connection, no phantom `:0`
    primary appears, and the monitor and its heartbeat keep going."""
    from tests.integration.test_monitor import wait_heartbeat_moves
    from tests.support.probe_tracking import track_probes

    overlaps = track_probes(monkeypatch)
    cfg = replace(sandbox.config, state_dir=tmp_path / "state", ui=replace(sandbox.config.ui, refresh_interval=0.2))
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(180, 45)) as pilot:
            table = app.screen.query_one(HostTable)
            primary = f"sandbox/127.0.0.1:{sandbox.primary_port}"
            assert await wait_until(pilot, lambda: primary in table.rows, 15)
            mon = engine.task("monitor:sandbox")
            for _ in range(15):
                await pilot.press("r")
                await pilot.pause(0.2)
            rounds = mon.status().detail.rounds
            assert await wait_until(pilot, lambda: mon.status().detail.rounds >= rounds + 3, 20)
            await pilot.pause(0.5)  # one more screen refresh from the latest snapshot
            assert not overlaps, f"connections used by two threads at once: {overlaps}"
            assert mon.state == "running", mon.status().last_error
            keys = [str(k.value) for k in table.rows]
            assert len(keys) == 3 and not any(k.endswith(":0") for k in keys), keys
            assert cell_text(table, primary, "role") == "primary"
            topo = mon.status().detail.topology
            assert topo.primary is not None and topo.primary.address == primary.split("/", 1)[1]
            assert wait_heartbeat_moves(sandbox), "the heartbeat stopped"
    finally:
        engine.shutdown()
