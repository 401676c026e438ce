"""Snapshot tests of every screen and dialog (the host drill-down, the declare
form and the quit dialog too) at 80x24 and 200x50, fed fixed
data (no server, no clock: fixed timestamps rendered in UTC)."""

import time

import pytest
from textual.widgets import Input

from console.tui.screens.host import HostScreen
from console.tui.screens.recoveries import RecoveriesScreen
from console.tui.widgets.ask import AskDialog
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.declare_form import DeclareTaskForm
from console.tui.widgets.quit_dialog import QuitDialog
from console.tui.widgets.restore_dialog import RestoreDialog
from tests.support.pilot import wait_until
from tests.tui.fixed import fixed_engine
from tests.tui.fixed_recoveries import write_recoveries
from tests.tui.screens_fixed import console, utc

SIZES = {"80x24": (80, 24), "200x50": (200, 50)}


def _open(tid):
    async def go(app, pilot):
        app.open_task(tid)
    return go


def _push(make):
    async def go(app, pilot):
        app.push_screen(make())
    return go


async def _help(app, pilot):
    await pilot.press("question_mark")


async def _log(app, pilot):
    await pilot.press("l")


async def _confirm(app, pilot):
    app.push_screen(ConfirmDialog("Emergency failover", "Promote the best replica of cluster prod.", "prod",
                                  action_label="Fail over"))
    await pilot.pause(0.2)
    await pilot.press(*"pro")


async def _recoveries(app, pilot):
    write_recoveries(app.engine.state.root)
    app.push_screen(RecoveriesScreen(app.engine, "prod"))
    await pilot.pause(0.1)
    table = app.screen.query_one("#rh-list")
    assert await wait_until(pilot, lambda: table.row_count == 3, 10)
    await pilot.press("down")  # the switchover: its steps


HOST = {
    "status": {"counters": {"Questions": 1200, "Threads_running": 3},
               "innodb": {"buffer_pool_hit_rate": "99.9%", "history_list_length": 42}},
    "processlist": [
        {"id": 31, "user": "app", "db": "shop", "command": "Query", "time": 12.5,
         "state": "Waiting for table metadata lock", "trx_started": None,
         "info": "ALTER TABLE shop.orders ADD COLUMN note TEXT"},
        {"id": 27, "user": "app", "db": "shop", "command": "Sleep", "time": 40.0, "state": "",
         "trx_started": "2023-11-14 22:12:40", "info": None},
        {"id": 5, "user": "repl", "db": None, "command": "Binlog Dump GTID", "time": 3600.0,
         "state": "Master has sent all binlog to slave", "trx_started": None, "info": None},
    ],
}


async def _host(app, pilot):
    app.engine.host_info = lambda c, h, what, *a: HOST.get(what, [])
    app.push_screen(HostScreen(app.engine, "prod", "db1"))


async def _filter(app, pilot):
    await pilot.press("slash", *"db3")


SCREENS = {
    "dashboard": None,
    "dashboard-filter": _filter,
    "help": _help,
    "audit-log": _log,
    "relay": _open("relay-a"),
    "migration": _open("mig-orders"),
    "backup": _open("backup-a"),
    "failover": _open("failover:prod"),
    "task": _open("custom-1"),
    "recoveries": _recoveries,
    "confirm": _confirm,
    "ask": _push(lambda: AskDialog("Run mig-orders again?", "mig-orders has ended (done). Start a new run?")),
    "host": _host,
    "declare": _push(lambda: DeclareTaskForm(["prod"], "relay")),
    "quit": _push(lambda: QuitDialog(4242, ["relay-a", "mig-orders"])),
    "restore": _push(lambda: RestoreDialog("2023-11-14 22:13:20", "/var/lib/dbops/backup-restore", 3307)),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(snap_compare, monkeypatch, screen, size):
    utc(monkeypatch)
    strftime = time.strftime    # "now" fixed (the host screen's "processlist at HH:MM:SS")
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: strftime(fmt, t if t is not None
                                                                       else time.gmtime(1700000000)))
    app, _ = console()
    step = SCREENS[screen]

    async def before(pilot):
        await pilot.pause(0.3)
        if step is not None:
            await step(app, pilot)
        await pilot.pause(0.2)
        for field in app.screen.query(Input):  # a blinking cursor is a different picture every half second
            field.cursor_blink = False
        await pilot.pause(0.3)
        assert app.is_running and app._exception is None, app._exception  # a crash is no picture

    assert snap_compare(app, terminal_size=SIZES[size], run_before=before)


async def test_lag_rows_follow_role_changes(tmp_path):
    """After a switchover the promoted host's lag row goes and the demoted
    primary's appears (fixed feed: rendering logic only)."""
    from console.engine.topology.discovery import assign_roles
    from console.tui.app import ConsoleApp
    from console.tui.screens.dashboard import DashboardScreen
    from tests.tui.fixed import channel, fixed_hosts

    engine = fixed_engine(tmp_path)
    app = ConsoleApp(engine, start_monitors=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        assert set(screen._lag_rows) == {"prod/127.0.0.1:3307", "prod/127.0.0.1:3308"}
        h = fixed_hosts()
        # db2 promoted: no channel; db1 demoted: replicates from db2
        h[0] = h[0].with_(channels=(channel(3307),), upstream="127.0.0.1:3307", read_only=True)
        h[1] = h[1].with_(channels=(), upstream="", read_only=False)
        h[2] = h[2].with_(upstream="127.0.0.1:3307")
        engine.task("monitor:prod").topo = assign_roles("prod", h, None)
        screen.refresh_view()
        await pilot.pause(0.3)
        assert set(screen._lag_rows) == {"prod/127.0.0.1:3306", "prod/127.0.0.1:3308"}
