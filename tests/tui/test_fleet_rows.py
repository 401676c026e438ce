"""The dashboard's task rows name each task's engine when the tasks run on
several engines of a fleet (serve --coordinator), and only then."""

from __future__ import annotations

from types import SimpleNamespace

from console.engine.task import TaskStatus
from console.tui.screens.dashboard import DashboardScreen


def st(name: str, engine: str) -> TaskStatus:
    return TaskStatus(name, "relay", "running", "streaming", 0.0, "", "", "", None, engine)


def rows(statuses) -> dict[str, str]:
    screen = DashboardScreen.__new__(DashboardScreen)
    screen.engine = SimpleNamespace(config=SimpleNamespace(tasks={}))
    return {k: r["task"] for k, r in screen.task_rows(statuses)}


def test_tasks_of_several_engines_name_them():
    assert rows([st("r1", "h:1"), st("r2", "h:2")]) == {"r1": "r1 @h:1", "r2": "r2 @h:2"}


def test_one_engine_names_none():
    assert rows([st("r1", "h:1"), st("r2", "h:1")]) == {"r1": "r1", "r2": "r2"}
    assert rows([st("r1", "")]) == {"r1": "r1"}
