"""The etcd coordinator against a real etcd (Debian's binary): one owner
per task, a stale owner's write refused by etcd itself even when its own
clock still says it may write, checkpoints that never move backwards, the
fleet's failover lease, pause flags and the audit log."""

from __future__ import annotations

import time

import pytest

from console.engine.coord.coordinator import Fenced
from console.engine.coord.etcd import EtcdCoordinator
from console.engine.coord.forward import CheckpointBehind
from console.engine.coord.url import parse_coordinator
from console.engine.failover.lease import ClusterLease, LeaseBusy
from console.engine.state import AuditEntry
from tests.support.backup_helpers import wait_for
from tests.support.etcd import etcd  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def engines(url: str, *names: str, ttl: int = 2) -> list[EtcdCoordinator]:
    out = []
    for n in names:
        c = EtcdCoordinator(parse_coordinator(url), ttl=ttl, engine_id=n)
        c.open()
        out.append(c)
    return out


def test_one_owner_a_stale_owner_refused_by_etcd_and_checkpoints_never_backwards(etcd):  # noqa: F811
    a, b = engines(etcd.url, "A", "B")
    try:
        assert a.claim("t") and not b.claim("t")
        a.publish_checkpoint("t", "relay", [1, "x", 5], {"pos": 5}, lineage="/r")
        with pytest.raises(CheckpointBehind, match="refusing to move checkpoint relay back"):
            a.publish_checkpoint("t", "relay", [1, "x", 4], {"pos": 4}, lineage="/r")
        a.publish_checkpoint("t", "relay", [0], {"pos": 0}, lineage="/new")  # a new lineage
        with pytest.raises(Fenced):
            b.publish_checkpoint("t", "relay", [9], {}, lineage="/new")  # not its task
        # A stops renewing (as if stopped): its lease expires, B takes the task
        a._stop.set()
        wait_for(lambda: not a.holds("t"), timeout=5, what="A's local deadline")
        wait_for(lambda: b.claim("t"), timeout=10, what="B takes the task")
        # A's clock forged to say it may still write: etcd refuses the write anyway
        a._held["t"].clock.deadline = time.monotonic() + 60
        a._held["t"].clock.lost = False
        with pytest.raises(Fenced, match="its write was refused"):
            a.publish_checkpoint("t", "relay", [5], {"late": True}, lineage="/new")
        assert not a.holds("t")
        assert b.checkpoint("t", "relay")["engine"] == "A" and b.checkpoint("t", "relay")["order"] == [0]
        b.publish_checkpoint("t", "relay", [1], {}, lineage="/new")
        assert b.checkpoint("t", "relay")["engine"] == "B"
    finally:
        a.close()
        b.close()


def test_the_failover_lease_pause_flags_statuses_and_audit_are_the_fleets(etcd):  # noqa: F811
    a, b = engines(etcd.url, "A", "B")
    try:
        la, lb = ClusterLease("c1", coordinator=a), ClusterLease("c1", coordinator=b)
        la._fleet_lock()
        with pytest.raises(LeaseBusy, match="engine A of the fleet is recovering it"):
            lb._fleet_lock()
        la.release()
        lb._fleet_lock()  # free again
        lb.release()
        b.set_paused("t", True)
        assert a.paused("t")
        assert a.claim("t")
        a.publish_status("t", {"state": "running", "kind": "relay"})
        b.refresh()
        assert b.fleet()["t"]["engine"] == "A" and b.owners() == {"t": "A"}
        assert sorted(b.engines()) == ["A", "B"]
        a.audit(AuditEntry(time.time(), "operator", "pause", "t", "ok"))
        wait_for(lambda: any(e.action == "pause" for e in b.read_audit()), timeout=5, what="audit")
        a.close()  # a clean stop gives the task's lease back at once
        b.refresh()
        assert b.owners() == {} and b.engines() == ["B"]
    finally:
        b.close()
