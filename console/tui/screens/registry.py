"""Which screen shows a task of a given kind: the kind's declared screen
(``console.kinds``), else the generic ``TaskScreen``.  The dashboard opens
it when the operator presses Enter on a task."""

from __future__ import annotations

from console.errors import UserError
from console.kinds.registry import get as get_kind


def screen_for(engine, task_id: str):
    from console.tui.screens.task import TaskScreen

    kind = engine.task(task_id).kind
    try:
        cls = get_kind(kind).screen_class()
    except UserError:  # a task that is no declared kind (the topology monitor)
        cls = None
    return cls(engine, task_id) if cls else TaskScreen(engine, task_id)
