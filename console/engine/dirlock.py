"""One writer per directory: an exclusive ``flock`` on ``DIR/.lock`` (or another
name), held for the life of the process that took it (the kernel drops it
when the process ends, however it ends: no stale lock after ``kill -9``).

The lock file names its holder (``OWNER (pid N)``) so that the process that
is refused can say who has the directory."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

from console.errors import UserError

LOCK_NAME = ".lock"
_HOLDER = re.compile(r"^(.*) \(pid (\d+)\)$")


def holder_of(text: str) -> tuple[str, int | None]:
    """(owner, pid) from a lock file's text; pid None when it does not say."""
    m = _HOLDER.match(text.strip())
    return (m.group(1), int(m.group(2))) if m else (text.strip(), None)


def lock_dir(directory: Path, owner: str,
             refused: Callable[[str, int | None], UserError], name: str = LOCK_NAME) -> IO[str]:
    """Lock ``directory`` (made if missing) for this process; returns the open
    lock file (closing it releases the lock).  When another process holds it,
    raises ``refused(its owner, its pid)`` and changes nothing.  ``name``: the
    lock file's name (``.lock`` unless one directory has several owners, e.g.
    the state directory's engine)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        f = open(directory / name, "a+")  # noqa: SIM115 - held for the owner's lifetime
    except OSError as e:
        raise UserError(f"cannot lock {directory}: {e.strerror}") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        text = f.read()
        f.close()
        raise refused(*holder_of(text)) from None
    f.seek(0)
    f.truncate()
    f.write(f"{owner} (pid {os.getpid()})\n")
    f.flush()
    return f
