"""Before a fresh relay creates anything: may this account stream from the
upstream, from the start asked for?  Each refusal is one line naming what
is wrong and how to fix it (``UserError``, exit 2); none is retried.

* connect (unreachable host, wrong password: never retried);
* REPLICATION SLAVE (MariaDB: SHOW GRANTS) and BINLOG MONITOR (SHOW BINARY
  LOGS must work: the relay lists binlogs and polls the upstream's end);
* the start: ``file:NAME:POS`` names a binlog the server has, POS is inside
  it and starts an event (SHOW BINLOG EVENTS checks it); ``gtid:D-S-N`` per
  domain is in the server's binlog state and not purged (the GTID state at
  the start of the oldest binlog, BINLOG_GTID_POS(oldest, 4), is the floor).
"""

from __future__ import annotations

import pymysql

from console.errors import UserError
from console.mysql.connection import (
    ACCESS_DENIED_CODES,
    DBError,
    Endpoint,
    connect,
    describe_error,
    query,
    scalar,
)
from console.mysql.grants import REPLICATION_SLAVE, has_global_privilege

ER_NO_BINARY_LOGGING = 1381
ER_ERROR_WHEN_EXECUTING_COMMAND = 1220


class PreflightError(UserError):
    """The upstream cannot serve this relay as asked."""


def check_upstream(ep: Endpoint, start_from: str, *, credentials: str = "the user and password",
                   start_flag: str = "start_from", connect_timeout: float = 5.0) -> None:
    """Raise ``PreflightError``/``DBError`` (one line) unless the upstream can
    serve a relay from ``start_from``; ``credentials``/``start_flag`` name
    where the operator set them."""
    try:
        conn = connect(ep, connect_timeout=connect_timeout, read_timeout=30)
    except DBError as e:
        if e.code in ACCESS_DENIED_CODES:
            raise PreflightError(f"{ep.label}: error {e.code}: Access denied for user {ep.user!r}: "
                                 f"check {credentials}") from None
        raise
    try:
        _check(conn, ep, start_from, start_flag)
    except pymysql.MySQLError as e:
        raise describe_error(e, ep) from None
    finally:
        conn.close()


def _check(conn, ep: Endpoint, start_from: str, flag: str) -> None:
    mariadb = "mariadb" in str(scalar(conn, "SELECT @@version")).lower()
    user = str(scalar(conn, "SELECT CURRENT_USER()"))
    name, _, host = user.rpartition("@")
    grantee = f"'{name}'@'{host}'"
    if mariadb and not has_global_privilege(conn, REPLICATION_SLAVE):
        raise PreflightError(f"{ep.label}: {user} lacks the REPLICATION SLAVE privilege a relay "
                             f"reads the binlog with (GRANT REPLICATION SLAVE ON *.* TO {grantee})")
    try:
        logs = {str(r["Log_name"]): int(r["File_size"]) for r in query(conn, "SHOW BINARY LOGS")}
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args else None
        if code in ACCESS_DENIED_CODES:
            priv = "BINLOG MONITOR" if mariadb else "REPLICATION CLIENT"
            raise PreflightError(f"{ep.label}: {user} lacks the {priv} privilege a relay lists "
                                 f"the binlogs with (GRANT {priv} ON *.* TO {grantee})") from None
        if code != ER_NO_BINARY_LOGGING:
            raise
        logs = {}
    if not logs:
        raise PreflightError(f"{ep.label}: binary logging is off: nothing to relay (start it with log_bin)")
    if start_from.startswith("file:"):
        _check_file(conn, ep, start_from, logs, flag)
    elif start_from.startswith("gtid:") and mariadb:
        _check_gtid(conn, ep, start_from, next(iter(logs)), flag)


def _check_file(conn, ep: Endpoint, start_from: str, logs: dict[str, int], flag: str) -> None:
    name, _, pos_text = start_from[5:].rpartition(":")
    pos = int(pos_text)
    names = list(logs)
    if name not in logs:
        raise PreflightError(f"{flag} {start_from}: no binary log {name} on {ep.label} "
                             f"(it has {names[0]} .. {names[-1]})")
    if pos > logs[name]:
        raise PreflightError(f"{flag} {start_from}: {pos} is past the end of {name} "
                             f"({logs[name]} bytes on {ep.label})")
    try:
        query(conn, "SHOW BINLOG EVENTS IN %s FROM %s LIMIT 1", (name, pos))
    except pymysql.MySQLError as e:
        if e.args and e.args[0] == ER_ERROR_WHEN_EXECUTING_COMMAND:
            raise PreflightError(f"{flag} {start_from}: {pos} is not the start of an event in "
                                 f"{name} on {ep.label} (SHOW BINLOG EVENTS IN '{name}' lists them)") from None
        raise


def _triples(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in g.strip().split("-")) for g in (text or "").split(",") if g.strip()]


def _check_gtid(conn, ep: Endpoint, start_from: str, oldest_log: str, flag: str) -> None:
    state = _triples(str(scalar(conn, "SELECT @@gtid_binlog_state") or ""))
    pos = str(scalar(conn, "SELECT @@gtid_binlog_pos") or "")
    floor_text = str(scalar(conn, "SELECT BINLOG_GTID_POS(%s, 4)", (oldest_log,)) or "")
    floor = {d: (s, n) for d, s, n in _triples(floor_text)}
    for d, s, n in _triples(start_from[5:]):
        gtid = f"{d}-{s}-{n}"
        if floor.get(d) == (s, n):
            continue  # exactly where the oldest binlog starts
        if d in floor and n <= floor[d][1]:
            raise PreflightError(f"{flag} gtid:{gtid}: {ep.label} has purged it (its oldest binlog "
                                 f"{oldest_log} starts after {floor_text}): start there or later")
        if not any(sd == d and ss == s and sn >= n for sd, ss, sn in state):
            raise PreflightError(f"{flag} gtid:{gtid}: {ep.label} does not have {gtid} (its binlog "
                                 f"position is {pos or 'empty'}): start from one of its GTIDs, "
                                 f"oldest or now")
