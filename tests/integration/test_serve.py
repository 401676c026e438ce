"""``dbops-console serve`` against the real sandbox, run as a subprocess:
monitors and autostart tasks until SIGTERM/SIGINT (exit 0, the relay's
files consistent), kill -9 and serve again (the relay resumes from its
checkpoint, byte-identical to the upstream, no gap), SIGHUP (tasks and
clusters added and removed, a changed running task reported and not
restarted, a broken config refused), one engine per state directory, and
systemd's notifications received on a datagram socket of the test's own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from console.api.client import connect
from console.engine.dirlock import lock_dir
from console.engine.relay.reader import RelayReader
from console.engine.relay.store import RelayStore
from console.errors import UserError
from console.mysql.binlog import events as E
from tests.integration.relay_support import (
    Load,
    compare_with_upstream,
    gtid_pos,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.support.backup_helpers import wait_for
from tests.support.foreground import Cli
from tests.support.serving import cluster_part, relay_task

pytestmark = pytest.mark.integration


# ---- helpers ---------------------------------------------------------------------


def mirror_cluster(h) -> str:
    """A second cluster: node2 alone (a cluster of its own for the monitor)."""
    return (f'\n[clusters.mirror.hosts.node2]\nhost = "127.0.0.1"\nport = {h.port("node2")}\n'
            f'user = "dbops"\npassword_file = "{h.sb.secret_path("dbops")}"\n')


class NotifySocket:
    """A datagram socket standing in for systemd's: every message it gets."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[list[str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append(data.decode().split("\n"))

    def count(self, line: str) -> int:
        return sum(1 for m in self.messages if line in m)

    def wait(self, line: str, n: int = 1, timeout: float = 60) -> None:
        wait_for(lambda: self.count(line) >= n, timeout=timeout, what=f"{n} x {line}")

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def reload(cli: Cli, notify: NotifySocket) -> None:
    """SIGHUP, then wait until the reload is done (RELOADING=1, then READY=1)."""
    readies = notify.count("READY=1")
    cli.p.send_signal(signal.SIGHUP)
    notify.wait("READY=1", readies + 1)
    assert notify.count("RELOADING=1") == readies


def audit(state: Path) -> list[dict]:
    return [json.loads(ln) for ln in (state / "audit.log").read_text().splitlines()]


def datadir(h) -> Path:
    return Path(next(n.datadir for n in h.nodes if n.name == "node1"))


def assert_consistent(relay_dir: Path) -> RelayStore:
    """relay.meta at a transaction boundary: the last file ends where it says."""
    meta = RelayStore(relay_dir).load_meta()
    assert meta is not None
    assert (relay_dir / meta.subdir / meta.file).stat().st_size == meta.relay_pos
    return meta


def assert_prefix_of_upstream(relay_sub: Path, datadir: Path) -> None:
    """Every relay file is the start of the upstream's file of the same name
    (the in-use flag of an active file's FORMAT_DESCRIPTION aside)."""
    for f in sorted(relay_sub.iterdir()):
        ours, up = bytearray(f.read_bytes()), bytearray((datadir / f.name).read_bytes())
        for b in (ours, up):
            b[21] &= ~E.LOG_EVENT_BINLOG_IN_USE_F
        assert ours == up[:len(ours)], f.name


def relayed_gtids(relay_dir: Path) -> list[str]:
    return [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]


def write_rows(h, n: int = 3) -> None:
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS serve_t",
          "CREATE TABLE IF NOT EXISTS serve_t.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
          *["INSERT INTO serve_t.t (v) VALUES (1)"] * n)


# ---- tests ---------------------------------------------------------------------------


