"""The logical snapshot's exact literals (no server: see
tests/integration/test_backup_dump_exact.py for the round trip)."""

import pytest

from console.engine.backup.dumpdata import Column, insert_statements, quote_name, select_sql


def test_each_type_is_read_in_an_exact_form():
    assert Column("f", "float").select() == "CAST(`f` AS DOUBLE)"
    assert Column("d", "double").select() == "CAST(`d` AS DOUBLE)"
    assert Column("b", "bit").select() == "CAST(`b` AS UNSIGNED)"
    assert Column("x`y", "int").select() == "`x``y`"
    assert select_sql("d b", "t", [Column("a", "int"), Column("g", "int", generated=True),
                                   Column("f", "float")]) == \
        "SELECT `a`, CAST(`f` AS DOUBLE) FROM `d b`.`t`"


@pytest.mark.parametrize("col, raw, literal", [
    (Column("i", "bigint"), b"-9223372036854775808", b"-9223372036854775808"),
    (Column("m", "decimal"), b"-0.000000000000000000000000000001", b"-0.000000000000000000000000000001"),
    (Column("f", "float"), b"-0", b"'-0'"),                     # negative zero stays negative
    (Column("f", "float"), b"123456792", b"'123456792'"),
    (Column("d", "double"), b"2.2250738585072014e-308", b"'2.2250738585072014e-308'"),
    (Column("b", "bit"), b"5461", b"5461"),
    (Column("b", "blob"), b"\x00'\\\xff", b"X'00275cff'"),
    (Column("b", "varbinary"), b"", b"X''"),
    (Column("v", "varchar", "binary"), b"\x01", b"X'01'"),     # VARCHAR ... CHARACTER SET binary
    (Column("g", "point"), b"\x00\x01", b"X'0001'"),
    (Column("s", "varchar", "utf8mb4"), "é😀'".encode(), b"_utf8mb4 X'c3a9f09f988027'"),
    (Column("l", "text", "latin1"), "é".encode("latin1"), b"_latin1 X'e9'"),
    (Column("j", "longtext", "utf8mb4"), b'{"a": 1}', b"_utf8mb4 X'7b2261223a20317d'"),
    (Column("e", "enum", "utf8mb4"), b"", b"_utf8mb4 X''"),
    (Column("dt", "date"), b"0000-00-00", b"'0000-00-00'"),
    (Column("t", "time"), b"-838:59:59.000", b"'-838:59:59.000'"),
    (Column("ip", "inet6"), b"::1", b"'::1'"),
    (Column("u", "weird"), b"a'b\\c\0", b"'a\\'b\\\\c\\0'"),
    (Column("x", "int"), None, b"NULL"),
    (Column("s", "text", "utf8mb4"), None, b"NULL"),
])
def test_literals(col, raw, literal):
    assert col.encoder()(raw) == literal


def test_a_strange_charset_name_is_refused():
    with pytest.raises(ValueError):
        Column("s", "varchar", "utf8'; DROP").encoder()


def test_rows_are_grouped_into_statements_of_bounded_size():
    cols = [Column("id", "int"), Column("g", "int", generated=True), Column("b", "blob")]
    rows = [(str(i).encode(), b"x" * 100) for i in range(50)]
    stmts = list(insert_statements("db", "t", cols, rows, limit=1000))
    assert len(stmts) > 1 and all(s.endswith(b";\n") for s in stmts)
    assert all(s.startswith(b"INSERT INTO `db`.`t` (`id`,`b`) VALUES (") for s in stmts)
    assert all(len(s) < 1000 + 300 for s in stmts)
    assert sum(s.count(b"X'") for s in stmts) == 50
    assert list(insert_statements("db", "t", cols, [])) == []
    big = list(insert_statements("db", "t", cols, [(b"1", b"y" * 5000)], limit=1000))
    assert len(big) == 1                                   # one row bigger than the limit
    assert quote_name("a`b") == "`a``b`"
