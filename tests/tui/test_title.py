"""The header names the engine the console talks to: its pid and whether
this console started it; lost, it says so; a new engine after a loss shows
its own pid (fixed data: an in-process engine dressed as a remote one)."""

from tests.support.pilot import wait_until
from tests.tui.screens_fixed import console


async def test_the_title_follows_the_engine(tmp_path):
    app, engine = console(tmp_path)
    engine.remote, engine.pid, engine.started_here, engine.connected = True, 111, True, True
    engine.running_tasks = lambda: []
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.2)
        assert app.title == "dbops-console · engine pid 111 (started by this console)"
        engine.connected = False  # the engine died
        assert await wait_until(pilot, lambda: "lost: reconnecting" in app.title, 3)
        assert "pid 111" in app.title
        engine.pid, engine.started_here, engine.connected = 222, False, True  # another one answers
        assert await wait_until(pilot, lambda: app.title == "dbops-console · engine pid 222 (attached)", 3)
        app.open_task("relay-a")  # the task screen's header shows it too
        await pilot.pause(0.3)
        assert "engine pid 222 (attached)" in str(app.screen.query_one("HeaderTitle").render())
