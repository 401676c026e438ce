"""A local replication topology of real ``mariadbd`` processes.

``Sandbox(dir, replicas, base_port).up()`` creates (or reuses) a primary on
``base_port`` and N replicas on the following ports, with GTID replication
(``MASTER_USE_GTID=slave_pos``), ROW binlogs with FULL row image and
metadata, ``log_slave_updates`` and read-only replicas.  Two users exist on
every node: ``repl`` (replication) and ``dbops`` (operations).  Their
passwords are random, kept in ``DIR/secrets/*.password`` (mode 0600) and
referenced by ``password_file`` from the generated console config
``DIR/dbops.toml``.

``down()`` stops only the processes this sandbox started, by the pids it
recorded, after checking that each pid still runs our own defaults file.
The integration tests use exactly this code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pymysql

from console.errors import UserError
from console.mysql import mariadbd
from console.mysql.mariadbd import pid_alive, port_free  # noqa: F401 - also used from here
from console.mysql.tools import which

STATE_FILE = "sandbox.json"
CONFIG_FILE = "dbops.toml"
INSTALL_HINT = "install it with: apt-get install -y mariadb-server mariadb-client"
OPS_USER = "dbops"
REPL_USER = "repl"
NODE_BASE_MB = 48  # a fresh node without its redo log: ibdata1, ibtmp1, system tables
INSTALL_TIMEOUT = 300  # s; mariadb-install-db takes ~2 s here
HEADROOM_MB = 256  # binlogs and data of a first test or demo


class SandboxError(UserError):
    pass


@dataclass
class Node:
    name: str
    role: str  # primary | replica
    port: int
    server_id: int
    datadir: str
    socket: str
    defaults_file: str
    pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class SandboxInfo:
    dir: str
    base_port: int
    nodes: list[Node] = field(default_factory=list)
    config: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["ports"] = [n.port for n in self.nodes]
        d["pids"] = [n.pid for n in self.nodes]
        d["primary"] = next((n.address for n in self.nodes if n.role == "primary"), None)
        for n, raw in zip(self.nodes, d["nodes"], strict=True):
            raw["running"] = pid_alive(n.pid, n.defaults_file)
        return d


class Sandbox:
    OPS_USER, REPL_USER = OPS_USER, REPL_USER

    def __init__(self, directory: str | os.PathLike, replicas: int = 2, base_port: int = 23306,
                 redo_log_mb: int = 96):
        self.dir = Path(directory).expanduser().resolve()
        self.replicas = replicas
        self.base_port = base_port
        self.redo_log_mb = redo_log_mb
        if not 8 <= redo_log_mb <= 4096:
            raise SandboxError(f"--redo-log-mb must be between 8 and 4096, got {redo_log_mb}")
        if replicas < 0 or replicas > 9:
            raise SandboxError(f"--replicas must be between 0 and 9, got {replicas}")
        if not 1024 <= base_port <= 65535 - replicas:
            raise SandboxError(f"--base-port must be between 1024 and {65535 - replicas}, got {base_port}")

    # ---- files --------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_FILE

    def secret_path(self, user: str) -> Path:
        return self.dir / "secrets" / f"{user}.password"

    def load(self) -> SandboxInfo | None:
        try:
            raw = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        return SandboxInfo(dir=raw["dir"], base_port=raw["base_port"],
                           nodes=[Node(**n) for n in raw["nodes"]], config=raw.get("config", ""))

    def _save(self, info: SandboxInfo) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        os.replace(tmp, self.state_path)

    def _password(self, user: str) -> str:
        p = self.secret_path(user)
        if p.exists():
            return p.read_text().strip()
        p.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(p.parent, 0o700)
        pw = secrets.token_urlsafe(18)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pw + "\n")
        return pw

    # ---- lifecycle -------------------------------------------------------

    def nodes(self) -> list[Node]:
        out = []
        for i in range(self.replicas + 1):
            name = f"node{i + 1}"
            nd = self.dir / name
            out.append(Node(name=name, role="primary" if i == 0 else "replica",
                            port=self.base_port + i, server_id=i + 1,
                            datadir=str(nd / "data"), socket=str(nd / "mariadbd.sock"),
                            defaults_file=str(nd / "my.cnf")))
        return out

    def status(self) -> SandboxInfo | None:
        return self.load()

    def running(self) -> bool:
        info = self.load()
        return bool(info) and all(pid_alive(n.pid, n.defaults_file) for n in info.nodes)

    def up(self, timeout: float = 60.0, progress=lambda msg: None) -> SandboxInfo:
        server_exe = which("mariadbd", "mysqld")
        install_db = which("mariadb-install-db", "mysql_install_db")
        if not server_exe or not install_db:
            raise SandboxError(f"mariadbd not found; {INSTALL_HINT}")

        existing = self.load()
        if existing:
            alive = [pid_alive(n.pid, n.defaults_file) for n in existing.nodes]
            if all(alive):
                progress(f"reusing running sandbox in {self.dir}")
                if not self.config_path.exists():
                    self._write_config(existing)
                return existing
            # Some stopped: restart the stopped ones with the recorded layout.
            nodes = existing.nodes
            self.base_port = existing.base_port
            self.replicas = len(nodes) - 1
        else:
            nodes = self.nodes()

        for n in nodes:
            if not pid_alive(n.pid, n.defaults_file) and not port_free(n.port):
                raise SandboxError(f"port {n.port} ({n.name}) is already in use; "
                                   f"choose another --base-port or stop what listens there")

        self.dir.mkdir(parents=True, exist_ok=True)
        self._check_disk(sum(1 for n in nodes if not Path(n.datadir, "mysql").is_dir()))
        ops_pw, repl_pw = self._password(OPS_USER), self._password(REPL_USER)
        fresh = []
        for n in nodes:
            if not Path(n.datadir, "mysql").is_dir():
                self._install(n, install_db, ops_pw, repl_pw, progress)
                fresh.append(n)
        info = SandboxInfo(dir=str(self.dir), base_port=self.base_port, nodes=nodes,
                           config=str(self.config_path))
        for n in nodes:
            if not pid_alive(n.pid, n.defaults_file):
                progress(f"starting {n.name} ({n.role}) on port {n.port}")
                n.pid = self._start(n, server_exe)
                self._save(info)
        deadline = time.monotonic() + timeout
        for n in nodes:
            self._wait_ready(n, ops_pw, deadline)
        for n in fresh:
            if n.role == "replica":
                self._start_replication(n, nodes[0], ops_pw, repl_pw)
        self._wait_replicating(nodes, ops_pw, deadline)
        self._write_config(info)
        self._save(info)
        progress(f"sandbox ready: primary 127.0.0.1:{nodes[0].port}, "
                 f"{len(nodes) - 1} replica(s), config {self.config_path}")
        return info

    def down(self, timeout: float = 30.0) -> list[str]:
        """Stop our own processes (by recorded pid); returns what was stopped."""
        info = self.load()
        if not info:
            return []
        pids = mariadbd.stop([(n.pid, n.defaults_file) for n in info.nodes], timeout=timeout)
        stopped = [n.name for n in info.nodes if n.pid in pids]
        for n in info.nodes:
            n.pid = None
        self._save(info)
        return stopped

    def stop_node(self, name: str, sig: int = signal.SIGTERM, wait: bool = True) -> None:
        """Stop one node (tests and demos: simulate a failure)."""
        info = self.load()
        node = next((n for n in (info.nodes if info else []) if n.name == name), None)
        if not node:
            raise SandboxError(f"no node named {name!r} in {self.dir}")
        if _running(node):
            os.kill(node.pid, sig)
            if wait:  # (SIGSTOP and friends are sent with wait=False)
                while _running(node):
                    time.sleep(0.05)
                _reap(node.pid)

    def start_node(self, name: str, timeout: float = 30.0) -> None:
        info = self.load()
        node = next((n for n in (info.nodes if info else []) if n.name == name), None)
        if not node:
            raise SandboxError(f"no node named {name!r} in {self.dir}")
        if not _running(node):
            node.pid = self._start(node, which("mariadbd", "mysqld") or "mariadbd")
            self._save(info)
            self._wait_ready(node, self._password(OPS_USER), time.monotonic() + timeout)

    def destroy(self) -> None:
        self.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- pieces ------------------------------------------------------------

    def _check_disk(self, new_nodes: int) -> None:
        """A full disk makes mariadbd wait for space forever instead of
        failing: refuse up front, with what to do."""
        if not new_nodes:
            return
        need = new_nodes * (self.redo_log_mb + NODE_BASE_MB) + HEADROOM_MB
        free = shutil.disk_usage(self.dir).free // 2**20
        if free < need:
            raise SandboxError(f"only {free} MiB free in {self.dir}; {new_nodes} new node(s) need "
                               f"about {need} MiB: free space, use --dir elsewhere or a smaller "
                               f"--redo-log-mb")

    def _cnf(self, n: Node) -> str:
        lines = [
            "[mariadbd]",
            f"datadir={n.datadir}",
            f"socket={n.socket}",
            f"pid-file={Path(n.datadir).parent / 'mariadbd.pid'}",
            f"log-error={Path(n.datadir).parent / 'error.log'}",
            # own tmpdir: bootstrap temp tables in a shared /tmp were seen deleted
            # under us ("Error on delete of '/tmp/#sql-temptable-...'")
            f"tmpdir={Path(n.datadir).parent}",
            f"port={n.port}",
            "bind-address=127.0.0.1",
            "skip-name-resolve",
            f"server_id={n.server_id}",
            "log_bin=mysql-bin",
            "relay_log=relay-bin",
            "binlog_format=ROW",
            "binlog_row_image=FULL",
            "binlog_row_metadata=FULL",
            "log_slave_updates=ON",
            "gtid_strict_mode=ON",
            "report_host=127.0.0.1",
            f"report_port={n.port}",
            "slave_net_timeout=4",
            "innodb_buffer_pool_size=128M",
            f"innodb_log_file_size={self.redo_log_mb}M",
            "innodb_flush_log_at_trx_commit=1",
            "max_allowed_packet=64M",
            "performance_schema=OFF",
            "max_connections=300",
            "character_set_server=utf8mb4",
            "collation_server=utf8mb4_general_ci",
            "expire_logs_days=7",
        ]
        if n.role == "replica":
            lines.append("read_only=ON")
        if os.geteuid() == 0:
            lines.append("user=root")
        return "\n".join(lines) + "\n"

    def _install(self, n: Node, install_db: str, ops_pw: str, repl_pw: str, progress) -> None:
        nd = Path(n.datadir).parent
        nd.mkdir(parents=True, exist_ok=True)
        Path(n.defaults_file).write_text(self._cnf(n))
        progress(f"initialising {n.name} in {nd}")
        cmd = [install_db, f"--defaults-file={n.defaults_file}", "--skip-test-db",
               "--auth-root-authentication-method=socket"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"mariadb-install-db did not finish within {INSTALL_TIMEOUT}s for "
                               f"{n.name} (a full disk makes it wait for space): see "
                               f"{nd / 'error.log'}") from None
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SandboxError(f"mariadb-install-db failed for {n.name}: {tail[0]}")
        # Users are created through an init file so no password ever appears
        # in a process argument; the statements are not binlogged (every node
        # runs them, and logging them would create errant GTIDs).
        init = nd / "init.sql"
        fd = os.open(init, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(
                "SET SESSION sql_log_bin=0;\n"
                f"CREATE USER IF NOT EXISTS '{OPS_USER}'@'127.0.0.1' IDENTIFIED BY '{ops_pw}';\n"
                f"CREATE USER IF NOT EXISTS '{OPS_USER}'@'localhost' IDENTIFIED BY '{ops_pw}';\n"
                f"GRANT ALL PRIVILEGES ON *.* TO '{OPS_USER}'@'127.0.0.1' WITH GRANT OPTION;\n"
                f"GRANT ALL PRIVILEGES ON *.* TO '{OPS_USER}'@'localhost' WITH GRANT OPTION;\n"
                f"CREATE USER IF NOT EXISTS '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY '{repl_pw}';\n"
                f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR, BINLOG MONITOR "
                f"ON *.* TO '{REPL_USER}'@'127.0.0.1';\n"
            )
        with open(n.defaults_file, "a") as f:
            f.write(f"init_file={init}\n")

    def _start(self, n: Node, exe: str) -> int:
        return mariadbd.spawn(exe, n.defaults_file, Path(n.datadir).parent / "stdout.log")

    def _connect(self, n: Node, pw: str, timeout: float = 2.0) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=n.port, user=OPS_USER, password=pw,
                               connect_timeout=timeout, read_timeout=30, autocommit=True)

    def _wait_ready(self, n: Node, pw: str, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            if not _running(n):
                tail = mariadbd.error_tail(Path(n.datadir).parent / "error.log")
                raise SandboxError(f"{n.name} exited during start-up: {tail} "
                                   f"(see {Path(n.datadir).parent / 'error.log'})")
            try:
                self._connect(n, pw, 1.0).close()
                return
            except pymysql.MySQLError as e:
                last = str(e.args[-1]) if e.args else str(e)
                time.sleep(0.1)
        raise SandboxError(f"{n.name} did not accept connections on port {n.port} in time: {last}")

    def _start_replication(self, n: Node, primary: Node, ops_pw: str, repl_pw: str) -> None:
        c = self._connect(n, ops_pw)
        try:
            with c.cursor() as cur:
                cur.execute("STOP SLAVE")
                cur.execute(
                    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER=%s, "
                    "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, "
                    "MASTER_HEARTBEAT_PERIOD=1",
                    (primary.port, REPL_USER, repl_pw))
                cur.execute("START SLAVE")
        finally:
            c.close()

    def _wait_replicating(self, nodes: list[Node], pw: str, deadline: float) -> None:
        for n in nodes:
            if n.role != "replica":
                continue
            row = None
            while time.monotonic() < deadline:
                c = self._connect(n, pw)
                try:
                    with c.cursor(pymysql.cursors.DictCursor) as cur:
                        cur.execute("SHOW SLAVE STATUS")
                        row = cur.fetchone()
                finally:
                    c.close()
                if row and row["Slave_IO_Running"] == "Yes" and row["Slave_SQL_Running"] == "Yes":
                    break
                time.sleep(0.1)
            else:
                err = (row or {}).get("Last_IO_Error") or (row or {}).get("Last_SQL_Error") or "not configured"
                raise SandboxError(f"replication on {n.name} did not start in time: {err}")

    def _write_config(self, info: SandboxInfo) -> None:
        from console.sandbox_config import render_config

        self.config_path.write_text(render_config(self, info))


def _running(n: Node) -> bool:
    return mariadbd.running(n.pid, n.defaults_file)


def _reap(pid: int | None) -> None:
    mariadbd.reap(pid)
