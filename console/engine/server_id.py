"""A task that reads a binlog as a replica must not use a server's server_id.

MariaDB keeps one dump connection per replica server_id: a second one with
the same id kicks the first out (error 4052, "A slave with the same
server_uuid/server_id as this slave has connected to the master"), so a relay
sharing a replica's server_id and that replica's IO thread would kick each
other out forever.  The servers' ids are only known from the servers, so a
task's id is checked against every host of its cluster when it starts
(``Engine.start``)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pymysql

from console.errors import UserError
from console.mysql.connection import DBError, Endpoint, connect, query, query_one


class ServerIdConflict(UserError):
    """The task's server_id is a server's own: an operator error, never retried."""


def _col(row: dict, name: str):
    return next((v for k, v in row.items() if k.lower() == name), None)


def _ids(ep: Endpoint, timeout: float, own_report_host: str
         ) -> tuple[int | None, list[tuple[int, str]]]:
    """(the server's server_id, [(server_id, where) of the replicas registered
    with it]).  The replicas come from SHOW SLAVE HOSTS, which needs REPLICATION
    MASTER ADMIN on MariaDB (REPLICATION SLAVE on MySQL): without it, none.
    Registrations with our own report host are ours (a dump of an earlier run
    the server has not noticed gone yet): left out."""
    try:
        conn = connect(ep, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    except DBError:
        return None, []  # unreachable: nothing to compare (the task reports it when it connects)
    try:
        sid = int(query_one(conn, "SELECT @@server_id AS id")["id"])
        try:
            rows = query(conn, "SHOW SLAVE HOSTS")
        except pymysql.MySQLError:
            rows = []
        replicas = []
        for r in rows:
            host, port = str(_col(r, "host") or ""), _col(r, "port")
            if own_report_host and host == own_report_host:
                continue
            replicas.append((int(_col(r, "server_id")), f"a replica of {ep.label}"
                             + (f" ({host}:{port})" if host else "")))
        return sid, replicas
    except Exception:  # noqa: BLE001 - a broken connection: as unreachable
        return None, []
    finally:
        conn.close()


def check_server_id(task_id: str, server_id: int, endpoints: Sequence[Endpoint],
                    setting: str = "", timeout: float = 3.0, own_report_host: str = "") -> None:
    """Raise ``ServerIdConflict`` when a reachable server of ``endpoints``, or
    a replica registered with one of them, has ``server_id`` (all are asked
    in parallel).  ``setting`` names where the operator sets the id (default
    ``tasks.TASK.server_id``); ``own_report_host`` is the report host our own
    dump connections register with."""
    if not endpoints:
        return
    with ThreadPoolExecutor(max_workers=len(endpoints), thread_name_prefix="server-id") as ex:
        found = list(ex.map(lambda ep: _ids(ep, timeout, own_report_host), endpoints))
    clash = ""
    for ep, (sid, _) in zip(endpoints, found, strict=True):
        if sid == server_id:
            clash = ep.label
            break
    else:
        clash = next((where for _, replicas in found for rid, where in replicas if rid == server_id), "")
    if clash:
        raise ServerIdConflict(
            f"task {task_id}: server_id {server_id} is the server_id of {clash}; a replica "
            f"connection with it would kick that server's own out (error 4052): set "
            f"{setting or f'tasks.{task_id}.server_id'} to a value no server of the cluster uses")
