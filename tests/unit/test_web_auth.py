"""The token in front of the browser console (console/api/web_auth.py), on a
small aiohttp app of the test's own (no console, no server): bearer, the
``?token=`` redirect and the login form set a derived HttpOnly
SameSite=Strict cookie; anything else is 401, a websocket included (its
handler never runs); another site's websocket is 403.  And ``web``'s bad
input: one line naming --listen, exit 2, nothing created."""

from __future__ import annotations

import socket

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer

from console.api.web_auth import cookie_name_for, cookie_value, token_middleware
from console.cli import main
from console.commands.web import bind, parse_listen
from console.errors import UserError

TOKEN = "s3cret-token-value-0123456789abcdefghijklmnopqrstuv"
COOKIE = "dbops_console_test"


@pytest.fixture
async def client():
    calls = {"page": 0, "ws": 0}
    refused: list[str] = []

    async def page(request):
        calls["page"] += 1
        return web.Response(text="the console page")

    async def ws(request):
        calls["ws"] += 1
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_str("hello")
        await sock.close()
        return sock

    app = web.Application(middlewares=[token_middleware(
        TOKEN, cookie_name=COOKIE, on_refused=lambda r, why: refused.append(why))])
    app.router.add_get("/", page)
    app.router.add_get("/ws", ws)
    c = TestClient(TestServer(app))
    await c.start_server()
    c.calls, c.refused = calls, refused
    try:
        yield c
    finally:
        await c.close()


def test_cookie_name_is_the_tokens_own():
    a, b = cookie_name_for(TOKEN), cookie_name_for(TOKEN + "x")
    assert a.startswith("dbops_console_") and a != b and a == cookie_name_for(TOKEN)
    assert TOKEN[:6] not in a and cookie_value(TOKEN)[:12] not in a


def no_token_anywhere(resp, body: str) -> None:
    assert TOKEN not in body
    assert all(TOKEN not in v for v in resp.headers.values())


async def test_no_token_is_401_text_or_login_page(client):
    r = await client.get("/")
    body = await r.text()
    assert r.status == 401 and body == "401: no token\n"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.headers["Cache-Control"] == "no-store"
    r = await client.get("/", headers={"Accept": "text/html,*/*"})
    body = await r.text()
    assert r.status == 401 and "<form" in body and 'name="token"' in body and 'type="password"' in body
    assert client.calls["page"] == 0 and client.refused == ["no token", "no token"]


