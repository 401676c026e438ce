"""The API's bearer token: ``STATE_DIR/api.token``, made once (0600, 256
random bits) and read by every face that listens beyond the unix socket
(the TCP API, ``/metrics`` on TCP, the browser console).

The token never appears in argv, logs, status or responses: clients read
the file (or are given its content by the operator), servers compare in
constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from console.errors import UserError

TOKEN_FILE = "api.token"


def token_path(state_dir: Path) -> Path:
    return Path(state_dir).expanduser() / TOKEN_FILE


def ensure_token(state_dir: Path) -> str:
    """The state directory's token, made (0600, atomically: a second engine
    racing us reads ours) when missing; the directory must exist."""
    p = token_path(state_dir)
    try:
        return read_token(state_dir)
    except FileNotFoundError:
        pass
    tmp = p.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, p)  # never replaces a token another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_token(state_dir)


def read_token(state_dir: Path) -> str:
    """The token; FileNotFoundError when none was made; a one-line
    ``UserError`` when the file is readable by others or empty."""
    p = token_path(state_dir)
    st = p.stat()
    if st.st_mode & 0o077:
        raise UserError(f"{p} is readable by others (mode {st.st_mode & 0o777:o}): "
                        f"chmod 600 {p}, or delete it and a new token is made")
    value = p.read_text().strip()
    if not value:
        raise UserError(f"{p} is empty: delete it and a new token is made")
    return value


def bearer_ok(header: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries ``Bearer <token>``."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


def value_ok(value: str | None, token: str) -> bool:
    """True when a bare value (a cookie, a query parameter) is the token."""
    return bool(value) and hmac.compare_digest(value.encode(), token.encode())
