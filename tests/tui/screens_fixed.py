"""A console over fixed data (every screen, nothing timed) for the snapshot
and Pilot tests: a monitor of cluster prod and one task of each kind."""

import time
from pathlib import Path

from console.engine.state import AuditEntry
from console.tui.app import ConsoleApp
from tests.tui.fixed import fixed_engine
from tests.tui.fixed_tasks import T0, FixedTask, add_all

# a fixed state directory: its path shows on the audit log screen
SNAP_DIR = Path("/tmp/dbops-tui-snapshots")

AUDIT = [AuditEntry(T0, "operator", "start", "relay-a", "ok"),
         AuditEntry(T0 + 5, "operator", "throttle", "mig-orders", "ok"),
         AuditEntry(T0 + 9, "operator", "switchover", "failover:prod", "refused",
                    "type the cluster name to confirm")]


def utc(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def console(tmp_path=SNAP_DIR, *, tasks=True, events=True) -> tuple[ConsoleApp, object]:
    engine = fixed_engine(tmp_path)
    if tasks:
        add_all(engine, engine.task("monitor:prod").topo)
        engine.add_task(FixedTask("custom-1", "custom", None, state="paused", summary="a custom task"))
    engine._events.clear()
    if events:
        for e in AUDIT:
            engine._push(e, audited=True)
        engine._push(AuditEntry(T0 + 10, "monitor", "error", "prod", "db4 unreachable: error 2003"))
    engine.state.read_audit = lambda limit=None: list(AUDIT)
    app = ConsoleApp(engine, start_monitors=False, autostart=False)
    return app, engine
