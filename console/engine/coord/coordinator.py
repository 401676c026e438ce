"""The coordination interface every engine speaks, whatever keeps the state.

A ``Coordinator`` answers: which engine runs a task (``claim`` takes the
task's ownership lease, ``holds`` says whether this engine may still write
for it, ``guard`` raises ``Fenced`` when it may not), the checkpoints that
never move backwards (``publish_checkpoint``), pause flags, the last
status of every task of the fleet (state, phase, last error, owner) and the
audit log.  ``shared`` is False for the state directory (one engine owns
everything it runs: the directory locks keep one writer) and True for etcd
(the task's lease is the one-writer rule; directory locks are not taken, so
another engine on the same machine can take a task over from a stopped
one)."""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any

from console.errors import UserError


class Fenced(UserError):
    """This engine lost a task's ownership lease: it must not write for it."""


def default_engine_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Coordinator(ABC):
    engine_id: str = ""
    shared: bool = False
    description: str = ""
    ttl: int = 0   # seconds of a task's ownership lease (0: no lease, the state directory)

    def open(self) -> None:  # noqa: B027 - nothing to open for the state directory
        """Connect (a shared coordinator); one line when it cannot be reached."""

    def close(self) -> None:  # noqa: B027 - nothing held by the state directory
        """Give back every lease held (a clean stop: others take over at once)."""

    def refresh(self) -> None:  # noqa: B027 - the state directory has no fleet to read
        """Read the fleet (engines, owners, statuses) into the cache the
        snapshots read (never waiting on the coordinator)."""

    # ---- engines and task ownership -----------------------------------------------

    @abstractmethod
    def define_tasks(self, defs: dict[str, dict], forget: Collection[str] = ()) -> None:
        """Publish the task definitions of this engine's config file (name ->
        its ``[tasks.NAME]`` table: ``config.task_table``); ``forget``: those
        it declared before and no longer does."""

    def definitions(self) -> dict[str, dict]:
        """Every task definition of the fleet (read by ``refresh``)."""
        return {}

    @abstractmethod
    def engines(self) -> list[str]:
        """The engines alive in the fleet (this one included)."""

    @abstractmethod
    def owners(self) -> dict[str, str]:
        """task id -> the engine that holds its lease."""

    @abstractmethod
    def claim(self, task_id: str) -> bool:
        """Take the task's ownership lease if nobody holds it; True when taken."""

    @abstractmethod
    def release(self, task_id: str) -> None:
        """Give the task's lease back (after the task stopped)."""

    @abstractmethod
    def holds(self, task_id: str) -> bool:
        """True while this engine may write for the task (its lease's local deadline)."""

    def guard(self, task_id: str) -> None:
        """Before every durable write of a task: raise ``Fenced`` when not ``holds``."""
        if not self.holds(task_id):
            raise Fenced(f"task {task_id}: this engine ({self.engine_id}) lost its ownership "
                         f"lease; it writes nothing more for it")

    def held(self) -> list[str]:
        """The tasks this engine holds a lease of (lost ones included until released)."""
        return []

    def take_named(self, name: str) -> str:
        """Take a named lease of the fleet (``failover/CLUSTER``: one recovery
        of a cluster at a time): "" when taken, else the engine that has it."""
        return ""

    def give_named(self, name: str) -> None:  # noqa: B027 - nothing held by the state directory
        """Give a named lease back."""

    # ---- checkpoints, flags, statuses, audit -------------------------------------------

    @abstractmethod
    def publish_checkpoint(self, task_id: str, name: str, order: Sequence, value: Any,
                           lineage: str = "") -> None:
        """Store a checkpoint if it does not move backwards in its lineage (``forward.py``)
        and this engine still owns the task: else raise ``CheckpointBehind``
        or ``Fenced``; nothing is written then."""

    @abstractmethod
    def checkpoint(self, task_id: str, name: str) -> dict | None:
        """{"order": [...], "value": ..., "engine": ...} or None."""

    @abstractmethod
    def set_paused(self, task_id: str, paused: bool) -> None: ...

    @abstractmethod
    def paused(self, task_id: str) -> bool: ...

    @abstractmethod
    def publish_status(self, task_id: str, status: dict) -> None:
        """The task's last state, phase, error and summary, for every engine's console."""

    @abstractmethod
    def fleet(self) -> dict[str, dict]:
        """task id -> its last published status (with ``engine``: its owner)."""

    @abstractmethod
    def audit(self, entry) -> None:
        """Append an ``AuditEntry`` to the fleet's audit log."""

    @abstractmethod
    def read_audit(self, limit: int | None = None) -> list: ...
