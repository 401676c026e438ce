"""``dbops-console restore`` input checks, signals and --keep-running against
a real backup: every bad input is one line, exit 2, before anything is
created; SIGTERM/SIGHUP during the restore stop its private mariadbd and
exit non-zero with one line; --keep-running says how to reach the server."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from console.cli import main
from console.sandbox import pid_alive
from tests.support.backup_helpers import dump_backup_with_rows
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def backup(sandbox, tmp_path_factory):
    """(config path, GTID backed up): a dump snapshot, then a few thousand transactions."""
    tmp = tmp_path_factory.mktemp("restore-cli")
    yield dump_backup_with_rows(sandbox, tmp, "bk_rcli", 3000)
    shutil.rmtree(tmp, ignore_errors=True)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_bad_input_is_one_line_exit_2_and_creates_nothing(backup, tmp_path, capsys):
    cfg, gtid = backup
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("keep me")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    new = tmp_path / "new"
    base = ["restore", "--config", str(cfg), "--task", "sandbox-backup"]
    try:
        for args, words in [
            (["--to-gtid", gtid, "--target-dir", str(new), "--port", str(busy)], "in use"),
            (["--to-gtid", gtid, "--target-dir", str(tmp_path / "a-file")], "not a directory"),
            (["--to-gtid", gtid, "--target-dir", str(tmp_path / "full")], "not empty"),
            (["--to-gtid", gtid, "--target-dir", str(tmp_path / "no" / "such")], "does not exist"),
            (["--to-time", "tomorrow", "--target-dir", str(new)], "YYYY-MM-DD"),
            (["--to-gtid", "0-1-x", "--target-dir", str(new)], "GTID"),
            (["--to-gtid", "0-1-999999999", "--target-dir", str(new)], "not backed up"),
        ]:
            rc, out, err = run(capsys, *base, *args)
            assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)
            assert not new.exists() and not (tmp_path / "no").exists(), args
        rc, out, err = run(capsys, "restore", "--config", str(cfg), "--task", "nope", "--to-gtid",
                           gtid, "--target-dir", str(new))
        assert rc == 2 and "no task named" in err and len(err.strip().splitlines()) == 1
    finally:
        taken.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep"]


def _mariadbd_pid(target: Path) -> int | None:
    try:
        pid = int((target / "mariadbd.pid").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid, str(target / "my.cnf")) else None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_restore_stops_its_server(backup, tmp_path, sig):
    cfg, gtid = backup
    target = tmp_path / "restored"
    p = subprocess.Popen([sys.executable, "-m", "console.cli", "restore", "--config", str(cfg),
                          "--task", "sandbox-backup", "--to-gtid", gtid, "--target-dir", str(target),
                          "--port", str(free_port_block(1)), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    pid = None
    try:
        # freeze the restore, look: once its private server runs (and the
        # restore is not done), signal it while it is frozen, then let it go
        deadline = time.monotonic() + 300
        while pid is None and p.poll() is None and time.monotonic() < deadline:
            p.send_signal(signal.SIGSTOP)
            pid = _mariadbd_pid(target) if not (target / "restore.json").exists() else None
            if pid is not None:
                p.send_signal(sig)
            p.send_signal(signal.SIGCONT)
            if pid is None:
                time.sleep(0.02)
        assert pid is not None, "never saw the restore server running"
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        leftover = _mariadbd_pid(target)
        if leftover:
            os.kill(leftover, signal.SIGKILL)
    lines = err.decode().strip().splitlines()
    assert p.returncode == 128 + sig and len(lines) == 1, lines
    assert signal.Signals(sig).name in lines[0] and "stopped" in lines[0]
    assert leftover is None, "the restore server was left running"
    assert not pid_alive(pid)


def test_keep_running_says_how_to_reach_the_server(backup, tmp_path, capsys):
    cfg, gtid = backup
    target = tmp_path / "kept"
    port = free_port_block(1)
    rc, out, err = run(capsys, "restore", "--config", str(cfg), "--task", "sandbox-backup",
                       "--to-gtid", gtid, "--target-dir", str(target), "--port", str(port),
                       "--keep-running")
    pid = _mariadbd_pid(target)
    try:
        assert rc == 0, err
        last = out.strip().splitlines()[-1]
        sock = str(target / "mariadbd.sock")
        assert f"host 127.0.0.1 port {port}" in last and sock in last and str(pid) in last, last
        assert json.loads((target / "restore.json").read_text())["pid"] == pid
        password = (target / "restore.password").read_text().strip()
        for how in ({"host": "127.0.0.1", "port": port}, {"unix_socket": sock}):
            c = pymysql.connect(user="dbops_restore", password=password, **how)
            try:
                with c.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM bk_rcli.t")
                    assert cur.fetchone()[0] >= 3000
            finally:
                c.close()
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 120
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
