"""Which screen shows a task of a given kind.

A kind's screen module calls ``register_screen(kind, factory)`` where
``factory(engine, task_id)`` returns a Textual ``Screen``; the dashboard opens
it when the operator presses Enter on a task.  Kinds without a screen get
the generic ``TaskScreen``.  ``console.tui.screens.kinds`` imports every
kind's screen module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ScreenFactory = Callable[[Any, str], Any]
_SCREENS: dict[str, ScreenFactory] = {}


def register_screen(kind: str, factory: ScreenFactory) -> None:
    _SCREENS[kind] = factory


def screen_for(engine, task_id: str):
    import console.tui.screens.kinds  # noqa: F401  (registers kind screens)
    from console.tui.screens.task import TaskScreen

    kind = engine.task(task_id).kind
    factory = _SCREENS.get(kind)
    return factory(engine, task_id) if factory else TaskScreen(engine, task_id)
