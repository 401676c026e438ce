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
