"""The relay's operator commands: ``switch-master`` (point the relay at
another upstream, checked for missing transactions; the session loop
continues there by GTID in a new subdirectory) and ``purge`` (remove old
relay files now).  The engine finds the ``@command`` methods on the task's
class (``console/engine/task.py`` ``Task.commands``).

``RelayCommands`` is mixed into ``RelayTask`` (``task.py``)."""

from __future__ import annotations

from console.engine.task import PAUSED, command
from console.errors import CommandError
from console.mysql import gtid as G
from console.mysql.connection import Endpoint, connect, query_one


class RelayCommands:
    """Operator commands of ``RelayTask``."""

    def _target(self, target: str) -> Endpoint:
        if self.resolve_target:
            ep = self.resolve_target(target)
            if ep is not None:
                return ep
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"switch-master: unknown target {target!r}: give a host of the "
                               f"cluster or host:port")
        return self.endpoint.with_address(host, int(port))

    @command("switch-master", dangerous=True,
             help="point the relay at another upstream (continues by GTID)")
    def switch_master(self, target: str, force: bool = False, actor: str = "operator") -> str:
        """Point the relay at another upstream; continues by GTID in a new subdirectory."""
        if self.state not in ("running", PAUSED):
            raise CommandError(f"task {self.task_id} is {self.state}; switch-master needs a running relay")
        ep = self._target(target)
        if ep.address == self.endpoint.address:
            raise CommandError(f"switch-master: the relay already reads from {ep.label}")
        c = connect(ep, connect_timeout=3, read_timeout=10)
        try:
            theirs = str(query_one(c, "SELECT @@gtid_binlog_pos AS g")["g"] or "")
        finally:
            c.close()
        ours = self.meta.gtid if self.meta else ""
        missing = G.parse(ours, G.MARIADB).subtract(G.parse(theirs, G.MARIADB))
        if not missing.is_empty() and not force:
            raise CommandError(f"switch-master: {ep.label} lacks relayed transactions "
                               f"{missing.describe()} (it is at {theirs or 'nothing'}); "
                               f"pass force to accept the gap")
        self._switch = (ep, bool(force))
        self._wake.set()
        c2 = self.client
        if c2 is not None:
            c2.shutdown()
        return f"switching to {ep.label}"

    @command("purge", dangerous=True, help="remove old relay files now")
    def purge(self, before: str = "", all_old: bool = False) -> str:
        """Remove relay files older than BEFORE (or all but the current one)."""
        if not before and not all_old:
            removed = self.store.purge(max_age=self.opts.max_age_hours * 3600,
                                       max_bytes=int(self.opts.max_size_mb * 1024 * 1024))
        else:
            removed = self.store.purge(before=before, everything_old=all_old)
        return f"removed {len(removed)} relay file(s)" + (
            f": {', '.join(f.subdir + '/' + f.name for f in removed)}" if removed else "")
