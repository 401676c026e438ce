"""A second foreground run on what a first one holds (issue 12 review, items
2b and 4), against the real sandbox: one relay per relay directory and one
backup per storage.  The second is refused with one line naming the pid of
the first, exit 2, and the first goes on undisturbed."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.relay.store import RelayStore
from tests.integration.relay_support import gtid_pos, wait_meta_gtid
from tests.support.backup_helpers import backup_config, wait_for
from tests.support.foreground import Cli

pytestmark = pytest.mark.integration


def relay_argv(h, relay_dir, server_id: int) -> list[str]:
    return ["relay", "--host", "127.0.0.1", "--port", str(h.primary_port), "--user", "repl",
            "--password-file", str(h.sb.secret_path("repl")), "--relay-dir", str(relay_dir),
            "--server-id", str(server_id)]


def one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    return lines[0]


def test_second_relay_on_a_relay_directory_is_refused(sandbox, tmp_path):
    h = sandbox
    relay_dir = tmp_path / "relay"
    h.sql("node1", "CREATE DATABASE IF NOT EXISTS second_run")
    first = Cli(*relay_argv(h, relay_dir, 5231))
    try:
        wait_for(lambda: (relay_dir / "relay.meta").exists(), timeout=60, what="the first relay")
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        meta = RelayStore(relay_dir).load_meta()
        r = subprocess.run([sys.executable, "-m", "console", *relay_argv(h, relay_dir, 5232),
                            "--stop-at-end"], capture_output=True, text=True, timeout=120)
        line = one_line(r)
        assert f"relay directory {relay_dir} is in use by pid {first.p.pid}" in line, line
        assert RelayStore(relay_dir).load_meta() == meta  # the second one wrote nothing
        assert first.p.poll() is None
        h.sql("node1", "DROP DATABASE second_run")  # the first still relays
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
    finally:
        assert first.stop(signal.SIGTERM) == 128 + signal.SIGTERM, first.err


def test_second_backup_run_is_refused(sandbox, tmp_path):
    storage = tmp_path / "store"
    cfg = str(backup_config(sandbox, tmp_path, storage, start_from="now"))
    first = Cli("backup", "--config", cfg, "--task", "sandbox-backup")
    try:
        wait_for(lambda: Catalog(LocalStorage(storage)).load_checkpoint() is not None, timeout=60,
                 what="the first run's checkpoint")
        r = subprocess.run([sys.executable, "-m", "console", "backup", "run", "--config", cfg,
                            "--task", "sandbox-backup"], capture_output=True, text=True, timeout=120)
        line = one_line(r)
        assert f"backup sandbox-backup is already running (pid {first.p.pid})" in line, line
        assert first.p.poll() is None
    finally:
        assert first.stop(signal.SIGTERM) == 128 + signal.SIGTERM, first.err
