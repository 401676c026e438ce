"""Snapshot tests of every screen and dialog at 80x24 and 200x50, fed fixed
data (no server, no clock: fixed timestamps rendered in UTC)."""

import pytest

from console.tui.screens.recoveries import RecoveriesScreen
from console.tui.widgets.ask import AskDialog
from console.tui.widgets.confirm import ConfirmDialog
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
    "restore": _push(lambda: RestoreDialog("2023-11-14 22:13:20", "/var/lib/dbops/backup-restore", 3307)),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(snap_compare, monkeypatch, screen, size):
    utc(monkeypatch)
    app, _ = console()
    step = SCREENS[screen]

    async def before(pilot):
        await pilot.pause(0.3)
        if step is not None:
            await step(app, pilot)
        await pilot.pause(0.5)
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
