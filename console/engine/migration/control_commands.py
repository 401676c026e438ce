"""The migration's live settings and operator commands: ``set`` (a live
option, within its declared bounds; load thresholds and the throttle query
checked on the server), ``get_setting``, the manual ``throttle`` /
``no-throttle``, ``cut-over`` (alias ``unpostpone``) and whether the cut-over
is still postponed, and ``panic``.  The engine finds the ``@command``
methods on the task's class (``console/engine/task.py`` ``Task.commands``);
the control socket (``control.py``) and the console call the same ones.

``LiveControl`` is mixed into ``MigrationTask`` (``task.py``)."""

from __future__ import annotations

import os

from console.engine.migration.throttle import check_load, check_throttle_query
from console.engine.task import command
from console.errors import CommandError, UserError
from console.kinds.load import format_load, parse_load
from console.kinds.migration import MigrationOptions
from console.mysql.connection import close_quietly
from console.options import parse_live


class LiveControl:
    """Live settings and operator commands of ``MigrationTask``."""

    def _postponed(self) -> bool:
        f = self.opts.postpone_cut_over_flag_file
        if f and os.path.exists(f):
            return True
        return not self.unpostponed

    @command("throttle", help="throttle the copy and apply manually")
    def cmd_throttle(self) -> str:
        self.manual_throttle = True
        return "throttled"

    @command("no-throttle", help="end the manual throttle")
    def cmd_no_throttle(self) -> str:
        self.manual_throttle = False
        return "manual throttle off"

    @command("cut-over", help="cut over as soon as the copy is verified (unpostpone)")
    def cmd_cut_over(self) -> str:
        self.unpostponed = True
        f = self.opts.postpone_cut_over_flag_file
        if f and os.path.exists(f):
            os.unlink(f)
        return "cut-over will proceed"

    @command("unpostpone", help="alias of cut-over")
    def cmd_unpostpone(self) -> str:
        return self.cmd_cut_over()

    @command("panic", dangerous=True, help="stop now; drop ghost; original untouched")
    def cmd_panic(self) -> str:
        self._request_panic("operator panic")
        return "panic requested"

    @command("set", help="change a setting: setting=chunk-size|dml-batch-size|... value=...")
    def cmd_set(self, setting: str, value) -> str:
        """A live option (declared ``live`` in console/kinds/migration.py),
        within its declared bounds; load thresholds and the throttle query
        are also checked on the server."""
        try:
            field, parsed = parse_live(MigrationOptions, setting, str(value))
        except UserError as e:
            raise CommandError(str(e)) from None
        name = field.replace("_", "-")
        if field in ("max_load", "critical_load"):
            parsed = self._checked_live(name, parse_load(parsed, name), check_load)
        elif field == "throttle_query":
            parsed = self._checked_live(name, parsed, check_throttle_query)
        setattr(self, field, parsed)
        return f"{name}={self.get_setting(name)}"

    def _checked_live(self, name: str, value, check):
        """A throttle setting changed while the migration runs is checked on
        the server first, like the flag at the start (before the start there
        is nothing to ask: ``prepare`` checks it then)."""
        if self.ins is None:
            return value
        try:
            conn = self._connect(read_timeout=10)
        except UserError as e:
            raise CommandError(f"{name}: cannot check it on the server: {e}") from None
        try:
            check(conn, value, name)
        except UserError as e:
            raise CommandError(str(e)) from None
        finally:
            close_quietly(conn)
        return value

    def get_setting(self, name: str):
        return {"chunk-size": self.chunk_size, "dml-batch-size": self.dml_batch_size,
                "max-lag-millis": self.max_lag_millis, "nice-ratio": self.nice_ratio,
                "max-load": format_load(self.max_load), "critical-load": format_load(self.critical_load),
                "throttle-query": self.throttle_query}.get(name, "")
