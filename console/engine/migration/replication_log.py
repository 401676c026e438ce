"""python-mysql-replication's own log lines stay out of the operator's way.

The library logs through the ``pymysqlreplication`` logger; with no logging
set up, Python's last-resort handler prints its warnings on stderr, e.g. the
notice of its internal stream reconnect ("A pymysql.OperationalError error
occurred, Re-request the connection.").  Our binlog apply owns the position
and reports its own reconnects (``Applier.reconnects``, status), so the
library's lines are dropped: only our lines reach the user."""

from __future__ import annotations

import logging

LIBRARY_LOGGER = "pymysqlreplication"


def silence_replication_library() -> None:
    """Idempotent: the library's logger gets a null handler and passes nothing on."""
    log = logging.getLogger(LIBRARY_LOGGER)
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = False
