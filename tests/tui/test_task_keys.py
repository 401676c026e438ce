"""Pilot tests of the task screens' keys and of what they show when a task
is not running (fixed data: no server)."""

from dataclasses import replace

from console.mysql.mariadbd import port_free
from console.tui.widgets.ask import AskDialog
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.message import MessageDialog
from console.tui.widgets.restore_dialog import RestoreDialog
from tests.tui.fixed_tasks import FixedTask
from tests.tui.screens_fixed import console

SIZE = (120, 40)


def text(screen, wid) -> str:
    return str(screen.query_one(wid).render())


async def test_failover_auto_asks_first(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("failover:prod")
    async with app.run_test(size=SIZE) as pilot:
        app.open_task("failover:prod")
        await pilot.pause(0.2)
        await pilot.press("o")
        assert isinstance(app.screen, ConfirmDialog) and "ON" in text(app.screen, "#confirm-message")
        await pilot.press("escape")                     # cancelled: nothing sent
        await pilot.pause(0.2)
        assert task.sent == []
        await pilot.press("o", *"prod", "enter")
        await pilot.pause(0.3)
        assert task.sent == [("auto", {"on": True})]
        assert "ON" in text(app.screen, "#fo-verdict")
        await pilot.press("S")                          # switchover: the cluster name typed
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press(*"prod", "enter")
        await pilot.pause(0.3)
        assert task.sent[-1] == ("switchover", {"to": "127.0.0.1:3307"})  # the engine took the confirm


async def test_rerunning_a_finished_task_asks_first(tmp_path):
    app, engine = console(tmp_path)
    engine.add_task(FixedTask("old-mig", "migration", None, state="done"))
    started = []
    engine.start_declared = lambda name, actor="operator": started.append(name)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        tasks = app.screen.query_one("#tasks")
        tasks.move_cursor(row=tasks.get_row_index("old-mig"))
        await pilot.press("s")
        assert isinstance(app.screen, AskDialog)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert started == []
        await pilot.press("s")
        await pilot.press("y")
        await pilot.pause(0.3)
        assert started == ["old-mig"]
        tasks.move_cursor(row=tasks.get_row_index("custom-1"))  # paused: no question
        await pilot.press("s")
        await pilot.pause(0.3)
        assert started == ["old-mig", "custom-1"]


async def test_backup_keys_and_restore_result(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("backup-a")
    async with app.run_test(size=SIZE) as pilot:
        app.open_task("backup-a")
        await pilot.pause(0.2)
        await pilot.press("b")
        await pilot.pause(0.2)
        assert task.sent == [("snapshot-now", {})]
        await pilot.press("R")
        await pilot.pause(0.2)
        dlg = app.screen
        assert isinstance(dlg, RestoreDialog)
        port = int(dlg.query_one("#restore-port").value)
        assert port_free(port)                          # a free port is proposed
        dlg.query_one("#restore-point").value = "0-1-1230"
        dlg.query_one("#restore-dir").value = str(tmp_path / "restored")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press(*str(tmp_path / "restored"), "enter")
        await pilot.pause(0.5)
        assert isinstance(app.screen, MessageDialog)
        assert f"127.0.0.1:{port}" in text(app.screen, "#confirm-message")
        assert task.sent[-1][0] == "restore" and task.sent[-1][1]["port"] == port


async def test_migration_keys_and_a_stopped_migration(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("mig-orders")
    async with app.run_test(size=SIZE) as pilot:
        app.open_task("mig-orders")
        await pilot.pause(0.2)
        screen = app.screen
        assert "ETA 1m00s" in text(screen, "#mig-head") and "3ms" in text(screen, "#mig-apply")
        await pilot.press("t", "n", "plus")
        await pilot.pause(0.3)
        assert [n for n, _ in task.sent] == ["throttle", "no-throttle", "set"]
        assert task.sent[-1][1] == {"setting": "chunk-size", "value": "2000"}
        await pilot.press("P")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press(*"orders", "enter")
        await pilot.pause(0.3)
        assert task.sent[-1][0] == "panic"
        task.fixed.update(state="failed", phase="panicked")
        screen.refresh_view()
        await pilot.pause(0.1)
        assert "ETA -" in text(screen, "#mig-head")      # no ETA after a panic
        assert "heartbeat lag -" in text(screen, "#mig-apply") and "0/s" in text(screen, "#mig-apply")
        assert "FAILED" in text(screen, "#mig-title")


async def test_paused_relay_shows_no_rate(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("relay-a")
    async with app.run_test(size=SIZE) as pilot:
        app.open_task("relay-a")
        await pilot.pause(0.2)
        assert "182 events/s" in text(app.screen, "#rates")
        task.fixed.update(state="paused")
        app.screen.refresh_view()
        await pilot.pause(0.1)
        assert "events/s" not in text(app.screen, "#rates") and "PAUSED" in text(app.screen, "#rates")


async def test_unreachable_host_shows_no_stale_threads(tmp_path):
    app, engine = console(tmp_path)
    mon = engine.task("monitor:prod")
    hosts = list(mon.topo.hosts)
    hosts[1] = replace(hosts[1], reachable=False, error="error 2003")  # db2 keeps its old channel
    mon.topo = replace(mon.topo, hosts=tuple(hosts))
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause(0.3)
        table = app.screen.query_one("#hosts")
        key = "prod/127.0.0.1:3307"
        assert str(table.get_cell(key, "threads")) == "-" and str(table.get_cell(key, "behind")) == "-"
        assert str(table.get_cell(key, "lag")) == "-"
