"""Helpers for the failover integration tests: a write load that follows the
primary and records every acknowledged write."""

from __future__ import annotations

import threading
import time

import pymysql

APP_USER, APP_PW = "app", "app-pw-not-secret"


def prepare(h) -> None:
    """Schema and a non-privileged application user (read_only applies to it)."""
    h.sql("node1",
          "CREATE DATABASE IF NOT EXISTS app",
          "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY, writer VARCHAR(16), ts DATETIME(6))",
          f"CREATE USER IF NOT EXISTS '{APP_USER}'@'127.0.0.1' IDENTIFIED BY '{APP_PW}'",
          f"GRANT SELECT, INSERT ON app.* TO '{APP_USER}'@'127.0.0.1'")
    h.wait_replicas_caught_up()


def connect_writable(ports, user: str, password: str):
    """(connection, port) of the first of ``ports`` that answers and is not
    read_only (the primary, wherever a recovery put it); (None, None) while
    none is."""
    for p in ports:
        try:
            c = pymysql.connect(host="127.0.0.1", port=p, user=user, password=password, autocommit=True,
                                connect_timeout=0.5, read_timeout=5, write_timeout=5)
        except pymysql.MySQLError:
            continue
        with c.cursor() as cur:
            cur.execute("SELECT @@global.read_only")
            if int(cur.fetchone()[0]) == 0:
                return c, p
        c.close()
    return None, None


class Writer(threading.Thread):
    """Inserts increasing ids into app.t on whichever node accepts writes;
    ``acked`` holds the ids whose commit returned OK."""

    def __init__(self, ports: list[int], name: str = "w"):
        super().__init__(daemon=True)
        self.ports, self.wname = ports, name
        self.acked: list[int] = []
        self.errors = 0
        self.stop_ev = threading.Event()
        self.next_id = 1
        self.where: dict[int, int] = {}
        self.port_of: dict[int, int] = {}  # acknowledged id -> port of the node that acknowledged it

    def _connect(self):
        return connect_writable(self.ports, APP_USER, APP_PW)

    def run(self) -> None:
        conn, port = None, None
        while not self.stop_ev.is_set():
            if conn is None:
                conn, port = self._connect()
                if conn is None:
                    time.sleep(0.05)
                    continue
            i = self.next_id
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.t VALUES (%s, %s, NOW(6))", (i, self.wname))
                self.acked.append(i)
                self.port_of[i] = port
                self.where[port] = self.where.get(port, 0) + 1
                self.next_id += 1
            except pymysql.MySQLError as e:
                self.errors += 1
                if e.args and e.args[0] == 1062:  # committed before the connection dropped
                    self.next_id += 1
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            time.sleep(0.002)

    def finish(self) -> None:
        self.stop_ev.set()
        self.join(10)


def ids_on(h, node: str) -> set[int]:
    return {r[0] for r in h.sql(node, "SELECT id FROM app.t")}


def replica_source(h, node: str) -> tuple[int, str, str]:
    c = h.connect(node, cursorclass=pymysql.cursors.DictCursor)
    try:
        with c.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            r = cur.fetchone()
    finally:
        c.close()
    if not r:
        return 0, "", ""
    return int(r["Master_Port"]), r["Slave_IO_Running"], r["Slave_SQL_Running"]


def wait_gtid(h, node: str, gtid: str, timeout: float = 30) -> None:
    r = h.sql(node, f"SELECT MASTER_GTID_WAIT('{gtid}', {timeout})")[0][0]
    assert r == 0, f"{node} did not reach {gtid}"


def wait_replicating(h, node: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        src = replica_source(h, node)
        if src == (port, "Yes", "Yes"):
            return
        if time.monotonic() > deadline:
            err = h.sql(node, "SHOW SLAVE STATUS")
            raise AssertionError(f"{node} replicates as {src}, wanted port {port}: {err}")
        time.sleep(0.1)
