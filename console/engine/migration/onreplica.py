"""Migrating on a replica (gh-ost's ``--test-on-replica``,
``--migrate-on-replica``, ``--assume-master-host``).

Everything happens on the replica the migration connects to: inspection,
ghost, copy, binlog apply (from the replica's own binlog, which holds what
its SQL thread applied: ``log_slave_updates`` is required), checksum and
cut-over.  The master is only connected to once, to see that it answers.

The replica's own writes (ghost, changelog, copy, cut-over) are binlogged
there in a GTID domain of their own, the replica's ``server_id`` (refused if
the replica replicates that domain): in the master's domain they would take
sequence numbers the master is about to use, and with ``gtid_strict_mode``
the next replicated transaction would stop replication.

``--test-on-replica``: right before the cut-over replication is stopped
(``STOP SLAVE``; hook ``gh-ost-on-stop-replication``), the cut-over is done
and at once swapped back: the original is ``<t>`` again and the new table
stays as ``<t>_gho``, both as of the same replicated point, to compare.
Replication stays stopped; the last line says how to resume it.  If the
cut-over fails, replication is started again (``gh-ost-on-start-replication``).
``--migrate-on-replica``: the migration is done there and kept, replication
running."""

from __future__ import annotations

from dataclasses import dataclass

from console.errors import UserError
from console.mysql.connection import (
    Endpoint,
    close_quietly,
    connect,
    describe_error,
    query,
    query_one,
)


@dataclass(frozen=True)
class OnReplica:
    mode: str                   # "test" | "migrate"
    master: tuple[str, int]
    domain: int                 # GTID domain of the migration's own writes on the replica
    connection: str = ""        # the replica's default connection name ("" in MariaDB)


def check_on_replica(ep: Endpoint, test: bool, migrate: bool, assume_master_host: str) -> OnReplica | None:
    """Refused (one line, before anything is made) unless the server is a
    replica whose binlog holds what it applies and its master answers."""
    if test and migrate:
        raise UserError("give one of --test-on-replica and --migrate-on-replica")
    if not (test or migrate):
        if assume_master_host:
            raise UserError("--assume-master-host needs --test-on-replica or --migrate-on-replica (without "
                            "them the migration connects to the master itself)")
        return None
    flag = "--test-on-replica" if test else "--migrate-on-replica"
    conn = connect(ep)
    try:
        st = query_one(conn, "SHOW SLAVE STATUS")
        if not st:
            raise UserError(f"{flag}: {ep.host}:{ep.port} is not a replica (SHOW SLAVE STATUS is empty); "
                            f"connect to a replica")
        if str(query_one(conn, "SELECT @@global.log_slave_updates AS v")["v"]) not in ("1", "ON"):
            raise UserError(f"{flag}: {ep.host}:{ep.port} has log_slave_updates OFF: its binlog lacks "
                            f"the replicated changes the migration must apply; turn it on")
        if assume_master_host:
            host, _, port = assume_master_host.rpartition(":")
            master = (host, int(port)) if host and port.isdigit() else (assume_master_host, 3306)
        else:
            master = (str(st["Master_Host"]), int(st["Master_Port"]))
        server_id = int(query_one(conn, "SELECT @@global.server_id AS v")["v"])
        replicated = {int(g.split("-")[0]) for r in query(conn, "SELECT @@global.gtid_slave_pos AS p")
                      for g in str(r["p"] or "").split(",") if g.strip()}
        if server_id in replicated:
            raise UserError(f"{flag}: the replica's writes would use GTID domain {server_id} (its server_id), "
                            f"which it replicates; give it a server_id that is no replicated domain")
    finally:
        close_quietly(conn)
    try:
        m = connect(ep.with_address(*master), connect_timeout=3)
        try:
            master_id = int(query_one(m, "SELECT @@global.server_id AS v")["v"])
        finally:
            close_quietly(m)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{flag}: the master {master[0]}:{master[1]} does not answer: {describe_error(e)}; "
                        f"name it with --assume-master-host HOST:PORT") from None
    if master_id == server_id:
        raise UserError(f"{flag}: {master[0]}:{master[1]} is this server, not its master")
    return OnReplica("test" if test else "migrate", master, server_id)


def stop_replication(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("STOP SLAVE")


def start_replication(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("START SLAVE")


def own_lag(conn) -> float | None:
    """The replica's lag behind its master (``Seconds_Behind_Master``), in
    seconds; None (unknown: throttles) when replication is not running."""
    st = query_one(conn, "SHOW SLAVE STATUS")
    v = st.get("Seconds_Behind_Master") if st else None
    return None if v is None else float(v)
