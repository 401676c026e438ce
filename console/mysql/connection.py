"""pymysql connections with timeouts, retries and redaction of secrets.

Nothing here decides anything: it opens connections and turns driver errors
into one-line ``DBError``s that never contain a password.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pymysql
import pymysql.cursors

from console.errors import UserError
from console.secret import Secret

T = TypeVar("T")


class HostLike(Protocol):
    """What an endpoint is made from: a config host (``console.config``)."""

    name: str
    host: str
    port: int
    user: str
    password: Secret


class CredentialsLike(Protocol):
    user: str
    password: Secret

_preferred_lock = threading.Lock()
_preferred_ctx: ssl.SSLContext | None = None


def preferred_tls_context() -> ssl.SSLContext:
    """The context of pymysql's default "preferred" TLS (encrypt when the
    server offers it, verify nothing), built once per process.  pymysql
    builds a fresh one for every connection with ``create_default_context``,
    which loads the system's CA store (~40-80 ms of CPU) only to set
    CERT_NONE: a relay or a failover opening a few connections lost a tenth
    of a second to that.  Same security, one context, shared (SSLContext is
    thread-safe)."""
    global _preferred_ctx
    with _preferred_lock:
        if _preferred_ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
            _preferred_ctx = ctx
        return _preferred_ctx


class Connection(pymysql.connections.Connection):
    """pymysql's connection with the preferred-TLS context shared."""

    def _create_ssl_ctx(self, sslp):
        if isinstance(sslp, dict) and not sslp:
            return preferred_tls_context()
        return super()._create_ssl_ctx(sslp)


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect.  ``name`` is the config's host name."""

    host: str
    port: int
    user: str
    password: Secret = field(repr=False, compare=False)
    name: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address})" if self.name and self.name != self.address else self.address

    @classmethod
    def from_host(cls, h: HostLike) -> Endpoint:
        return cls(h.host, h.port, h.user, h.password, h.name)

    def with_address(self, host: str, port: int, name: str = "") -> Endpoint:
        """Same credentials, another server (a discovered replica, say)."""
        return Endpoint(host, port, self.user, self.password, name or f"{host}:{port}")

    def with_credentials(self, cred: CredentialsLike) -> Endpoint:
        return Endpoint(self.host, self.port, cred.user, cred.password, self.name)


class DBError(UserError):
    """A server could not be reached or refused a statement."""

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        self.code = code


# MySQL/MariaDB error codes worth naming
ER_ACCESS_DENIED = 1045
CR_CONN_HOST_ERROR = 2003
CR_SERVER_GONE = 2006
CR_SERVER_LOST = 2013
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
ER_QUERY_INTERRUPTED = 1317
# the server refused the account (bad password, missing privilege, locked):
# retrying cannot help; 1044 db, 1045 login, 1227 privilege, 1698 no password,
# 4151 (MariaDB) / 3118 (MySQL) account locked
ACCESS_DENIED_CODES = frozenset({1044, ER_ACCESS_DENIED, 1227, 1698, 4151, 3118})
TRANSIENT_CODES = frozenset({CR_CONN_HOST_ERROR, CR_SERVER_GONE, CR_SERVER_LOST, 2055,
                             ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK, 1040, 1927})


def redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s and len(s) >= 1:
            text = text.replace(s, "***")
    return text


def describe_error(exc: BaseException, ep: Endpoint | None = None) -> DBError:
    """A one-line, secret-free ``DBError`` from a driver exception."""
    code = None
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
        msg = str(exc.args[1]) if len(exc.args) > 1 else ""
    else:
        msg = str(exc) or type(exc).__name__
    secrets = []
    if ep is not None:
        try:
            secrets.append(ep.password.reveal())
        except OSError:
            pass
    msg = redact(" ".join(msg.split()), secrets)
    where = f"{ep.label}: " if ep else ""
    if code == ER_ACCESS_DENIED:
        return DBError(where + access_denied_text(ep, msg), code=code)
    hint = ""
    if code == CR_CONN_HOST_ERROR or isinstance(exc, (ConnectionRefusedError, TimeoutError)):
        hint = " (is the server running and the port right?)"
    text = f"{where}{msg}{hint}" if code is None else f"{where}error {code}: {msg}{hint}"
    return DBError(text, code=code)


