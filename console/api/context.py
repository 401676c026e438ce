"""What the API's handlers act on: the service's engine, and the two
actions that edit the config file (declare, remove a task) and make the
engine take the change at once (a reload, as SIGHUP does)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from console.api import config_edit
from console.errors import UserError

if TYPE_CHECKING:
    from console.engine.engine import Engine
    from console.engine.service import Service


class ApiContext:
    def __init__(self, service: Service):
        self.service = service
        self._edit = threading.Lock()  # one config edit (and its reload) at a time

    @property
    def engine(self) -> Engine:
        return self.service.engine

    def _config_path(self):
        path = self.engine.config.path
        if path is None:
            raise UserError("the engine runs without a config file: nothing to declare into")
        return path

    def declare(self, name: str, kind: str, cluster: str | None, autostart: bool,
                options: dict[str, Any], actor: str) -> dict:
        with self._edit:
            path = self._config_path()
            try:
                block = config_edit.declare_task(path, name, kind, cluster, autostart, options)
            except config_edit.DeclarationError as e:
                self.engine.audit(actor, "declare", name, "refused", str(e))
                raise
            self.engine.audit(actor, "declare", name, "ok", f"{kind} in {path}")
            plan = self.service.reload()
        return {"task": name, "written": block, "config": str(path),
                "reload": plan.summary() if plan else "refused (see the audit log)"}

    def undeclare(self, name: str, actor: str) -> dict:
        with self._edit:
            path = self._config_path()
            config_edit.remove_task(path, name)
            self.engine.audit(actor, "undeclare", name, "ok", str(path))
            plan = self.service.reload()
        return {"task": name, "config": str(path),
                "reload": plan.summary() if plan else "refused (see the audit log)"}
