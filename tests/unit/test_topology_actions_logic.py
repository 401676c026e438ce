"""Pure logic of the topology actions: durations, the downtime/recovery
flags, exact-GTID divergence of an old primary, ranking of a downtimed host."""

import pytest

from console.engine.failover.ranking import RankRules, rank
from console.engine.topology.actions import divergence, flags
from console.engine.topology.actions.divergence import BinlogGtids, BinlogTrx
from console.errors import UserError
from console.mysql.gtid import Gtid
from console.mysql.probe import HostState


def test_parse_duration():
    assert flags.parse_duration("90s") == 90
    assert flags.parse_duration("15m") == 900
    assert flags.parse_duration("1h30m") == 5400
    assert flags.parse_duration("1d") == 86400
    for bad in ("", "ten minutes", "0s", "5", "5x", "m5", "1h 30m"):
        with pytest.raises(UserError, match="not a duration"):
            flags.parse_duration(bad)


def test_downtime_and_recovery_flags(tmp_path):
    assert flags.recovery_enabled(tmp_path, "c") is True
    flags.set_recovery(tmp_path, "c", False)
    assert flags.recovery_enabled(tmp_path, "c") is False
    assert flags.recovery_enabled(tmp_path, "other") is True
    flags.set_downtime(tmp_path, "c", "h:1", 60, reason="r")
    flags.set_downtime(tmp_path, "c", "h:2", 0.001)
    import time

    time.sleep(0.01)
    assert flags.downtimed(tmp_path, "c") == frozenset({"h:1"})  # the expired one is gone
    assert flags.flags_dict(tmp_path, "c")["downtime"]["h:1"]["reason"] == "r"
    assert flags.clear_downtime(tmp_path, "c", "h:1") is True
    assert flags.clear_downtime(tmp_path, "c", "h:1") is False
    assert flags.downtimed(None, "c") == frozenset()


def _trx(*items):
    out, pos = [], 4
    for d, s, q, f in items:
        out.append(BinlogTrx(Gtid(d, s, q), f, pos, pos + 100))
        pos += 100
    return tuple(out)


def test_errant_by_exact_gtid_when_the_new_primary_reused_the_sequence():
    old = BinlogGtids(_trx((0, 1, 1, "b.1"), (0, 1, 2, "b.1"), (0, 1, 3, "b.1"), (0, 1, 4, "b.2"),
                           (0, 1, 5, "b.2")), {})
    new = BinlogGtids(_trx((0, 1, 1, "c.1"), (0, 1, 2, "c.1"), (0, 2, 3, "c.1"), (0, 2, 4, "c.1"),
                           (0, 2, 5, "c.1"), (0, 2, 6, "c.1")), {})
    err = divergence.errant_transactions(old, new)
    assert [str(t.gtid) for t in err] == ["0-1-3", "0-1-4", "0-1-5"]  # same seqs as 0-2-*: still errant
    assert divergence.runs(err, old) == [("b.1", old.trx[2].start, old.trx[2].end),
                                          ("b.2", old.trx[3].start, old.trx[4].end)]
    assert divergence.fork_position(old, new, err, [Gtid(0, 1, 5)]) == [Gtid(0, 1, 2)]
    assert divergence.interleaved(err, old) == []


def test_purged_history_counts_as_present_and_interleaving_is_found():
    old = BinlogGtids(_trx((0, 1, 1, "b.1"), (0, 1, 2, "b.1"), (0, 1, 3, "b.1")), {})
    new = BinlogGtids(_trx((0, 2, 3, "c.2")), {0: 2})  # 0-1-1..2 purged on the new primary
    err = divergence.errant_transactions(old, new)
    assert [str(t.gtid) for t in err] == ["0-1-3"]
    mixed = BinlogGtids(_trx((0, 1, 1, "b.1"), (0, 1, 2, "b.1"), (0, 2, 3, "b.1")), {})
    e2 = [mixed.trx[1]]
    assert divergence.interleaved(e2, mixed) == [Gtid(0, 2, 3)]


def _host(name, port, **kw):
    base = dict(name=name, address=f"127.0.0.1:{port}", reachable=True, flavor="mariadb", server_id=port,
                log_bin=True, log_slave_updates=True, gtid_current_pos="0-1-10", gtid_binlog_pos="0-1-10")
    base.update(kw)
    return HostState(**base)


def test_a_downtimed_replica_is_not_a_candidate():
    from console.mysql.flavor import ReplicaStatus

    ch = ReplicaStatus("", "127.0.0.1", 1, "Yes", "Yes", 0, 0, "", 0, "", "Slave_Pos", "b.1", 10, "b.1", 10,
                       0, 1, "0-1-10")
    primary = _host("p", 1, server_id=1)
    reps = [_host(n, port, upstream=primary.address, channels=(ch,)) for n, port in (("a", 2), ("b", 3))]
    out = rank(primary, reps, RankRules(downtimed=frozenset({"127.0.0.1:2"})))
    a = next(c for c in out if c.name == "a")
    b = next(c for c in out if c.name == "b")
    assert not a.eligible and any("downtimed" in r for r in a.reasons)
    assert b.eligible and b.rank == 1
