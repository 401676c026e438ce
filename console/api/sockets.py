"""Where the API listens: the unix socket in the state directory (paths
too long for ``sun_path`` reached through ``/proc/self/fd``) and a
``--listen HOST:PORT`` TCP socket, each bound with one clear line when the
address cannot be used.  No aiohttp here: clients import it too."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from console.errors import UserError

RUN_DIR = "run"
SOCKET_NAME = "api.sock"
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; longer paths go through /proc/self/fd


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir).expanduser() / RUN_DIR / SOCKET_NAME


def parse_listen(value: str, flag: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) or a one-line UserError
    naming the flag."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{flag} {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8433")
    return host, int(port)


def bind_tcp(value: str, flag: str = "--listen") -> socket.socket:
    """A listening TCP socket for ``HOST:PORT``; one line naming the flag
    when the address cannot be used."""
    host, port = parse_listen(value, flag)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"{flag} {value}: unknown host {host!r} ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(addr)
        s.listen(128)
    except OSError as e:
        s.close()
        raise UserError(f"{flag} {value}: cannot listen there ({e.strerror}); "
                        f"choose another address") from None
    return s


def short_unix_path(path: Path) -> tuple[str, int | None]:
    """A path to give bind/connect: ``path`` itself, or, when too long for
    sun_path, the same file through ``/proc/self/fd/N`` of its directory
    (the caller closes the returned fd)."""
    if len(os.fsencode(str(path))) <= _UNIX_PATH_MAX:
        return str(path), None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def bind_unix(path: Path) -> socket.socket:
    """The listening unix socket at ``path`` (its directory made 0700; a
    socket file left by a killed engine replaced: the caller holds the
    state directory's engine lock)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.unlink(missing_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    where, fd = short_unix_path(path)
    try:
        s.bind(where)
        s.listen(128)
    except OSError as e:
        s.close()
        raise UserError(f"cannot listen on {path}: {e.strerror}") from None
    finally:
        if fd is not None:
            os.close(fd)
    return s
