"""Sending an operator command for a task screen, off the UI thread."""

from __future__ import annotations

from textual import work

from console.errors import UserError


class TaskActions:
    """Mixin for screens with ``engine`` and ``task_id``: ``self._cmd(name,
    **args)`` runs ``engine.command`` in a worker thread, shows the result
    (or the one-line refusal) as a notification, then refreshes the view."""

    @work(thread=True, group="task-actions")
    def _cmd(self, name: str, **args) -> None:
        try:
            result = self.engine.command(self.task_id, name, **args)
        except UserError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error", timeout=10)
        else:
            msg = str(result) if result not in (None, "") else f"{name}: ok"
            self.app.call_from_thread(self.notify, msg, timeout=8)
        refresh = getattr(self, "refresh_view", None)
        if refresh is not None:
            self.app.call_from_thread(refresh)
