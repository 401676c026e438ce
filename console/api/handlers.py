"""The API's request handlers (read, act, declare).  Engine calls that may
talk to a server run in the loop's thread pool.  Errors are JSON
``{"error": "<one line>"}``: 400 bad input, 404 unknown, 409 conflict or
a dangerous command without its confirm target."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console.api import snapshots
from console.errors import ConfirmationRequired, UserError

if TYPE_CHECKING:
    from console.api.context import ApiContext

_ACTOR = re.compile(r"^[A-Za-z0-9_.:@-]{1,40}$")


def ctx_of(request: web.Request) -> ApiContext:
    return request.app["ctx"]


def actor_of(request: web.Request) -> str:
    """Who acts, for the audit log: ``api`` or the client's ``X-Dbops-Actor``
    (a console, a command) when it is a short plain word."""
    given = request.headers.get("X-Dbops-Actor", "")
    return given if _ACTOR.match(given) else "api"


def error(status: int, message: str, **more: Any) -> web.Response:
    return web.json_response({"error": message, **more}, status=status,
                             dumps=snapshots.dumps)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(snapshots.jsonable(data), status=status, dumps=snapshots.dumps)


async def in_thread(fn: Callable, *args, **kwargs) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def body_of(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise UserError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise UserError("the request body must be a JSON object")
    return data


def _engine_task(ctx: ApiContext, name: str):
    """The engine's task ``name`` (running or ended), or None."""
    return next((t for t in ctx.engine.tasks() if t.task_id == name), None)


def _elsewhere(ctx: ApiContext, name: str):
    """409 when another engine of the fleet runs the task (serve --coordinator), else None."""
    engine = ctx.engine
    owner = engine.coordinator.owners().get(name) if engine.coordinator.shared else None
    if owner and owner != engine.coordinator.engine_id and _engine_task(ctx, name) is None:
        return error(409, f"task {name} runs on engine {owner} of the fleet, not this one "
                          f"({engine.coordinator.engine_id}): send the command to that engine")
    return None


def _known_task(ctx: ApiContext, name: str) -> bool:
    return name in ctx.engine.config.tasks or _engine_task(ctx, name) is not None


# ---- read -------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    from console import __version__

    tasks = snapshots.tasks_list(ctx.engine)
    return ok({"version": __version__, "pid": os.getpid(), "state_dir": str(ctx.engine.state.root),
               "config": str(ctx.engine.config.path) if ctx.engine.config.path else None,
               "clusters": list(ctx.engine.config.clusters), "tasks": len(tasks),
               "running": sum(1 for t in tasks if t["state"] in ("running", "paused")),
               "engine": ctx.engine.coordinator.engine_id,
               "coordinator": ctx.engine.coordinator.description,
               "openapi": "/api/v1/openapi.json"})


async def openapi(request: web.Request) -> web.Response:
    return ok(request.app["openapi"])


async def metrics(request: web.Request) -> web.Response:
    from console.api.metrics import render

    body, content_type = await in_thread(render, request.app["metrics"],
                                         request.headers.get("Accept"))
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = content_type
    return resp


