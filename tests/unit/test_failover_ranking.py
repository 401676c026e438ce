"""Candidate ranking, errant checks and detection: pure logic on HostState."""

from console.engine.failover.detection import assess
from console.engine.failover.errant import errant_gtids
from console.engine.failover.ranking import EMERGENCY, RankRules, best, most_advanced, rank
from console.engine.topology.model import Topology
from console.mysql import gtid as g
from console.mysql.flavor import ReplicaStatus
from console.mysql.probe import HostState

P = "127.0.0.1:1"


def chan(io="Yes", sql="Yes", delay=0, sbm=0, up=P, read=100, exec_=100, io_errno=0, sql_err=""):
    host, _, port = up.rpartition(":")
    return ReplicaStatus("", host, int(port), io, sql, sbm, io_errno, "", 0, sql_err, "Slave_Pos",
                         "b.000001", read, "b.000001", exec_, delay, 1, "")


def primary(pos="0-1-100", reachable=True):
    return HostState(name="p", address=P, reachable=reachable, role="primary", server_id=1,
                     flavor="mariadb", log_bin=True, log_slave_updates=True,
                     gtid_binlog_pos=pos, gtid_current_pos=pos)


def replica(name, pos, sid, **kw):
    ch = kw.pop("ch", chan())
    d = dict(name=name, address=f"127.0.0.1:{sid + 10}", reachable=True, role="replica",
             server_id=sid, flavor="mariadb", log_bin=True, log_slave_updates=True,
             gtid_binlog_pos=pos, gtid_current_pos=pos, gtid_slave_pos=pos, channels=(ch,),
             upstream=P)
    d.update(kw)
    return HostState(**d)


def test_most_advanced_first_and_reasons():
    r2, r3 = replica("r2", "0-1-90", 2), replica("r3", "0-1-100", 3)
    c = rank(primary(), [r2, r3], RankRules())
    assert [x.name for x in c] == ["r3", "r2"]
    assert c[0].rank == 1 and c[1].rank == 2
    assert "100 transactions in the primary's domains" in c[0].reasons


def test_prefer_beats_advanced_and_dc_breaks_ties():
    r2, r3, r4 = replica("r2", "0-1-90", 2), replica("r3", "0-1-100", 3), replica("r4", "0-1-100", 4)
    rules = RankRules(prefer=frozenset({"r2"}))
    assert best(rank(primary(), [r2, r3, r4], rules)).name == "r2"
    tags = {P: {"dc": "a"}, r4.address: {"dc": "a"}, r3.address: {"dc": "b"}}
    c = rank(primary(), [r3, r4], RankRules(tags=tags))
    assert c[0].name == "r4" and c[0].same_dc and "same dc a" in c[0].reasons


def test_exclusions_each_with_a_reason():
    hosts = [
        replica("stopped", "0-1-100", 2, ch=chan(sql="No", sql_err="dup key")),
        replica("delayed", "0-1-100", 3, ch=chan(delay=3600)),
        replica("lagging", "0-1-100", 4, ch=chan(sbm=60)),
        replica("nobinlog", "0-1-100", 5, log_bin=False),
        replica("nolsu", "0-1-100", 6, log_slave_updates=False),
        replica("banned", "0-1-100", 7),
        HostState(name="gone", address="127.0.0.1:99", reachable=False, error="refused"),
        replica("ok", "0-1-50", 8),
    ]
    c = {x.name: x for x in rank(primary(), hosts, RankRules(max_lag_seconds=10, must_not=frozenset({"banned"})))}
    assert "SQL thread No: dup key" in c["stopped"].reasons
    assert any("SQL_Delay=3600" in r for r in c["delayed"].reasons)
    assert any("lag 60.0s over max_lag_seconds=10" in r for r in c["lagging"].reasons)
    assert "log_bin off" in c["nobinlog"].reasons
    assert "log_slave_updates off" in c["nolsu"].reasons
    assert "promotion rule must_not" in c["banned"].reasons
    assert c["gone"].reasons[0].startswith("unreachable")
    assert [n for n, x in c.items() if x.eligible] == ["ok"]
    assert best(c.values()).name == "ok"


