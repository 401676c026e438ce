"""The rule of checkpoints that never move backwards (pure).

A checkpoint is stored with its ``order``: a list of numbers and strings
compared element by element (the relay: subdirectory index, file name,
position; the backup: segment number), and its ``lineage``: what the order
counts in (the relay directory, the backup storage and its first start).  A
new value of the same lineage is accepted only when its order is not lower
than the stored one's; a new lineage (the task given another directory)
starts its own count."""

from __future__ import annotations

from collections.abc import Sequence

from console.errors import UserError


class CheckpointBehind(UserError):
    """A checkpoint older than the stored one was refused."""


def key(order: Sequence) -> tuple:
    """``order`` as a comparable tuple (numbers before strings at one place)."""
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in order)


def moves_forward(stored: Sequence | None, new: Sequence) -> bool:
    """True when ``new`` may replace ``stored`` (None: nothing stored yet)."""
    return stored is None or key(new) >= key(stored)


def stored_order(record: dict | None, lineage: str) -> Sequence | None:
    """The order a new value must not go below: the stored record's when it
    counts in the same lineage, else None."""
    if record is None or record.get("lineage", "") != lineage:
        return None
    return record.get("order")


def check_forward(task_id: str, name: str, stored: Sequence | None, new: Sequence) -> None:
    if not moves_forward(stored, new):
        raise CheckpointBehind(f"task {task_id}: refusing to move checkpoint {name} back "
                               f"from {list(stored or [])} to {list(new)}")