def test_serve_runs_monitors_and_an_autostart_relay_until_sigterm(sandbox, tmp_path, notify, serve):
    """Monitors and the autostart relay run; systemd hears READY=1, the
    watchdog's WATCHDOG=1 and, at SIGTERM, STOPPING=1; the relay stops at a
    transaction boundary with its files a byte-exact start of the
    upstream's; exit 0 with one last line."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    cfg.write_text(cluster_part(h, state) + relay_task("r1", relay_dir, 5301)
                   + relay_task("idle", tmp_path / "idle", 5309, autostart=False)
                   + relay_task("clash", tmp_path / "clash", 2))  # node2's server_id: refused
    with Load(h):
        cli = serve(cfg, notify, WATCHDOG_USEC="400000")
        notify.wait("READY=1")
        wait_for(lambda: any(ln.endswith("monitor:sandbox: found node1 "
                                         f"(127.0.0.1:{h.primary_port}) as primary")
                             for ln in cli.err), timeout=30, what="the monitor's first round")
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        notify.wait("WATCHDOG=1", 3, timeout=10)  # every 0.2 s: half of WATCHDOG_USEC
        time.sleep(0.5)  # mid-stream, the load still writing
        rc = cli.stop(signal.SIGTERM)
    assert rc == 0, cli.err
    assert cli.err[-1] == "serve: stopped by SIGTERM: monitor:sandbox done, r1 done, clash failed", cli.err
    assert not any("Traceback" in ln for ln in cli.err), cli.err
    assert not (tmp_path / "idle").exists()  # not autostart: not started
    refused = [ln for ln in cli.err if ln.startswith("serve: autostart task ")]
    assert len(refused) == 1 and refused[0].startswith("serve: autostart task clash refused: "), cli.err
    assert "server_id 2" in refused[0] and not (tmp_path / "clash").exists()  # the others run
    assert ["READY=1", "STATUS=1 cluster(s) monitored, 1 task(s) running, 1 failed"] in notify.messages
    first_ready = next(i for i, m in enumerate(notify.messages) if "READY=1" in m)
    assert "STOPPING=1" in notify.messages[-1] and first_ready < len(notify.messages) - 1
    meta = assert_consistent(relay_dir)
    assert_prefix_of_upstream(relay_dir / meta.subdir, datadir(h))
    got = relayed_gtids(relay_dir)
    assert got and got == upstream_gtids(h, "node1")[:len(got)] and got[-1] in meta.gtid.split(",")
    actions = [(a["actor"], a["action"], a["target"], a["outcome"]) for a in audit(state)]
    assert ("serve", "start", "r1", "ok") in actions and ("serve", "start", "monitor:sandbox", "ok") in actions
    assert ("serve", "stop", str(state), "ok") in actions


def test_serve_after_kill_9_resumes_the_relay_without_a_gap(sandbox, tmp_path, serve):
    """kill -9 mid-stream (no clean stop: the lock dropped by the kernel, a
    torn tail possible), then serve again: the relay resumes from its
    checkpoint; its files are byte-identical to the upstream's binlogs and
    hold every transaction once."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    cfg.write_text(cluster_part(h, state) + relay_task("r2", relay_dir, 5302))
    with Load(h):
        cli = serve(cfg)
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        time.sleep(0.5)
        cli.p.kill()
        assert cli.p.wait(30) == -signal.SIGKILL
        time.sleep(1.0)  # the load goes on while nothing relays
        again = serve(cfg)
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
    end = gtid_pos(h)
    wait_meta_gtid(relay_dir, end, timeout=60)
    rc = again.stop(signal.SIGTERM)
    assert rc == 0, again.err
    assert again.err[-1] == "serve: stopped by SIGTERM: monitor:sandbox done, r2 done", again.err
    meta = assert_consistent(relay_dir)
    assert meta.gtid == end
    compare_with_upstream(relay_dir / meta.subdir, datadir(h), h.sql("node1", "SHOW MASTER STATUS")[0][0])
    assert relayed_gtids(relay_dir) == upstream_gtids(h, "node1")  # every transaction once


