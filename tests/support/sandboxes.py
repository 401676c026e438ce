"""Real sandboxes for integration tests (the same code as `dbops-console sandbox`).

Ports: each sandbox takes a block of free consecutive ports found at run
time, starting at $DBOPS_TEST_BASE_PORT (default 24000), so parallel runs and
helpers never collide.  Every sandbox is stopped by its own pids at the end.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pymysql

from console.config import load_config
from console.sandbox import Sandbox, port_free

_lock = threading.Lock()
_next = [int(os.environ.get("DBOPS_TEST_BASE_PORT", "24000"))]


def free_port_block(n: int) -> int:
    with _lock:
        p = _next[0]
        while True:
            if all(port_free(p + i) for i in range(n)):
                _next[0] = p + n + 1
                return p
            p += n + 1


TEST_REDO_MB = 16


class SandboxHandle:
    """A running sandbox plus conveniences for tests."""

    def __init__(self, directory: Path, replicas: int = 2):
        base = free_port_block(replicas + 1)
        # a small redo log: ~50 MiB a node instead of ~130 (CI disks are small)
        self.sb = Sandbox(directory, replicas=replicas, base_port=base, redo_log_mb=TEST_REDO_MB)
        self.info = self.sb.up()
        self.config_path = Path(self.info.config)
        self.config = load_config(self.config_path)
        self.cluster = self.config.cluster("sandbox")
        self.ops_password = self.sb.secret_path("dbops").read_text().strip()
        self.repl_password = self.sb.secret_path("repl").read_text().strip()

    @property
    def nodes(self):
        return self.sb.load().nodes

    def port(self, name: str) -> int:
        return next(n.port for n in self.nodes if n.name == name)

    @property
    def primary_port(self) -> int:
        return self.port("node1")

    def connect(self, name: str = "node1", **kw) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port(name), user="dbops",
                               password=self.ops_password, autocommit=True,
                               connect_timeout=3, read_timeout=60, **kw)

    def sql(self, name: str, *statements: str):
        c = self.connect(name)
        try:
            out = None
            with c.cursor() as cur:
                for s in statements:
                    cur.execute(s)
                    out = cur.fetchall()
            return out
        finally:
            c.close()

    def wait_replicas_caught_up(self, timeout: float = 30) -> None:
        gtid = self.sql("node1", "SELECT @@gtid_binlog_pos")[0][0]
        for n in self.nodes:
            if n.role == "replica":
                r = self.sql(n.name, f"SELECT MASTER_GTID_WAIT('{gtid}', {timeout})")[0][0]
                assert r == 0, f"{n.name} did not reach {gtid}"

    def stop(self) -> None:
        self.sb.down()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
