"""Pre- and post-recovery hooks: executables, the event in environment variables.

Variables (set by ``recovery.py``; the table with every one is in
docs/failover.md, "Hooks"): ``DBOPS_EVENT`` (pre_failover | post_failover),
``DBOPS_KIND`` (switchover | failover), ``DBOPS_CLUSTER``,
``DBOPS_RECOVERY_ID``, ``DBOPS_ACTOR``, ``DBOPS_DRY_RUN`` (0/1),
``DBOPS_JOURNAL``, ``DBOPS_OLD_PRIMARY`` / ``DBOPS_NEW_PRIMARY`` (host:port)
and their ``_HOST``, ``_PORT``, ``_NAME``; for post hooks ``DBOPS_OUTCOME``
(ok | failed), ``DBOPS_ERROR``, ``DBOPS_LOST_GTIDS`` (described, empty when
nothing was lost), ``DBOPS_REPOINTED``, ``DBOPS_LOST_REPLICAS``
(comma-separated host:port) and ``DBOPS_HAPROXY``.  Environment variables the
config reads passwords from are not passed on.  A failing pre hook (non-zero
exit, or not runnable, or over the timeout) aborts the recovery; a failing
post hook is reported.  No secret is ever passed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping

from console.errors import UserError

TIMEOUT = 30.0


class HookFailed(UserError):
    pass


def secret_env_names(cluster) -> set[str]:
    """Environment variables the config reads passwords from (kept from hooks)."""
    secrets = [h.password for h in cluster.hosts]
    if cluster.replication is not None:
        secrets.append(cluster.replication.password)
    return {s.source[len("env $"):] for s in secrets if s.source.startswith("env $")}


def run_hooks(paths: Iterable[str], env: Mapping[str, str], timeout: float = TIMEOUT,
              scrub: Iterable[str] = ()) -> list[str]:
    """Run each hook in order; return one line per hook; raise ``HookFailed`` on the first failure.
    ``scrub``: environment variables not passed on (password sources)."""
    out = []
    drop = set(scrub)
    full = {k: v for k, v in os.environ.items() if k not in drop}
    full.update({k: str(v) for k, v in env.items()})
    for p in paths:
        try:
            r = subprocess.run([p], env=full, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HookFailed(f"hook {p} could not run: {getattr(e, 'strerror', None) or e}") from None
        tail = (r.stdout.strip().splitlines() or [""])[-1][:200]
        if r.returncode != 0:
            err = (r.stderr.strip().splitlines() or [tail])[-1][:200]
            raise HookFailed(f"hook {p} exited {r.returncode}: {err}")
        out.append(f"{p}: ok" + (f" ({tail})" if tail else ""))
    return out
