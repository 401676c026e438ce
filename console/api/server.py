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
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from console.api.sockets import bind_unix, socket_path
from console.api.token import ensure_token


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
