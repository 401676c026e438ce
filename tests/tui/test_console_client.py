"""The console as a client of the engine (real sandbox, Pilot): attached to
a serving engine it shows the hosts and starts a relay there; quitting
leaves the relay streaming (no gap in its files); a console opened again
shows it running with the engine's recent history.  A console that
started the engine itself (in the background) asks at quit whether to keep
the tasks running or stop them all."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from console.api.client import connect
from console.api.launch import attach_or_start
from console.api.remote import RemoteEngine
from console.config import load_config
from console.engine.relay.store import RelayStore
from console.tui.app import ConsoleApp
from console.tui.widgets.quit_dialog import QuitDialog
from console.tui.widgets.topology import HostTable
from tests.integration.relay_support import compare_with_upstream, wait_meta_gtid
from tests.support.backup_helpers import wait_for
from tests.support.pilot import wait_until
from tests.support.procs import alive
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration


def select_task(app, name: str) -> None:
    table = app.screen.query_one("#tasks")
    table.move_cursor(row=table.get_row_index(name))
    table.focus()


async def test_attach_start_quit_and_reattach(sandbox, tmp_path, serve):
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    path = tmp_path / "dbops.toml"
    path.write_text(cluster_part(sandbox, state) + relay_task("r", relay_dir, 6401, autostart=False))
    cfg = load_config(path)
    proc = serve(path)
    wait_for(lambda: connect(state) is not None or proc.p.poll() is not None, 120, "the engine")
    client, started = attach_or_start(cfg, actor="console:test")
    assert started is None  # attached: serve was there first
    engine = RemoteEngine(cfg, client)
    app = ConsoleApp(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        assert f"engine pid {proc.p.pid} (attached)" in app.title
        table = app.screen.query_one(HostTable)
        key = f"sandbox/127.0.0.1:{sandbox.port('node1')}"
        assert await wait_until(pilot, lambda: key in table.rows, 60)
        assert await wait_until(pilot, lambda: "r" in app.screen.query_one("#tasks").rows, 30)
        select_task(app, "r")
        await pilot.press("s")
        assert await wait_until(pilot, lambda: client.task("r")["phase"] == "streaming", 60)
        await pilot.press("q")  # attached: no question, the relay goes on
        await pilot.pause(0.2)
    assert not app.is_running
    engine.shutdown()
    # the relay streams on without the console: a write after the quit arrives
    sandbox.sql("node1", "CREATE DATABASE IF NOT EXISTS console_client",
                "CREATE TABLE IF NOT EXISTS console_client.t (id INT PRIMARY KEY)",
                "REPLACE INTO console_client.t VALUES (1), (2), (3)")
    wait_meta_gtid(relay_dir, sandbox.sql("node1", "SELECT @@gtid_binlog_pos")[0][0], timeout=120)
    assert client.task("r")["state"] == "running"
    # opened again: the same task running, its start in the recent history
    engine2 = RemoteEngine(cfg, connect(state, actor="console:test2"))
    app2 = ConsoleApp(engine2)
    async with app2.run_test(size=(160, 45)) as pilot:
        assert await wait_until(pilot, lambda: "running" in str(
            app2.screen.query_one("#tasks").get_cell("r", "state")), 60)
        assert any(e.action == "start" and e.target == "r" and e.actor == "console:test"
                   for _, e in engine2.events_since(0))
        st = engine2.task("r").status()
        assert st.detail.relay_dir == str(relay_dir) and st.detail.total_events > 0
    engine2.shutdown()
    assert proc.stop(signal.SIGTERM) == 0, "\n".join(proc.err)
    meta = RelayStore(relay_dir).load_meta()
    datadir = Path(next(n.datadir for n in sandbox.nodes if n.name == "node1"))
    # byte-identical to the upstream's binlog: no gap across the quit
    compare_with_upstream(relay_dir / meta.subdir, datadir,
                          sandbox.sql("node1", "SHOW MASTER STATUS")[0][0])


async def quit_with(cfg, state, client, pid, answer: str) -> None:
    """A console that started the engine, a relay running: q asks; Escape
    stays; q again and ``answer`` (k: keep running, s: stop all)."""
    engine = RemoteEngine(cfg, connect(state), started_here=True, pid=pid)
    app = ConsoleApp(engine)
    async with app.run_test(size=(160, 45)) as pilot:
        assert "started by this console" in app.title
        if client.task("r")["state"] != "running":
            client.start("r")
        assert await wait_until(pilot, lambda: "r" in engine.running_tasks(), 60)
        await pilot.press("q")
        assert await wait_until(pilot, lambda: isinstance(app.screen, QuitDialog), 10)
        await pilot.press("escape")  # stay
        await pilot.pause(0.2)
        assert app.is_running and not isinstance(app.screen, QuitDialog)
        await pilot.press("q")
        assert await wait_until(pilot, lambda: isinstance(app.screen, QuitDialog), 10)
        await pilot.press(answer)
        await pilot.pause(0.2)
    engine.shutdown()


async def test_a_console_that_started_the_engine_asks_at_quit(sandbox, tmp_path):
    state = tmp_path / "state"
    path = tmp_path / "dbops.toml"
    path.write_text(cluster_part(sandbox, state)
                    + relay_task("r", tmp_path / "relay", 6402, autostart=False))
    cfg = load_config(path)
    client, pid = attach_or_start(cfg, actor="console:test")
    try:
        assert pid and alive(pid) and (state / "serve.log").exists()
        # a second console attaches to the same engine
        again, started = attach_or_start(cfg, actor="console:other")
        assert started is None and again.info()["pid"] == pid
        for answer, engine_lives in (("k", True), ("s", False)):
            await quit_with(cfg, state, client, pid, answer)
            if engine_lives:
                time.sleep(1)
                assert alive(pid) and client.task("r")["state"] == "running"
            else:
                wait_for(lambda: not alive(pid), 90, "the engine's clean stop")
                assert connect(state) is None
        log = (state / "serve.log").read_text()
        assert "serve: stopped by SIGTERM" in log and "r done" in log
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_two_consoles_and_an_engine_that_dies(sandbox, tmp_path, serve):
    """Two consoles on one engine see each other's actions; when the engine
    is killed (-9) they say so, and a new engine on the same state
    directory is picked up without reopening the consoles."""
    state = tmp_path / "state"
    path = tmp_path / "dbops.toml"
    path.write_text(cluster_part(sandbox, state)
                    + relay_task("r", tmp_path / "relay", 6403, autostart=False))
    cfg = load_config(path)
    proc = serve(path)
    wait_for(lambda: connect(state) is not None or proc.p.poll() is not None, 120, "the engine")
    one = RemoteEngine(cfg, connect(state, actor="console:one"))
    two = RemoteEngine(cfg, connect(state, actor="console:two"))
    try:
        one.start_declared("r")
        wait_for(lambda: any(e.action == "start" and e.actor == "console:one"
                             for _, e in two.events_since(0)), 30, "one's start seen by two")
        wait_for(lambda: "r" in two.running_tasks(), 30, "r running in two's view")
        two.command("r", "pause")
        wait_for(lambda: any(e.action == "pause" and e.actor == "console:two"
                             for _, e in one.events_since(0)), 30, "two's pause seen by one")
        proc.p.kill()
        proc.p.wait(30)
        wait_for(lambda: not one.connected and any("lost the engine" in e.outcome
                                                   for _, e in one.events_since(0)),
                 30, "one saying the engine is lost")
        again = serve(path)  # the relay's checkpoint was kept: it is declared, not autostart
        wait_for(lambda: connect(state) is not None, 120, "the new engine")
        # both back, each saying which engine it talks to now
        wait_for(lambda: one.connected and two.connected and one.pid == two.pid == again.p.pid,
                 60, "both consoles back on the new engine")
        assert any("connected again to the engine" in e.outcome for _, e in one.events_since(0))
        again.p.send_signal(signal.SIGTERM)
        again.p.wait(60)
    finally:
        one.shutdown()
        two.shutdown()


async def test_the_title_names_the_new_engine_after_a_reconnect(sandbox, tmp_path, serve):
    """The engine dies (-9) under an open console: the header says it is
    lost; a new engine on the state directory: the header names its pid."""
    state = tmp_path / "state"
    path = tmp_path / "dbops.toml"
    path.write_text(cluster_part(sandbox, state))
    cfg = load_config(path)
    proc = serve(path)
    wait_for(lambda: connect(state) is not None or proc.p.poll() is not None, 120, "the engine")
    engine = RemoteEngine(cfg, connect(state, actor="console:title"))
    app = ConsoleApp(engine)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            assert app.title == f"dbops-console · engine pid {proc.p.pid} (attached)"
            proc.p.kill()
            proc.p.wait(30)
            assert await wait_until(pilot, lambda: app.title == f"dbops-console · engine pid {proc.p.pid} "
                                                                 f"lost: reconnecting", 30)
            again = serve(path)
            assert await wait_until(pilot, lambda: app.title == f"dbops-console · engine pid {again.p.pid} "
                                                                 f"(attached)", 120), app.title
            assert engine.pid == again.p.pid != proc.p.pid
            again.p.send_signal(signal.SIGTERM)
            again.p.wait(60)
    finally:
        engine.shutdown()


def test_the_engine_outlives_the_console_s_terminal(sandbox, tmp_path):
    """The console (on a pseudo-terminal) starts the engine; the terminal
    goes away (SIGHUP to the console): the engine and its relay go on."""
    import pty
    import subprocess
    import sys

    state = tmp_path / "state"
    path = tmp_path / "dbops.toml"
    path.write_text(cluster_part(sandbox, state)
                    + relay_task("r", tmp_path / "relay", 6404, autostart=True))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "console", "--config", str(path)])
    engine_pid = None
    try:
        wait_for(lambda: connect(state) is not None, 120, "the engine the console started")
        engine_pid = connect(state).info()["pid"]
        wait_for(lambda: connect(state).task("r")["state"] == "running", 60, "the relay")
        os.close(fd)  # the terminal is gone
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 60, "the console's end")
        pid = 0
        time.sleep(1)
        assert alive(engine_pid)
        client = connect(state)
        assert client is not None and client.task("r")["state"] == "running"
        subprocess.run([sys.executable, "-m", "console", "status", "--config", str(path)],
                       check=True, capture_output=True, timeout=60)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if engine_pid and alive(engine_pid):
            os.kill(engine_pid, signal.SIGTERM)
            wait_for(lambda: not alive(engine_pid), 90, "the engine's stop")
