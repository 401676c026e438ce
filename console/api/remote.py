"""The engine as the console sees it when the console is a client: the
same calls the screens make on an in-process ``Engine`` (``config``,
``task(id).status()``, ``statuses()``, ``events_since``, ``command``,
``start_declared``, the audit log), answered from snapshots the engine
pushes over its API's live stream.

A thread reads ``/api/v1/stream`` and keeps the last snapshot of every task
(typed again: ``TaskStatus`` with the kind's detail dataclass) and the
engine's event feed; screens read that cache and never wait on the
network.  Commands and starts are requests to the engine (screens already
send them from worker threads).  When the stream breaks (the engine was
restarted), the thread connects again and says so in the feed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from console.api.client import ApiError, EngineClient
from console.api.typed import from_jsonable
from console.config import Config
from console.engine.state import AuditEntry
from console.engine.task import TaskStatus
from console.errors import CommandError

RECONNECT = 1.0  # seconds between attempts when the stream broke


def status_of(d: dict) -> TaskStatus:
    """A task's JSON (``snapshots.task_dict``) as the engine's ``TaskStatus``."""
    from console.engine.topology.monitor import MonitorDetail
    from console.kinds.registry import get as get_kind

    kind = d.get("kind", "")
    detail_cls = MonitorDetail if kind == "monitor" else None
    if detail_cls is None:
        try:
            detail_cls = get_kind(kind).detail_class()
        except Exception:  # noqa: BLE001 - an unknown kind (a newer engine): detail as JSON
            detail_cls = None
    detail = from_jsonable(detail_cls, d.get("detail")) if detail_cls else d.get("detail")
    return TaskStatus(task_id=d["task_id"], kind=kind, state=d.get("state", ""),
                      phase=d.get("phase") or "", since=d.get("since") or 0.0,
                      last_error=d.get("last_error") or "", throttle_reason=d.get("throttle_reason") or "",
                      summary=d.get("summary") or "", detail=detail, engine=d.get("engine") or "")


class RemoteTask:
    """A task of the engine, as screens use one: its last snapshot and commands."""

    def __init__(self, remote: RemoteEngine, task_id: str):
        self.remote, self.task_id = remote, task_id

    def status(self) -> TaskStatus:
        return self.remote._status(self.task_id)

    @property
    def kind(self) -> str:
        return self.status().kind

    @property
    def state(self) -> str:
        return self.status().state

    def refresh(self) -> Any:
        return self.remote.command(self.task_id, "refresh")

    def confirm_target(self) -> str:
        return self.task_id


class RemoteState:
    """The audit log as ``StateDir`` offers it to the log screen."""

    def __init__(self, remote: RemoteEngine, root: Path):
        self.remote = remote
        self.root = root
        self.audit_path = root / "audit.log"

    def read_audit(self, limit: int | None = None) -> list[AuditEntry]:
        return [AuditEntry(**e) for e in self.remote.client.audit(limit=limit or 2000)]


class RemoteEngine:
    remote = True

    def __init__(self, config: Config, client: EngineClient, *, started_here: bool = False,
                 pid: int | None = None):
        self.config = config
        self.client = client
        info = client.info()
        self.pid = pid or info["pid"]
        self.started_here = started_here
        self.state = RemoteState(self, Path(info["state_dir"]))
        self._lock = threading.Lock()
        self._statuses: dict[str, TaskStatus] = {}
        self._events: list[tuple[int, AuditEntry]] = []
        self._seq = 0
        self._engine_seq = 0  # the last feed entry of the engine's we have
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.connected = False
        self.last_error = ""
        self._thread = threading.Thread(target=self._follow, name="engine-stream", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    # ---- the stream -------------------------------------------------------------------

    def _follow(self) -> None:
        interval = max(0.2, self.config.ui.refresh_interval)
        while not self._stop.is_set():
            try:
                for name, data in self.client.events("/api/v1/stream", interval=interval,
                                                     since=self._engine_seq, monitors="true"):
                    if self._stop.is_set():
                        return
                    self._take(name, data)
            except (ApiError, OSError, ValueError) as e:
                self.last_error = str(e)
            if self._stop.is_set():
                return
            if self.connected:
                self.connected = False
                self._note("error", f"lost the engine (pid {self.pid}): {self.last_error or 'stream ended'}; "
                                    f"reconnecting")
            self._ready.set()
            self._stop.wait(RECONNECT)

    def _take(self, name: str, data: Any) -> None:
        if name == "snapshot":
            statuses = {d["task_id"]: status_of(d) for d in data["tasks"]}
            with self._lock:
                self._statuses = statuses
            if not self.connected:
                again = self._ready.is_set()  # back after a loss: maybe another engine now
                if again:
                    self._engine_changed()  # before `connected`: the title never pairs it with the old pid
                self.connected = True
                if again:
                    self._note("info", f"connected again to the engine (pid {self.pid})")
            self._ready.set()
        elif name in ("audit", "event"):
            seq = data.pop("seq", None)
            if seq is not None:
                self._engine_seq = max(self._engine_seq, seq)
            self._add(AuditEntry(**data))

    def _engine_changed(self) -> None:
        """After a loss: which engine answers now (the title shows its pid);
        another one than before was not started by this console."""
        try:
            pid = self.client.info()["pid"]
        except ApiError:
            return
        if pid != self.pid:
            self.started_here = False
            self.pid = pid

    def _add(self, entry: AuditEntry) -> None:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, entry))
            del self._events[:-2000]

    def _note(self, level: str, message: str) -> None:
        self._add(AuditEntry(time.time(), "monitor", level, "console", message))

    def close(self) -> None:
        self._stop.set()

    # ---- what screens call --------------------------------------------------------------

    def _status(self, task_id: str) -> TaskStatus:
        with self._lock:
            st = self._statuses.get(task_id)
        if st is None or st.state == "not started":
            known = ", ".join(sorted(self._statuses)) or "none"
            raise CommandError(f"no task {task_id!r} (running tasks: {known})")
        return st

    def task(self, task_id: str) -> RemoteTask:
        self._status(task_id)
        return RemoteTask(self, task_id)

    def tasks(self) -> list[RemoteTask]:
        return [RemoteTask(self, st.task_id) for st in self.statuses()]

    def statuses(self) -> list[TaskStatus]:
        with self._lock:
            return [st for st in self._statuses.values() if st.state != "not started"]

    def events_since(self, seq: int, *, audited_only: bool = False) -> list[tuple[int, AuditEntry]]:
        with self._lock:
            return [(s, e) for s, e in self._events if s > seq
                    and not (audited_only and e.actor == "monitor")]

    def command(self, task_id: str, name: str, actor: str = "operator", **args: Any) -> Any:
        confirm = args.pop("confirm", None)
        return self.client.command(task_id, name, confirm=confirm, **args)

    def start_declared(self, name: str, actor: str = "operator") -> RemoteTask:
        d = self.client.start(name)
        st = status_of(d)
        with self._lock:
            self._statuses[name] = st
        return RemoteTask(self, name)

    def start(self, task_id: str, actor: str = "operator") -> None:
        self.start_declared(task_id, actor)

    def host_info(self, cluster: str, host: str, what: str, session: int | None = None):
        from urllib.parse import quote

        return self.client.get(f"/api/v1/clusters/{quote(cluster, safe='')}/hosts/"
                               f"{quote(host, safe='')}/{what}", session=session)

    def kill_session(self, cluster: str, host: str, session: int, *, query_only: bool,
                     confirm: str | None = None, actor: str = "operator") -> str:
        from urllib.parse import quote

        out = self.client.post(f"/api/v1/clusters/{quote(cluster, safe='')}/hosts/"
                               f"{quote(host, safe='')}/kill",
                               {"session": session, "query_only": query_only, "confirm": confirm})
        return out["result"]

    def recoveries(self, cluster: str) -> list:
        """The engine's ``recoveries``: PastRecovery records typed again."""
        from urllib.parse import quote

        from console.engine.topology.actions.history import PastRecovery

        out = self.client.get(f"/api/v1/clusters/{quote(cluster, safe='')}/recoveries")
        return [from_jsonable(PastRecovery, r) for r in out["recoveries"]]

    def acknowledge(self, cluster: str, *, confirm: str | None = None, actor: str = "operator") -> str:
        from urllib.parse import quote

        out = self.client.post(f"/api/v1/clusters/{quote(cluster, safe='')}/recoveries/acknowledge",
                               {"confirm": confirm})
        return out["result"]

    def running_tasks(self) -> list[str]:
        return [st.task_id for st in self.statuses()
                if st.kind != "monitor" and st.state in ("running", "paused")]

    def shutdown(self, timeout: float = 10.0) -> None:
        """The console leaves: the engine and its tasks go on."""
        self.close()
