"""The etcd coordinator: N engines share one fleet.

Keys under ``/dbops/``::

    engines/ENGINE                 {"host", "pid", "started"}; the engine's lease
    tasks/ID/def                   {"kind", "cluster", "autostart"}: the definition
    tasks/ID/owner                 ENGINE, on the task's own lease
    tasks/ID/checkpoint/NAME       {"order", "value", "engine"}: never backwards
    tasks/ID/paused                "1" or "0"
    tasks/ID/status                {"state", "phase", "last_error", "summary", "engine", ...}
    audit/NS-ENGINE                an AuditEntry as JSON

Ownership: ``claim`` grants a lease and creates ``owner`` on it in one
transaction that requires the key to be absent (create_revision 0).  A
keepalive thread renews every lease four times per safe life; each answer
moves the lease's local deadline (``deadline.py``).  Fencing has two
halves: ``guard`` refuses every local write once the deadline passed (set
earlier than etcd can expire the lease), and every write to etcd for a task
is a transaction conditioned on ``owner`` still being ours (same
create_revision, same lease): a stale owner's late write never lands.
Reads for the consoles come from a cache filled by ``refresh`` (the
service's tick), so a snapshot never waits on etcd."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from console.engine.coord.coordinator import Coordinator, Fenced, default_engine_id
from console.engine.coord.deadline import LeaseClock, keepalive_period
from console.engine.coord.etcdkv import (
    CoordinatorDown,
    EtcdKV,
    cmp_create,
    cmp_lease,
    cmp_mod,
    req_put,
)
from console.engine.coord.forward import check_forward, stored_order
from console.engine.coord.url import CoordinatorUrl

PREFIX = b"/dbops/"
DEFAULT_TTL = 10


@dataclass
class Held:
    lease: int
    create_revision: int
    clock: LeaseClock = field(default_factory=LeaseClock)


def _j(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


class EtcdCoordinator(Coordinator):
    shared = True

    def __init__(self, url: CoordinatorUrl, ttl: int = DEFAULT_TTL, engine_id: str | None = None):
        self.url = url
        self.ttl = int(ttl)
        self.engine_id = engine_id or default_engine_id()
        self.description = f"etcd at {url.text()[len('etcd://'):]}"
        self.kv = EtcdKV(url.endpoints, timeout=max(0.5, min(2.0, self.ttl / 4)))
        self._held: dict[str, Held] = {}
        self._named: dict[str, Held] = {}  # named leases (failover/CLUSTER)
        self._engine: Held | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._audit_q: queue.Queue = queue.Queue(maxsize=10000)
        self._auditor: threading.Thread | None = None
        self._cache: dict[str, Any] = {"engines": [], "owners": {}, "fleet": {}, "paused": set()}

    # ---- connect, register, close -----------------------------------------------------

    def open(self) -> None:
        """Reach etcd and register this engine (one line when etcd cannot be reached)."""
        self._register()
        self._keeper = threading.Thread(target=self._keep, name="coord-keepalive", daemon=True)
        self._keeper.start()
        self._auditor = threading.Thread(target=self._audit_loop, name="coord-audit", daemon=True)
        self._auditor.start()
        self.refresh()

    def _register(self) -> None:
        """engines/ENGINE on a lease of the engine's own (again when it was
        lost: the process was stopped longer than the lease)."""
        t0 = time.monotonic()
        lease, ttl = self.kv.grant(self.ttl)
        held = Held(lease, 0)
        held.clock.renewed(t0, ttl)
        self.kv.put(self._k("engines", self.engine_id),
                    _j({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}),
                    lease=lease)
        self._engine = held

    def close(self) -> None:
        self._stop.set()
        if self._auditor is not None:
            self._audit_q.put(None)
            self._auditor.join(5)
        for task_id in list(self._held):
            self.release(task_id)
        if self._engine is not None:
            try:
                self.kv.revoke(self._engine.lease)
            except CoordinatorDown:
                pass

    def _k(self, *parts: str) -> bytes:
        return PREFIX + "/".join(parts).encode()

    def _task_key(self, task_id: str, *rest: str) -> bytes:
        return self._k("tasks", task_id, *rest)

    # ---- the keepalive thread ----------------------------------------------------------

    def _keep(self) -> None:
        period = keepalive_period(self.ttl)
        while not self._stop.wait(period):
            with self._lock:
                leases = [*([self._engine] if self._engine else []), *self._held.values(),
                          *self._named.values()]
            for h in leases:
                if h.clock.lost:
                    continue
                t0 = time.monotonic()
                try:
                    h.clock.renewed(t0, self.kv.keepalive(h.lease))
                except CoordinatorDown:
                    pass  # the deadline runs out: guard fences the writes

    # ---- task ownership -----------------------------------------------------------------

    def define_tasks(self, defs: dict[str, dict], forget: Collection[str] = ()) -> None:
        for name, d in defs.items():
            self.kv.put(self._task_key(name, "def"), _j(d))
        for name in forget:
            self.kv.delete(self._task_key(name, "def"))

    def refresh(self) -> None:
        """Read the fleet (engines, owners, statuses, pause flags) into the cache."""
        if self._engine is not None and self._engine.clock.lost:
            self._register()
        engines = sorted(kv["key"][len(PREFIX) + len(b"engines/"):].decode()
                         for kv in self.kv.get_prefix(self._k("engines") + b"/"))
        owners, fleet, paused, defs = {}, {}, set(), {}
        base = len(self._k("tasks") + b"/")
        for kv in self.kv.get_prefix(self._k("tasks") + b"/"):
            task_id, _, what = kv["key"][base:].decode().partition("/")
            if what == "owner":
                owners[task_id] = kv["value"].decode()
            elif what == "status":
                fleet[task_id] = json.loads(kv["value"])
            elif what == "paused" and kv["value"] == b"1":
                paused.add(task_id)
            elif what == "def":
                defs[task_id] = json.loads(kv["value"])
        for task_id, st in fleet.items():
            st["engine"] = owners.get(task_id, "")
        self._cache = {"engines": engines, "owners": owners, "fleet": fleet, "paused": paused,
                       "defs": defs}

    def engines(self) -> list[str]:
        return list(self._cache["engines"])

    def owners(self) -> dict[str, str]:
        return dict(self._cache["owners"])

    def definitions(self) -> dict[str, dict]:
        return dict(self._cache.get("defs", {}))

    def claim(self, task_id: str) -> bool:
        with self._lock:
            if task_id in self._held and self.holds(task_id):
                return True
        key = self._task_key(task_id, "owner")
        t0 = time.monotonic()
        lease, ttl = self.kv.grant(self.ttl)
        try:
            won = self.kv.txn([cmp_create(key, 0)], [req_put(key, self.engine_id.encode(), lease)])
            kv = self.kv.get(key) if won else None
        except CoordinatorDown:
            won, kv = False, None
        if not won or kv is None or kv["lease"] != lease:
            try:
                self.kv.revoke(lease)
            except CoordinatorDown:
                pass
            return False
        held = Held(lease, kv["create_revision"])
        held.clock.renewed(t0, ttl)
        with self._lock:
            self._held[task_id] = held
        self._cache["owners"][task_id] = self.engine_id
        return True

    def release(self, task_id: str) -> None:
        with self._lock:
            h = self._held.pop(task_id, None)
        if h is not None and not h.clock.lost:
            try:
                self.kv.revoke(h.lease)  # the owner key goes with it
            except CoordinatorDown:
                pass  # it expires by itself

    def take_named(self, name: str) -> str:
        key = self._k("leases", name)
        t0 = time.monotonic()
        lease, ttl = self.kv.grant(self.ttl)
        if self.kv.txn([cmp_create(key, 0)], [req_put(key, self.engine_id.encode(), lease)]):
            held = Held(lease, 0)
            held.clock.renewed(t0, ttl)
            with self._lock:
                self._named[name] = held
            return ""
        try:
            self.kv.revoke(lease)
        except CoordinatorDown:
            pass
        kv = self.kv.get(key)
        return kv["value"].decode() if kv else "another engine"

    def give_named(self, name: str) -> None:
        with self._lock:
            h = self._named.pop(name, None)
        if h is not None:
            try:
                self.kv.revoke(h.lease)
            except CoordinatorDown:
                pass

    def holds(self, task_id: str) -> bool:
        h = self._held.get(task_id)
        return h is not None and h.clock.valid(time.monotonic())

    def held(self) -> list[str]:
        return list(self._held)

    def _owner_compares(self, task_id: str) -> list[dict]:
        h = self._held.get(task_id)
        if h is None:
            raise Fenced(f"task {task_id}: this engine ({self.engine_id}) does not own it")
        key = self._task_key(task_id, "owner")
        return [cmp_create(key, h.create_revision), cmp_lease(key, h.lease)]

    def _owned_put(self, task_id: str, key: bytes, value: bytes, extra: list[dict] = ()) -> bool:
        """Put ``value`` only while we own the task (one transaction); False
        when an ``extra`` comparison failed; ``Fenced`` when the owner is not us."""
        self.guard(task_id)
        if self.kv.txn([*self._owner_compares(task_id), *extra], [req_put(key, value)]):
            return True
        owner = self.kv.get(self._task_key(task_id, "owner"))
        h = self._held.get(task_id)
        if owner is None or h is None or owner["lease"] != h.lease:
            if h is not None:
                h.clock.lost = True
            raise Fenced(f"task {task_id}: this engine ({self.engine_id}) lost its ownership "
                         f"lease; its write was refused")
        return False

    # ---- checkpoints, flags, statuses -----------------------------------------------------

    def publish_checkpoint(self, task_id: str, name: str, order: Sequence, value: Any,
                           lineage: str = "") -> None:
        key = self._task_key(task_id, "checkpoint", name)
        for _ in range(5):
            cur = self.kv.get(key)
            check_forward(task_id, name, stored_order(json.loads(cur["value"]) if cur else None,
                                                      lineage), order)
            new = _j({"order": list(order), "value": value, "engine": self.engine_id,
                      "lineage": lineage, "ts": time.time()})
            if self._owned_put(task_id, key, new, [cmp_mod(key, cur["mod_revision"] if cur else 0)]):
                return
        raise CoordinatorDown(f"task {task_id}: checkpoint {name} kept changing under us")

    def checkpoint(self, task_id: str, name: str) -> dict | None:
        kv = self.kv.get(self._task_key(task_id, "checkpoint", name))
        return json.loads(kv["value"]) if kv else None

    def set_paused(self, task_id: str, paused: bool) -> None:
        self.kv.put(self._task_key(task_id, "paused"), b"1" if paused else b"0")
        (self._cache["paused"].add if paused else self._cache["paused"].discard)(task_id)

    def paused(self, task_id: str) -> bool:
        kv = self.kv.get(self._task_key(task_id, "paused"))
        return kv is not None and kv["value"] == b"1"

    def publish_status(self, task_id: str, status: dict) -> None:
        st = {**status, "engine": self.engine_id}
        try:
            self._owned_put(task_id, self._task_key(task_id, "status"), _j(st))
        except Fenced:
            return
        self._cache["fleet"][task_id] = st

    def fleet(self) -> dict[str, dict]:
        return dict(self._cache["fleet"])

    # ---- the audit log ---------------------------------------------------------------------

    def audit(self, entry) -> None:
        try:
            self._audit_q.put_nowait(entry)
        except queue.Full:
            pass

    def _audit_loop(self) -> None:
        while True:
            entry = self._audit_q.get()
            if entry is None:
                return
            key = self._k("audit", f"{int(entry.ts * 1e9):020d}-{self.engine_id}")
            for _ in range(3):
                try:
                    self.kv.put(key, _j({**asdict(entry), "engine": self.engine_id}))
                    break
                except CoordinatorDown:
                    if self._stop.wait(0.5):
                        break

    def read_audit(self, limit: int | None = None) -> list:
        from console.engine.state import AuditEntry

        out = []
        for kv in self.kv.get_prefix(self._k("audit") + b"/"):
            d = json.loads(kv["value"])
            d.pop("engine", None)
            out.append(AuditEntry(**d))
        return out[-limit:] if limit else out
