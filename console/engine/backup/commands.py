"""The backup's commands on what it stored: ``verify`` (checksums and GTID
continuity, ``verify.py``) and ``restore`` (point-in-time, into a new
directory, never the cluster: ``restore.py``).  The snapshot and retention
commands are ``scheduling.py``'s.

``BackupCommands`` is mixed into ``BackupTask`` (``logtask.py``); the
engine finds its ``@command`` methods on the task's class."""

from __future__ import annotations

from console.engine.task import command
from console.errors import CommandError


class BackupCommands:
    """Verify and restore commands of ``BackupTask``."""

    @command("verify", help="check every checksum and that the GTIDs have no gap")
    def verify(self, quick: bool = False) -> str:
        """Verify the stored backup (``quick``: manifests and sha256 only)."""
        from console.engine.backup.verify import verify

        r = verify(self.catalog, deep=not quick)
        head = (f"{r.segments} segments, {r.transactions} transactions, {r.snapshots} snapshots: ")
        if r.ok:
            return head + "OK"
        raise CommandError(head + f"{len(r.problems)} problem(s), first: {r.problems[0]}")

    @command("restore", help="point-in-time restore into a new directory (never the cluster)")
    def restore(self, target_dir: str, to_time: str = "", to_gtid: str = "", port: int = 3307,
                keep_running: bool = False, force: bool = False, actor: str = "operator") -> str:
        """Restore to a time ('YYYY-MM-DD HH:MM:SS') or GTID into TARGET_DIR; blocks until done.
        ``keep_running`` leaves the restored server running (the result says how to reach it);
        ``force`` replaces an incomplete restore left in TARGET_DIR."""
        from console.engine.backup.restore import parse_time, restore

        if bool(to_time) == bool(to_gtid):
            raise CommandError("restore: give exactly one of to_time or to_gtid")
        if not target_dir:
            raise CommandError("restore: give the target directory")

        def flag(v) -> bool:
            return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")

        r = restore(self.opts, target_dir, port=int(port), keep_running=flag(keep_running),
                    force=flag(force),
                    to_time=parse_time(to_time) if to_time else None, to_gtid=to_gtid or None)
        return (f"restored {r.target} into {r.target_dir}: snapshot {r.snapshot} + "
                f"{r.transactions} transactions -> GTID {r.restored_gtid}; {r.how_to_reach()}")

