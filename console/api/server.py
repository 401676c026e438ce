"""The API's HTTP server (aiohttp) inside ``serve``: one asyncio loop in
its own thread, one site per listening address.

- the unix socket ``STATE_DIR/run/api.sock`` always (``run/`` is 0700: who
  can reach the socket is who can read the state directory; no token);
- ``--listen HOST:PORT`` optionally, where every request but ``/metrics``
  with ``--metrics-listen`` elsewhere needs ``Authorization: Bearer
  <STATE_DIR/api.token>``: 401 and nothing done otherwise.

Sockets are bound before the engine starts anything, so an address in use
is one line (exit 2) with nothing started.  Handlers run engine calls in
the loop's thread pool: a command that talks to a server never blocks the
loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from console.api.token import ensure_token
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


@dataclass
class Site:
    sock: socket.socket
    token: str | None  # None: no token needed (the unix socket)
    name: str          # for the lines that say where we listen


class ApiServer:
    """Serves ``make_app(token)`` on each site from one loop thread: the
    unix socket, and the TCP socket ``tcp`` (bound by ``bind_tcp`` before
    anything else is made, so a bad ``--listen`` changes nothing)."""

    def __init__(self, make_app, state_dir: Path, tcp: socket.socket | None = None):
        self.make_app = make_app
        self.state_dir = Path(state_dir).expanduser()
        self.tcp = tcp
        self.sites: list[Site] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._started = threading.Event()
        self._error: BaseException | None = None

    def bind(self) -> None:
        """The unix socket (the caller holds the engine lock), then the sites."""
        unix = bind_unix(socket_path(self.state_dir))
        self.sites.append(Site(unix, None, str(socket_path(self.state_dir))))
        if self.tcp:
            host, port = self.tcp.getsockname()[:2]
            self.sites.append(Site(self.tcp, ensure_token(self.state_dir), f"http://{host}:{port}"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error:
            raise self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - told to start()
            self._error = e
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.close()

    async def _serve(self) -> None:
        for site in self.sites:
            runner = web.AppRunner(self.make_app(site.token), access_log=None,
                                   handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, site.sock, shutdown_timeout=1.0).start()
            self._runners.append(runner)

    async def _cleanup(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def stop(self) -> None:
        loop = self._loop
        if loop and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)
        socket_path(self.state_dir).unlink(missing_ok=True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop
