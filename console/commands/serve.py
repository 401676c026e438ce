"""``dbops-console serve``: the engine, headless (``console.engine.service``).

Runs every configured cluster's monitor and every ``autostart = true`` task
until SIGTERM or SIGINT (each task checkpoints and stops; the one last
line; exit 0).  SIGHUP reloads the config.  One engine per state
directory: a second ``serve`` on it is one line, exit 2, nothing changed.
Under systemd (``Type=notify``) it says READY=1 once running, WATCHDOG=1
when ``WatchdogSec=`` asks, STOPPING=1 when it stops; see
``sample-configs/dbops-console.service``.
"""

from __future__ import annotations

import signal

from console.commands.common import last_line
from console.config import find_config, load_config


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the engine headless: every cluster's monitor and every "
                                     "autostart task, until SIGTERM; SIGHUP reloads the config")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no event lines (monitor observations, task states); what serve itself "
                        "does or refuses and its last line are still printed")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="also serve the API on this TCP address, behind the bearer token of "
                        "STATE_DIR/api.token (made 0600 when missing); the unix socket "
                        "STATE_DIR/run/api.sock is always served")
    p.add_argument("--metrics-listen", metavar="HOST:PORT",
                   help="also serve Prometheus metrics (docs/api.md, Metrics) on this address, "
                        "open to anyone who can reach it (no token)")
    p.add_argument("--coordinator", metavar="etcd://HOST:PORT[,HOST:PORT...]",
                   help="share one fleet with every engine of this etcd: the autostart tasks "
                        "spread over the engines, each under an ownership lease; a dead "
                        "engine's tasks are taken over from their checkpoints (default: the "
                        "state directory, this engine alone)")
    p.add_argument("--lease-ttl", metavar="SECONDS", type=int, default=None,
                   help="the ownership lease's life with --coordinator (default 10, at least 2): "
                        "a dead engine's tasks are taken over after about this long")
    p.set_defaults(func=run)


def run(args) -> int:
    from console.api.app import build_app
    from console.api.context import ApiContext
    from console.api.server import ApiServer
    from console.api.sockets import bind_tcp, parse_listen
    from console.engine.sdnotify import Notifier
    from console.engine.service import Requests, Service

    path = find_config(getattr(args, "config", None))
    config = load_config(path)  # bad input: one line, exit 2, before anything is made
    if args.listen:
        parse_listen(args.listen)
    coordinator = _coordinator(args)  # bad URL, unreachable etcd: one line, nothing made
    requests = Requests()

    def on_stop(signum, frame):
        requests.stop(signal.Signals(signum).name)

    def on_hup(signum, frame):
        requests.reload()

    handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_hup}
    old = {s: signal.signal(s, h) for s, h in handlers.items()}
    metrics = None
    try:
        service = Service(config, load=lambda: load_config(path), say=last_line,
                          show=None if args.quiet else last_line, notifier=Notifier(),
                          coordinator=coordinator)
        # a bad or busy --listen / --metrics-listen: one line, before anything is made
        tcp = bind_tcp(args.listen) if args.listen else None
        try:
            metrics = _metrics_server(args.metrics_listen, service) if args.metrics_listen else None
        except BaseException:
            if tcp:
                tcp.close()
            raise
        try:
            service.claim()
            ctx = ApiContext(service)
            api = ApiServer(lambda token: build_app(ctx, token), service.state_dir, tcp)
            api.bind()
        except BaseException:
            if tcp:
                tcp.close()
            raise
        try:
            api.start()
            for site in api.sites if not args.quiet else ():
                last_line(f"serve: API on {site.name}"
                          + (f" (bearer token in {service.state_dir}/api.token)" if site.token else ""))
            service.start()
        except BaseException:  # what did start stops cleanly before the error is told
            service.engine.shutdown(timeout=service.stop_timeout)
            api.stop()
            raise
        try:
            return service.run(requests)
        finally:
            api.stop()
    except BaseException:
        if coordinator is not None:
            coordinator.close()
        raise
    finally:
        if metrics:
            metrics.stop()
        for s, h in old.items():
            signal.signal(s, h)


def _coordinator(args):
    """The shared coordinator of --coordinator, opened (None without it)."""
    from console.errors import UserError

    ttl = args.lease_ttl
    if ttl is not None and ttl < 2:
        raise UserError(f"--lease-ttl {ttl}: give at least 2 seconds")
    if not args.coordinator:
        if ttl is not None:
            raise UserError("--lease-ttl needs --coordinator")
        return None
    from console.engine.coord.etcd import DEFAULT_TTL, EtcdCoordinator
    from console.engine.coord.url import parse_coordinator

    coordinator = EtcdCoordinator(parse_coordinator(args.coordinator), ttl=ttl or DEFAULT_TTL)
    coordinator.open()
    return coordinator


def _metrics_server(listen: str, service):
    from console.api.metrics import MetricsServer, registry_for

    server = MetricsServer(listen, registry_for(service.engine))
    if service.show:
        service.say(f"serve: metrics at http://{listen}/metrics (open: no token)")
    return server

