"""etcd v3 over its HTTP/JSON gateway (``etcd3gw``'s client and session):
range, put, transactions and leases, keys and values as bytes.  Several
endpoints: a call that cannot reach one tries the next; when none answers,
``CoordinatorDown`` (one line)."""

from __future__ import annotations

import base64
import threading
from typing import Any

from console.errors import UserError


class CoordinatorDown(UserError):
    """No etcd endpoint answered."""


class EtcdRefused(CoordinatorDown):
    """etcd answered with an error (a lease not found, a bad request)."""


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: bytes) -> bytes:
    """The range end that covers every key starting with ``prefix``."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


class EtcdKV:
    def __init__(self, endpoints: tuple[tuple[str, int], ...], timeout: float = 2.0):
        from etcd3gw.client import Etcd3Client

        self.endpoints = endpoints
        self._clients = [Etcd3Client(host=h, port=p, timeout=timeout, api_path="/v3/")
                         for h, p in endpoints]
        self._cur = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.endpoints)

    def call(self, path: str, body: dict) -> dict:
        from etcd3gw import exceptions as X

        last: Exception | None = None
        with self._lock:
            start = self._cur
        for i in range(len(self._clients)):
            n = (start + i) % len(self._clients)
            c = self._clients[n]
            try:
                out = c.post(c.get_url(path), json=body)
            except (X.ConnectionFailedError, X.ConnectionTimeoutError, X.InternalServerError) as e:
                last = e
                continue
            except X.Etcd3Exception as e:
                raise EtcdRefused(f"etcd {c.host}:{c.port} refused {path}: {_text(e)[:200]}") from None
            with self._lock:
                self._cur = n
            return out
        raise CoordinatorDown(f"etcd at {self.describe()} is unreachable ({_why(last)}); "
                              f"start it or check --coordinator")

    # ---- keys -------------------------------------------------------------------------

    def get(self, key: bytes) -> dict | None:
        """The key's kv (``value`` decoded to bytes; revisions as ints) or None."""
        kvs = self.call("/kv/range", {"key": b64(key)}).get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: bytes) -> list[dict]:
        kvs = self.call("/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return [_kv(k) for k in kvs.get("kvs") or []]

    def put(self, key: bytes, value: bytes, lease: int = 0) -> None:
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        self.call("/kv/put", body)

    def delete(self, key: bytes) -> None:
        self.call("/kv/deleterange", {"key": b64(key)})

    def txn(self, compare: list[dict], success: list[dict]) -> bool:
        """All ``compare`` true: run ``success`` (puts), True; else nothing, False."""
        out = self.call("/kv/txn", {"compare": compare, "success": success, "failure": []})
        return bool(out.get("succeeded"))

    # ---- leases -------------------------------------------------------------------------

    def grant(self, ttl: int) -> tuple[int, int]:
        out = self.call("/lease/grant", {"TTL": str(ttl), "ID": "0"})
        return int(out["ID"]), int(out.get("TTL", 0))

    def keepalive(self, lease: int) -> int:
        """The TTL granted again; <= 0 when the lease is gone."""
        try:
            out = self.call("/lease/keepalive", {"ID": str(lease)})
        except EtcdRefused as e:
            if "not found" in str(e):
                return -1
            raise
        return int((out.get("result") or {}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        self.call("/kv/lease/revoke", {"ID": str(lease)})


def _text(e: Exception) -> str:
    """etcd3gw's exceptions keep their text in ``detail_text``."""
    return " ".join(str(getattr(e, "detail_text", None) or e).split())


def _why(e: Exception | None) -> str:
    """A connection error in a few words (requests' own text is a paragraph)."""
    from etcd3gw import exceptions as X

    text = _text(e) if e is not None else ""
    if isinstance(e, X.ConnectionTimeoutError):
        return "no answer in time"
    if "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text[:120] or (type(e).__name__ if e is not None else "no endpoint")


def _kv(k: dict) -> dict:
    return {"key": unb64(k.get("key")), "value": unb64(k.get("value")),
            "create_revision": int(k.get("create_revision", 0)),
            "mod_revision": int(k.get("mod_revision", 0)), "lease": int(k.get("lease", 0))}


def cmp_create(key: bytes, revision: int) -> dict:
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": str(revision)}


def cmp_mod(key: bytes, revision: int) -> dict:
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def cmp_lease(key: bytes, lease: int) -> dict:
    return {"key": b64(key), "target": "LEASE", "result": "EQUAL", "lease": str(lease)}


def req_put(key: bytes, value: bytes, lease: int = 0) -> dict:
    p: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        p["lease"] = str(lease)
    return {"request_put": p}
