"""The console's engine: the one serving the config's state directory, or
one started now in the background (``dbops-console serve``, detached: it
outlives the console and its terminal), so one command still gives a
newcomer everything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from console.api.client import EngineClient, connect
from console.config import Config
from console.errors import UserError

START_TIMEOUT = 60.0  # seconds for a new engine to answer (its monitors probe the servers first)
LOG = "serve.log"


def attach_or_start(cfg: Config, actor: str) -> tuple[EngineClient, int | None]:
    """(client, pid of the engine started here or None when one already served)."""
    client = connect(cfg.state_dir, actor=actor)
    if client:
        return client, None
    if cfg.path is None:
        raise UserError("the console needs a config file to start its engine")
    state = Path(cfg.state_dir).expanduser()
    state.mkdir(parents=True, exist_ok=True)
    log = state / LOG
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "console", "serve", "--config",
                                 str(cfg.path)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True, close_fds=True,
                                env={k: v for k, v in os.environ.items()
                                     if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")})
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        client = connect(cfg.state_dir, actor=actor)
        if client:
            if client.info()["pid"] != proc.pid:  # another console's engine won the race
                proc.wait(30)
                return client, None
            return client, proc.pid
        if proc.poll() is not None:
            # lost a race to another console's engine (it serves now), or refused
            client = connect(cfg.state_dir, actor=actor)
            if client:
                return client, None
            tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
            raise UserError(f"the engine did not start: {tail[0] if tail else 'no output'} "
                            f"(log: {log})")
        time.sleep(0.1)
    proc.terminate()
    raise UserError(f"the engine started in the background did not answer within "
                    f"{START_TIMEOUT:g} s (log: {log})")