async def test_bearer(client):
    r = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200 and await r.text() == "the console page"
    r = await client.get("/", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await client.get("/", headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status == 401
    assert client.calls["page"] == 1


async def test_query_token_sets_a_derived_cookie_and_redirects_without_it(client):
    r = await client.get(f"/?token={TOKEN}&fontsize=14", allow_redirects=False)
    body = await r.text()
    assert r.status == 303 and r.headers["Location"] == "/?fontsize=14"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    set_cookie = r.headers["Set-Cookie"]
    assert f"{COOKIE}={cookie_value(TOKEN)}" in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    assert cookie_value(TOKEN) != TOKEN
    no_token_anywhere(r, body)
    assert client.calls["page"] == 0
    r = await client.get("/?fontsize=14")  # the client keeps the cookie
    assert r.status == 200 and client.calls["page"] == 1


async def test_wrong_query_token_is_refused_and_not_echoed(client):
    r = await client.get("/?token=guess-123", headers={"Accept": "text/html"},
                         allow_redirects=False)
    body = await r.text()
    assert r.status == 401 and "guess-123" not in body and "not right" in body
    assert "Set-Cookie" not in r.headers
    assert client.refused == ["wrong token"]


async def test_login_form(client):
    r = await client.post("/login", data={"token": "nope", "next": "/?fontsize=12"},
                          allow_redirects=False)
    body = await r.text()
    assert r.status == 401 and "not right" in body and "nope" not in body
    assert 'value="/?fontsize=12"' in body
    r = await client.post("/login", data={"token": TOKEN + "\n", "next": "/?fontsize=12"},
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/?fontsize=12"
    no_token_anywhere(r, await r.text())
    assert "HttpOnly" in r.headers["Set-Cookie"]
    r = await client.get("/")
    assert r.status == 200


@pytest.mark.parametrize("nxt", ["//evil.example/", "https://evil.example/", "/\\evil", "evil"])
async def test_login_never_redirects_off_site(client, nxt):
    r = await client.post("/login", data={"token": TOKEN, "next": nxt}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/"


async def test_a_cookie_holding_the_raw_token_or_junk_is_refused(client):
    for value in (TOKEN, "junk", ""):
        client.session.cookie_jar.clear()
        r = await client.get("/", cookies={COOKIE: value})
        assert r.status == 401
    assert client.calls["page"] == 0


async def test_websocket_without_token_never_reaches_its_handler(client):
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/ws")
    assert e.value.status == 401
    assert client.calls["ws"] == 0


async def test_websocket_with_the_cookie(client):
    await client.get(f"/?token={TOKEN}")
    ws = await client.ws_connect("/ws")
    assert (await ws.receive_str()) == "hello"
    await ws.close()
    assert client.calls["ws"] == 1


async def test_websocket_from_another_origin_is_403_even_with_the_cookie(client):
    await client.get(f"/?token={TOKEN}")
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/ws", origin="http://evil.example")
    assert e.value.status == 403
    assert client.calls["ws"] == 0
    host = f"{client.server.host}:{client.server.port}"
    ws = await client.ws_connect("/ws", origin=f"http://{host}")
    assert (await ws.receive_str()) == "hello"
    await ws.close()


# ---- `web`: --listen and bad input ------------------------------------------------------


def test_parse_listen():
    assert parse_listen("127.0.0.1:8470") == parse_listen("8470")
    assert parse_listen("[::1]:9000").host == "::1" and parse_listen("[::1]:9000").url_host == "[::1]"
    assert parse_listen("0.0.0.0:80").port == 80
    assert parse_listen("localhost:1234").host == "localhost"
    for bad in ("", ":8470", "host", "host:", "host:0", "host:65536", "host:x1", "::1:80", "[::1:80"):
        with pytest.raises(UserError, match="--listen"):
            parse_listen(bad)


def test_bind_names_the_flag_when_the_port_is_taken():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(UserError, match=rf"^--listen: 127\.0\.0\.1:{port} is in use"):
            bind(parse_listen(f"127.0.0.1:{port}"), "--listen")
    finally:
        taken.close()
    with pytest.raises(UserError, match="^--listen: 192.0.2.1 is not an address of this machine"):
        bind(parse_listen("192.0.2.1:8470"), "--listen")


CONFIG = """
state_dir = "state"
[clusters.main.hosts.db1]
host = "127.0.0.1"
port = 1
user = "ops"
password_file = "pw"
"""


def test_bad_listen_is_one_line_exit_2_and_nothing_made(tmp_path, capsys):
    (tmp_path / "pw").write_text("x\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        for listen, says in (("nonsense", "--listen 'nonsense': expected HOST:PORT"),
                             (f"127.0.0.1:{port}", "--listen: 127.0.0.1:"),
                             ("no-such-host.invalid:8470", "--listen: unknown host")):
            assert main(["web", "--config", str(cfg), "--listen", listen]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"dbops-console: {says}") and err.count("\n") == 1, err
    finally:
        taken.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "pw"]


def test_no_config_is_one_line_exit_2(tmp_path, capsys):
    assert main(["web", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err
    assert list(tmp_path.iterdir()) == []


async def test_api_mode_takes_the_bearer_only():
    async def page(request):
        return web.Response(text="api")

    app = web.Application(middlewares=[token_middleware(TOKEN, browser=False)])
    app.router.add_get("/api", page)
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/api", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        r = await c.get(f"/api?token={TOKEN}", allow_redirects=False)
        assert r.status == 401 and "Set-Cookie" not in r.headers and "<form" not in await r.text()
        r = await c.get("/api", cookies={COOKIE: cookie_value(TOKEN)})
        assert r.status == 401
        assert (await c.post("/login", data={"token": TOKEN}, allow_redirects=False)).status == 401


async def test_the_console_page_is_made_from_the_request_host():
    """The page's websocket and static URLs follow the Host the browser used
    (an SSH tunnel on another local port works); a strange Host is 400;
    the static files are behind the token too."""
    from console.api.web_console import WebConsole

    said: list[str] = []
    server = WebConsole(["true"], token=TOKEN, cookie_name=COOKIE, say=said.append)
    async with TestClient(TestServer(await server._make_app())) as c:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        r = await c.get("/", headers={**bearer, "Host": "localhost:9999"})
        page = await r.text()
        assert r.status == 200
        assert 'data-session-websocket-url="ws://localhost:9999/ws"' in page
        assert 'href="/static/css/xterm.css"' in page
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "connect-src 'self' ws://localhost:9999" in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        r = await c.get("/", headers={**bearer, "Host": 'x"><script>'})
        assert r.status == 400
        assert (await c.get("/static/js/textual.js")).status == 401
        assert (await c.get("/static/js/textual.js", headers=bearer)).status == 200
        said.clear()
        assert (await c.get("/x%0aweb:%20forged?token=guess")).status == 401
    assert said == ["web: refused GET /x%0Aweb:%20forged from 127.0.0.1: wrong token"]
    assert server.sessions == set() and server.started == 0