def test_sighup_adds_and_removes_tasks_and_clusters(sandbox, tmp_path, notify, serve):
    """SIGHUP after adding an autostart relay and a cluster to the config
    starts the relay and the cluster's monitor; after removing them, both
    stop (the relay at a transaction boundary, its directory free)."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    base = cluster_part(h, state)
    cfg.write_text(base)
    cli = serve(cfg, notify)
    notify.wait("READY=1")

    cfg.write_text(base + mirror_cluster(h) + relay_task("r3", relay_dir, 5303))
    reload(cli, notify)
    assert f"serve: reloaded {cfg}: +cluster mirror, +task r3" in cli.err, cli.err
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
    wait_for(lambda: any(ln.endswith(f"monitor:mirror: found node2 (127.0.0.1:{h.port('node2')}) "
                                     "as replica") for ln in cli.err), timeout=30, what="mirror's monitor")

    cfg.write_text(base)
    reload(cli, notify)
    assert f"serve: reloaded {cfg}: -cluster mirror, -task r3" in cli.err, cli.err
    assert "serve: task r3 is no longer in the config: stopped" in cli.err, cli.err
    meta = assert_consistent(relay_dir)
    lock_dir(relay_dir, "test", lambda owner, pid: UserError(f"still locked by {pid}")).close()
    write_rows(h)  # nothing relays it any more
    time.sleep(1.0)
    assert RelayStore(relay_dir).load_meta() == meta
    entries = [(a["action"], a["target"], a["outcome"]) for a in audit(state)]
    assert ("remove", "r3", "ok") in entries and ("remove", "monitor:mirror", "ok") in entries

    rc = cli.stop(signal.SIGINT)
    assert rc == 0, cli.err
    assert cli.err[-1] == "serve: stopped by SIGINT: monitor:sandbox done", cli.err


def test_sighup_reports_a_changed_running_task_and_does_not_restart_it(sandbox, tmp_path, notify, serve):
    """A running relay whose declaration changed keeps running as started:
    one line and one audit entry say so; it is not restarted; the same
    config again is no change (the new one is in force for its next start)."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    cfg.write_text(cluster_part(h, state) + relay_task("r4", relay_dir, 5304))
    cli = serve(cfg, notify)
    notify.wait("READY=1")
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)

    cfg.write_text(cluster_part(h, state) + relay_task("r4", relay_dir, 5304, heartbeat=2.0,
                                                        extra="max_age_hours = 24.0\n"))
    reload(cli, notify)
    said = [ln for ln in cli.err if ln.startswith("serve: task r4 ")]
    assert said == ["serve: task r4 changed in the config (heartbeat, max_age_hours): it keeps "
                    "running as started; the change applies at its next start"], cli.err
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)  # still streaming

    reload(cli, notify)  # the same file again: already in force
    assert cli.err.count(f"serve: reloaded {cfg}: no change") == 1, cli.err
    assert len([ln for ln in cli.err if ln.startswith("serve: task r4 ")]) == 1

    # its cluster changes: the monitor starts again on it, the relay runs on as started
    cfg.write_text(cfg.read_text().replace("check_interval = 1.0", "check_interval = 2.0"))
    reload(cli, notify)
    assert f"serve: reloaded {cfg}: ~cluster sandbox (check_interval)" in cli.err, cli.err
    said = [ln for ln in cli.err if ln.startswith("serve: task r4 ")]
    assert said[1:] == ["serve: task r4 changed in the config (its cluster sandbox: check_interval): "
                        "it keeps running as started; the change applies at its next start"], cli.err
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)

    rc = cli.stop(signal.SIGTERM)
    assert rc == 0, cli.err
    mine = [(a["actor"], a["action"], a["outcome"]) for a in audit(state) if a["target"] == "r4"]
    assert mine.count(("serve", "start", "ok")) == 1, mine  # never restarted
    assert [m for m in mine if m[1] == "state"] == [("engine", "state", "running"),
                                                    ("engine", "state", "done")], mine
    assert mine.count(("serve", "config-changed", "pending")) == 2
    monitor = [(a["action"], a["outcome"]) for a in audit(state) if a["target"] == "monitor:sandbox"
               and a["action"] in ("start", "remove")]
    assert monitor == [("start", "ok"), ("remove", "ok"), ("start", "ok")]
    assert_consistent(relay_dir)


