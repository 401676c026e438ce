"""Server-sent event streams: the audit log (``/audit?follow=true``) and
live snapshots (``/stream``).  Each event is ``event: NAME`` and one
``data:`` line of JSON; a comment line every few seconds keeps idle
connections (and proxies) open.  A stream ends when the client goes or the
server stops."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from console.api import snapshots
from console.api.handlers import ctx_of, error, ok

KEEPALIVE = 10.0  # seconds between comment lines on an idle stream
POLL = 0.2        # how often new audit entries are looked for


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


async def open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    return resp


async def send(resp: web.StreamResponse, name: str, data) -> None:
    await resp.write(f"event: {name}\ndata: {snapshots.dumps(snapshots.jsonable(data))}\n\n"
                     .encode())


async def audit(request: web.Request) -> web.StreamResponse:
    engine = ctx_of(request).engine
    raw = request.query.get("limit", "200")
    if not raw.isdigit() or int(raw) < 1:
        return error(400, f"limit {raw!r}: expected a whole number of at least 1")
    limit = int(raw)
    seq = engine.last_seq  # entries after this one are followed; earlier ones are in the file
    entries = [snapshots.audit_dict(e) for e in engine.state.read_audit(limit=limit)]
    if not _flag(request, "follow"):
        return ok(entries)
    resp = await open_stream(request)
    for e in entries:
        await send(resp, "audit", e)
    quiet_since = time.monotonic()
    while True:
        new = engine.events_since(seq, audited_only=True)
        for s, e in new:
            seq = s
            await send(resp, "audit", snapshots.audit_dict(e))
        if new:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE:
            await resp.write(b": keepalive\n\n")
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL)


def snapshot(engine, monitors: bool = False) -> dict:
    return {"taken_at": time.time(),
            "clusters": {n: snapshots.cluster_dict(engine, n) for n in engine.config.clusters},
            "tasks": snapshots.tasks_list(engine, monitors=monitors)}


async def snapshots_stream(request: web.Request) -> web.StreamResponse:
    engine = ctx_of(request).engine
    raw = request.query.get("interval")
    try:
        interval = float(raw) if raw is not None else engine.config.ui.refresh_interval
    except ValueError:
        interval = -1.0
    if not interval >= 0.2:
        return error(400, f"interval {raw!r}: expected seconds, at least 0.2")
    since = request.query.get("since")
    if since is not None and not since.isdigit():
        return error(400, f"since {since!r}: expected a feed sequence number (0: all kept)")
    monitors = _flag(request, "monitors")
    resp = await open_stream(request)
    seq = int(since) if since is not None else engine.last_seq
    next_snapshot = 0.0
    while True:
        for s, e in engine.events_since(seq):
            seq = s
            await send(resp, "event" if e.actor == "monitor" else "audit",
                       {**snapshots.audit_dict(e), "seq": s})
        now = time.monotonic()
        if now >= next_snapshot:
            await send(resp, "snapshot", snapshot(engine, monitors))
            next_snapshot = now + interval
        await asyncio.sleep(min(POLL, interval))