async def clusters(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    return ok({name: snapshots.cluster_dict(engine, name) for name in engine.config.clusters})


async def cluster(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name = request.match_info["cluster"]
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r} (clusters: {', '.join(engine.config.clusters)})")
    return ok(snapshots.cluster_dict(engine, name))


async def host(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name, which = request.match_info["cluster"], request.match_info["host"]
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r}")
    for h in snapshots.cluster_dict(engine, name)["hosts"]:
        if which in (h.get("name"), h.get("address")):
            return ok(h)
    return error(404, f"no host {which!r} in cluster {name} (or not probed yet)")


async def host_report(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name, which, what = (request.match_info[k] for k in ("cluster", "host", "what"))
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r}")
    raw = request.query.get("session")
    if raw is not None and not raw.isdigit():
        return error(400, f"session {raw!r}: expected a session id (a whole number)")
    out = await in_thread(engine.host_info, name, which, what, int(raw) if raw else None)
    return ok(out)


async def host_kill(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name, which = request.match_info["cluster"], request.match_info["host"]
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r}")
    body = await body_of(request)
    session = body.get("session")
    if not isinstance(session, int) or isinstance(session, bool) or session < 1:
        return error(400, "`session` must be a session id (a whole number)")
    try:
        out = await in_thread(engine.kill_session, name, which, session,
                              query_only=bool(body.get("query_only", False)),
                              confirm=body.get("confirm"), actor=actor_of(request))
    except ConfirmationRequired as e:
        return error(409, str(e), confirm=str(session))
    return ok({"result": out})


async def recoveries(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name = request.match_info["cluster"]
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r}")
    items = await in_thread(engine.recoveries, name)
    return ok({"cluster": name, "recoveries": items})


async def acknowledge(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name = request.match_info["cluster"]
    if name not in engine.config.clusters:
        return error(404, f"no cluster {name!r}")
    body = await body_of(request)
    try:
        out = await in_thread(engine.acknowledge, name, confirm=body.get("confirm"),
                              actor=actor_of(request))
    except ConfirmationRequired as e:
        return error(409, str(e), confirm=name)
    return ok({"cluster": name, "result": out})


async def tasks(request: web.Request) -> web.Response:
    monitors = request.query.get("monitors", "").lower() in ("1", "true", "yes")
    return ok(snapshots.tasks_list(ctx_of(request).engine, monitors=monitors))


async def task(request: web.Request) -> web.Response:
    engine = ctx_of(request).engine
    name = request.match_info["name"]
    for d in snapshots.tasks_list(engine, monitors=True):
        if d["task_id"] == name:
            d["commands"] = _commands(engine, name)
            return ok(d)
    return error(404, f"no task {name!r}")


def _commands(engine, name: str) -> list[dict]:
    try:
        t = engine.task(name)
    except UserError:
        return []
    return [{"name": n, "dangerous": d, "help": h, "confirm_target": t.confirm_target() if d else None}
            for n, (_, d, h) in sorted(t.commands().items())]


async def commands(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    name = request.match_info["name"]
    if not _known_task(ctx, name):
        return error(404, f"no task {name!r}")
    return ok(_commands(ctx.engine, name))


# ---- act ----------------------------------------------------------------------------


async def start(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    name = request.match_info["name"]
    if name not in ctx.engine.config.tasks:
        return error(404, f"no task {name!r} declared in the config "
                          f"(declare it first: PUT /api/v1/tasks/{name})")
    have = _engine_task(ctx, name)
    if have is not None and have.state in ("running", "paused"):
        return error(409, f"task {name} is already {have.state}")
    t = await in_thread(ctx.engine.start_declared, name, actor_of(request))
    return ok(snapshots.task_dict(t.status()))


def simple(command: str):
    async def handler(request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        name = request.match_info["name"]
        if (busy := _elsewhere(ctx, name)) is not None:
            return busy
        if _engine_task(ctx, name) is None:
            return error(404 if not _known_task(ctx, name) else 409,
                         f"task {name!r} is not started" if _known_task(ctx, name)
                         else f"no task {name!r}")
        await in_thread(ctx.engine.command, name, command, actor_of(request))
        return ok(snapshots.task_dict(ctx.engine.task(name).status()))

    handler.__name__ = command
    return handler


async def run_command(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    name, command = request.match_info["name"], request.match_info["command"]
    if (busy := _elsewhere(ctx, name)) is not None:
        return busy
    if _engine_task(ctx, name) is None:
        return error(404, f"no running task {name!r}")
    body = await body_of(request)
    args = body.get("args") or {}
    if not isinstance(args, dict):
        return error(400, "`args` must be a JSON object")
    if "confirm" in body:
        args["confirm"] = body["confirm"]
    try:
        result = await in_thread(ctx.engine.command, name, command, actor_of(request), **args)
    except ConfirmationRequired as e:
        return error(409, str(e), confirm=ctx.engine.task(name).confirm_target())
    return ok({"task": name, "command": command, "result": result})


async def declare(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    name = request.match_info["name"]
    body = await body_of(request)
    kind = body.pop("kind", None)
    if not isinstance(kind, str):
        return error(400, "`kind` is required (a task kind: see `dbops-console config schema`)")
    cluster = body.pop("cluster", None)
    autostart = body.pop("autostart", False)
    if not isinstance(autostart, bool):
        return error(400, "`autostart` must be true or false")
    result = await in_thread(ctx.declare, name, kind, cluster, autostart, body, actor_of(request))
    return ok(result)


async def undeclare(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    name = request.match_info["name"]
    if name not in ctx.engine.config.tasks:
        return error(404, f"no task {name!r} declared in the config")
    return ok(await in_thread(ctx.undeclare, name, actor_of(request)))
