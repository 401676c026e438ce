"""A task kind's declaration: its options, engine factory and screen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskKind:
    name: str
    doc: str
    options: type
    factory: str                  # "module:function(engine, task_config) -> Task"
    screen: str | None = None     # "module:Class" (a Textual screen), or None
    detail: str | None = None     # "module:Class": the frozen dataclass of its status detail
    # what single options cannot check (files that must be readable, exclusive
    # keys): options -> [(key, reason)]; each reported as a config error
    check: Callable[[Any], list[tuple[str, str]]] | None = None

    def detail_class(self) -> type | None:
        return _resolve(self.detail) if self.detail else None

    def make_task(self, engine: Any, task_config: Any) -> Any:
        return _resolve(self.factory)(engine, task_config)

    def screen_class(self) -> type | None:
        return _resolve(self.screen) if self.screen else None


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
