"""``POST /api/v1/migrations``: a ``migrate --execute`` run handed to the
engine (``console.engine.migration.handed``).  The body carries the
server's password, so it is accepted on the unix socket only (the state
directory's 0700 ``run/``), never over TCP; it is kept in memory, never
written or logged.

Body: ``{"host", "port", "user", "password", "options": {...}}`` with the
migration's options as declared (``console.kinds.migration``; the same
names as a ``[tasks.NAME]`` table), checked by their declaration."""

from __future__ import annotations

from aiohttp import web

from console.api import snapshots
from console.api.handlers import actor_of, body_of, ctx_of, error, in_thread, ok


def _endpoint(body: dict):
    from console.mysql.connection import Endpoint
    from console.secret import Secret

    host, port, user, password = (body.get(k) for k in ("host", "port", "user", "password"))
    if not isinstance(host, str) or not host:
        return "`host` must be a host name or address"
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return "`port` must be a port number (1-65535)"
    if not isinstance(user, str) or not user:
        return "`user` must be a user name"
    if not isinstance(password, str):
        return "`password` must be a string (empty for none)"
    return Endpoint(host, port, user, Secret(password), f"{host}:{port}")


def _options(raw):
    from console.config import Table, parse_options
    from console.kinds.migration import MigrationOptions

    if not isinstance(raw, dict):
        return "`options` must be a JSON object of the migration's options"
    t = Table(raw, "options", None)
    opts = parse_options(MigrationOptions, t)
    t.finish()
    return opts


async def hand_over(request: web.Request) -> web.Response:
    if not request.app["local"]:
        return error(403, "a migration carries the server's password: hand it over on the engine's "
                          "unix socket (run `dbops-console migrate` on the engine's machine)")
    engine = ctx_of(request).engine
    body = await body_of(request)
    ep = _endpoint(body)
    if isinstance(ep, str):
        return error(400, ep)
    opts = _options(body.get("options"))
    if isinstance(opts, str):
        return error(400, opts)
    if not opts.execute:
        return error(400, "a dry run (execute false) changes nothing and needs no engine: "
                          "`dbops-console migrate` without --execute runs it by itself")
    from console.engine.migration.handed import AlreadyRuns
    from console.engine.migration.handed import hand_over as start

    seq = engine.last_seq
    try:
        task = await in_thread(start, engine, ep, opts, actor_of(request))
    except AlreadyRuns as e:
        return error(409, str(e))
    return ok({"seq": seq, "task": snapshots.task_dict(task.status())}, status=201)
