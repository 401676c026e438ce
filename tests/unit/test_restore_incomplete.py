"""The incomplete mark of a restore directory and children that die with
their parent (no server needed; the real restore: tests/integration/
test_backup_restore_incomplete.py)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.engine.backup import incomplete
from console.engine.backup.mysqld import RestoreServerError, check_directory


def test_the_mark_is_locked_while_the_restore_runs_and_goes_when_done(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    m = incomplete.Marker(d)
    assert incomplete.marked(d) and incomplete.running_restore(d) == os.getpid()
    with pytest.raises(incomplete.IncompleteError, match="another restore"):
        incomplete.Marker(d)
    (d / "data").mkdir()
    with pytest.raises(RestoreServerError, match=f"restore into it is running .pid {os.getpid()}"):
        check_directory(d, force=True)                # a running restore is never replaced
    m.release()                                       # failed: the mark stays, unlocked
    assert incomplete.marked(d) and incomplete.running_restore(d) is None
    with pytest.raises(RestoreServerError) as e:
        check_directory(d, stopped=[123])
    assert str(e.value) == (f"target directory {d} holds an incomplete restore (its leftover "
                            f"server, pid 123, was stopped): remove it, or rerun with --force "
                            f"to replace it")
    assert check_directory(d, force=True) == d
    assert incomplete.stop_leftovers(d) == []         # no server there
    incomplete.clear(d)
    assert not d.exists()
    d.mkdir()
    m = incomplete.Marker(d)
    m.done()
    assert not incomplete.marked(d) and list(d.iterdir()) == []


def test_force_replaces_only_an_incomplete_restore(tmp_path):
    d = tmp_path / "full"
    d.mkdir()
    (d / "keep").write_text("x")
    with pytest.raises(RestoreServerError, match="not empty.*--force replaces only an incomplete"):
        check_directory(d, force=True)
    with pytest.raises(incomplete.IncompleteError, match="not an incomplete restore"):
        incomplete.clear(d)
    assert (d / "keep").read_text() == "x"
    assert check_directory(tmp_path / "new", force=True) == tmp_path / "new"   # nothing to replace


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_a_child_started_with_die_with_parent_dies_with_it(tmp_path):
    """A middle process starts ``sleep`` with and without the setting, prints
    both pids, and is killed with SIGKILL."""
    code = ("import subprocess, sys\n"
            "from console.children import die_with_parent\n"
            "a = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent())\n"
            "b = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
            "print(a.pid, b.pid, flush=True)\n"
            "sys.stdin.read()\n")
    mid = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    assert mid.stdout is not None
    guarded, free = map(int, mid.stdout.readline().split())
    try:
        assert _running(guarded) and _running(free)
        mid.kill()
        mid.wait()
        deadline = time.monotonic() + 5
        while _running(guarded) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(guarded)
        assert _running(free)                         # (the control: it outlives its parent)
    finally:
        for p in (guarded, free):
            if _running(p):
                os.kill(p, 9)
