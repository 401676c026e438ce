"""The journal of a recovery: every step, the host it acted on, the SQL it
issued and how long it took.  Written (atomically, fsynced) after every step
to ``STATE_DIR/failover/<cluster>/journal/<time>-<kind>.json`` so a crash
mid-recovery still leaves the record of what was done."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

from console.engine.failover.model import StepRecord
from console.engine.state import write_json_atomic


class StepHandle:
    """What a running step fills in: its SQL list and a detail line."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.detail = ""
        self.target = ""


class Journal:
    def __init__(self, directory: Path | None, kind: str, cluster: str,
                 on_change: Callable[[tuple[StepRecord, ...]], None] | None = None):
        self.kind, self.cluster = kind, cluster
        self.steps: list[StepRecord] = []
        self.meta: dict = {"kind": kind, "cluster": cluster, "started": time.time()}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # write_atomic uses one temp name per process
        self._on_change = on_change
        self.path: Path | None = None
        if directory is not None:
            d = Path(directory) / "failover" / cluster / "journal"
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            self.path = d / f"{stamp}-{int(time.time() * 1000) % 1000:03d}-{kind}.json"

    def snapshot(self) -> tuple[StepRecord, ...]:
        with self._lock:
            return tuple(self.steps)

    def plan(self, name: str, target: str, sql: list[str], detail: str = "") -> None:
        """Record a step that was only planned (dry run)."""
        self._append(StepRecord(name, target, tuple(sql), outcome="planned", detail=detail))

    def note(self, name: str, detail: str, target: str = "", outcome: str = "ok") -> None:
        self._append(StepRecord(name, target, (), time.time(), 0.0, outcome, detail))

    @contextlib.contextmanager
    def step(self, name: str, target: str = "") -> Iterator[StepHandle]:
        h = StepHandle()
        h.target = target
        t0 = time.time()
        m0 = time.monotonic()
        idx = self._append(StepRecord(name, target, (), t0, 0.0, "running"))
        try:
            yield h
        except BaseException as e:
            self._set(idx, StepRecord(name, h.target, tuple(h.sql), t0, (time.monotonic() - m0) * 1000,
                                      "failed", h.detail or str(e)))
            raise
        self._set(idx, StepRecord(name, h.target, tuple(h.sql), t0, (time.monotonic() - m0) * 1000,
                                  "ok", h.detail))

    def _append(self, rec: StepRecord) -> int:
        with self._lock:
            self.steps.append(rec)
            idx = len(self.steps) - 1
        self._changed()
        return idx

    def _set(self, idx: int, rec: StepRecord) -> None:
        with self._lock:
            self.steps[idx] = rec
        self._changed()

    def mark(self, idx: int, **kw) -> None:
        with self._lock:
            self.steps[idx] = replace(self.steps[idx], **kw)
        self._changed()

    def _changed(self) -> None:
        if self._on_change:
            self._on_change(self.snapshot())
        self.flush()

    def flush(self, **extra) -> None:
        self.meta.update(extra)
        if self.path is None:
            return
        with self._flush_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = {**self.meta, "steps": [asdict(s) for s in self.snapshot()]}
            write_json_atomic(self.path, data)
