"""The embedded coordinator: the state directory, one engine (today's behaviour).

The engine owns every task it runs (the relay directory's and the backup
storage's flocks keep one writer per directory); the audit log is the
state directory's ``audit.log``; checkpoints live where the tasks keep them
(``relay.meta``, the backup catalog, which refuse to move back themselves);
pause flags and statuses are the engine's own, in memory."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from console.engine.coord.coordinator import Coordinator, default_engine_id
from console.engine.state import StateDir


class StateDirCoordinator(Coordinator):
    shared = False

    def __init__(self, state: StateDir, engine_id: str | None = None):
        self.state = state
        self.engine_id = engine_id or default_engine_id()
        self.description = f"state directory {state.root}"
        self._paused: set[str] = set()

    def define_tasks(self, defs: dict[str, dict], forget: Collection[str] = ()) -> None:
        pass

    def engines(self) -> list[str]:
        return [self.engine_id]

    def owners(self) -> dict[str, str]:
        return {}

    def claim(self, task_id: str) -> bool:
        return True

    def release(self, task_id: str) -> None:
        pass

    def holds(self, task_id: str) -> bool:
        return True

    def publish_checkpoint(self, task_id: str, name: str, order: Sequence, value: Any,
                           lineage: str = "") -> None:
        pass

    def checkpoint(self, task_id: str, name: str) -> dict | None:
        return None

    def set_paused(self, task_id: str, paused: bool) -> None:
        (self._paused.add if paused else self._paused.discard)(task_id)

    def paused(self, task_id: str) -> bool:
        return task_id in self._paused

    def publish_status(self, task_id: str, status: dict) -> None:
        pass

    def fleet(self) -> dict[str, dict]:
        return {}

    def audit(self, entry) -> None:
        self.state.audit(entry)

    def read_audit(self, limit: int | None = None) -> list:
        return self.state.read_audit(limit)
