"""``autostart = true`` (issue 12, item 20): the console starts such tasks
when it opens; the others stay "not started" until asked."""

from dataclasses import replace

import pytest
from textual.widgets import DataTable

from console.engine.engine import Engine
from console.engine.relay.store import RelayStore
from console.mysql import gtid as G
from console.tui.app import ConsoleApp
from tests.support.pilot import wait_until

pytestmark = pytest.mark.integration


async def test_console_starts_autostart_tasks_only(sandbox, tmp_path):
    h = sandbox
    cfg = replace(h.config, state_dir=tmp_path / "state", ui=replace(h.config.ui, refresh_interval=0.5))
    relay = cfg.task("sandbox-relay")
    auto = replace(relay, name="auto-relay", autostart=True,
                   options=replace(relay.options, relay_dir=tmp_path / "auto", server_id=5301, heartbeat=0.5))
    manual = replace(relay, name="manual-relay", autostart=False,
                     options=replace(relay.options, relay_dir=tmp_path / "manual", server_id=5302))
    cfg = replace(cfg, tasks={"auto-relay": auto, "manual-relay": manual})
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            table = app.screen.query_one("#tasks", DataTable)
            assert await wait_until(pilot, lambda: any(
                t.task_id == "auto-relay" and t.state == "running" for t in engine.tasks()), 20), \
                [t.status() for t in engine.tasks()]
            # it relays: relay.meta (written only after fsync) reaches the primary's position
            want = G.parse(h.sql("node1", "SELECT @@gtid_binlog_pos")[0][0], G.MARIADB)
            store = RelayStore(tmp_path / "auto")
            assert await wait_until(pilot, lambda: (m := store.load_meta()) is not None
                                    and G.parse(m.gtid, G.MARIADB).contains(want), 30)
            assert store.all_files() and all(f.size > 4 for f in store.all_files())
            assert await wait_until(pilot, lambda: "auto-relay" in table.rows
                                    and str(table.get_cell("auto-relay", "state")) == "running", 10)
            # the other one was not started
            assert "manual-relay" not in {t.task_id for t in engine.tasks()}
            assert str(table.get_cell("manual-relay", "state")) == "not started"
            assert not (tmp_path / "manual").exists()
            started = [e for _, e in engine.events_since(0) if e.action == "start" and e.target == "auto-relay"]
            assert started and started[0].actor == "autostart" and started[0].outcome == "ok"
    finally:
        engine.shutdown()


async def test_autostart_refusal_is_shown_not_fatal(sandbox, tmp_path):
    """An autostart task that fails its start check is shown failed with the
    reason; the console and the other autostart tasks carry on."""
    h = sandbox
    cfg = replace(h.config, state_dir=tmp_path / "state", ui=replace(h.config.ui, refresh_interval=0.5))
    relay = cfg.task("sandbox-relay")
    node2_sid = int(h.sql("node2", "SELECT @@server_id")[0][0])
    bad = replace(relay, name="bad-relay", autostart=True,
                  options=replace(relay.options, relay_dir=tmp_path / "bad", server_id=node2_sid))
    good = replace(relay, name="good-relay", autostart=True,
                   options=replace(relay.options, relay_dir=tmp_path / "good", server_id=5303, heartbeat=0.5))
    cfg = replace(cfg, tasks={"bad-relay": bad, "good-relay": good})
    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            assert await wait_until(pilot, lambda: {t.task_id: t.state for t in engine.tasks()}.get("bad-relay")
                                    == "failed", 20)
            assert f"server_id {node2_sid}" in engine.task("bad-relay").status().last_error
            assert await wait_until(pilot, lambda: engine.task("good-relay").state == "running"
                                    if "good-relay" in {t.task_id for t in engine.tasks()} else False, 20)
            table = app.screen.query_one("#tasks", DataTable)
            assert await wait_until(pilot, lambda: "bad-relay" in table.rows
                                    and str(table.get_cell("bad-relay", "state")) == "failed", 10)
    finally:
        engine.shutdown()
