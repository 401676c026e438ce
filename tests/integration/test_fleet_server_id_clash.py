"""A task of a shared fleet kicked out by its previous owner (issue 17).

An engine stopped (SIGSTOP) while it started a relay or a backup wakes up
after another engine took the task over; before its lease's fence stops it,
its dump session registers with the task's server_id and the server kicks
the new owner's session out with error 4052.  Outside a fleet that error is
an operator's (never retried); the owner of a fleet's task that still holds
its lease retries it for two lease periods instead, and goes on from its
checkpoint.  Found by the three-engine test under load (the new owner's
backup failed with 4052 and never reached the end): here the stale session
is a dump client of the test's own, deterministic."""

from __future__ import annotations

import time

import pytest

from console.mysql.binlog.client import DumpClient, DumpError
from tests.integration.relay_support import gtid_pos, repl_endpoint
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture
from tests.support.fleet import TTL, engine_id, fleet_state, one_engine

pytestmark = pytest.mark.integration


def steal(h, server_id: int) -> None:
    """Register a dump with ``server_id`` (the server kicks the task's own
    session out), stream a moment, let go."""
    c = DumpClient(repl_endpoint(h), server_id=server_id, heartbeat=0.5)
    try:
        c.open(gtid=gtid_pos(h))
        deadline = time.monotonic() + 1.0
        try:
            for _ in c.batches():
                if time.monotonic() > deadline:
                    break
        except DumpError:   # the task's retry kicked this one out in turn
            pass
    finally:
        c.close()


def test_the_owner_of_a_fleet_task_kicked_out_by_a_stale_session_goes_on(
        sandbox, tmp_path, serve, etcd):  # noqa: F811 - the fixture
    h = sandbox
    with one_engine(h, tmp_path, serve, etcd, ("rk", 5451), ("bk", 5452)) as (e, reader):
        time.sleep(1.0)
        for sid in (5451, 5452):
            steal(h, sid)
        wait_for(lambda: sum("4052" in ln for ln in e.err) >= 2, timeout=20,
                 what="both sessions kicked out")
        time.sleep(2 * TTL)   # past the grace the retry had: both still run
        for t in ("rk", "bk"):
            assert fleet_state(reader, t) == ("running", engine_id(e)), (t, e.err[-20:])
    assert not any("failed from running" in ln for ln in e.err), e.err
