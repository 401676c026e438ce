"""A private ``mariadbd`` for a restore: its own directory, port, socket and pid.

It never touches a running cluster: it listens on 127.0.0.1 at its own port,
runs without binary log or replication, and is stopped by the pid it was
started with (after checking the pid still runs our own defaults file).
A restore user (``dbops_restore``@localhost for the socket and @127.0.0.1
for TCP, random password kept in ``restore.password``, mode 0600) is
created by an init file at each start.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pymysql

from console import children
from console.engine.backup import incomplete
from console.errors import UserError
from console.mysql import mariadbd
from console.mysql.mariadbd import port_free
from console.mysql.tools import need

RESTORE_USER = "dbops_restore"
HOST = "127.0.0.1"
SOCKET_NAME = "mariadbd.sock"
STARTING_STOP_SECONDS = 10.0    # a server stopped during its start-up: SIGKILL after this
SOCKET_PATH_MAX = 107            # sun_path holds 108 bytes with the terminating NUL


class RestoreError(UserError):
    """A restore cannot go on (bad input found before anything is created, or a failure)."""


class RestoreServerError(RestoreError):
    pass


def check_directory(directory: str | os.PathLike, force: bool = False,
                    stopped: list[int] | tuple[int, ...] = ()) -> Path:
    """The resolved directory when a restore server may be set up in it (new
    in an existing, writable parent, or empty; with ``force`` also an
    incomplete restore, to be replaced); else one line saying why.  ``stopped``:
    the pids of servers a dead restore left there, already stopped."""
    d = Path(directory).expanduser().resolve()
    if d.exists():
        if not d.is_dir():
            raise RestoreServerError(f"target directory {d} is not a directory; give a new or "
                                     f"empty directory")
        try:
            used = any(d.iterdir())
        except OSError as e:
            raise RestoreServerError(f"target directory {d}: cannot read it ({e.strerror})") from None
        if used and incomplete.marked(d):
            pid = incomplete.running_restore(d)
            if pid is not None:
                raise RestoreServerError(f"target directory {d}: a restore into it is running "
                                         f"(pid {pid or '?'}); wait for it or give another directory")
            if not force:
                left = (f" (its leftover server, pid {', '.join(map(str, stopped))}, was stopped)"
                        if stopped else "")
                raise RestoreServerError(f"target directory {d} holds an incomplete restore{left}: "
                                         f"remove it, or rerun with --force to replace it")
            if not os.access(d.parent, os.W_OK | os.X_OK):
                raise RestoreServerError(f"target directory {d}: --force cannot replace it, "
                                         f"{d.parent} is not writable for this user")
        elif used:
            raise RestoreServerError(f"target directory {d} is not empty; restore never "
                                     f"overwrites: give a new or empty directory"
                                     + (" (--force replaces only an incomplete restore)" if force else ""))
        where = d
    else:
        where = d.parent
        if not where.is_dir():
            raise RestoreServerError(f"target directory {d}: its parent {where} does not exist; "
                                     f"create it first or give another directory")
    if not os.access(where, os.W_OK | os.X_OK):
        raise RestoreServerError(f"target directory {d}: {where} is not writable for this user")
    n = len(os.fsencode(d / SOCKET_NAME))
    if n > SOCKET_PATH_MAX:
        raise RestoreServerError(f"target directory {d} is too long: the server's socket path "
                                 f"would be {n} bytes (at most {SOCKET_PATH_MAX}); give a shorter one")
    return d


def check_port(port: int) -> None:
    if not 1024 <= port <= 65535:
        raise RestoreServerError(f"port must be between 1024 and 65535, got {port}")
    if not port_free(port):
        raise RestoreServerError(f"port {port} is in use on {HOST}; pick another with --port")


class RestoreServer:
    def __init__(self, directory: str | os.PathLike, port: int):
        self.dir = Path(directory).resolve()
        self.port = port
        self.host = HOST
        self.datadir = self.dir / "data"
        self.defaults_file = self.dir / "my.cnf"
        self.socket = str(self.dir / SOCKET_NAME)
        self.pid: int | None = None
        self.ready = False   # the server accepted a connection since its start

    @property
    def password_file(self) -> Path:
        return self.dir / "restore.password"

    def password(self) -> str:
        p = self.password_file
        if not p.exists():
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(18) + "\n")
        return p.read_text().strip()

    def write_config(self) -> None:
        pw = self.password()
        init = self.dir / "init.sql"
        fd = os.open(init, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for host in ("localhost", self.host):      # the socket, and TCP on our address
                who = f"'{RESTORE_USER}'@'{host}'"
                f.write(f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY '{pw}';\n"
                        f"ALTER USER {who} IDENTIFIED BY '{pw}';\n"
                        f"GRANT ALL PRIVILEGES ON *.* TO {who} WITH GRANT OPTION;\n")
        lines = [
            "[mariadbd]",
            f"datadir={self.datadir}",
            f"socket={self.socket}",
            f"pid-file={self.dir / 'mariadbd.pid'}",
            f"log-error={self.dir / 'error.log'}",
            f"port={self.port}",
            f"bind-address={self.host}",
            "skip-name-resolve",
            "skip-log-bin",
            "skip-slave-start",
            "server_id=4244",
            "innodb_buffer_pool_size=256M",
            "innodb_flush_log_at_trx_commit=2",
            "max_allowed_packet=1G",
            "performance_schema=OFF",
            "character_set_server=utf8mb4",
            "collation_server=utf8mb4_general_ci",
            f"init_file={init}",
            f"tmpdir={self.dir / 'tmp'}",
        ]
        (self.dir / "tmp").mkdir(exist_ok=True)
        if os.geteuid() == 0:
            lines.append("user=root")
        self.defaults_file.write_text("\n".join(lines) + "\n")

    def install(self) -> None:
        """A fresh, empty data directory (for a logical snapshot)."""
        exe = need("mariadb-install-db", "mysql_install_db")
        self.datadir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([exe, f"--defaults-file={self.defaults_file}", "--skip-test-db",
                            "--auth-root-authentication-method=socket"],
                           capture_output=True, text=True, preexec_fn=children.die_with_parent())
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RestoreServerError(f"mariadb-install-db failed: {tail[0]}")

    def start(self, timeout: float = 120.0, die_with_parent: bool = True) -> int:
        """Start the server; ``die_with_parent``: it dies with this process
        (or the thread calling this: start and stop it from one thread)."""
        check_port(self.port)
        exe = need("mariadbd", "mysqld")
        log = self.dir / "error.log"
        offset = log.stat().st_size if log.exists() else 0
        self.ready = False
        self.pid = mariadbd.spawn(exe, self.defaults_file, self.dir / "stdout.log",
                                  die_with_parent=die_with_parent)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not mariadbd.running(self.pid, self.defaults_file):
                raise RestoreServerError(f"the restore server on port {self.port} exited during "
                                         f"start-up: {mariadbd.first_error(log, offset)[:200]}")
            try:
                self.connect().close()
                self.ready = True
                return self.pid
            except pymysql.MySQLError as e:
                last = str(e.args[-1]) if e.args else str(e)
                time.sleep(0.2)
        self.stop()
        raise RestoreServerError(f"the restore server did not accept connections in time: {last}")

    def connect(self, **kw) -> pymysql.Connection:
        return pymysql.connect(unix_socket=self.socket, user=RESTORE_USER, password=self.password(),
                               autocommit=True, connect_timeout=2, read_timeout=3600,
                               charset="utf8mb4", **kw)

    def stop(self, timeout: float = 120.0) -> None:
        """A clean shutdown, SIGKILL after ``timeout``; a server stopped
        before it ever accepted a connection (a signal during its start-up)
        gets ``STARTING_STOP_SECONDS``: it holds nothing to save, and one
        stuck in start-up (seen: waiting in init_slave on a page read, its
        SIGTERM pending because the signal thread starts later) would make
        the operator wait two minutes after Ctrl-C."""
        if self.pid:
            wait = timeout if self.ready else min(timeout, STARTING_STOP_SECONDS)
            mariadbd.stop([(self.pid, self.defaults_file)], timeout=wait, reap_timeout=30)
        self.pid = None
