"""Read one server's replication facts (no decisions: roles are decided in
``console.engine.topology``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pymysql

from console.mysql.connection import (
    ACCESS_DENIED_CODES,
    DBError,
    Endpoint,
    describe_error,
    query,
    query_one,
)
from console.mysql.flavor import Dialect, ReplicaStatus, detect

HEARTBEAT_DB = "dbops"
HEARTBEAT_TABLE = "heartbeat"


@dataclass(frozen=True)
class HostState:
    name: str
    address: str
    reachable: bool
    error: str = ""
    error_code: int | None = None  # the server's error code when it refused us (1045: login)
    role: str = "unknown"  # primary | replica | intermediate | unknown
    server_id: int = 0
    version: str = ""
    flavor: str = ""
    read_only: bool = False
    log_bin: bool = False
    log_slave_updates: bool = False
    binlog_file: str = ""
    binlog_pos: int = 0
    binlog_bytes: int | None = None  # the binary logs' total size (SHOW BINARY LOGS); None: unknown
    gtid_binlog_pos: str = ""
    gtid_current_pos: str = ""
    gtid_slave_pos: str = ""
    gtid_executed: str = ""
    channels: tuple[ReplicaStatus, ...] = ()
    replica_hosts: tuple[tuple[str, int, int], ...] = ()
    dump_threads: int = 0
    heartbeat_age: float | None = None  # seconds since the newest heartbeat row, on this host
    heartbeat_lag: float | None = None  # replica lag from the heartbeat (set by the monitor)
    upstream: str = ""  # address of the source (first channel)
    probed_at: float = field(default_factory=time.time)
    probe_ms: float = 0.0

    @property
    def position(self) -> str:
        return f"{self.binlog_file}:{self.binlog_pos}" if self.binlog_file else ""

    @property
    def gtid(self) -> str:
        """The GTID position worth showing: MariaDB current_pos, MySQL executed."""
        return self.gtid_current_pos or self.gtid_executed

    @property
    def seconds_behind(self) -> int | None:
        return self.channels[0].seconds_behind if self.channels else None

    @property
    def io_thread(self) -> str:
        return self.channels[0].io_running if self.channels else ""

    @property
    def sql_thread(self) -> str:
        return self.channels[0].sql_running if self.channels else ""

    @property
    def replication_error(self) -> str:
        for c in self.channels:
            if c.last_io_error or c.last_sql_error:
                return c.last_sql_error or c.last_io_error
        return ""

    @property
    def access_denied(self) -> bool:
        """The server answered but refused our account (wrong password, missing
        privilege): not down, and retrying will not help."""
        return not self.reachable and self.error_code in ACCESS_DENIED_CODES

    @property
    def down_word(self) -> str:
        """How an unreachable host is shown: "access denied" or "unreachable"."""
        return "access denied" if self.access_denied else "unreachable"

    def with_(self, **kw) -> HostState:
        return replace(self, **kw)


def probe(ep: Endpoint, conn, dialect: Dialect | None = None,
          heartbeat_server_id: int | None = None, *, binlog_sizes: bool = False) -> HostState:
    """Everything the dashboard shows about one host, over an open connection
    (``binlog_sizes``: also the binary logs' total size, one more query)."""
    t0 = time.monotonic()
    try:
        dialect = dialect or detect(conn)
        # one round trip for the variables, the GTID positions and the dump threads
        v = query_one(conn, "SELECT @@server_id AS sid, VERSION() AS ver, @@global.read_only AS ro, "
                            "@@global.log_bin AS lb, @@global.log_slave_updates AS lsu, "
                            f"{dialect.GTID_COLUMNS}, (SELECT COUNT(*) FROM "
                            "information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', "
                            "'Binlog Dump GTID')) AS dumps")
        pos = dialect.binlog_position(conn) if int(v["lb"]) else None
        binlog_bytes = binlog_total_bytes(conn) if pos and binlog_sizes else None
        g = dialect.gtid_positions_of(v)
        channels = tuple(dialect.replica_status(conn))
        hosts = tuple(dialect.replica_hosts(conn))
        dumps = {"n": v["dumps"]}
        hb_age = None
        if heartbeat_server_id is not None:
            hb_age = heartbeat_age(conn, heartbeat_server_id)
        ch0 = channels[0] if channels else None
        return HostState(
            name=ep.name or ep.address, address=ep.address, reachable=True,
            server_id=int(v["sid"]), version=str(v["ver"]), flavor=dialect.name,
            read_only=bool(int(v["ro"])), log_bin=bool(int(v["lb"])),
            log_slave_updates=bool(int(v["lsu"])),
            binlog_file=pos[0] if pos else "", binlog_pos=pos[1] if pos else 0,
            binlog_bytes=binlog_bytes,
            gtid_binlog_pos=g.get("binlog", ""), gtid_current_pos=g.get("current", ""),
            gtid_slave_pos=g.get("slave", ""), gtid_executed=g.get("executed", ""),
            channels=channels, replica_hosts=hosts, dump_threads=int(dumps["n"]) if dumps else 0,
            heartbeat_age=hb_age,
            upstream=f"{ch0.source_host}:{ch0.source_port}" if ch0 else "",
            probe_ms=(time.monotonic() - t0) * 1000,
        )
    except DBError as e:
        return unreachable(ep, str(e), e.code)
    except Exception as e:  # noqa: BLE001 - a dropped connection mid-probe
        err = describe_error(e, ep)
        return unreachable(ep, str(err), err.code)


def unreachable(ep: Endpoint, error: str, code: int | None = None) -> HostState:
    return HostState(name=ep.name or ep.address, address=ep.address, reachable=False, error=error,
                     error_code=code)


def binlog_total_bytes(conn) -> int | None:
    """The size of every binary log the server keeps (``SHOW BINARY LOGS``);
    None when the account may not list them."""
    try:
        rows = query(conn, "SHOW BINARY LOGS")
    except pymysql.MySQLError as e:
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        if 1000 <= code < 2000:  # the server refused (a privilege): unknown, not down
            return None
        raise
    return sum(int(r.get("File_size") or 0) for r in rows)


def heartbeat_age(conn, primary_server_id: int) -> float | None:
    try:
        rows = query(conn, f"SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) / 1000000 AS age "
                           f"FROM {HEARTBEAT_DB}.{HEARTBEAT_TABLE} WHERE server_id = %s",
                     (primary_server_id,))
    except Exception:  # noqa: BLE001 - table not there (yet)
        return None
    return float(rows[0]["age"]) if rows else None


def ensure_heartbeat_table(conn) -> None:
    """Create the heartbeat table on a writable server that lacks it.  Never
    on a read-only one: ``CREATE ... IF NOT EXISTS`` is binlogged even when
    the table exists, and the console's user bypasses read_only, so it would
    leave an errant transaction on a fenced or demoted primary."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.read_only, (SELECT COUNT(*) FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s)", (HEARTBEAT_DB, HEARTBEAT_TABLE))
        read_only, exists = cur.fetchone()
        if int(exists) or int(read_only):
            return
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HEARTBEAT_DB}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_DB}.{HEARTBEAT_TABLE} ("
                    "server_id INT UNSIGNED NOT NULL PRIMARY KEY, "
                    "ts DATETIME(6) NOT NULL) ENGINE=InnoDB")


def write_heartbeat(conn) -> None:
    """Write the heartbeat row, but never on a read-only server (like
    pt-heartbeat --check-read-only): the console's user bypasses read_only,
    and a heartbeat landing on a fenced or demoted primary would be an
    errant transaction.  With read_only on no row changes and no GTID is
    written."""
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {HEARTBEAT_DB}.{HEARTBEAT_TABLE} (server_id, ts) "
                    "SELECT @@server_id, NOW(6) FROM DUAL WHERE @@global.read_only = 0 "
                    "ON DUPLICATE KEY UPDATE ts = VALUES(ts)")
