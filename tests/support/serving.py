"""Running ``dbops-console serve`` in tests: a config of the sandbox's
cluster with a state directory of the test's own, task tables, and the
``serve`` fixture that starts it in the background (killed by its pid at
the end of a test that failed before stopping it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.foreground import Cli


def cluster_part(h, state: Path, *, heartbeat: bool = False) -> str:
    """The sandbox config's settings and cluster, with this test's own state
    directory; no tasks.  The monitor writes no heartbeat by default, so
    that nothing but the test writes to the primary's binlog."""
    text = re.split(r"(?m)^(?:# relay:|\[tasks\.)", h.config_path.read_text())[0]
    text = re.sub(r'(?m)^state_dir = .*$', f'state_dir = "{state}"', text)
    return re.sub(r"(?m)^heartbeat = true$", f"heartbeat = {str(heartbeat).lower()}", text)


def relay_task(name: str, relay_dir: Path, server_id: int, *, autostart: bool = True,
               heartbeat: float = 0.5, extra: str = "") -> str:
    return (f'\n[tasks.{name}]\nkind = "relay"\ncluster = "sandbox"\nhost = "node1"\n'
            f'relay_dir = "{relay_dir}"\nserver_id = {server_id}\nheartbeat = {heartbeat}\n'
            f'reconnect_max = 1.0\nautostart = {str(autostart).lower()}\n{extra}')


def start_serving(serve, cfg: Path, state: Path, *extra: str):
    """``serve`` of ``cfg`` started and answering on its unix socket:
    (the process, a client of it)."""
    from console.api.client import connect
    from tests.support.backup_helpers import wait_for

    proc = serve(cfg, None, *extra)
    wait_for(lambda: connect(state) is not None or proc.p.poll() is not None, timeout=120,
             what="the engine's API")
    assert proc.p.poll() is None, "\n".join(proc.err)
    return proc, connect(state, actor="test")


@pytest.fixture
def serve():
    """Start ``serve`` in the background; any still running at the end of the
    test (a failed one) is killed by its pid."""
    started: list[Cli] = []

    def start(config: Path, notify=None, *extra: str, **env: str) -> Cli:
        e = {"NOTIFY_SOCKET": str(notify.path)} if notify else {}
        started.append(Cli("serve", "--config", str(config), *extra, env={**e, **env}))
        return started[-1]

    yield start
    for cli in started:
        if cli.p.poll() is None:
            cli.p.kill()
            cli.p.wait(30)
