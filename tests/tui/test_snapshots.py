"""Snapshot tests of key screens, fed a fixed topology (rendering only)."""

from console.tui.app import ConsoleApp
from console.tui.widgets.confirm import ConfirmDialog
from tests.tui.fixed import fixed_engine


def test_dashboard_snapshot(snap_compare, tmp_path):
    app = ConsoleApp(fixed_engine(tmp_path), start_monitors=False)
    assert snap_compare(app, terminal_size=(160, 40), run_before=lambda pilot: pilot.pause(0.5))


def test_help_snapshot(snap_compare, tmp_path):
    app = ConsoleApp(fixed_engine(tmp_path), start_monitors=False)

    async def before(pilot):
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(160, 40), run_before=before)


def test_confirm_dialog_snapshot(snap_compare, tmp_path):
    app = ConsoleApp(fixed_engine(tmp_path), start_monitors=False)

    async def before(pilot):
        await pilot.pause(0.3)
        app.push_screen(ConfirmDialog("Emergency failover", "Promote the best replica of cluster prod.", "prod",
                                      action_label="Fail over"))
        await pilot.pause(0.3)
        await pilot.press(*"pro")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(160, 40), run_before=before)


async def test_lag_rows_follow_role_changes(tmp_path):
    """After a switchover the promoted host's lag row goes and the demoted
    primary's appears (fixed feed: rendering logic only)."""
    from console.engine.topology.discovery import assign_roles
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
