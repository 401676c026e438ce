"""Running MariaDB client tools without secrets on disk or in their arguments.

Credentials go into an anonymous in-memory file (``memfd_create``: it has no
name in any filesystem, so no interruption, not even ``kill -9``, can leave
it behind) that the child inherits and reads as
``--defaults-extra-file=/dev/fd/N``.  Not a pipe: mariadb-backup reads its
option files twice (server groups, then client groups), and the second read
of a pipe is empty; opening ``/dev/fd/N`` of a memfd starts at its beginning
each time.

Work directories for tools (``private_dir``) are locked while in use; a run
sweeps those whose owner died (``sweep_dirs``), including credential
directories that older versions wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from console.errors import UserError
from console.mysql.connection import Endpoint

LEGACY_CRED_PREFIX = "dbops-cred-"  # 0600 option files older versions wrote to TMPDIR


def which(*names: str) -> str | None:
    """The first of ``names`` found on PATH or in the sbin directories
    (``mariadbd`` lives in /usr/sbin, often not on a user's PATH)."""
    for n in names:
        p = shutil.which(n) or shutil.which(n, path="/usr/sbin:/usr/local/sbin:/usr/bin")
        if p:
            return p
    return None


def need(*names: str) -> str:
    """Like ``which``, but a missing tool is a one-line error naming the package."""
    p = which(*names)
    if p:
        return p
    raise UserError(f"{names[0]} not found; install it (Debian: apt-get install -y "
                    f"{'mariadb-backup' if 'backup' in names[0] else 'mariadb-client'})")


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class ClientOptions:
    """Hand to a child: ``arg`` first in its argv, ``pass_fds`` to ``subprocess``."""

    fd: int

    @property
    def arg(self) -> str:
        return f"--defaults-extra-file=/dev/fd/{self.fd}"

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.fd,)


@contextlib.contextmanager
def client_options(ep: Endpoint | None = None, *, socket: str = "", user: str = "",
                   password: str = "") -> Iterator[ClientOptions]:
    """``[client]`` credentials in an anonymous in-memory file, closed at the end."""
    opts: list[tuple[str, str]] = []
    if ep is not None:
        try:
            secret = ep.password.reveal()
        except OSError as e:
            raise UserError(f"{ep.label}: cannot read password: {e.strerror}") from None
        opts += [("host", ep.host), ("port", str(ep.port)), ("user", ep.user), ("password", secret)]
    if socket:
        opts += [("socket", socket), ("protocol", "socket")]
    if user:
        opts.append(("user", user))
    if password:
        opts.append(("password", password))
    text = "\n".join(["[client]"] + [f'{k}="{_esc(v)}"' for k, v in opts]) + "\n"
    fd = os.memfd_create("dbops-client-options", os.MFD_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)  # the client library ignores a world-writable option file
        os.write(fd, text.encode())
        yield ClientOptions(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def tool_process(argv: list[str], cred: ClientOptions, **kw) -> Iterator[subprocess.Popen]:
    """A client tool ``argv`` reading ``cred`` (its first argument); killed
    if the block does not end normally (an error, or SIGTERM raised as
    KeyboardInterrupt)."""
    proc = subprocess.Popen([argv[0], cred.arg, *argv[1:]], pass_fds=cred.pass_fds,
                            stdin=subprocess.DEVNULL, **kw)
    try:
        yield proc
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise


@contextlib.contextmanager
def private_dir(prefix: str) -> Iterator[str]:
    """A 0700 directory under TMPDIR, locked (flock) while the block runs and
    removed after it; ``sweep_dirs`` removes it if this process dies first."""
    d = tempfile.mkdtemp(prefix=prefix)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
        os.close(fd)


def sweep_dirs(*prefixes: str) -> int:
    """Remove directories under TMPDIR named ``prefix*`` whose owner is gone
    (nobody holds their lock); returns how many."""
    base = tempfile.gettempdir()
    n = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(prefixes):
            continue
        path = os.path.join(base, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                raise PermissionError  # not ours
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # in use, or another user's
        try:
            shutil.rmtree(path, ignore_errors=True)
            n += 1
        finally:
            os.close(fd)
    return n
