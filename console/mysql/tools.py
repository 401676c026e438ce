"""Running MariaDB client tools without secrets in their arguments.

Credentials go into a 0600 defaults file in a private temp directory,
passed as ``--defaults-extra-file`` (the first argument), and removed
afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from console.errors import UserError
from console.mysql.connection import Endpoint


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


@contextlib.contextmanager
def defaults_file(ep: Endpoint | None = None, *, socket: str = "", user: str = "",
                  password: str = "") -> Iterator[str]:
    """A temporary option file with ``[client]`` credentials (mode 0600)."""
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
    lines = ["[client]"] + [f'{k}="{_esc(v)}"' for k, v in opts]
    d = tempfile.mkdtemp(prefix="dbops-cred-")
    os.chmod(d, 0o700)
    path = os.path.join(d, "my.cnf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        yield path
    finally:
        shutil.rmtree(d, ignore_errors=True)
