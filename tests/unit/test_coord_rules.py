"""The pure rules of coordination: lease deadlines, checkpoints that never
move backwards, --coordinator URLs, a fleet's share and spread."""

from __future__ import annotations

import pytest

from console.engine.coord.deadline import SAFETY, LeaseClock, keepalive_period
from console.engine.coord.forward import CheckpointBehind, check_forward, moves_forward
from console.engine.coord.url import parse_coordinator
from console.engine.fleet import share, spread_order
from console.errors import UserError


def test_a_lease_is_valid_until_its_ttl_less_the_margin_from_when_the_renewal_was_sent():
    c = LeaseClock()
    assert not c.valid(0.0)  # never held
    c.renewed(sent_at=100.0, ttl=4)
    assert c.valid(100.0) and c.valid(100.0 + 4 * (1 - SAFETY) - 0.01)
    assert not c.valid(100.0 + 4 * (1 - SAFETY))  # before etcd can expire it (100 + 4)
    assert c.left(101.0) == pytest.approx(4 * (1 - SAFETY) - 1)


def test_an_older_renewal_answered_late_never_moves_the_deadline_back():
    c = LeaseClock()
    c.renewed(sent_at=10.0, ttl=4)
    c.renewed(sent_at=9.0, ttl=4)
    assert c.deadline == 10.0 + 4 * (1 - SAFETY)


def test_a_lease_the_server_says_is_gone_is_never_valid_again():
    c = LeaseClock()
    c.renewed(sent_at=0.0, ttl=10)
    c.renewed(sent_at=1.0, ttl=-1)
    assert c.lost and not c.valid(1.5) and c.left(1.5) == 0.0
    c.renewed(sent_at=2.0, ttl=10)
    assert not c.valid(2.5)


def test_keepalives_come_several_times_per_safe_life():
    assert keepalive_period(4) * 3 < 4 * (1 - SAFETY)


def test_checkpoints_never_move_backwards():
    assert moves_forward(None, [0])
    assert moves_forward([3], [3]) and moves_forward([3], [4]) and not moves_forward([4], [3])
    assert moves_forward([1, "a.000001", "bin.000009", 500], [1, "a.000001", "bin.000010", 4])
    assert not moves_forward([2, "b.000002", "bin.000001", 4], [1, "a.000001", "bin.000010", 900])
    with pytest.raises(CheckpointBehind, match=r"task r1: refusing to move checkpoint relay back"):
        check_forward("r1", "relay", [5], [4])


def test_coordinator_urls():
    u = parse_coordinator("etcd://10.0.0.1:2379,etcd2:2380/")
    assert u.endpoints == (("10.0.0.1", 2379), ("etcd2", 2380))
    assert u.text() == "etcd://10.0.0.1:2379,etcd2:2380"
    for bad, why in [("10.0.0.1:2379", "no scheme"), ("zk://h:1", "unknown scheme 'zk'"),
                     ("etcd://", "no endpoint"), ("etcd://h", "is not HOST:PORT"),
                     ("etcd://h:0", "no port between"), ("etcd://h:x", "no port between")]:
        with pytest.raises(UserError, match=why) as e:
            parse_coordinator(bad)
        assert "\n" not in str(e.value) and "expected etcd://HOST:PORT" in str(e.value)


def test_a_share_is_the_tasks_over_the_engines_rounded_up():
    assert share(6, 3) == 2 and share(6, 2) == 3 and share(7, 3) == 3
    assert share(6, 0) == 6 and share(0, 3) == 0


def test_engines_pick_free_tasks_in_orders_of_their_own():
    names = [f"t{i}" for i in range(6)]
    orders = {e: spread_order(e, names) for e in ("h:1", "h:2", "h:3")}
    assert all(sorted(o) == names for o in orders.values())
    assert len({o[0] for o in orders.values()}) > 1


def test_the_rule_holds_within_one_lineage_and_a_new_lineage_starts_its_own_count():
    from console.engine.coord.forward import stored_order

    rec = {"order": [7], "lineage": "/b1 started 1.0"}
    assert stored_order(rec, "/b1 started 1.0") == [7]
    assert stored_order(rec, "/elsewhere started 2.0") is None
    assert stored_order(None, "x") is None
    assert stored_order({"order": [3]}, "") == [3]
