"""A restore that dies or fails leaves nothing running and a directory that
says it is incomplete:

* kill -9 of ``dbops-console restore`` while its private server replays:
  every child (the server, zstd readers) is gone within seconds (the
  kernel's parent-death signal), checked by the pids seen in /proc;
* the port taken after the restore's check (before the server starts, or
  just before it binds): one line naming the directory as incomplete and
  what to do, exit 2, no server left;
* the next restore into such a directory stops a server a dead restore
  left (found by its pid file) and says so in its one line; ``--force``
  replaces the incomplete directory and succeeds."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import console.engine.backup.mysqld as mysqld_mod
import console.engine.backup.restore as restore_mod
from console.cli import main
from console.engine.backup.incomplete import MARKER
from console.mysql.mariadbd import pid_alive, pid_from_file
from console.mysql.tools import need
from tests.support.backup_helpers import dump_backup_with_rows
from tests.support.procs import alive, descendants
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def backup(sandbox, tmp_path_factory):
    """(config, GTID): a dump snapshot, then enough transactions for a replay of seconds."""
    tmp = tmp_path_factory.mktemp("restore-incomplete")
    return dump_backup_with_rows(sandbox, tmp, "bk_rinc", 12000)


def _restore_argv(cfg, gtid, target, port, *extra):
    return ["restore", "--config", str(cfg), "--task", "sandbox-backup", "--to-gtid", gtid,
            "--target-dir", str(target), "--port", str(port), *extra]


def _names(pids):
    out = {}
    for p in pids:
        try:
            out[p] = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            pass
    return out


def test_kill9_during_the_replay_leaves_no_childalive(backup, tmp_path, capsys):
    cfg, gtid = backup
    target = tmp_path / "restored"
    p = subprocess.Popen([sys.executable, "-m", "console.cli",
                          *_restore_argv(cfg, gtid, target, free_port_block(1))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    kids: list[int] = []
    try:
        assert p.stderr is not None
        for line in p.stderr:                              # progress lines, one by one
            if b"replaying" in line:
                break
        else:
            pytest.fail(f"the restore ended before its replay (exit {p.wait()})")
        kids = descendants(p.pid)                         # the server, zstd readers, ...
        server = pid_from_file(target / "mariadbd.pid")
        assert server in kids and pid_alive(server, str(target / "my.cnf"))
        assert not (target / "restore.json").exists()      # mid-restore
        p.kill()
        p.wait()
        deadline = time.monotonic() + 10
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [k for k in kids if alive(k)]
        assert not left, f"children outlived the restore: {_names(left)}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for k in kids:                                     # (only when the test failed)
            if alive(k):
                os.kill(k, signal.SIGKILL)
    assert (target / MARKER).exists()

    # a server a dead restore left (started here by hand, like an older
    # version's orphan) is stopped by the next restore into that directory
    log = open(tmp_path / "leftover.log", "ab")  # noqa: SIM115
    leftover = subprocess.Popen([need("mariadbd"), f"--defaults-file={target / 'my.cnf'}"],
                                stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 60
        while pid_from_file(target / "mariadbd.pid") != leftover.pid and time.monotonic() < deadline:
            assert leftover.poll() is None, (target / "error.log").read_text()[-2000:]
            time.sleep(0.1)
        before = sorted(x.name for x in target.iterdir())
        rc = main(_restore_argv(cfg, gtid, target, free_port_block(1)))
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, lines
        assert "incomplete" in lines[0] and "--force" in lines[0] and str(target) in lines[0]
        assert f"pid {leftover.pid}" in lines[0] and "stopped" in lines[0], lines[0]
        assert leftover.wait(timeout=60) is not None
        after = sorted(x.name for x in target.iterdir())    # nothing else changed (the
        assert set(after) <= set(before)                   # stopped server removed its pid
        assert set(before) - set(after) <= {"mariadbd.pid", "mariadbd.sock"}  # file and socket)
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()

    port = free_port_block(1)
    rc = main(_restore_argv(cfg, gtid, target, port, "--force", "--json"))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["restored_gtid"] == gtid
    assert not (target / MARKER).exists() and (target / "restore.json").exists()


@pytest.mark.parametrize("when", ["before-start", "at-bind"])
def test_port_taken_after_the_check_says_the_directory_is_incomplete(
        backup, tmp_path, capsys, monkeypatch, when):
    cfg, gtid = backup
    target = tmp_path / "restored"
    port = free_port_block(1)
    taken: list[socket.socket] = []

    def check_then_take(real):
        def check(p):
            real(p)
            if not taken:                       # somebody takes the port right after the check
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                s.listen()
                taken.append(s)
        return check

    if when == "before-start":                  # taken between the pre-check and the server's start
        monkeypatch.setattr(restore_mod, "check_port", check_then_take(restore_mod.check_port))
    else:                                       # taken after every check, before mariadbd binds
        monkeypatch.setattr(mysqld_mod, "check_port", check_then_take(mysqld_mod.check_port))
    try:
        rc = main(_restore_argv(cfg, gtid, target, port, "--json"))    # (no progress lines)
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert taken and rc == 2 and len(lines) == 1, lines
        assert "incomplete" in lines[0] and str(target) in lines[0] and "--force" in lines[0]
        assert ("in use" if when == "before-start" else "Address already in use") in lines[0], lines[0]
        assert (target / MARKER).exists()
        assert not pid_alive(pid_from_file(target / "mariadbd.pid"), str(target / "my.cnf"))

        rc = main(_restore_argv(cfg, gtid, target, free_port_block(1)))   # again, no --force
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and "incomplete" in lines[0] and "--force" in lines[0], lines
    finally:
        for s in taken:
            s.close()
    monkeypatch.undo()
    rc = main(_restore_argv(cfg, gtid, target, free_port_block(1), "--force", "--json"))
    out, err = capsys.readouterr()
    assert rc == 0 and json.loads(out)["restored_gtid"] == gtid, err
    assert not (target / MARKER).exists()
