"""Pilot tests of the recovery history screen (fixed journals in the state
directory: no server): reached from the failover screen (h) and the
palette, every recovery with its steps, a running one's steps as they are
written, `/` filter, `?` help, and acknowledging with the cluster's name
typed (through the cluster's failover task, or the state directory)."""

import json
import time

from console.tui.palette import console_commands
from console.tui.screens.recoveries import RecoveriesScreen
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.help import HelpScreen
from tests.support.pilot import wait_until
from tests.tui.fixed_recoveries import running_journal, write_journal, write_recoveries
from tests.tui.screens_fixed import console

SIZE = (160, 40)


def cells(table, col: int) -> list[str]:
    return [str(table.get_cell_at((i, col))) for i in range(table.row_count)]


def column(table, key: str) -> list[str]:
    return [str(table.get_cell(r.value, key)) for r in table.rows]


async def open_history(app, pilot):
    app.open_task("failover:prod")
    await pilot.pause(0.2)
    await pilot.press("h")
    assert await wait_until(pilot, lambda: isinstance(app.screen, RecoveriesScreen), 5)
    table = app.screen.query_one("#rh-list")
    assert await wait_until(pilot, lambda: table.row_count == 3, 5)
    return app.screen, table


async def test_history_from_the_failover_screen_lists_recoveries_and_their_steps(tmp_path):
    app, engine = console(tmp_path)
    write_recoveries(engine.state.root)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_history(app, pilot)
        assert screen.cluster == "prod" and "prod › recoveries" in screen.sub_title
        # newest first; result and who acknowledged
        assert column(table, "kind") == ["reattach", "switchover", "failover"]
        assert column(table, "result") == ["failed", "ok", "ok"]
        assert column(table, "ack") == ["-", "NOT acknowledged", "console:4242"]
        assert column(table, "id")[2] == "20231114T221500Z-a1b2c3"
        assert column(table, "duration") == ["101 ms", "412 ms", "1.8 s"]
        steps = screen.query_one("#rh-steps")
        assert cells(steps, 2) == ["divergence", "reattach"]
        assert "3 errant transactions" in str(screen.query_one("#rh-summary").render())
        await pilot.press("down", "down")  # the failover: its six steps
        await pilot.pause(0.2)
        assert cells(steps, 2) == ["lease", "stop replication", "salvage", "promote", "repoint", "history"]
        summary = str(screen.query_one("#rh-summary").render())
        assert "127.0.0.1:3306 -> 127.0.0.1:3307" in summary and "acknowledged by console:4242" in summary
        assert "1 NOT acknowledged" in str(screen.query_one("#rh-state").render())
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "FailoverScreen"


async def test_filter_help_and_the_palette(tmp_path):
    app, engine = console(tmp_path)
    write_recoveries(engine.state.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        titles = {c.title: c for c in console_commands(app, app.screen, [])}
        assert "Recovery history" in titles and "Recovery history prod" in titles
        titles["Recovery history prod"].callback()
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, RecoveriesScreen) and screen.cluster == "prod"
        table = screen.query_one("#rh-list")
        assert await wait_until(pilot, lambda: table.row_count == 3, 5)
        await pilot.press("slash", *"switch", "enter")
        await pilot.pause(0.2)
        assert column(table, "kind") == ["switchover"]
        assert cells(screen.query_one("#rh-steps"), 2)[1] == "fence"
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one("#help-text").render())
        assert "Recovery history keys" in help_text and "Acknowledge" in help_text
        await pilot.press("escape")
        await pilot.pause(0.1)
        # the palette on this screen offers its keys
        titles = {c.title for c in console_commands(app, app.screen, [])}
        assert "Recovery history: Acknowledge (a)" in titles


async def test_a_running_recovery_shows_its_steps_as_they_are_written(tmp_path):
    app, engine = console(tmp_path)
    write_recoveries(engine.state.root)
    path = running_journal(engine.state.root, 2)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RecoveriesScreen(engine))  # every cluster
        await pilot.pause(0.2)
        screen = app.screen
        table, steps = screen.query_one("#rh-list"), screen.query_one("#rh-steps")
        assert await wait_until(pilot, lambda: table.row_count == 4, 5)
        assert column(table, "result")[0] == "running" and column(table, "id")[0] == "live-switchover"
        assert cells(steps, 0) == ["ok", "ok", "running"]
        assert "switchover of prod running" in str(screen.query_one("#rh-state").render())
        running_journal(engine.state.root, 4)  # two more steps done
        assert await wait_until(pilot, lambda: steps.row_count == 5, 5)
        j = json.loads(path.read_text())
        j["steps"][-1].update(outcome="ok", ms=12.0)
        j.update(outcome="ok", total_ms=1200.0)
        write_journal(engine.state.root, j, path.name)
        assert await wait_until(pilot, lambda: column(table, "result")[0] == "ok", 5)
        assert column(table, "duration")[0] == "1.2 s"


async def test_acknowledge_asks_for_the_cluster_name_and_goes_through_the_failover_task(tmp_path):
    app, engine = console(tmp_path)
    write_recoveries(engine.state.root)
    task = engine.task("failover:prod")
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_history(app, pilot)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmDialog) and "prod" in str(app.screen.query_one("#confirm-prompt").render())
        await pilot.press(*"wrong", "enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert task.sent == [] and app.screen is screen
        await pilot.press("a", *"prod", "enter")
        assert await wait_until(pilot, lambda: task.sent == [("acknowledge", {})], 5)


async def test_acknowledge_without_a_failover_task_marks_the_state_directory(tmp_path):
    app, engine = console(tmp_path, tasks=False)
    write_recoveries(engine.state.root)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RecoveriesScreen(engine, "prod"))
        await pilot.pause(0.2)
        screen = app.screen
        table = screen.query_one("#rh-list")
        assert await wait_until(pilot, lambda: table.row_count == 3, 5)
        assert column(table, "ack")[1] == "NOT acknowledged"
        await pilot.press("a", *"prod", "enter")
        assert await wait_until(pilot, lambda: column(table, "ack")[1] == "operator", 5)
        assert "NOT acknowledged" not in str(screen.query_one("#rh-state").render())
        ack = json.loads((engine.state.root / "failover" / "prod" / "ack.json").read_text())
        assert ack["by"] == "operator" and time.time() - ack["at"] < 60
        assert any(e.action == "acknowledge" and e.target == "prod" and e.outcome == "ok"
                   for _, e in engine.events_since(0, audited_only=True))


async def test_acknowledge_on_the_failover_screen_asks_too(tmp_path):
    app, engine = console(tmp_path)
    task = engine.task("failover:prod")
    async with app.run_test(size=SIZE) as pilot:
        app.open_task("failover:prod")
        await pilot.pause(0.2)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert task.sent == []
        await pilot.press("a", *"prod", "enter")
        assert await wait_until(pilot, lambda: task.sent == [("acknowledge", {})], 5)
