"""The mark of a restore directory that does not (yet) hold a complete restore.

A restore creates ``DIR/RESTORE-INCOMPLETE`` before it puts anything else
there and removes it only once ``DIR/restore.json`` is durable.  While it
runs it holds an exclusive ``flock`` on that file, so the next restore can
tell a restore still running (lock held) from one that died (``kill -9``,
a crash) or failed: the kernel drops the lock with its process.

The next restore into a marked directory first stops a server the dead
restore left running (found by ``DIR/mariadbd.pid``, or in /proc by its own
``--defaults-file=DIR/my.cnf``), then refuses the directory unless
``--force``, which replaces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from pathlib import Path

from console.engine.state import fsync_dir
from console.errors import UserError
from console.mysql import mariadbd

MARKER = "RESTORE-INCOMPLETE"


class IncompleteError(UserError):
    pass


def hint(d: Path) -> str:
    return f"{d} holds an incomplete restore: remove it, or rerun with --force to replace it"


def marked(d: Path) -> bool:
    try:
        return (d / MARKER).exists()
    except OSError:
        return False


def running_restore(d: Path) -> int | None:
    """The pid of a restore that is still running into ``d`` (it holds the
    marker's lock; 0 when its pid cannot be read), else None."""
    try:
        fd = os.open(d / MARKER, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            first = os.pread(fd, 200, 0).split()
            return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0
        return None
    finally:
        os.close(fd)


def leftover_servers(d: Path) -> list[int]:
    """Servers running on ``DIR/my.cnf`` (by its pid file, then by that
    exact ``--defaults-file`` argument)."""
    df = d / "my.cnf"
    pids = set(mariadbd.pids_with_defaults_file(df))
    p = mariadbd.pid_from_file(d / "mariadbd.pid")
    if p and mariadbd.pid_alive(p, str(df)):
        pids.add(p)
    return sorted(pids)


def stop_leftovers(d: Path) -> list[int]:
    """Stop what a dead restore into ``d`` left running; returns the pids.
    Nothing is touched unless ``d`` is marked and no restore runs there."""
    if not marked(d) or running_restore(d) is not None:
        return []
    pids = leftover_servers(d)
    if pids:
        mariadbd.stop([(p, d / "my.cnf") for p in pids], timeout=60)
    return pids


def clear(d: Path) -> None:
    """Remove an incomplete restore (``--force``); only a marked directory."""
    if not marked(d):
        raise IncompleteError(f"{d} is not an incomplete restore; --force replaces nothing else")
    try:
        shutil.rmtree(d)
    except OSError as e:
        raise IncompleteError(f"cannot remove the incomplete restore {d}: {e.strerror} "
                              f"({e.filename})") from None


class Marker:
    """Held by a running restore: created first, removed by ``done()``."""

    def __init__(self, d: Path):
        self.dir = d
        self.path = d / MARKER
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise IncompleteError(f"target directory {d}: another restore started there just now; "
                                  f"give another directory") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(self.fd, f"restore {os.getpid()} started {stamp}; until it removes this file "
                          f"the directory is incomplete.\n{hint(d)}\n".encode())
        os.fsync(self.fd)
        fsync_dir(d)

    def done(self) -> None:
        """The restore is complete and durable: the mark goes."""
        os.unlink(self.path)
        fsync_dir(self.dir)
        self.release()

    def release(self) -> None:
        """Let go of the lock (the mark stays unless ``done()``)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