def test_lag_is_not_an_exclusion_in_an_emergency_but_undrained_relay_is():
    r2 = replica("r2", "0-1-100", 2, ch=chan(io="Connecting", sbm=None))
    r3 = replica("r3", "0-1-100", 3, ch=chan(io="No", read=200, exec_=150))
    c = {x.name: x for x in rank(primary(reachable=False), [r2, r3], RankRules(), EMERGENCY)}
    assert c["r2"].eligible
    assert "relay log not applied yet" in c["r3"].reasons


def test_errant_domain_excludes_replica_but_lag_in_primary_domain_does_not():
    # r3 wrote locally in domain 5 (its own server id 3)
    r3 = replica("r3", "0-1-100,5-3-2", 3)
    r2 = replica("r2", "0-1-99", 2)
    c = {x.name: x for x in rank(primary(), [r2, r3], RankRules())}
    assert not c["r3"].eligible and c["r3"].errant == "domain 5: 1-2 (2)"
    assert c["r2"].eligible
    # the errant replica is not a salvage donor either
    assert most_advanced(c.values()).name == "r2"


def test_errant_checks_mariadb():
    ref = g.parse("0-1-100", g.MARIADB)
    mine = g.parse("0-1-100", g.MARIADB)
    assert errant_gtids(mine, ref, own_server_id=2, primary_server_id=1).is_empty()
    # ahead of the primary with the primary's server id: probed a moment later, not errant
    ahead = g.parse("0-1-103", g.MARIADB)
    assert errant_gtids(ahead, ref, own_server_id=2, primary_server_id=1).is_empty()
    # ahead with its own server id: errant range 101-102
    own = g.parse("0-2-102", g.MARIADB)
    e = errant_gtids(own, ref, own_server_id=2, primary_server_id=1)
    assert e.describe() == "domain 0: 101-102 (2)"
    # same seq written by another server: diverged
    div = g.parse("0-7-100", g.MARIADB)
    assert not errant_gtids(div, ref, own_server_id=2, primary_server_id=1).is_empty()
    # no primary (emergency): only self-written tips are flagged
    assert errant_gtids(own, None, own_server_id=2, primary_server_id=1).describe() == "domain 0: 1-102 (102)"
    assert errant_gtids(ahead, None, own_server_id=2, primary_server_id=1).is_empty()


def test_errant_checks_mysql():
    pu, ru = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
    ref = g.parse(f"{pu}:1-100", g.MYSQL)
    mine = g.parse(f"{pu}:1-105,{ru}:1-3", g.MYSQL)
    e = errant_gtids(mine, ref, own_server_id=2, primary_server_id=1, primary_uuid=pu)
    assert e.format() == f"{ru}:1-3"
    assert errant_gtids(mine, None, own_server_id=2, primary_server_id=1, own_uuid=ru).format() == f"{ru}:1-3"


def _topo(*hosts):
    return Topology(cluster="c", hosts=tuple(hosts))


def test_detection_needs_replicas_to_confirm():
    dead = primary(reachable=False)
    ok = _topo(primary(), replica("r2", "0-1-1", 2))
    assert assess(ok).state == "healthy"
    # the console cannot reach the primary but a replica still replicates: no failover
    part = _topo(dead, replica("r2", "0-1-1", 2), replica("r3", "0-1-1", 3, ch=chan(io="Connecting")))
    v = assess(part)
    assert v.state == "primary-unreachable" and v.dissent == ("r2",) and not v.dead
    gone = _topo(dead, replica("r2", "0-1-1", 2, ch=chan(io="Connecting", io_errno=2003)),
                 replica("r3", "0-1-1", 3, ch=chan(io="No")))
    v = assess(gone)
    assert v.dead and v.confirmations == ("r2", "r3")
    alone = _topo(dead, HostState(name="r2", address="127.0.0.1:12", reachable=False, upstream=P))
    assert assess(alone).state == "primary-unreachable"


def test_detection_advice_names_slow_settings():
    from console.engine.failover.detection import advise

    assert advise("r", 1.0, 4, 1) == []
    out = advise("r", 30.0, 60, 60)
    assert out == ["r: heartbeat period 30s; set MASTER_HEARTBEAT_PERIOD=1",
                   "r: slave_net_timeout=60s; set it to 4 (a silent primary is noticed after this long)",
                   "r: connect retry 60s; set MASTER_CONNECT_RETRY=1"]
    assert advise("r", 0.0, None, None) == ["r: heartbeat period 0s; set MASTER_HEARTBEAT_PERIOD=1"]
