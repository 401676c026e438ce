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

from console.errors import UserError
from console.mysql.connection import DBError, Endpoint, connect, query_one


class ServerIdConflict(UserError):
    """The task's server_id is a server's own: an operator error, never retried."""


def _server_id(ep: Endpoint, timeout: float) -> int | None:
    try:
        conn = connect(ep, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    except DBError:
        return None  # unreachable: nothing to compare (the task reports it when it connects)
    try:
        return int(query_one(conn, "SELECT @@server_id AS id")["id"])
    except Exception:  # noqa: BLE001 - a broken connection: as unreachable
        return None
    finally:
        conn.close()


def check_server_id(task_id: str, server_id: int, endpoints: Sequence[Endpoint],
                    setting: str = "", timeout: float = 3.0) -> None:
    """Raise ``ServerIdConflict`` when a reachable server of ``endpoints`` has
    ``server_id`` (all are asked in parallel).  ``setting`` names where the
    operator sets the id (default ``tasks.TASK.server_id``)."""
    if not endpoints:
        return
    with ThreadPoolExecutor(max_workers=len(endpoints), thread_name_prefix="server-id") as ex:
        ids = list(ex.map(lambda ep: _server_id(ep, timeout), endpoints))
    for ep, sid in zip(endpoints, ids, strict=True):
        if sid == server_id:
            raise ServerIdConflict(
                f"task {task_id}: server_id {server_id} is the server_id of {ep.label}; a replica "
                f"connection with it would kick that server's own out (error 4052): set "
                f"{setting or f'tasks.{task_id}.server_id'} to a value no server of the cluster uses")