def password_source(secret: Secret) -> str:
    """Where a password comes from, for an operator to check (never the password)."""
    src = secret.source
    if src.startswith("file "):
        return f"read from {src[5:]}"
    if src.startswith("env "):
        return f"read from {src[4:]}"
    return {"inline": "given inline"}.get(src, "no password set")


def access_denied_text(ep: Endpoint | None, server_msg: str = "", check: str = "") -> str:
    """The one line for a refused login (error 1045): who was refused and
    what to check.  ``check`` names where the operator set the credentials
    (default: the config's password / password_file, and where it was read)."""
    m = re.search(r"for user ('[^']*'@'[^']*')", server_msg)
    who = m.group(1) if m else repr(ep.user) if ep else "this user"
    if not check:
        check = "password / password_file" + (f" ({password_source(ep.password)})" if ep else "")
    return f"error {ER_ACCESS_DENIED}: access denied for user {who}: check {check}"


def is_access_denied(err: BaseException) -> bool:
    """The server refused the account: retrying cannot help (never retried)."""
    code = getattr(err, "code", None)
    if code is None and isinstance(err, pymysql.err.MySQLError) and err.args:
        code = err.args[0] if isinstance(err.args[0], int) else None
    return code in ACCESS_DENIED_CODES


def connect(ep: Endpoint, *, database: str | None = None, connect_timeout: float = 3.0,
            read_timeout: float | None = 30.0, write_timeout: float | None = 30.0,
            autocommit: bool = True, dict_cursor: bool = False, **kwargs: Any) -> pymysql.Connection:
    """Open a connection or raise a one-line ``DBError``."""
    try:
        password = ep.password.reveal()
    except OSError as e:
        raise DBError(f"{ep.label}: cannot read password: {e.strerror}") from None
    try:
        return Connection(
            host=ep.host, port=ep.port, user=ep.user, password=password, database=database,
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            write_timeout=write_timeout, autocommit=autocommit, charset="utf8mb4",
            cursorclass=pymysql.cursors.DictCursor if dict_cursor else pymysql.cursors.Cursor,
            **kwargs,
        )
    except Exception as e:  # noqa: BLE001 - driver raises many types
        raise describe_error(e, ep) from None


def is_transient(err: BaseException) -> bool:
    code = getattr(err, "code", None)
    if code is None and isinstance(err, pymysql.err.MySQLError) and err.args:
        code = err.args[0] if isinstance(err.args[0], int) else None
    return code in TRANSIENT_CODES or isinstance(err, (ConnectionError, TimeoutError))


def query(conn: pymysql.Connection, sql: str, args: Any = None) -> list[dict[str, Any]]:
    """Run a statement and return rows as dicts (column names as keys)."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def query_one(conn: pymysql.Connection, sql: str, args: Any = None) -> dict[str, Any] | None:
    rows = query(conn, sql, args)
    return rows[0] if rows else None


def scalar(conn: pymysql.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return row[0] if row else None


def execute(conn: pymysql.Connection, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        return cur.execute(sql, args)


@contextmanager
def transaction(cur, end: str = "COMMIT") -> Iterator[None]:
    """``START TRANSACTION`` on ``cur``, then ``end`` (``COMMIT``, or
    ``ROLLBACK`` for a read-only look).  On an error: ``ROLLBACK`` and the
    error itself raised again.  A ROLLBACK that fails too (the connection is
    gone) is swallowed (``rollback_quietly``): raised, it would replace the
    error that said what went wrong with pymysql's ``InterfaceError: (0, '')``."""
    cur.execute("START TRANSACTION")
    try:
        yield
    except BaseException:
        rollback_quietly(cur)
        raise
    cur.execute(end)


def rollback_quietly(cur) -> None:
    """``ROLLBACK`` after an error, which stays the one reported: if the
    connection is gone, the ROLLBACK's own failure is dropped."""
    try:
        cur.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - the first error is the one to report
        pass


def close_quietly(*conns) -> None:
    """Close each connection; one already gone is no error."""
    for c in conns:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass
