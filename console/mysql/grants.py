"""What an account may do, read from ``SHOW GRANTS`` (MariaDB: the user's
and its enabled role's grants; on MySQL a role's grants are not listed, so
callers check MariaDB only and let the server's own error speak on MySQL)."""

from __future__ import annotations

import re

_GLOBAL_GRANT = re.compile(r"GRANT (.+?) ON \*\.\* TO ", re.I)
REPLICATION_SLAVE = ("ALL PRIVILEGES", "REPLICATION SLAVE", "REPLICATION REPLICA")


def has_global_privilege(conn, alternatives: tuple[str, ...]) -> bool:
    """True when a global grant of the current account names one of ``alternatives``."""
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = [str(r[0]) for r in cur.fetchall()]
    for g in grants:
        m = _GLOBAL_GRANT.match(g)
        if m and any(p in m.group(1).upper() for p in alternatives):
            return True
    return False
