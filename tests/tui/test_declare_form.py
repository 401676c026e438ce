"""Declaring a task from the console (issue 15, item 7): the form of a kind
comes from the registry; a value of the wrong type and a value the config
check refuses are shown in the form, one line each, with nothing written;
a good declaration lands in the config file (everything else kept) and in
the task list.  Through a serving engine, the same form declares over the
API and an autostart task starts there."""

import signal

import pytest
from textual.widgets import DataTable, Input, Select, Static

from console.api.client import connect
from console.api.remote import RemoteEngine
from console.config import load_config
from console.engine.engine import Engine
from console.tui.app import ConsoleApp
from console.tui.widgets.declare_form import DeclareTaskForm, form_options
from tests.support.backup_helpers import wait_for
from tests.support.pilot import wait_until
from tests.support.serving import cluster_part

pytestmark = pytest.mark.integration


def own_config(sandbox, tmp_path):
    path = tmp_path / "dbops.toml"
    path.write_text("# the operator's own comment\n" + cluster_part(sandbox, tmp_path / "state"))
    return path


async def fill(pilot, app, name: str, kind: str, values: dict[str, str]) -> None:
    form = app.screen
    form.query_one("#declare-name", Input).value = name
    form.query_one("#declare-kind", Select).value = kind
    await pilot.pause(0.3)  # the kind's fields are built
    for k, v in values.items():
        form.query_one(f"#opt-{k}", Input).value = v


def problems(app) -> str:
    return str(app.screen.query_one("#declare-problems", Static).render())


def test_form_fields_come_from_the_registry():
    names = [o.name for o in form_options("relay")]
    assert names[0] == "relay_dir"  # the required one first
    assert {"server_id", "heartbeat", "semi_sync"} <= set(names)
    assert "database" in [o.name for o in form_options("migration")][:3]


async def test_declare_in_a_standalone_console(sandbox, tmp_path):
    path = own_config(sandbox, tmp_path)
    before = path.read_text()
    engine = Engine(load_config(path))
    app = ConsoleApp(engine, start_monitors=False)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.press("n")
            assert await wait_until(pilot, lambda: isinstance(app.screen, DeclareTaskForm), 10)
            await fill(pilot, app, "r9", "relay", {"relay_dir": str(tmp_path / "r9"),
                                                    "server_id": "many"})
            await pilot.press("ctrl+s")
            assert await wait_until(pilot, lambda: "server-id must be an integer" in problems(app)
                                    or "server_id must be an integer" in problems(app), 10), \
                problems(app)
            app.screen.query_one("#opt-server_id", Input).value = "0"
            await pilot.press("ctrl+s")
            assert await wait_until(pilot, lambda: "tasks.r9.server_id" in problems(app), 20), \
                problems(app)
            assert path.read_text() == before
            app.screen.query_one("#opt-server_id", Input).value = "6501"
            await pilot.press("ctrl+s")
            assert await wait_until(pilot, lambda: not isinstance(app.screen, DeclareTaskForm), 20)
            text = path.read_text()
            assert text.startswith(before) and "[tasks.r9]" in text and "server_id = 6501" in text
            table = app.screen.query_one("#tasks", DataTable)
            assert await wait_until(pilot, lambda: "r9" in table.rows, 10)
            assert str(table.get_cell("r9", "state")) == "not started"
            assert not (tmp_path / "r9").exists()  # declared, not started
            await pilot.press("n")
            assert await wait_until(pilot, lambda: isinstance(app.screen, DeclareTaskForm), 10)
            await pilot.press("escape")
            assert await wait_until(pilot, lambda: not isinstance(app.screen, DeclareTaskForm), 10)
    finally:
        engine.shutdown()


async def test_declare_through_the_engine_starts_an_autostart_task(sandbox, tmp_path, serve):
    path = own_config(sandbox, tmp_path)
    state = tmp_path / "state"
    proc = serve(path)
    wait_for(lambda: connect(state) is not None or proc.p.poll() is not None, 120, "the engine")
    engine = RemoteEngine(load_config(path), connect(state, actor="console:test"))
    app = ConsoleApp(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, DeclareTaskForm), 10)
        await fill(pilot, app, "r8", "relay", {"relay_dir": str(tmp_path / "r8"),
                                                "server_id": "6502"})
        app.screen.query_one("#declare-autostart").value = True
        await pilot.press("ctrl+s")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, DeclareTaskForm), 30)
        assert await wait_until(pilot, lambda: "r8" in engine.running_tasks(), 60)
    engine.shutdown()
    assert "[tasks.r8]" in path.read_text()
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
