"""``serve`` without a server: what a reload changes (pure), the sd_notify
datagrams, the event lines, and bad input (one line, exit 2, nothing
created).  The service against real servers: tests/integration/test_serve.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from console.cli import main
from console.config import load_config
from console.engine.sdnotify import Notifier
from console.engine.service import event_line, plan_reload
from console.engine.state import AuditEntry
from console.errors import UserError

BASE = """
state_dir = "state"
[clusters.main.hosts.db1]
host = "127.0.0.1"
port = 1
user = "ops"
password_file = "pw"
[tasks.r]
kind = "relay"
cluster = "main"
relay_dir = "relay"
server_id = 77
autostart = true
"""


def config(tmp_path: Path, text: str, name: str = "c.toml"):
    (tmp_path / "pw").write_text("x\n")
    p = tmp_path / name
    p.write_text(text)
    return load_config(p)


# ---- what a reload changes -------------------------------------------------------


def test_plan_of_the_same_config_is_empty(tmp_path):
    plan = plan_reload(config(tmp_path, BASE), config(tmp_path, BASE, "d.toml"))
    assert plan.empty and plan.summary() == "no change"


def test_plan_names_what_was_added_removed_and_changed(tmp_path):
    old = config(tmp_path, BASE + '[tasks.gone]\nkind = "failover"\ncluster = "main"\n')
    new = config(tmp_path, BASE.replace("server_id = 77", "server_id = 78\nheartbeat = 2.0")
                 .replace("port = 1", "port = 2")
                 + '[clusters.other.hosts.h]\nuser = "u"\npassword = "p"\n'
                 + '[tasks.b]\nkind = "failover"\ncluster = "other"\n'
                 + '[ui]\nrefresh_interval = 3.0\n', "d.toml")
    plan = plan_reload(old, new)
    assert plan.clusters_added == ("other",) and plan.clusters_removed == ()
    assert plan.clusters_changed == (("main", ("hosts",)),)
    assert plan.tasks_added == ("b",) and plan.tasks_removed == ("gone",)
    assert plan.tasks_changed == (("r", ("server_id", "heartbeat")),)
    assert plan.refresh_interval == 3.0
    assert plan.summary() == ("+cluster other, ~cluster main (hosts), +task b, -task gone, "
                              "~task r (server_id, heartbeat), refresh interval 3 s")


def test_plan_of_a_task_that_changed_kind_says_kind(tmp_path):
    old = config(tmp_path, BASE)
    new = config(tmp_path, BASE.replace('kind = "relay"', 'kind = "failover"')
                 .replace('relay_dir = "relay"\nserver_id = 77\n', ""), "d.toml")
    assert plan_reload(old, new).tasks_changed == (("r", ("kind",)),)


def test_plan_of_a_task_that_stopped_autostarting(tmp_path):
    old = config(tmp_path, BASE)
    new = config(tmp_path, BASE.replace("autostart = true", "autostart = false"), "d.toml")
    assert plan_reload(old, new).tasks_changed == (("r", ("autostart",)),)


def test_a_reload_may_not_move_the_state_directory(tmp_path):
    old = config(tmp_path, BASE)
    new = config(tmp_path, BASE.replace('state_dir = "state"', 'state_dir = "other"'), "d.toml")
    with pytest.raises(UserError, match=r"^state_dir changed \(.*/state -> .*/other\): one engine "
                                        r"serves one state directory; restart serve to move it$"):
        plan_reload(old, new)


# ---- sd_notify --------------------------------------------------------------------------


@pytest.fixture
def dgram(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "n.sock"))
    s.settimeout(2)
    yield s
    s.close()


def test_notifier_sends_datagrams_and_takes_its_variables_out_of_the_environment(tmp_path, dgram):
    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "2000000", "OTHER": "x"}
    n = Notifier(env)
    assert env == {"OTHER": "x"}  # children (hooks) cannot speak for us
    assert n.enabled and n.watchdog_period == 1.0
    assert n.ready("1 cluster(s) monitored")
    assert dgram.recv(4096) == b"READY=1\nSTATUS=1 cluster(s) monitored"
    assert n.watchdog() and dgram.recv(4096) == b"WATCHDOG=1"
    assert not n.watchdog()  # not due again before half the period
    assert n.reloading()
    lines = dgram.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=") and int(lines[1][15:]) > 0
    assert n.stopping() and dgram.recv(4096) == b"STOPPING=1"


def test_notifier_speaks_to_an_abstract_socket():
    name = f"wt-e-notify-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert s.recv(4096) == b"STOPPING=1"
    finally:
        s.close()


@pytest.mark.parametrize("env", [
    {},                                                      # not run by systemd
    {"WATCHDOG_USEC": "1000000"},                            # a watchdog with nowhere to ping
    {"NOTIFY_SOCKET": "vsock:2:1"},                          # an address not spoken here
])
def test_notifier_without_a_socket_does_nothing(env):
    n = Notifier(dict(env))
    assert not n.enabled and n.watchdog_period is None
    assert not n.ready() and not n.watchdog() and n.until_next_ping() is None
    assert n.last_error == ""


def test_the_watchdog_of_another_pid_is_not_ours(tmp_path, dgram):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "1000000",
                  "WATCHDOG_PID": str(os.getpid() + 1)})
    assert n.enabled and n.watchdog_period is None and not n.watchdog()


def test_a_notification_that_cannot_be_sent_is_not_fatal(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert not n.ready()
    assert n.last_error.startswith(f"cannot notify {tmp_path / 'nobody.sock'}: ")


# ---- event lines ------------------------------------------------------------------------


def test_event_lines():
    e = AuditEntry(0.0, "monitor", "error", "monitor:main", "db1 became unreachable: x")
    assert event_line(e).endswith(" monitor:main error: db1 became unreachable: x")
    e = AuditEntry(0.0, "monitor", "info", "monitor:main", "found db1 (h:1) as primary")
    assert event_line(e).endswith(" monitor:main: found db1 (h:1) as primary")
    e = AuditEntry(0.0, "engine", "state", "r", "running", "from new")
    assert event_line(e).endswith(" engine state r: running from new")


# ---- bad input: one line, exit 2, nothing created -----------------------------------------


def _files(d: Path) -> list[Path]:
    return sorted(d.rglob("*"))


@pytest.mark.parametrize("text, argv, reason", [
    (None, ["--config", "{d}/missing.toml"], "{d}/missing.toml: cannot read file: No such file"),
    ("[clusters\n", ["--config", "{d}/c.toml"], "{d}/c.toml: invalid TOML"),
    ("", ["--config", "{d}/c.toml"], "{d}/c.toml: clusters: no cluster configured"),
    (BASE.replace("server_id = 77", "serverid = 77"), ["--config", "{d}/c.toml"],
     "{d}/c.toml: tasks.r.serverid: unknown key (did you mean 'server_id'?)"),
    (BASE.replace('state_dir = "state"', 'state_dir = "pw/state"'), ["--config", "{d}/c.toml"],
     "cannot create state directory {d}/pw/state: {d}/pw is not a directory"),
    (None, [], "no config file: pass --config FILE"),
], ids=["missing", "toml", "empty", "unknown-key", "state-dir", "no-config"])
def test_serve_refuses_bad_input_in_one_line_exit_2(tmp_path, monkeypatch, capsys, text, argv, reason):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "pw").write_text("x\n")
    if text is not None:
        (d / "c.toml").write_text(text)
    monkeypatch.chdir(d)
    monkeypatch.delenv("DBOPS_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = _files(tmp_path)
    rc = main(["serve", *(a.format(d=d) for a in argv)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2
    assert len(err) == 1 and reason.format(d=d) in err[0], err
    assert _files(tmp_path) == before  # no state directory, no lock file


def test_serve_refuses_an_unknown_option_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--bogus"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "dbops-console: unrecognized arguments: --bogus (see --help)"]


# ---- the sample unit -------------------------------------------------------------------------


def test_the_sample_systemd_unit_runs_serve_as_a_notify_service():
    unit = (Path(__file__).resolve().parents[2] / "sample-configs" / "dbops-console.service").read_text()
    keys = {}
    for ln in unit.splitlines():
        if "=" in ln and not ln.lstrip().startswith(("#", ";")):
            k, _, v = ln.partition("=")
            keys[k.strip()] = v.strip()
    assert keys["Type"] == "notify"
    assert " serve --config " in keys["ExecStart"] and keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(keys["WatchdogSec"]) > 0
    assert keys["SuccessExitStatus"] == "129 130 143"
    assert "2" in keys["RestartPreventExitStatus"].split()  # bad config or a served state directory
    # stopping gives every task the time serve gives it (30 s) before SIGKILL
    assert int(keys["TimeoutStopSec"]) > 30
