"""MariaDB vs MySQL: flavor and version detection and the SQL that differs.

A ``Dialect`` knows the statements for replica status, GTID variables,
read-only, wait functions and repointing.  ``detect(conn)`` picks one.
Replica status rows are normalised to one vocabulary (``ReplicaStatus``) so
callers never see ``Slave_IO_Running`` vs ``Replica_IO_Running``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from console.mysql import gtid as gtidmod
from console.mysql.connection import query, query_one, scalar


@dataclass(frozen=True)
class ReplicaStatus:
    """One replication channel, normalised across flavors."""

    channel: str
    source_host: str
    source_port: int
    io_running: str  # Yes / No / Connecting
    sql_running: str
    seconds_behind: int | None
    last_io_errno: int
    last_io_error: str
    last_sql_errno: int
    last_sql_error: str
    using_gtid: str  # MariaDB: No / Current_Pos / Slave_Pos; MySQL: auto position 0/1
    source_log_file: str
    read_source_log_pos: int
    relay_source_log_file: str
    exec_source_log_pos: int
    sql_delay: int
    source_server_id: int
    gtid_io_pos: str  # MariaDB Gtid_IO_Pos / MySQL Retrieved_Gtid_Set

    @property
    def io_ok(self) -> bool:
        return self.io_running == "Yes"

    @property
    def sql_ok(self) -> bool:
        return self.sql_running == "Yes"


def _g(row: dict[str, Any], *names: str, default: Any = "") -> Any:
    for n in names:
        if n in row and row[n] is not None:
            return row[n]
    return default


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def normalize_replica_row(row: dict[str, Any]) -> ReplicaStatus:
    sbm = _g(row, "Seconds_Behind_Master", "Seconds_Behind_Source", default=None)
    return ReplicaStatus(
        channel=str(_g(row, "Connection_name", "Channel_Name", default="")),
        source_host=str(_g(row, "Master_Host", "Source_Host")),
        source_port=_int(_g(row, "Master_Port", "Source_Port", default=0)),
        io_running=str(_g(row, "Slave_IO_Running", "Replica_IO_Running", default="No")),
        sql_running=str(_g(row, "Slave_SQL_Running", "Replica_SQL_Running", default="No")),
        seconds_behind=None if sbm is None else _int(sbm),
        last_io_errno=_int(_g(row, "Last_IO_Errno", default=0)),
        last_io_error=str(_g(row, "Last_IO_Error")),
        last_sql_errno=_int(_g(row, "Last_SQL_Errno", default=0)),
        last_sql_error=str(_g(row, "Last_SQL_Error")),
        using_gtid=str(_g(row, "Using_Gtid", "Auto_Position", default="")),
        source_log_file=str(_g(row, "Master_Log_File", "Source_Log_File")),
        read_source_log_pos=_int(_g(row, "Read_Master_Log_Pos", "Read_Source_Log_Pos", default=0)),
        relay_source_log_file=str(_g(row, "Relay_Master_Log_File", "Relay_Source_Log_File")),
        exec_source_log_pos=_int(_g(row, "Exec_Master_Log_Pos", "Exec_Source_Log_Pos", default=0)),
        sql_delay=_int(_g(row, "SQL_Delay", default=0)),
        source_server_id=_int(_g(row, "Master_Server_Id", "Source_Server_Id", default=0)),
        gtid_io_pos=str(_g(row, "Gtid_IO_Pos", "Retrieved_Gtid_Set")),
    )


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", text or "")
        if not m:
            return cls(0, 0, 0, text or "")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), text)

    def __ge__(self, other: tuple) -> bool:  # type: ignore[override]
        return (self.major, self.minor, self.patch) >= tuple(other)

    def __lt__(self, other: tuple) -> bool:  # type: ignore[override]
        return (self.major, self.minor, self.patch) < tuple(other)


class Dialect:
    """Base; use ``detect()`` or one of the subclasses."""

    name = "generic"
    gtid_flavor = gtidmod.MYSQL

    def __init__(self, version: Version):
        self.version = version

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.version.text!r})"

    # ---- reading ---------------------------------------------------------
    replica_status_sql = "SHOW REPLICA STATUS"
    replica_hosts_sql = "SHOW REPLICAS"
    binlog_status_sql = "SHOW BINARY LOG STATUS"

    def replica_status(self, conn) -> list[ReplicaStatus]:
        return [normalize_replica_row(r) for r in query(conn, self.replica_status_sql)]

    def replica_hosts(self, conn) -> list[tuple[str, int, int]]:
        """(host, port, server_id) of replicas that registered with a report host."""
        out = []
        for r in query(conn, self.replica_hosts_sql):
            host = _g(r, "Host")
            port = _int(_g(r, "Port", default=0))
            sid = _int(_g(r, "Server_id", "Server_Id", default=0))
            if host and port:
                out.append((str(host), port, sid))
        return out

    def binlog_position(self, conn) -> tuple[str, int] | None:
        row = query_one(conn, self.binlog_status_sql)
        if not row:
            return None
        return str(row["File"]), int(row["Position"])

    GTID_COLUMNS = ""  # the select list of ``gtid_positions`` (probe merges it into one query)

    def gtid_positions(self, conn) -> dict[str, str]:
        return self.gtid_positions_of(query_one(conn, f"SELECT {self.GTID_COLUMNS}") or {})

    def gtid_positions_of(self, row: dict) -> dict[str, str]:
        """The GTID positions out of a row that selected ``GTID_COLUMNS``."""
        keys = [c.rsplit(" AS ", 1)[1].strip() for c in self.GTID_COLUMNS.split(",")]
        return {k: str(row.get(k) or "").replace("\n", "") for k in keys}

    def executed_gtids(self, conn) -> gtidmod.GtidSet:
        """Everything this server has applied or written."""
        raise NotImplementedError

    def read_only(self, conn) -> bool:
        return bool(_int(scalar(conn, "SELECT @@global.read_only")))

    # ---- statements -------------------------------------------------------
    def set_read_only_sql(self, on: bool) -> list[str]:
        raise NotImplementedError

    def wait_for_gtid_sql(self) -> str:
        """SQL taking (gtid_set, timeout_seconds); see ``wait_succeeded``."""
        raise NotImplementedError

    def wait_succeeded(self, result: Any) -> bool:
        raise NotImplementedError

    def stop_replica_sql(self, io_only: bool = False) -> str:
        return "STOP REPLICA IO_THREAD" if io_only else "STOP REPLICA"

    def start_replica_sql(self) -> str:
        return "START REPLICA"

    def reset_replica_all_sql(self) -> str:
        return "RESET REPLICA ALL"

    def change_source_sql(self, host: str, port: int, user: str) -> tuple[str, tuple]:
        """Statement (with %s for the password) pointing a replica at a source by GTID."""
        raise NotImplementedError

    # ---- failover statements (both flavors) ----------------------------------
    client_threads_sql = (
        "SELECT ID AS id, USER AS user, HOST AS host, COMMAND AS command, TIME AS time "
        "FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', "
        "'Slave_SQL', 'Slave_worker', 'Connect') "
        "AND USER NOT IN ('system user', 'event_scheduler')")
    long_transactions_sql = (
        # (INNODB_TRX is a cache InnoDB refreshes at most every 100 ms: fine for
        # transactions older than max_trx_seconds, blind to one just begun)
        "SELECT trx_mysql_thread_id AS id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age "
        "FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID() "
        "ORDER BY trx_started")
    fence_lock_sql = "FLUSH TABLES WITH READ LOCK"
    unlock_sql = "UNLOCK TABLES"
    errant_sql: str | None = None  # server-side GTID subtraction, where the flavor has it

    def kill_sql(self, thread_id: int) -> str:
        return f"KILL CONNECTION {int(thread_id)}"

    def lock_timeout_sql(self, seconds: int) -> str:
        return f"SET SESSION lock_wait_timeout = {int(seconds)}"

    def before_becoming_replica_sql(self, position: str = "") -> list[str]:
        """Run on a former primary before it replicates from the new one
        (``position``: its final GTID position, read under the fence)."""
        return []

    def stop_sql_thread_sql(self) -> str:
        return "STOP REPLICA SQL_THREAD"


class MariaDBDialect(Dialect):
    name = "mariadb"
    gtid_flavor = gtidmod.MARIADB
    replica_status_sql = "SHOW ALL SLAVES STATUS"
    replica_hosts_sql = "SHOW SLAVE HOSTS"
    binlog_status_sql = "SHOW MASTER STATUS"

    GTID_COLUMNS = ("@@global.gtid_binlog_pos AS binlog, @@global.gtid_current_pos AS current, "
                    "@@global.gtid_slave_pos AS slave")

    def executed_gtids(self, conn) -> gtidmod.GtidSet:
        pos = self.gtid_positions(conn)
        # current_pos = binlog_pos merged with slave_pos (newest per domain)
        cur = gtidmod.parse(pos.get("current", ""), gtidmod.MARIADB)
        return cur.union(gtidmod.parse(pos.get("binlog", ""), gtidmod.MARIADB))

    def set_read_only_sql(self, on: bool) -> list[str]:
        # MariaDB has no super_read_only: fencing must also kill connections.
        return [f"SET GLOBAL read_only = {'ON' if on else 'OFF'}"]

    def wait_for_gtid_sql(self) -> str:
        return "SELECT MASTER_GTID_WAIT(%s, %s)"

    def wait_succeeded(self, result: Any) -> bool:
        return _int(result, -1) == 0

    def stop_replica_sql(self, io_only: bool = False) -> str:
        return "STOP SLAVE IO_THREAD" if io_only else "STOP SLAVE"

    def start_replica_sql(self) -> str:
        return "START SLAVE"

    def reset_replica_all_sql(self) -> str:
        return "RESET SLAVE ALL"

    def before_becoming_replica_sql(self, position: str = "") -> list[str]:
        # A former primary's gtid_slave_pos is stale: start from what it wrote
        # (the position read under the fence, when known: a write slipping in
        # after the fence is lifted must not move the starting point).
        if position:
            if not re.fullmatch(r"[0-9,\-]+", position):
                raise ValueError(f"not a MariaDB GTID position: {position!r}")
            return [f"SET GLOBAL gtid_slave_pos = '{position}'"]
        return ["SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos"]

    def stop_sql_thread_sql(self) -> str:
        return "STOP SLAVE SQL_THREAD"

    def change_source_sql(self, host: str, port: int, user: str) -> tuple[str, tuple]:
        return ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, "
                "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, "
                "MASTER_HEARTBEAT_PERIOD=1", (host, port, user))


class MySQLDialect(Dialect):
    """MySQL 8.0.23+ (REPLICA/SOURCE keywords)."""

    name = "mysql"
    gtid_flavor = gtidmod.MYSQL
    binlog_status_sql = "SHOW MASTER STATUS"

    GTID_COLUMNS = "@@global.gtid_executed AS executed, @@global.gtid_purged AS purged"

    def executed_gtids(self, conn) -> gtidmod.GtidSet:
        return gtidmod.parse(self.gtid_positions(conn).get("executed", ""), gtidmod.MYSQL)

    def read_only(self, conn) -> bool:
        row = query_one(conn, "SELECT @@global.read_only AS ro, @@global.super_read_only AS sro")
        return bool(_int(row["ro"]) or _int(row["sro"])) if row else False

    def set_read_only_sql(self, on: bool) -> list[str]:
        if on:
            return ["SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"]
        return ["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]

    errant_sql = "SELECT GTID_SUBTRACT(%s, %s)"

    def wait_for_gtid_sql(self) -> str:
        return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"

    def wait_succeeded(self, result: Any) -> bool:
        return _int(result, 1) == 0

    def change_source_sql(self, host: str, port: int, user: str) -> tuple[str, tuple]:
        return ("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, "
                "SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, "
                "SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1", (host, port, user))


class MySQL84Dialect(MySQLDialect):
    """MySQL 8.4 removed SHOW MASTER STATUS and friends."""

    name = "mysql84"
    binlog_status_sql = "SHOW BINARY LOG STATUS"


def dialect_for(version_text: str, comment: str = "") -> Dialect:
    v = Version.parse(version_text)
    if "mariadb" in version_text.lower() or "mariadb" in comment.lower():
        return MariaDBDialect(v)
    if v >= (8, 4, 0):
        return MySQL84Dialect(v)
    return MySQLDialect(v)


def detect(conn) -> Dialect:
    row = query_one(conn, "SELECT VERSION() AS v, @@version_comment AS c")
    return dialect_for(str(row["v"]), str(row["c"] or ""))
