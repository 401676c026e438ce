"""Child processes that die with the process that started them (Linux).

``die_with_parent()`` is a ``preexec_fn`` for ``subprocess``: in the child,
between fork and exec, it sets ``PR_SET_PDEATHSIG`` so the kernel sends the
child SIGKILL when its parent dies, ``kill -9`` included (no handler of ours
runs then).  The setting survives ``exec``.  If the parent died before the
setting took effect, the child exits at once.

One Linux detail to know: the signal comes when the *thread* that started
the child ends, not only the process.  Start such children from a thread
that outlives them (a restore starts and stops its children in the thread
that runs it).

On a system without ``prctl`` the function is ``None`` and children simply
do not get the setting.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl():
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


_prctl = _load_prctl()      # looked up here: the child must not load libraries


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when this process dies."""
    if _prctl is None:
        return None
    parent = os.getpid()
    prctl = _prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:           # the parent died before the line above
            os._exit(1)

    return preexec
