"""Pilot tests of help, filter, breadcrumbs, the palette's commands and the
screenshot (fixed data: no server)."""

from pathlib import Path

from textual.widgets import DataTable, RichLog

from console.tui.screens.dashboard import DashboardScreen
from console.tui.screens.failover import FailoverScreen
from console.tui.screens.log import LogScreen
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.help import HelpScreen
from tests.tui.screens_fixed import console, utc

SIZE = (120, 40)


def help_text(app) -> str:
    return str(app.screen.query_one("#help-text").render())


async def test_help_on_every_screen_and_dialog(tmp_path):
    app, engine = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = help_text(app)
        assert "Dashboard keys" in text and "Audit log" in text and "Ctrl+P" in text
        assert "Theme" not in text                       # the theme is the palette's now
        await pilot.press("escape")
        for tid, expect in (("relay-a", "Switch master"), ("mig-orders", "Chunk size x2"),
                            ("backup-a", "Snapshot now"), ("failover:prod", "Auto on/off"),
                            ("custom-1", "Stop")):
            app.open_task(tid)
            await pilot.pause(0.2)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen), tid
            assert expect in help_text(app) and "Esc, q" in help_text(app), help_text(app)
            await pilot.press("question_mark")          # ? closes it again
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause(0.1)
        assert isinstance(app.screen, DashboardScreen)
        app.open_task("failover:prod")
        await pilot.pause(0.2)
        await pilot.press("F")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("f1")                          # F1: the input takes ?
        assert isinstance(app.screen, HelpScreen) and "Cancel" in help_text(app)


async def test_filter_narrows_hosts_tasks_and_events(tmp_path, monkeypatch):
    utc(monkeypatch)
    app, engine = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        screen = app.screen
        hosts, tasks = screen.query_one("#hosts", DataTable), screen.query_one("#tasks", DataTable)
        assert hosts.row_count == 4 and tasks.row_count == 5
        await pilot.press("slash", *"db4")
        await pilot.pause(0.1)
        assert hosts.row_count == 1 and tasks.row_count == 0
        assert [line.text for line in screen.query_one("#events", RichLog).lines] == \
            ["22:13:30 db4 unreachable: error 2003"]
        await pilot.press("enter")                      # kept, back to the list
        assert screen.filter_text == "db4" and hosts.row_count == 1
        await pilot.press("slash")
        await pilot.press("escape")                     # cleared
        await pilot.pause(0.1)
        assert screen.filter_text == "" and hosts.row_count == 4 and tasks.row_count == 5
        await pilot.press("l")
        await pilot.pause(0.3)
        assert isinstance(app.screen, LogScreen)
        log = app.screen.query_one("#audit", RichLog)

        def entries():  # wrapped lines continue without a date
            return sum(1 for line in log.lines if line.text[:4].isdigit())

        assert entries() == 3
        await pilot.press("slash", *"refused")
        await pilot.pause(0.1)
        assert entries() == 1


async def test_breadcrumbs_follow_the_focus(tmp_path):
    app, engine = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert app.screen.sub_title == "prod › Tasks"
        app.screen.query_one("#hosts").focus()
        await pilot.pause(0.1)
        await pilot.press("down", "down")
        assert app.screen.sub_title == "prod › db3 › Hosts"
        app.open_task("failover:prod")
        await pilot.pause(0.2)
        assert app.screen.sub_title == "prod › failover:prod › Candidates"


async def test_palette_commands(tmp_path):
    app, engine = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        cmds = {c.title: c for c in app.get_system_commands(app.screen)}
        for title in ("Go to cluster prod", "Go to host db3 (prod, 127.0.0.1:3308)", "Go to task relay-a",
                      "Switchover prod", "Failover prod", "Snapshot backup-a", "Restore backup-a",
                      "Theme light", "Screenshot", "Dashboard: Audit log (l)", "Dashboard: Start (s)"):
            assert title in cmds, sorted(cmds)
        cmds["Go to cluster prod"].callback()
        await pilot.pause(0.2)
        assert isinstance(app.screen, FailoverScreen)
        cmds["Go to host db3 (prod, 127.0.0.1:3308)"].callback()
        await pilot.pause(0.2)
        assert isinstance(app.screen, DashboardScreen) and app.screen.sub_title == "prod › db3 › Hosts"
        cmds["Switchover prod"].callback()
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmDialog)     # the failover screen's own typed confirmation
        await pilot.press("escape")
        await pilot.press("escape")
        cmds["Snapshot backup-a"].callback()
        backup = engine.task("backup-a")
        await pilot.pause(0.3)
        assert ("snapshot-now", {}) in backup.sent
        cmds["Theme light"].callback()
        assert app.theme_name == "light"


async def test_screenshot_goes_to_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))  # no ~/Downloads
    app, engine = console(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        {c.title: c for c in app.get_system_commands(app.screen)}["Screenshot"].callback()
        await pilot.pause(0.2)
        shots = list(Path(engine.config.state_dir, "screenshots").glob("*.svg"))
        assert len(shots) == 1 and "dbops-console" in shots[0].read_text()
