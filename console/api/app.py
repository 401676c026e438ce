"""The API's aiohttp application: routes from ``console.api.routes``, the
token check, and errors as one JSON line.

One application per listening site: on the unix socket no token is
needed; on TCP every request needs ``Authorization: Bearer <token>`` and
gets 401 (nothing done) without it."""

from __future__ import annotations

from aiohttp import web

from console.api.context import ApiContext
from console.api.handlers import error
from console.api.token import bearer_ok
from console.errors import ConfirmationRequired, UserError


def build_app(ctx: ApiContext, token: str | None) -> web.Application:
    from console.api.openapi import document
    from console.api.routes import ROUTES

    @web.middleware
    async def guard(request: web.Request, handler):
        if token is not None and not bearer_ok(request.headers.get("Authorization"), token):
            return error(401, "missing or wrong token: send Authorization: Bearer <the content "
                              "of STATE_DIR/api.token>", )
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status in (404, 405):
                return error(e.status, f"{request.method} {request.path}: {e.reason} "
                                       f"(see /api/v1/openapi.json)")
            raise
        except ConfirmationRequired as e:
            return error(409, str(e))
        except UserError as e:
            problems = getattr(e, "problems", None)
            return error(400, str(e), **({"problems": problems} if problems else {}))

    app = web.Application(middlewares=[guard], client_max_size=1 << 20)
    app["ctx"] = ctx
    app["local"] = token is None    # the unix socket (its directory 0700): no token needed
    app["openapi"] = document()
    from console.api.metrics import registry_for

    app["metrics"] = registry_for(ctx.engine)
    for r in ROUTES:
        app.router.add_route(r.method, r.full_path, r.handler)
    return app
