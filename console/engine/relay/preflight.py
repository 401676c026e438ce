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

from dataclasses import dataclass

import pymysql

from console.errors import UserError
from console.mysql.binlog.protocol import ServerIdentity
from console.mysql.connection import (
    ACCESS_DENIED_CODES,
    ER_ACCESS_DENIED,
    DBError,
    Endpoint,
    access_denied_text,
    connect,
    describe_error,
    query,
    query_one,
    scalar,
)
from console.mysql.grants import REPLICATION_SLAVE, has_global_privilege
from console.mysql.gtid import Gtid, position

ER_NO_BINARY_LOGGING = 1381
ER_ERROR_WHEN_EXECUTING_COMMAND = 1220


class PreflightError(UserError):
    """The upstream cannot serve this relay as asked."""


@dataclass(frozen=True)
class Upstream:
    """What the checks learnt about the upstream."""

    identity: str        # ServerIdentity.key: names the relay subdirectory of this server
    gtid_pos: str        # its binlog GTID position (MariaDB gtid_binlog_pos)


def check_upstream(ep: Endpoint, start_from: str, *, credentials: str = "",
                   start_flag: str = "start_from", connect_timeout: float = 5.0) -> Upstream:
    """Raise ``PreflightError``/``DBError`` (one line) unless the upstream can
    serve a relay from ``start_from``; ``credentials``/``start_flag`` name
    where the operator set them (default: the config's password /
    password_file).  An unreachable upstream raises the connect ``DBError``."""
    try:
        conn = connect(ep, connect_timeout=connect_timeout, read_timeout=30)
    except DBError as e:
        if e.code == ER_ACCESS_DENIED:
            raise PreflightError(f"{ep.label}: {access_denied_text(ep, str(e), credentials)}") from None
        if e.code in ACCESS_DENIED_CODES:
            raise PreflightError(str(e)) from None
        raise
    try:
        _check(conn, ep, start_from, start_flag)
        return _facts(conn)
    except pymysql.MySQLError as e:
        raise describe_error(e, ep) from None
    finally:
        conn.close()


def _facts(conn) -> Upstream:
    row = query_one(conn, "SELECT @@server_id AS id, @@hostname AS h, @@port AS p, @@version AS v")
    mariadb = "mariadb" in str(row["v"]).lower()
    uuid = "" if mariadb else str(scalar(conn, "SELECT @@server_uuid"))
    ident = ServerIdentity(int(row["id"]), str(row["h"]), int(row["p"]), str(row["v"]), uuid,
                           "mariadb" if mariadb else "mysql")
    gtid = str(scalar(conn, "SELECT @@gtid_binlog_pos" if mariadb else "SELECT @@gtid_executed") or "")
    return Upstream(ident.key, gtid)


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


def _gtids(text: str) -> list[Gtid]:
    """The GTIDs of a list as written (``@@gtid_binlog_state`` may name a
    domain several times, once per server)."""
    return [Gtid.parse(g) for g in (text or "").split(",") if g.strip()]


def _check_gtid(conn, ep: Endpoint, start_from: str, oldest_log: str, flag: str) -> None:
    state = _gtids(str(scalar(conn, "SELECT @@gtid_binlog_state") or ""))
    pos = str(scalar(conn, "SELECT @@gtid_binlog_pos") or "")
    floor_text = str(scalar(conn, "SELECT BINLOG_GTID_POS(%s, 4)", (oldest_log,)) or "")
    floor = position(floor_text)
    for g in _gtids(start_from[5:]):
        gtid = str(g)
        if floor.gtid(g.domain) == g:
            continue  # exactly where the oldest binlog starts
        if g in floor:
            raise PreflightError(f"{flag} gtid:{gtid}: {ep.label} has purged it (its oldest binlog "
                                 f"{oldest_log} starts after {floor_text}): start there or later")
        if not any(h.domain == g.domain and h.server_id == g.server_id and h.seq >= g.seq
                   for h in state):
            raise PreflightError(f"{flag} gtid:{gtid}: {ep.label} does not have {gtid} (its binlog "
                                 f"position is {pos or 'empty'}): start from one of its GTIDs, "
                                 f"oldest or now")
