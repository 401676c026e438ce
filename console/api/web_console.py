"""The console in a browser: textual-serve's ``Server`` with the token in
front (``console.api.web_auth``), one console process per browser session.

textual-serve serves a page (``/``), its static files and a websocket
(``/ws``) per session; each websocket starts the console command as a
child process speaking Textual's web driver protocol on its stdin/stdout.
Here:

- every route is behind ``token_middleware``: an unauthenticated websocket
  is refused before its handler runs, so no console is spawned for it;
- the child is started without a shell, from an argv list (the config
  path is an argument, nothing secret is), with ``die_with_parent`` so
  a ``kill -9`` of the server takes its consoles along;
- the page's websocket and static URLs are made from the request's own
  host, so the page works through an SSH tunnel on another port;
- every response forbids framing (clickjacking an operator's console) and
  loading anything from elsewhere (textual-serve's page asks Google for a
  font: not from an operations network), and sends no referrer;
- ``WebConsole.run(sock, stop)`` serves on an already bound socket until
  ``stop`` is set, then ends every console (quit, then SIGTERM, then
  SIGKILL, each after a grace period) before it returns.

Layer: top; imports neither the engine nor Textual (the child does).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from console.api.web_auth import token_middleware
from console.children import die_with_parent

_HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,300}$")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    host = request.host if _HOST_RE.match(request.host) else "'none'"
    ws = f"ws://{host} wss://{host}" if host != "'none'" else ""
    response.headers.setdefault("Content-Security-Policy", (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        f"connect-src 'self' {ws}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"))
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


class ConsoleSession(AppService):
    """One browser session's console: textual-serve's ``AppService`` started
    from an argv list (no shell), dying with the server."""

    def __init__(self, argv: Sequence[str], **kw: Any):
        super().__init__(shlex.join(argv), **kw)
        self.argv = list(argv)
        self.ending: asyncio.Future | None = None

    async def _open_app_process(self, width: int = 80, height: int = 24):
        env = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, preexec_fn=die_with_parent())
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        await super().run()
        with contextlib.suppress(Exception):  # the console ended: the page says so
            await self.remote_close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def end(self, grace: float) -> None:
        """Ask the console to quit; SIGTERM, then SIGKILL, if it does not
        end within ``grace`` seconds each; returns once it has ended."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.stop(), grace)
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), grace)
                return
            except asyncio.TimeoutError:
                continue


class WebConsole(Server):
    """textual-serve's server for ``argv`` (the console command), behind ``token``."""

    def __init__(self, argv: Sequence[str], *, token: str, cookie_name: str,
                 title: str = "dbops-console", say: Callable[[str], None] = lambda s: None,
                 end_grace: float = 20.0):
        super().__init__(shlex.join(argv), title=title)
        self.argv = list(argv)
        self.token = token
        self.cookie_name = cookie_name
        self.say = say
        self.end_grace = end_grace
        self.sessions: set[ConsoleSession] = set()
        self.started = 0
        self._stopping = False

    # ---- the aiohttp application -------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(token_middleware(
            self.token, cookie_name=self.cookie_name, title=self.title,
            on_refused=self._refused))
        app.on_response_prepare.append(_security_headers)
        return app

    def _refused(self, request: web.Request, reason: str) -> None:
        # the raw path (percent-encoded: no line break can be forged), never the query
        path = request.rel_url.raw_path[:200]
        self.say(f"web: refused {request.method} {path} from {request.remote}: {reason}")

    async def on_startup(self, app: web.Application) -> None:  # no logo, no prints
        return None

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        host = request.host
        if not _HOST_RE.match(host):
            raise web.HTTPBadRequest(text="400: bad Host header\n")
        router = request.app.router
        ws = "wss" if request.secure else "ws"
        static = str(router["static"].url_for(filename="/")).rstrip("/") + "/"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{ws}://{host}{router['websocket'].url_for()}",
            "config": {"static": {"url": static}},
            "application": {"name": self.title},
        }

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return web.Response(status=503, text="503: the web console is stopping\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        session: ConsoleSession | None = None
        try:
            await websocket.prepare(request)
            session = ConsoleSession(
                self.argv, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                close=websocket.close, download_manager=self.download_manager)
            self.sessions.add(session)
            await session.start(width, height)
            self.started += 1
            self.say(f"web: console session started for {request.remote} (pid {session.pid})")
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - one session's trouble is one line, the server goes on
            self.say(f"web: console session failed: {type(e).__name__}: {e}")
        finally:
            if session is not None:
                await asyncio.shield(self._end(session))
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    def _end(self, session: ConsoleSession) -> asyncio.Future:
        """The one ending of a session (its handler and a stop may both ask)."""
        if session.ending is None:
            session.ending = asyncio.ensure_future(self._end_now(session))
        return session.ending

    async def _end_now(self, session: ConsoleSession) -> None:
        await session.end(self.end_grace)
        self.sessions.discard(session)
        code = session._process.returncode if session._process is not None else None
        if session.pid is not None:
            self.say(f"web: console session ended (pid {session.pid}, exit {code})")

    # ---- running -----------------------------------------------------------------
    async def run(self, sock: socket.socket, stop: asyncio.Event) -> int:
        """Serve on ``sock`` until ``stop`` is set; then end every console
        session and return how many were running."""
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            await stop.wait()
        finally:
            self._stopping = True
            await site.stop()  # no new connection
            live = list(self.sessions)
            await asyncio.gather(*(asyncio.shield(self._end(s)) for s in live),
                                 return_exceptions=True)
            await runner.cleanup()
        return len(live)