def test_sighup_with_a_broken_config_keeps_the_old_one(sandbox, tmp_path, notify, serve):
    """A config that does not load (or moves the state directory) on SIGHUP
    is one line; the old config stays in force and the relay runs on."""
    h = sandbox
    state, relay_dir = tmp_path / "state", tmp_path / "relay"
    cfg = tmp_path / "serve.toml"
    good = cluster_part(h, state) + relay_task("r5", relay_dir, 5305)
    cfg.write_text(good)
    cli = serve(cfg, notify)
    notify.wait("READY=1")
    write_rows(h)
    wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)

    for broken, reason in (
        ("[clusters\n", f"config error: {cfg}: invalid TOML"),
        (good.replace("[tasks.r5]", "[tasks.r5]\nserverid = 1"),
         f"config error: {cfg}: tasks.r5.serverid: unknown key (did you mean 'server_id'?)"),
        (good.replace(f'state_dir = "{state}"', f'state_dir = "{tmp_path / "elsewhere"}"'),
         f"state_dir changed ({state} -> {tmp_path / 'elsewhere'})"),
    ):
        cfg.write_text(broken)
        n = len(cli.err)
        reload(cli, notify)
        new = cli.err[n:]
        refused = [ln for ln in new if ln.startswith("serve: reload refused")]
        assert len(refused) == 1 and refused[0].startswith(
            f"serve: reload refused, the old config stays in force: {reason}"), new
        assert not any(ln.startswith("serve: task ") for ln in new), new
        write_rows(h)
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)  # the relay runs on
    assert not (tmp_path / "elsewhere").exists()

    cfg.write_text(good)
    reload(cli, notify)
    assert cli.err.count(f"serve: reloaded {cfg}: no change") == 1, cli.err
    rc = cli.stop(signal.SIGTERM)
    assert rc == 0, cli.err
    assert cli.err[-1] == "serve: stopped by SIGTERM: monitor:sandbox done, r5 done", cli.err
    refusals = [a for a in audit(state) if a["action"] == "reload" and a["outcome"] == "refused"]
    assert len(refusals) == 3


def test_a_second_serve_on_the_same_state_dir_is_refused(sandbox, tmp_path, notify, serve):
    """One engine per state directory: the second says which pid serves it,
    exits 2, and changes nothing (no file, no notification)."""
    h = sandbox
    state = tmp_path / "state"
    cfg = tmp_path / "serve.toml"
    cfg.write_text(cluster_part(h, state))
    cli = serve(cfg, notify)
    notify.wait("READY=1")
    files = lambda: {p: p.read_bytes() for p in state.rglob("*")  # noqa: E731
                     if p.is_file() and p.name != "audit.log"}
    before = files()
    audit_before = len(audit(state))
    messages = len(notify.messages)

    r = subprocess.run([sys.executable, "-m", "console", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "NOTIFY_SOCKET": str(notify.path)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"dbops-console: state directory {state} is served by pid "
                                     f"{cli.p.pid}"], r.stderr
    assert files() == before
    assert connect(state).info()["pid"] == cli.p.pid  # the first one's API is untouched
    assert not [a for a in audit(state)[audit_before:] if a["actor"] == "serve"]
    time.sleep(0.3)
    assert len(notify.messages) == messages

    rc = cli.stop(signal.SIGTERM)
    assert rc == 0, cli.err
    after = serve(cfg, notify, "--quiet")  # the lock went with the first: the next one serves
    notify.wait("READY=1", 2)
    assert after.stop(signal.SIGTERM) == 0, after.err
    assert after.err == ["serve: stopped by SIGTERM: monitor:sandbox done"]
