"""Relay salvage logic without a server: what a relay directory holds, the
sources a cluster's relay tasks give, ranking against the relay's position,
and salvage reporting per source."""

from types import SimpleNamespace

from console.config import parse_config
from console.engine.failover.journal import Journal
from console.engine.failover.ranking import EMERGENCY, RankRules, rank, salvage_keys
from console.engine.failover.salvage import salvage
from console.engine.failover.salvage_relay import (
    RelaySource,
    is_relay_dir,
    relay_dirs,
    relay_sources,
    sources_from_dirs,
)
from console.engine.relay.store import RelayMeta, RelayStore
from console.mysql import gtid as G
from console.mysql.binlog import events as E
from console.mysql.probe import HostState
from tests.unit.test_binlog_events import fde, gtid_list_ev
from tests.unit.test_failover_ranking import P, primary, replica
from tests.unit.test_relay_store import make_file, trx


def _relay(tmp_path):
    """Two subdirectories (a switch-master happened); durable end 0-1-7; a
    torn, not durable transaction 8 after it."""
    st = RelayStore(tmp_path / "relay")
    a = st.new_subdir("a-1-1")
    make_file(st.subdir_path(a) / "bin.000001", {}, [1, 2, 3])
    make_file(st.subdir_path(a) / "bin.000002", {0: (1, 3)}, [4, 5])
    b = st.new_subdir("b-1-2")
    data = E.MAGIC + fde() + gtid_list_ev([(0, 1, 5)]) + trx(6) + trx(7)
    (st.subdir_path(b) / "other.000004").write_bytes(data + trx(8)[:30])
    st.save_meta(RelayMeta(b, "b-1-2", "127.0.0.1:2", "other.000004", 999, len(data), "0-1-7"))
    return st


def test_relay_source_holds_only_the_durable_transactions_after_the_candidate(tmp_path):
    st = _relay(tmp_path)
    src = RelaySource("r1", st.root)
    assert src.name == f"relay r1 ({st.root})" and src.upstream() == "127.0.0.1:2"
    assert src.position().describe() == "domain 0: 1-7 (7)"
    missing = G.parse("0-1-9", G.MARIADB).subtract(G.parse("0-1-3", G.MARIADB))  # 4-9
    assert src.holds(missing).describe() == "domain 0: 4-7 (4)"
    got, segments = src.scan(G.parse("0-1-3", G.MARIADB), G.parse("0-1-6", G.MARIADB))
    assert got.describe() == "domain 0: 4-6 (3)"
    # one segment per relay file with wanted transactions, each led by its FORMAT_DESCRIPTION
    assert [len(s) for s in segments] == [1 + 3 * 2, 1 + 3]
    assert all(E.parse_header(s[0]).type == E.FORMAT_DESCRIPTION for s in segments)
    assert b"".join(segments[1][1:]) == trx(6)
    assert src.holds(G.GtidSet.empty(G.MARIADB)).is_empty()


def test_relay_sources_skip_never_started_relays_and_duplicates(tmp_path):
    st = _relay(tmp_path)
    empty = tmp_path / "never-ran"
    got = relay_sources([("r1", str(st.root)), ("again", str(st.root) + "/"), ("r2", str(empty))])
    assert [s.label for s in got] == ["r1"]
    assert not empty.exists()  # looking did not create the directory
    assert is_relay_dir(st.root) and not is_relay_dir(tmp_path)
    # --binlog-dir pointing at a relay directory reads it with the relay reader
    (src,) = sources_from_dirs([str(st.root)])
    assert isinstance(src, RelaySource)


def test_relay_dirs_of_a_cluster_from_config_and_engine(tmp_path):
    import tomllib

    cfg = parse_config(tomllib.loads(f"""
[clusters.c.hosts.db1]
user = "u"
password = "p"
[clusters.d.hosts.db9]
user = "u"
password = "p"
[tasks.r1]
kind = "relay"
cluster = "c"
relay_dir = "{tmp_path}/r1"
[tasks.r2]
kind = "relay"
cluster = "d"
relay_dir = "{tmp_path}/r2"
"""))
    assert relay_dirs(cfg, "c") == (("r1", f"{tmp_path}/r1"),)
    running = SimpleNamespace(kind="relay", cluster="c", task_id="adhoc",
                              store=SimpleNamespace(root=tmp_path / "adhoc"))
    other = SimpleNamespace(kind="relay", cluster="d", task_id="x", store=SimpleNamespace(root=tmp_path))
    engine = SimpleNamespace(tasks=lambda: [running, other])
    assert relay_dirs(cfg, "c", engine) == (("adhoc", f"{tmp_path}/adhoc"), ("r1", f"{tmp_path}/r1"))


def test_ranking_counts_the_relay_position(tmp_path):
    dead = HostState(name="p", address=P, reachable=False, flavor="mariadb")
    r2, r3 = replica("db2", "0-1-10", 2), replica("db3", "0-1-8", 3)
    relay = {"relay r": G.parse("0-1-12,1-1-2", G.MARIADB)}
    # primary position unknown (headless): the relay's domains count as the primary's
    assert salvage_keys(dead, [r2, r3], relay) == (0, 1)
    c = {c.name: c for c in rank(dead, [r2, r3], RankRules(), EMERGENCY, relay)}
    assert c["db2"].rank == 1 and c["db3"].rank == 2  # order by what they hold themselves
    assert "4 short of relay r (salvaged from it before promotion)" in c["db2"].reasons
    assert "6 short of relay r (salvaged from it before promotion)" in c["db3"].reasons
    # a primary whose last position is known defines the domains
    assert salvage_keys(primary("0-1-12", reachable=False), [r2, r3], relay) == (0,)


class _Fake:
    def __init__(self, name, has, cand):
        self.name, self.has, self.cand = name, G.parse(has, G.MARIADB), cand

    def holds(self, missing):
        return missing.intersection(self.has)

    def apply(self, ops, candidate, wanted, journal, timeout):
        self.cand["pos"] = self.cand["pos"].union(wanted)


def test_salvage_reports_what_each_source_gave(tmp_path):
    cand = {"pos": G.parse("0-1-5", G.MARIADB)}
    sources = [_Fake("replica x", "0-1-7", cand), _Fake("relay r", "0-1-10", cand)]
    saved, lost, by = salvage(None, "c", cand["pos"], G.parse("0-1-12", G.MARIADB), sources,
                              Journal(None, "failover", "c"), 1.0, lambda a: cand["pos"])
    assert saved.describe() == "domain 0: 6-10 (5)" and lost.describe() == "domain 0: 11-12 (2)"
    assert [(n, g.describe()) for n, g in by] == [("replica x", "domain 0: 6-7 (2)"),
                                                 ("relay r", "domain 0: 8-10 (3)")]
