"""The backup screen against a real sandbox: status, snapshot now, pause and
resume, and the restore dialog (bad input refused, typed confirmation, a
restore whose server is kept running and reachable as the result says)."""

import json
import os
import signal
import time

import pymysql
import pytest
from textual.widgets import Checkbox

from console.config import load_config
from console.engine.engine import Engine
from console.sandbox import pid_alive
from console.tui.app import ConsoleApp
from console.tui.screens.backup import BackupScreen
from console.tui.widgets.confirm import ConfirmDialog
from console.tui.widgets.restore_dialog import RestoreDialog
from tests.support.backup_helpers import backup_config
from tests.support.pilot import wait_until as until
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration


async def test_backup_screen_snapshot_pause_and_restore(sandbox, tmp_path):
    storage = tmp_path / "store"
    cfg = load_config(backup_config(sandbox, tmp_path, storage, start_from="now"))
    engine = Engine(cfg)
    task = engine.create_configured("sandbox-backup")
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS bk_tui",
                "CREATE TABLE IF NOT EXISTS bk_tui.t (id INT PRIMARY KEY, v INT)")
    app = ConsoleApp(engine, start_monitors=False)
    try:
        task.start()
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause(0.2)
            from console.tui.screens.registry import screen_for

            screen = screen_for(engine, "sandbox-backup")      # what Enter on the dashboard opens
            assert isinstance(screen, BackupScreen)
            app.push_screen(screen)
            await pilot.pause(0.2)
            sandbox.sql("node1", "REPLACE INTO bk_tui.t VALUES (1, 1)")
            gtid = sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
            status = screen.query_one("#bk-status")
            assert await until(pilot, lambda: gtid in str(status.render()))
            await pilot.press("b")                             # base snapshot now
            table = screen.query_one("#bk-snapshots")
            assert await until(pilot, lambda: table.row_count == 1, 90), task.status().last_error
            await pilot.press("p")
            assert await until(pilot, lambda: task.state == "paused")
            assert await until(pilot, lambda: "PAUSED" in str(screen.query_one("#bk-state").render()))
            await pilot.press("u")
            assert await until(pilot, lambda: task.state == "running")
            sandbox.sql("node1", "REPLACE INTO bk_tui.t VALUES (2, 2)")
            gtid2 = sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
            assert await until(pilot, lambda: task.status().detail.checkpoint_gtid == gtid2)

            await pilot.press("v")
            assert await until(pilot, lambda: any("verify" in e.action and e.outcome == "ok"
                                                  for _, e in engine.events_since(0)))
            await pilot.press("R")
            assert await until(pilot, lambda: isinstance(app.screen, RestoreDialog))
            dlg = app.screen
            dlg.query_one("#restore-point").value = "yesterday"
            await pilot.click("#restore-ok")
            assert "neither" in str(dlg.query_one("#restore-error").render())
            target = tmp_path / "restored"
            dlg.query_one("#restore-point").value = gtid2
            dlg.query_one("#restore-dir").value = str(target)
            port = free_port_block(1)
            dlg.query_one("#restore-port").value = str(port)
            keep = dlg.query_one("#restore-keep", Checkbox)
            assert keep.value is False                    # stopped unless asked
            await pilot.click("#restore-keep")
            assert keep.value is True
            dlg.query_one("#restore-port").focus()
            await pilot.press("enter")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            assert "kept running" in str(app.screen.query_one("#confirm-message").render())
            await pilot.press(*str(target))
            await pilot.press("enter")
            assert await until(pilot, lambda: (target / "restore.json").exists(), 120), \
                [e.line() for _, e in engine.events_since(0)][-5:]
            sock = str(target / "mariadbd.sock")
            assert await until(pilot, lambda: any(
                f"host 127.0.0.1 port {port} socket {sock}" in str(n.message)
                for n in app._notifications))
    finally:
        engine.shutdown()
    r = json.loads((target / "restore.json").read_text())
    try:
        assert r["restored_gtid"] == gtid2 and r["pid"] and pid_alive(r["pid"], str(target / "my.cnf"))
        c = pymysql.connect(unix_socket=sock, user=r["user"],
                            password=(target / "restore.password").read_text().strip())
        with c.cursor() as cur:
            cur.execute("SELECT v FROM bk_tui.t WHERE id = 2")
            assert cur.fetchone() == (2,)
        c.close()
    finally:
        os.kill(r["pid"], signal.SIGTERM)
        until_dead = time.monotonic() + 120
        while pid_alive(r["pid"]) and time.monotonic() < until_dead:
            time.sleep(0.1)
