"""Helpers of the fleet tests (``serve --coordinator`` on a test's etcd):
a backup task table, an engine's id, the fleet as etcd has it, and one
engine running a relay and a backup under writes with the checks that
nothing was lost, doubled or left behind at the end."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from console.engine.coord.etcd import EtcdCoordinator
from console.engine.coord.url import parse_coordinator
from console.mysql import gtid as G
from tests.integration.relay_support import (
    Load,
    compare_with_upstream,
    gtid_pos,
    upstream_gtids,
    wait_meta_gtid,
)
from tests.integration.test_serve import assert_consistent, datadir, relayed_gtids
from tests.support.backup_helpers import stored_gtids, wait_for
from tests.support.serving import cluster_part, relay_task

TTL = 3


def backup_task(name: str, storage: Path, server_id: int) -> str:
    return (f'\n[tasks.{name}]\nkind = "backup"\ncluster = "sandbox"\nstorage = "{storage}"\n'
            f'server_id = {server_id}\nstart_from = "now"\nreconnect_max = 1.0\nautostart = true\n')


def engine_id(cli) -> str:
    return f"{socket.gethostname()}:{cli.p.pid}"


def reader_of(etcd) -> EtcdCoordinator:
    return EtcdCoordinator(parse_coordinator(etcd.url), ttl=TTL, engine_id="test")


def owners(reader: EtcdCoordinator) -> dict[str, str]:
    reader.refresh()
    return reader.owners()


def fleet_state(reader: EtcdCoordinator, task: str) -> tuple[str, str]:
    reader.refresh()
    st = reader.fleet().get(task) or {}
    return st.get("state", ""), st.get("engine", "")


def backed_up_to(tmp: Path, backup: str, end: str) -> None:
    cat = Catalog(LocalStorage(tmp / backup))
    wait_for(lambda: (cp := cat.load_checkpoint()) is not None and G.position(end) <= G.position(cp.gtid),
             timeout=60, what=f"{backup} backed up to the end")


def assert_backup_contiguous(tmp: Path, backup: str) -> None:
    seqs = [s for d, srv, s in stored_gtids(tmp / backup) if d == 0]
    assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))), backup  # no gap, no twice


def assert_relay_exact(h, tmp: Path, relay: str) -> None:
    meta = assert_consistent(tmp / relay)
    compare_with_upstream(tmp / relay / meta.subdir, datadir(h), h.sql("node1", "SHOW MASTER STATUS")[0][0])
    assert relayed_gtids(tmp / relay) == upstream_gtids(h, "node1"), relay


@contextmanager
def one_engine(h, tmp: Path, serve, etcd, relay: tuple[str, int], backup: tuple[str, int]) -> Iterator:
    """One engine of a fleet running ``relay`` and ``backup`` (name, server_id)
    under writes: yields (the engine, a reader of etcd) once both run; then
    waits for both to reach the primary's end, stops the engine (SIGTERM:
    exit 0, no traceback) and checks the relay byte-exact with every
    transaction once and the backup without gap or duplicate."""
    reader = reader_of(etcd)
    cfg = tmp / "engine.toml"
    cfg.write_text(cluster_part(h, tmp / "state") + relay_task(relay[0], tmp / relay[0], relay[1])
                   + backup_task(backup[0], tmp / backup[0], backup[1]))
    with Load(h):
        e = serve(cfg, None, "--coordinator", etcd.url, "--lease-ttl", str(TTL))
        for t in (relay[0], backup[0]):
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(e)), timeout=60,
                     what=f"{t} running")
        yield e, reader
    end = gtid_pos(h)
    wait_meta_gtid(tmp / relay[0], end, timeout=60)
    backed_up_to(tmp, backup[0], end)
    e.p.send_signal(signal.SIGTERM)
    assert e.p.wait(60) == 0, e.err
    assert not any("Traceback" in ln for ln in e.err), e.err
    assert_relay_exact(h, tmp, relay[0])
    assert_backup_contiguous(tmp, backup[0])
