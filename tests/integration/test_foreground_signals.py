"""SIGINT, SIGTERM and SIGHUP stop every foreground command cleanly (the CLI
run as a subprocess against the real sandbox): the one last line printed,
exit 128 + the signal number (130, 143, 129) for every command alike, and
what the task keeps on disk consistent (relay: no partial event at the end,
the restart continues without a gap; backup: the checkpoint is the GTID of
the last line, the restart continues without a gap).  ``restore`` is
covered in test_backup_restore_cli.py."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.relay.reader import RelayReader
from console.engine.relay.store import RelayStore
from tests.integration.relay_support import (
    Load,
    compare_with_upstream,
    gtid_pos,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.support.backup_helpers import Writer, backup_config, stored_gtids, wait_for
from tests.support.foreground import Cli

pytestmark = pytest.mark.integration

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])


def private_config(handle, tmp_path: Path) -> Path:
    """The sandbox's config with this test's own state directory."""
    p = tmp_path / "dbops.toml"
    p.write_text(re.sub(r'(?m)^state_dir = .*$', f'state_dir = "{tmp_path / "state"}"',
                        handle.config_path.read_text()))
    return p


def checkpoint_gtid(storage: Path) -> str:
    cp = Catalog(LocalStorage(storage)).load_checkpoint()
    return cp.gtid if cp else ""


def datadir(h) -> Path:
    return Path(next(n.datadir for n in h.nodes if n.name == "node1"))


def _relay(h, tmp_path, sig):
    relay_dir = tmp_path / "relay"
    return (["relay", "--host", "127.0.0.1", "--port", str(h.primary_port), "--user", "repl",
             "--password-file", str(h.sb.secret_path("repl")), "--relay-dir", str(relay_dir),
             "--server-id", "5172"],
            lambda cli: (relay_dir / "relay.meta").exists(),
            lambda line: line.startswith("relay: stopped at "))


def _backup(h, tmp_path, sig):
    storage = tmp_path / "store"
    return (["backup", "--config", str(backup_config(h, tmp_path, storage, start_from="now")),
             "--task", "sandbox-backup"],
            lambda cli: (storage / "checkpoint.json").exists(),
            lambda line: line.startswith("backup: stopped at GTID "))


def _monitor(h, tmp_path, sig):
    return (["monitor", "--config", str(private_config(h, tmp_path))],
            lambda cli: any("sandbox:" in ln for ln in cli.out),
            lambda line: line == "monitor: stopped")


def _migrate(h, tmp_path, sig):
    db = f"sig_{signal.Signals(sig).name.lower()}"
    h.sql("node1", f"CREATE DATABASE IF NOT EXISTS {db}", f"DROP TABLE IF EXISTS {db}.t",
          f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)", f"INSERT INTO {db}.t VALUES (1, 1)")
    flag = tmp_path / "postpone.flag"
    flag.touch()
    return (["migrate", "--host", "127.0.0.1", "--port", str(h.primary_port), "--user", "dbops",
             "--password-file", str(h.sb.secret_path("dbops")), "--database", db, "--table", "t",
             "--alter", "ADD COLUMN z INT", "--execute", "--state-dir", str(tmp_path / "state"),
             "--status-interval", "0.5", "--postpone-cut-over-flag-file", str(flag)],
            # the postponed phase's status line (the inspection's binlog
            # retention line also says "postponed": a stop there is earlier)
            lambda cli: any(f"{db}.t postponed:" in ln for ln in cli.err),
            lambda line: line.endswith("interrupted: ghost table and checkpoint kept; "
                                       "rerun with --resume --execute"))


FOREGROUND = {"relay": _relay, "backup": _backup, "monitor": _monitor, "migrate": _migrate}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["sigint", "sigterm", "sighup"])
@pytest.mark.parametrize("command", list(FOREGROUND))
def test_a_stop_signal_exits_128_plus_its_number(sandbox, tmp_path, command, sig):
    """The same convention for every foreground command: the one last line,
    then exit 128 + the signal number (SIGINT 130, SIGTERM 143, SIGHUP 129)."""
    argv, ready, last = FOREGROUND[command](sandbox, tmp_path, sig)
    cli = Cli(*argv)
    wait_for(lambda: ready(cli) or cli.p.poll() is not None, timeout=120, what=f"{command} running")
    rc = cli.stop(sig)
    assert rc == 128 + sig, (rc, cli.err)
    assert cli.err and last(cli.err[-1]), cli.err
    assert not any("Traceback" in ln for ln in cli.err), cli.err


@SIGNALS
def test_relay_stops_on_signal_and_continues(sandbox, tmp_path, sig):
    h = sandbox
    relay_dir = tmp_path / "relay"
    argv = ["relay", "--host", "127.0.0.1", "--port", str(h.primary_port), "--user", "repl",
            "--password-file", str(h.sb.secret_path("repl")), "--relay-dir", str(relay_dir),
            "--server-id", "5171"]
    with Load(h):
        cli = Cli(*argv)
        wait_meta_gtid(relay_dir, gtid_pos(h), timeout=60)
        time.sleep(0.5)  # mid-stream, the load still writing
        rc = cli.stop(sig)
    assert rc == 128 + sig, cli.err
    assert cli.err[-1].startswith("relay: stopped at "), cli.err
    meta = RelayStore(relay_dir).load_meta()
    assert cli.err[-1].startswith(f"relay: stopped at {meta.subdir}/{meta.file}:{meta.relay_pos} "
                                  f"gtid {meta.gtid} ")
    sub = relay_dir / meta.subdir
    assert (sub / meta.file).stat().st_size == meta.relay_pos  # no partial event at the end
    r = subprocess.run([sys.executable, "-m", "console", *argv, "--stop-at-end", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    compare_with_upstream(sub, datadir(h), h.sql("node1", "SHOW MASTER STATUS")[0][0])
    got = [e.gtid for e in RelayReader(relay_dir).events(gtid="") if e.gtid]
    assert got == upstream_gtids(h, "node1")  # every transaction once: no gap, no duplicate


@SIGNALS
def test_backup_stops_on_signal_and_continues(sandbox, tmp_path, sig):
    storage = tmp_path / "store"
    cfg = str(backup_config(sandbox, tmp_path, storage, start_from="now"))
    argv = ["backup", "--config", cfg, "--task", "sandbox-backup"]
    w = Writer(sandbox, "bk_sig").setup()
    cli = Cli(*argv)
    try:
        w.start()
        wait_for(lambda: checkpoint_gtid(storage), timeout=60, what="a first checkpoint")
        time.sleep(0.5)  # mid-stream, the writer still writing
        rc = cli.stop(sig)
    finally:
        w.stop()
    assert rc == 128 + sig, cli.err
    stopped = checkpoint_gtid(storage)
    assert cli.err[-1].startswith(f"backup: stopped at GTID {stopped} "), (cli.err, stopped)
    # the restart continues from the checkpoint: every transaction once, no gap
    sandbox.sql("node1", "INSERT INTO bk_sig.t (k, v) VALUES (1, 'after the stop')")
    end = gtid_pos(sandbox)
    cli = Cli(*argv, "--quiet")
    wait_for(lambda: checkpoint_gtid(storage) == end, timeout=120, what="the restart to catch up")
    assert cli.stop(signal.SIGTERM) == 128 + signal.SIGTERM, cli.err
    seqs = [s for d, _, s in stored_gtids(storage) if d == 0]
    assert seqs == list(range(seqs[0], int(end.split("-")[-1]) + 1))
    assert int(stopped.split("-")[-1]) in seqs[:-1]


def test_migrate_stops_on_sighup_and_resumes(sandbox, tmp_path):
    """The migration's foreground stop is the same handler: SIGHUP too stops it
    at a safe point (exit 129: not complete), and --resume finishes it."""
    db, table = "sig_mig", "t"
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {db}", f"DROP TABLE IF EXISTS {db}.{table}",
                f"CREATE TABLE {db}.{table} (id INT PRIMARY KEY, v INT)",
                f"INSERT INTO {db}.{table} VALUES (1, 1), (2, 2), (3, 3)")
    flag = tmp_path / "postpone.flag"
    flag.touch()
    argv = ["migrate", "--host", "127.0.0.1", "--port", str(sandbox.primary_port), "--user", "dbops",
            "--password-file", str(sandbox.sb.secret_path("dbops")), "--database", db,
            "--table", table, "--alter", "ADD COLUMN z INT", "--execute",
            "--state-dir", str(tmp_path / "state"), "--status-interval", "0.5",
            "--postpone-cut-over-flag-file", str(flag), "--initially-drop-ghost-table",
            "--initially-drop-old-table"]
    cli = Cli(*argv)
    # the status line of the postponed phase ("sig_mig.t postponed: ..."; the
    # inspection's binlog retention line also says "postponed")
    wait_for(lambda: any(f"{db}.{table} postponed:" in ln for ln in cli.err) or cli.p.poll() is not None,
             timeout=120, what="the postponed cut-over")
    assert cli.stop(signal.SIGHUP) == 128 + signal.SIGHUP, cli.err
    assert cli.err[-1].endswith("interrupted: ghost table and checkpoint kept; rerun with --resume --execute")
    cols = [r[0] for r in sandbox.sql("node1", f"SHOW COLUMNS FROM {db}.{table}")]
    assert cols == ["id", "v"]
    flag.unlink()
    r = subprocess.run([sys.executable, "-m", "console", *argv, "--resume"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cols = [r[0] for r in sandbox.sql("node1", f"SHOW COLUMNS FROM {db}.{table}")]
    assert cols == ["id", "v", "z"]


def test_migrate_stopped_during_its_inspection_creates_nothing(sandbox, tmp_path):
    """A stop signal while migrate still inspects (here: its throttle query,
    run once to check it, sleeps 4 s) ends the run with its last line and
    128 + the signal, before any directory, table or audit entry is made
    (the handler was installed only once the inspection was done: SIGHUP
    killed the process without a word)."""
    db, table = "sig_mig2", "t"
    sandbox.sql("node1", f"CREATE DATABASE IF NOT EXISTS {db}", f"DROP TABLE IF EXISTS {db}.{table}",
                f"CREATE TABLE {db}.{table} (id INT PRIMARY KEY, v INT)")
    state = tmp_path / "state"
    cli = Cli("migrate", "--host", "127.0.0.1", "--port", str(sandbox.primary_port), "--user", "dbops",
              "--password-file", str(sandbox.sb.secret_path("dbops")), "--database", db,
              "--table", table, "--alter", "ADD COLUMN z INT", "--execute",
              "--state-dir", str(state), "--throttle-query", "SELECT SLEEP(4)")
    wait_for(lambda: any("rows (estimate)" in ln for ln in cli.err) or cli.p.poll() is not None,
             timeout=60, what="the inspection")
    assert cli.stop(signal.SIGHUP) == 128 + signal.SIGHUP, cli.err
    assert cli.err[-1].endswith("interrupted before the migration started: nothing was created")
    assert not state.exists()
    assert sandbox.sql("node1", f"SHOW TABLES FROM {db}") == ((table,),)
