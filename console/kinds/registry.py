"""Every task kind, declared once (one module per kind beside this one)."""

from __future__ import annotations

from console.errors import UserError
from console.kinds.backup import BACKUP
from console.kinds.failover import FAILOVER
from console.kinds.kind import TaskKind
from console.kinds.migration import MIGRATION
from console.kinds.relay import RELAY

KINDS: tuple[TaskKind, ...] = (RELAY, MIGRATION, BACKUP, FAILOVER)


def all_kinds() -> tuple[TaskKind, ...]:
    return KINDS


def names() -> tuple[str, ...]:
    return tuple(sorted(k.name for k in KINDS))


def get(name: str) -> TaskKind:
    for k in KINDS:
        if k.name == name:
            return k
    raise UserError(f"unknown task kind {name!r} (known: {', '.join(names())})")
