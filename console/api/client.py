"""A client of a running engine's API (``serve``): the console and the
headless commands use it when an engine serves their state directory.

Plain ``http.client`` over the unix socket ``STATE_DIR/run/api.sock`` (or
a TCP URL with the bearer token); JSON in and out; an error response
becomes a one-line ``ApiError`` carrying the server's message.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from console.api.sockets import short_unix_path, socket_path
from console.errors import ConfirmationRequired, UserError

TIMEOUT = 60.0  # seconds: a command that talks to servers (a switchover) may take a while


class ApiError(UserError):
    def __init__(self, status: int, message: str, body: dict | None = None):
        self.status = status
        self.body = body or {}
        super().__init__(message)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        where, fd = short_unix_path(self.unix_path)
        try:
            s.connect(where)
        except OSError:
            s.close()
            raise
        finally:
            if fd is not None:
                os.close(fd)
        self.sock = s


class EngineClient:
    def __init__(self, *, unix: Path | None = None, url: str | None = None,
                 token: str | None = None, actor: str = "", timeout: float = TIMEOUT):
        self.unix, self.url, self.token, self.timeout = unix, url, token, timeout
        self.actor = actor

    def __repr__(self) -> str:  # never the token
        return f"EngineClient({self.unix or self.url})"

    @property
    def where(self) -> str:
        return str(self.unix or self.url)

    def _conn(self, timeout: float | None = None) -> http.client.HTTPConnection:
        t = self.timeout if timeout is None else timeout
        if self.unix is not None:
            return _UnixConnection(self.unix, t)
        from urllib.parse import urlsplit

        u = urlsplit(self.url or "")
        return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=t)

    def _headers(self, body: bool) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if body:
            h["Content-Type"] = "application/json"
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.actor:
            h["X-Dbops-Actor"] = self.actor
        return h

    def request(self, method: str, path: str, body: Any = None, *,
                timeout: float | None = None) -> Any:
        conn = self._conn(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=self._headers(data is not None))
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as e:
            raise ApiError(0, f"the engine at {self.where} does not answer: "
                              f"{e.strerror or e}") from None
        finally:
            conn.close()
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            out = {"error": raw.decode(errors="replace")[:200]}
        if resp.status >= 400:
            msg = out.get("error") if isinstance(out, dict) else str(out)
            if resp.status == 409 and isinstance(out, dict) and "confirm by typing" in (msg or ""):
                raise ConfirmationRequired(msg)
            raise ApiError(resp.status, msg or f"HTTP {resp.status}", out if isinstance(out, dict)
                           else None)
        return out

    def get(self, path: str, **query) -> Any:
        q = {k: v for k, v in query.items() if v is not None}
        return self.request("GET", path + (f"?{urlencode(q)}" if q else ""))

    def post(self, path: str, body: Any = None, **kw) -> Any:
        return self.request("POST", path, body if body is not None else {}, **kw)

    # ---- the API's verbs -------------------------------------------------------------

    def info(self) -> dict:
        return self.get("/api/v1")

    def clusters(self) -> dict:
        return self.get("/api/v1/clusters")

    def tasks(self, monitors: bool = False) -> list[dict]:
        return self.get("/api/v1/tasks", monitors="true" if monitors else None)

    def task(self, name: str) -> dict:
        return self.get(f"/api/v1/tasks/{quote(name, safe='')}")

    def start(self, name: str) -> dict:
        return self.post(f"/api/v1/tasks/{quote(name, safe='')}/start")

    def command(self, name: str, command: str, confirm: str | None = None,
                timeout: float | None = None, **args) -> Any:
        body: dict[str, Any] = {"args": args}
        if confirm is not None:
            body["confirm"] = confirm
        out = self.post(f"/api/v1/tasks/{quote(name, safe='')}/commands/{quote(command, safe='')}",
                        body, timeout=timeout)
        return out["result"]

    def audit(self, limit: int = 200) -> list[dict]:
        return self.get("/api/v1/audit", limit=limit)

    def events(self, path: str = "/api/v1/stream", **query) -> Iterator[tuple[str, Any]]:
        """(event name, data) from a server-sent event stream, until it ends."""
        q = {k: v for k, v in query.items() if v is not None}
        conn = self._conn(timeout=None)
        conn.request("GET", path + (f"?{urlencode(q)}" if q else ""), headers=self._headers(False))
        resp = conn.getresponse()
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise ApiError(resp.status, json.loads(raw).get("error", f"HTTP {resp.status}"))
        name, data = "message", []
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield name, json.loads("\n".join(data))
                    name, data = "message", []
        finally:
            conn.close()


def connect(state_dir: Path, actor: str = "") -> EngineClient | None:
    """A client of the engine that serves ``state_dir``, or None when none
    does (no socket, or nobody answers on it: a killed engine's socket)."""
    path = socket_path(state_dir)
    if not path.exists():
        return None
    c = EngineClient(unix=path, actor=actor, timeout=5.0)
    try:
        c.info()
    except ApiError:
        return None
    c.timeout = TIMEOUT
    return c
