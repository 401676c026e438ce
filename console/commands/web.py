"""``dbops-console web [--config F] [--listen HOST:PORT]``: the console in a
browser (``console.api.web_console``), behind the state directory's token.

Each browser session runs the normal console command (``dbops-console
--config F``) as its own child process, a client of the engine like the
console in a terminal.  Loopback by default; any address when given
explicitly (still behind the token).  Bad input (no config, a bad or
taken ``--listen``) is one line, exit 2, before anything is made.
SIGTERM, SIGINT or SIGHUP end every console session, then exit 0.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import signal
import socket
import sys
from dataclasses import dataclass

from console.commands.common import last_line
from console.config import find_config, load_config
from console.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
EXAMPLE = f"{DEFAULT_HOST}:{DEFAULT_PORT}, [::1]:{DEFAULT_PORT}, 0.0.0.0:{DEFAULT_PORT}"


def register(sub) -> None:
    p = sub.add_parser("web", help="serve the console to a browser (one console per session), "
                                   "behind the token in STATE_DIR/api.token")
    p.add_argument("--listen", metavar="HOST:PORT", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
                   help=f"address to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}, loopback "
                        "only; another address must be given explicitly)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @property
    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_listen(value: str) -> Listen:
    """``HOST:PORT`` (IPv6 in brackets) or a bare ``PORT`` (on 127.0.0.1)."""
    bad = UserError(f"--listen {value!r}: expected HOST:PORT or PORT (e.g. {EXAMPLE})")
    v = value.strip()
    if v.isdigit():
        host, port_s = DEFAULT_HOST, v
    else:
        host, sep, port_s = v.rpartition(":")
        if not sep or not host:
            raise bad
        if host.startswith("["):
            if not host.endswith("]"):
                raise bad
            host = host[1:-1]
        elif ":" in host:
            raise UserError(f"--listen {value!r}: put an IPv6 address in brackets, "
                            f"e.g. [::1]:{DEFAULT_PORT}")
    if not host or not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise bad
    return Listen(host, int(port_s))


def bind(listen: Listen, flag: str) -> socket.socket:
    """A listening socket on ``listen``; a one-line ``UserError`` naming
    ``flag`` when the address is unknown, not this machine's or taken."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"{flag}: unknown host {listen.host!r} ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        where = f"{listen.url_host}:{listen.port}"
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"{flag}: {where} is in use by another process; "
                            f"choose another port") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"{flag}: {listen.host} is not an address of this machine") from None
        if e.errno == errno.EACCES:
            raise UserError(f"{flag}: {where}: permission denied (ports below 1024 need "
                            f"privileges); choose a port above 1023") from None
        raise UserError(f"{flag}: cannot listen on {where}: {e.strerror}") from None
    return sock


def is_loopback(sock: socket.socket) -> bool:
    try:
        return ipaddress.ip_address(sock.getsockname()[0].split("%")[0]).is_loopback
    except ValueError:
        return False


def console_argv(config_path) -> list[str]:
    """The console command each browser session runs (its config path is the
    only argument; nothing secret goes on a command line)."""
    return [sys.executable, "-m", "console", "--config", str(config_path)]


def run(args) -> int:
    from console.api.token import ensure_token, token_path
    from console.api.web_auth import cookie_name_for
    from console.api.web_console import WebConsole

    path = find_config(getattr(args, "config", None)).resolve()
    config = load_config(path)  # bad input: one line, exit 2, before anything is made
    listen = parse_listen(args.listen)
    sock = bind(listen, "--listen")
    try:
        try:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"state directory {config.state_dir}: {e.strerror}") from None
        token = ensure_token(config.state_dir)
        # every browser session's console is a client of one engine: the one
        # serving the state directory, or one started now in the background
        # (it outlives `web`, as the console's does; stop it with SIGTERM)
        from console.api.launch import attach_or_start

        client, started = attach_or_start(config, actor="web")
        pid = started or client.info()["pid"]
        last_line(f"web: the engine (pid {pid}) " + ("started in the background; it keeps "
                  "running after web stops" if started else "already serves the state directory"))
        port = sock.getsockname()[1]
        url = f"http://{listen.url_host}:{port}/"
        server = WebConsole(console_argv(path), token=token, cookie_name=cookie_name_for(token),
                            title=f"dbops-console ({path.name})", say=last_line)
        last_line(f"web: the console at {url} (one console per browser session; "
                  f"config {path})")
        last_line(f"web: the token is in {token_path(config.state_dir)}: paste it into the page, "
                  f"or open {url}?token=... once (a cookie keeps the session)")
        if not is_loopback(sock):
            last_line(f"web: listening beyond loopback on {listen.url_host}:{port}: anyone who "
                      "reaches it can try the token; prefer an SSH tunnel or a TLS proxy")
        return asyncio.run(_serve(server, sock))
    finally:
        sock.close()


async def _serve(server, sock: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        why.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        ended = await server.run(sock, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    last_line(f"web: stopped by {why[0] if why else 'request'}: {ended} console session(s) "
              f"ended, {server.started} served")
    return 0
