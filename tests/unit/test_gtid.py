"""GTID set arithmetic, checked against a plain Python set model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.mysql import gtid
from console.mysql.gtid import MARIADB, MYSQL, Gtid, GtidError, GtidSet, parse

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
