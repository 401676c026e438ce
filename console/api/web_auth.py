"""The token in front of an aiohttp application (the browser console; the
HTTP API may reuse it): ``token_middleware(token, cookie_name=...)``.

A request passes with any one of:

- ``Authorization: Bearer <token>`` (scripts, the API's clients);
- the session cookie (``cookie_name``, HttpOnly, SameSite=Strict), whose
  value is an HMAC of the token, never the token itself, so the token
  never appears in a response;
- ``?token=<token>`` on a GET: answered by a redirect (303) to the same
  URL without the token, which sets the cookie, so the token is not kept
  in the browser's history or sent as a referrer;
- the login form (``POST <login_path>``, field ``token``): the same
  cookie, then a redirect to ``next`` (a local path only).

With ``browser=False`` (an API for scripts) only the bearer header is
accepted: no cookie, no ``?token=``, no login form.

Anything else gets 401: an HTML page with the login form for a browser
asking for a page, a short text otherwise (a websocket upgrade included,
so no handler runs and nothing is spawned).  A websocket upgrade whose
``Origin`` is not the host it asked (another site's page) gets 403 even
with a valid cookie.  Refusals are reported through ``on_refused(request,
reason)``; the reason never holds what the client sent.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from console.api.token import bearer_ok, value_ok

COOKIE_CONTEXT = b"dbops-console web session v1"
LOGIN_PATH = "/login"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def cookie_value(token: str) -> str:
    """The session cookie's value: derived from the token (HMAC-SHA256), so a
    leaked cookie is not the API's bearer token and the token is never sent."""
    return hmac.new(token.encode(), COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def cookie_name_for(token: str, prefix: str = "dbops_console_") -> str:
    """A cookie name of this token's own: two servers seen by one browser on
    the same host name (cookies ignore the port: two SSH tunnels) keep
    their sessions apart; the name tells nothing about the token."""
    return prefix + hashlib.sha256(b"dbops-console cookie name\0" + token.encode()).hexdigest()[:12]


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and not _is_websocket(request) \
        and "text/html" in request.headers.get("Accept", "")


def _local_path(value: str | None) -> str:
    """``value`` when it is a path on this server, else ``/`` (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _without_token(request: web.Request) -> str:
    query = request.url.query.copy()
    query.popall("token", None)
    url = request.rel_url.with_query(query)
    return str(url)


def login_page(next_path: str, *, wrong: bool = False, title: str = "dbops-console") -> str:
    message = ("That token is not right." if wrong else
               "This console needs its token: the content of STATE_DIR/api.token on the "
               "machine that serves it.")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}: token needed</title>
<style>body{{background:#0c181f;color:#e8eef2;font-family:monospace;margin:4em}}
input{{font-family:monospace;width:40em;padding:.4em}}button{{padding:.4em 1.2em}}</style>
</head><body>
<h1>401: {html.escape(title)} needs its token</h1>
<p id="message">{html.escape(message)}</p>
<form method="post" action="{LOGIN_PATH}">
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<input type="password" name="token" id="token" autocomplete="off" autofocus>
<button type="submit" id="login">Open</button>
</form>
</body></html>
"""


def token_middleware(token: str, *, cookie_name: str = "", login_path: str = LOGIN_PATH,
                     title: str = "dbops-console", browser: bool = True,
                     on_refused: Callable[[web.Request, str], None] | None = None):
    """An aiohttp middleware that lets only requests carrying ``token`` reach
    the application (see the module's docstring)."""
    if browser and not cookie_name:
        raise ValueError("a browser-facing token_middleware needs a cookie_name")
    session = cookie_value(token)

    def refuse(request: web.Request, reason: str, *, wrong: bool = False,
               next_path: str | None = None) -> web.Response:
        if on_refused is not None:
            on_refused(request, reason)
        headers = {"WWW-Authenticate": f'Bearer realm="{title}"', **NO_STORE}
        if browser and (_wants_html(request) or request.path == login_path):
            page = login_page(next_path or _without_token(request), wrong=wrong, title=title)
            return web.Response(status=401, text=page, content_type="text/html", headers=headers)
        return web.Response(status=401, text=f"401: {reason}\n", headers=headers)

    def signed_in(location: str, request: web.Request) -> web.Response:
        resp = web.HTTPSeeOther(location=location, headers=NO_STORE)
        resp.set_cookie(cookie_name, session, httponly=True, samesite="Strict", path="/",
                        secure=request.secure)
        return resp

    @web.middleware
    async def middleware(request: web.Request, handler):
        if _is_websocket(request):
            origin = request.headers.get("Origin")
            if origin and urlsplit(origin).netloc.lower() != request.host.lower():
                if on_refused is not None:
                    on_refused(request, "websocket from another origin")
                return web.Response(status=403, text="403: websocket from another origin\n",
                                    headers=NO_STORE)
        if not browser:
            if bearer_ok(request.headers.get("Authorization"), token):
                return await handler(request)
            return refuse(request, "no token" if "Authorization" not in request.headers
                          else "wrong bearer token")
        if request.path == login_path:
            if request.method != "POST":
                return refuse(request, "no token", next_path="/")
            form = await request.post()
            next_path = _local_path(str(form.get("next", "/")))
            if value_ok(str(form.get("token", "")).strip(), token):
                raise signed_in(next_path, request)
            return refuse(request, "wrong token", wrong=True, next_path=next_path)
        auth = request.headers.get("Authorization")
        if auth is not None:
            if bearer_ok(auth, token):
                return await handler(request)
            return refuse(request, "wrong bearer token")
        if "token" in request.query:
            if request.method == "GET" and value_ok(request.query.get("token"), token):
                raise signed_in(_without_token(request), request)
            return refuse(request, "wrong token", wrong=True)
        if value_ok(request.cookies.get(cookie_name), session):
            return await handler(request)
        return refuse(request, "no token")

    return middleware
