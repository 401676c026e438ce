"""etcd unreachable under a running fleet (issue 17, fencing): etcd is
stopped (SIGSTOP) longer than the lease; the engine cannot renew its
leases, so its relay and backup stop writing before etcd could give them to
another engine ("ownership lease lost"), and it says the coordinator is
down in one line.  When etcd answers again the engine takes its tasks back
from their checkpoints: at the end the relay is byte-identical with every
transaction once and the backup has no gap and no duplicate."""

from __future__ import annotations

import signal
import time

import pytest

from console.engine.backup.catalog import Catalog
from console.engine.backup.storage import LocalStorage
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.fleet import TTL, engine_id, fleet_state, one_engine

pytestmark = pytest.mark.integration


def test_an_engine_cut_off_from_etcd_stops_writing_and_takes_its_tasks_back(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    with one_engine(sandbox, tmp_path, serve, etcd, ("ro", 5461), ("bo", 5462)) as (e, reader):
        time.sleep(1.0)
        etcd.p.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: all(any(f"task {t}: ownership lease lost" in ln for ln in e.err)
                                 for t in ("ro", "bo")), timeout=4 * TTL + 10,
                     what="both tasks fenced while etcd is away")
            assert any("serve: coordinator:" in ln for ln in e.err), e.err[-20:]
            fenced_meta = (tmp_path / "ro" / "relay.meta").read_bytes()
            fenced_cp = Catalog(LocalStorage(tmp_path / "bo")).load_checkpoint()
            time.sleep(2.0)   # writes go on on the primary; nothing lands here
            assert (tmp_path / "ro" / "relay.meta").read_bytes() == fenced_meta
            assert Catalog(LocalStorage(tmp_path / "bo")).load_checkpoint() == fenced_cp
        finally:
            etcd.p.send_signal(signal.SIGCONT)
        wait_for(lambda: any("answers again" in ln for ln in e.err), timeout=30, what="etcd back")
        for t in ("ro", "bo"):
            wait_for(lambda t=t: fleet_state(reader, t) == ("running", engine_id(e)), timeout=60,
                     what=f"{t} taken back")
