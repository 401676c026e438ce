"""The session every migration connection runs in (gh-ost's): values must
reach the ghost as they are in the original, whatever the server's or the
account's default sql_mode.

* ``NO_AUTO_VALUE_ON_ZERO``: an AUTO_INCREMENT column's 0 is a value, not a
  request for the next one (else a row with id 0 got a new id in the ghost,
  from the copy and from the apply's REPLACE);
* ``STRICT_ALL_TABLES``: a value the ghost cannot hold is an error, never a
  silent truncation (the copy's INSERT IGNORE downgrades it to a warning,
  as gh-ost's does: the copy reads the chunk's warnings before it commits
  and stops, ``copycheck.py``);
* ``time_zone = '+00:00'``: the binlog carries TIMESTAMPs as seconds since
  the epoch, decoded as UTC; the apply writes them as UTC text;
* ``--allow-zero-in-date`` removes ``NO_ZERO_DATE`` and ``NO_ZERO_IN_DATE``:
  a table whose columns default to (or hold) zero dates can then be created
  and filled.

The inspection's trial table is built in the same session, so what would
fail on the ghost fails there, before anything is created."""

from __future__ import annotations

ZERO_DATE_MODES = ("NO_ZERO_DATE", "NO_ZERO_IN_DATE")


def session_sql(allow_zero_in_date: bool = False, gtid_domain_id: int | None = None) -> str:
    """The ``SET SESSION`` a migration connection runs first; on a replica
    (``onreplica.py``) its writes go to a GTID domain of their own."""
    mode = "CONCAT(@@session.sql_mode, ',NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES')"
    if allow_zero_in_date:
        for m in ZERO_DATE_MODES:
            mode = f"REPLACE({mode}, '{m}', '')"
    domain = f", gtid_domain_id = {int(gtid_domain_id)}" if gtid_domain_id is not None else ""
    return f"SET SESSION time_zone = '+00:00', sql_mode = {mode}{domain}"
