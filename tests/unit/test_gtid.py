"""GTID set arithmetic, checked against a plain Python set model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.mysql import gtid
from console.mysql.gtid import (
    MARIADB,
    MYSQL,
    Gtid,
    GtidError,
    GtidPosition,
    GtidSet,
    parse,
    position,
)

UUIDS = ["3e11fa47-71ca-11e1-9e33-c80aa9429562", "00000000-0000-0000-0000-000000000001"]


def to_model(s: GtidSet) -> set:
    return {(k, n) for k, iv in s for lo, hi in iv for n in range(lo, hi + 1)}


def from_model(model: set, flavor: str) -> GtidSet:
    if flavor == MARIADB:
        return GtidSet.from_gtids(Gtid(k, 1, n) for k, n in model) if model else GtidSet.empty(MARIADB)
    items = {}
    for k, n in model:
        items.setdefault(k, []).append(f"{n}")
    text = ",".join(f"{k}:" + ":".join(v) for k, v in items.items())
    return parse(text, MYSQL)


maria_models = st.sets(st.tuples(st.integers(0, 3), st.integers(1, 40)), max_size=40)
mysql_models = st.sets(st.tuples(st.sampled_from(UUIDS), st.integers(1, 40)), max_size=40)


@settings(max_examples=200)
@given(maria_models, maria_models)
def test_mariadb_set_algebra_matches_model(a, b):
    A, B = from_model(a, MARIADB), from_model(b, MARIADB)
    assert to_model(A | B) == a | b
    assert to_model(A - B) == a - b
    assert to_model(A & B) == a & b
    assert A.contains(B) == (b <= a)
    assert (A - B).count() == len(a - b)


@settings(max_examples=200)
@given(mysql_models, mysql_models)
def test_mysql_set_algebra_matches_model(a, b):
    A, B = from_model(a, MYSQL), from_model(b, MYSQL)
    assert to_model(A | B) == a | b
    assert to_model(A - B) == a - b
    assert to_model(A & B) == a & b
    assert A.contains(B) == (b <= a)


@settings(max_examples=200)
@given(maria_models)
def test_mariadb_format_parse_round_trip(a):
    A = from_model(a, MARIADB)
    assert parse(A.format(), MARIADB) == A


@settings(max_examples=200)
@given(mysql_models)
def test_mysql_format_parse_round_trip(a):
    A = from_model(a, MYSQL)
    assert parse(A.format(), MYSQL) == A


@given(maria_models, maria_models)
def test_compare_domains_consistent(a, b):
    A, B = from_model(a, MARIADB), from_model(b, MARIADB)
    cmp = A.compare_domains(B)
    for k, v in cmp.items():
        ka = {x for x in a if x[0] == k}
        kb = {x for x in b if x[0] == k}
        expected = 2 if (ka - kb and kb - ka) else 1 if ka - kb else -1 if kb - ka else 0
        assert v == expected


def test_mariadb_position_semantics():
    p = parse("0-1-100,1-2-7")
    assert p.flavor == MARIADB
    assert p.count() == 107
    assert p.last_seq(0) == 100 and p.server_of(0) == 1
    assert str(p) == "0-1-100,1-2-7"
    newer = parse("0-3-150,1-2-7")
    missing = newer - p
    assert str(missing) == "0-3-101..150"
    assert missing.describe() == "domain 0: 101-150 (50)"
    assert newer.contains(p) and not p.contains(newer)
    assert p.compare_domains(newer) == {0: -1, 1: 0}


def test_mariadb_errant_and_divergence():
    primary = parse("0-1-100")
    replica = parse("0-1-100,5-7-3")  # a local write in domain 5
    errant = replica - primary
    assert errant.keys() == (5,) and errant.count() == 3
    assert parse("0-1-50").diverged_domains(parse("0-2-50")) == (0,)
    assert parse("0-1-50").diverged_domains(parse("0-1-50")) == ()


def test_mysql_parse_tags_and_normalise():
    s = parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9,3e11fa47-71ca-11e1-9e33-c80aa9429562:tag1:1-2")
    assert s.flavor == MYSQL
    assert s.count() == 5 + 3 + 2
    assert "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9" in str(s)
    assert "3e11fa47-71ca-11e1-9e33-c80aa9429562:tag1:1-2" in str(s)
    assert parse(str(s)) == s


def test_empty_sets_combine_with_either_flavor():
    e = parse("")
    assert e.is_empty() and e.flavor is None
    assert (e | parse("0-1-5")).flavor == MARIADB
    assert parse("0-1-5").contains(e)


@pytest.mark.parametrize("bad", ["0-1", "x-1-2", "0-1-5..3", "3e11fa47:1-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:a-b"])
def test_parse_errors_are_one_line(bad):
    with pytest.raises(GtidError) as e:
        parse(bad)
    assert "\n" not in str(e.value)


def test_mixing_flavors_refused():
    with pytest.raises(GtidError):
        parse("0-1-5") | parse(f"{UUIDS[0]}:1-3")


def test_single_gtid():
    g = Gtid.parse("0-1-42")
    assert str(g) == "0-1-42"
    s = parse("0-1-100")
    assert s.has(g) and not s.has(Gtid(0, 1, 101))
    assert gtid.parse("0-1-41").add(g) == parse("0-1-42")


# ---- positions -------------------------------------------------------------------

maria_gtids = st.builds(Gtid, st.integers(0, 3), st.integers(1, 5), st.integers(0, 60))
gtid_lists = st.lists(maria_gtids, max_size=20)


def pos_model(gtids) -> dict:
    """The reference: per domain the last (server_id, seq) applied."""
    out: dict = {}
    for g in gtids:
        out[g.domain] = (g.server_id, g.seq)
    return out


@given(gtid_lists, gtid_lists)
@settings(max_examples=300, deadline=None)
def test_position_advances_like_gtid_slave_pos(start, applied):
    pos = GtidPosition.of(start)
    for i, g in enumerate(applied):
        if i % 2:
            pos.advance(g)
        else:
            pos.advance(str(g))       # the text a decoder hands over
    model = pos_model(start + applied)
    assert pos.gtids() == tuple(Gtid(d, s, q) for d, (s, q) in sorted(model.items()))
    assert pos.text() == ",".join(f"{d}-{s}-{q}" for d, (s, q) in sorted(model.items()))
    assert position(pos.text()) == pos                      # text round trip
    assert bool(pos) == bool(model)
    for d in range(4):
        assert pos.seq(d) == (model[d][1] if d in model else 0)


@given(gtid_lists, gtid_lists)
@settings(max_examples=300, deadline=None)
def test_position_order_and_contains_match_the_model(a, b):
    pa, pb = GtidPosition.of(a), GtidPosition.of(b)
    ma, mb = pos_model(a), pos_model(b)
    le = all(d in mb and q <= mb[d][1] for d, (_, q) in ma.items())
    assert (pa <= pb) == le and (pb >= pa) == le
    assert pa <= pa and (pa == pb) == (ma == mb)
    for g in b:
        assert pa.contains(g) == (g.domain in ma and g.seq <= ma[g.domain][1])
        assert (g in pa) == pa.contains(g)
    common = pa.common(pb)
    assert common <= pa and common <= pb
    assert set(common.domains()) == set(ma) & set(mb)


@given(gtid_lists)
@settings(max_examples=200, deadline=None)
def test_position_and_set_convert_both_ways(gtids):
    pos = GtidPosition.of(gtids)
    s = pos.to_set()
    assert s.is_prefix() or s.is_empty()
    assert s == GtidSet.from_position(g for g in pos.gtids())
    back = GtidPosition.from_set(s)
    # a set holds no seq-0 domain: those are the only ones lost
    assert back == GtidPosition.of(g for g in pos.gtids() if g.seq > 0)
    assert back.text() == s.format()


def test_position_parse_and_errors():
    p = position(" 1-2-6, 0-1-13 ")
    assert p.text() == "0-1-13,1-2-6" and str(p) == p.text()
    assert p.gtid(1) == Gtid(1, 2, 6) and p.gtid(5) is None and p.seq(5) == 0
    assert p.total() == 19 and p.domains() == (0, 1)
    assert position("0-1-5,0-2-7").text() == "0-2-7"      # a domain twice: the last wins
    assert not position("") and position(None) == GtidPosition()
    for bad in ("0-1", "0-1-x", "0-1-5..9", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"):
        with pytest.raises(GtidError) as e:
            position(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(GtidError):
        assert position("0-1-5") <= position("", MYSQL)


def test_position_copy_is_independent_and_unhashable():
    p = position("0-1-5")
    q = p.copy()
    q.advance("0-1-6")
    assert p.text() == "0-1-5" and q.text() == "0-1-6"
    with pytest.raises(TypeError):
        hash(p)


def test_position_put_newer_never_moves_back():
    p = position("0-1-20")
    p.put_newer(0, 2, 10)
    p.put_newer(1, 3, 4)
    assert p.text() == "0-1-20,1-3-4"
    p.put(0, 2, 10)                 # put (a transaction applied) does
    assert p.text() == "0-2-10,1-3-4"


def test_mysql_position_is_the_executed_set():
    u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    m = position(f"{u}:1-5", MYSQL)
    m.advance(f"{u}:6")
    assert m.text() == f"{u}:1-6"
    assert m.contains(f"{u}:3") and not m.contains(f"{u}:7")
    assert position(f"{u}:1-3", MYSQL) <= m and not m <= position(f"{u}:1-3", MYSQL)
    assert m.to_set() == parse(f"{u}:1-6") and GtidPosition.from_set(m.to_set()) == m


def test_mariadb_position_advances_per_domain():
    p = position("0-1-10,1-2-5")
    p.advance("0-1-11")
    p.advance("2-3-1")
    assert p.text() == "0-1-11,1-2-5,2-3-1"
