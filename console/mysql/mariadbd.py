"""A private ``mariadbd`` process: started on its own defaults file, judged and
stopped by its pid, never by name.

Used by the demo sandbox (``console/sandbox.py``) and by a restore's private
server (``engine/backup/mysqld.py``).  A pid counts as ours only while it
runs with ``--defaults-file=<our file>``, so a recycled pid of somebody
else's process is never signalled.  A server started by this process is
judged by its ``Popen`` handle instead: right after fork, before exec,
``/proc/PID/cmdline`` still shows our own arguments.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from console.children import die_with_parent as _die_with_parent

_children: dict[int, subprocess.Popen] = {}


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int | None, defaults_file: str | None = None) -> bool:
    """True when ``pid`` runs and (if given) was started with our defaults file,
    so a recycled pid of somebody else's process is never touched."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except OSError:
        return False
    if defaults_file:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if f"--defaults-file={defaults_file}".encode() not in cmd:
            return False
    return True


def pid_from_file(path: str | os.PathLike) -> int | None:
    """The pid a ``pid-file`` holds, or None (missing, empty or garbled)."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def pids_with_defaults_file(defaults_file: str | os.PathLike) -> list[int]:
    """Every running process started with ``--defaults-file=<defaults_file>``
    (found in /proc by that exact argument, never by a program name)."""
    want = f"--defaults-file={defaults_file}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if want in (d / "cmdline").read_bytes().split(b"\0") and pid_alive(int(d.name)):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def spawn(exe: str, defaults_file: str | os.PathLike, log: str | os.PathLike, *,
          die_with_parent: bool = False) -> int:
    """Start ``exe --defaults-file=...`` in its own session, stdout and stderr
    appended to ``log``; returns its pid.  ``die_with_parent``: the kernel
    kills it when this process (or the thread calling this) ends
    (``console.children``)."""
    out = open(log, "ab")  # noqa: SIM115
    try:
        proc = subprocess.Popen([exe, f"--defaults-file={defaults_file}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, close_fds=True,
                                preexec_fn=_die_with_parent() if die_with_parent else None)
    finally:
        out.close()
    _children[proc.pid] = proc
    return proc.pid


def running(pid: int | None, defaults_file: str | os.PathLike) -> bool:
    """Whether our server ``pid`` still runs (its Popen handle when we started it)."""
    proc = _children.get(pid) if pid else None
    if proc is not None:
        return proc.poll() is None
    return pid_alive(pid, str(defaults_file))


def reap(pid: int | None, timeout: float = 5.0) -> None:
    """Collect the exit status of a server this process started."""
    proc = _children.pop(pid, None) if pid else None
    if proc is not None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def stop(servers: Iterable[tuple[int | None, str | os.PathLike]], timeout: float = 30.0,
         reap_timeout: float = 5.0) -> list[int]:
    """SIGTERM each running server (pid, defaults file), wait for all until
    ``timeout``, SIGKILL what still runs and wait for it; returns the pids
    that were running."""
    servers = list(servers)
    stopped = []
    for pid, df in servers:
        if pid and running(pid, df):
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    deadline = time.monotonic() + timeout
    for pid, df in servers:
        while running(pid, df) and time.monotonic() < deadline:
            time.sleep(0.05)
        if running(pid, df):
            os.kill(pid, signal.SIGKILL)
            while running(pid, df):
                time.sleep(0.05)
        reap(pid, reap_timeout)
    return stopped


def first_error(path: str | os.PathLike, offset: int = 0) -> str:
    """The first ERROR line a server logged after ``offset`` (the cause of a
    failed start: later lines only say "Aborting"), without its timestamp."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "no error log"
    for ln in text.splitlines():
        if "[ERROR]" in ln:
            return ln[ln.index("[ERROR]"):].strip()
    return "no error logged"


def error_tail(path: str | os.PathLike) -> str:
    """The last ERROR line of a server's error log (start-up failures)."""
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if "ERROR" in ln]
        return lines[-1].strip() if lines else "no error logged"
    except OSError:
        return "no error log"
