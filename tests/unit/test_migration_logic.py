"""Pure logic of the migration: ALTER reading, key-range SQL, row statements,
throttle decisions, checkpoint values, GTID positions, option validation."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from console.engine.migration.alter import AlterError, parse_alter, split_clauses
from console.engine.migration.checkpoint import Checkpoint, dec, enc
from console.engine.migration.dml import DmlBuilder
from console.engine.migration.sqlutil import (
    cast_target,
    checksum_expr,
    checksum_sql,
    cmp_tuple,
    key_range,
    locked_before,
)
from console.engine.migration.throttle import Observation, decide
from console.errors import UserError
from console.kinds.load import ThrottleConfigError, format_load, parse_load
from console.kinds.migration import MigrationOptions


def test_split_clauses_respects_parentheses_and_quotes():
    assert split_clauses("ADD COLUMN a DECIMAL(10,2), ADD COLUMN b ENUM('x,y','z'), "
                         "COMMENT 'a, b'") == [
        "ADD COLUMN a DECIMAL(10,2)", "ADD COLUMN b ENUM('x,y','z')", "COMMENT 'a, b'"]
    with pytest.raises(AlterError):
        split_clauses("ADD COLUMN a ENUM('x")


def test_parse_alter_renames_drops_and_algorithm():
    p = parse_alter("ALTER TABLE t CHANGE COLUMN `qty` quantity INT, RENAME COLUMN a TO b, "
                    "DROP COLUMN junk, DROP INDEX k, CHANGE same same BIGINT, ALGORITHM=INPLACE, LOCK=NONE")
    assert p.renames == (("qty", "quantity"), ("a", "b"))
    assert p.drops == ("junk",)
    assert "ALGORITHM" not in p.sql and "LOCK" not in p.sql
    assert p.sql.startswith("CHANGE COLUMN `qty` quantity INT")


@pytest.mark.parametrize("alter", ["RENAME TO x", "RENAME AS x", "ADD COLUMN c INT, RENAME x"])
def test_parse_alter_refuses_table_rename(alter):
    with pytest.raises(AlterError, match="renames the table"):
        parse_alter(alter)


def test_parse_alter_finds_columns_dropped_and_added_again():
    p = parse_alter("DROP COLUMN c1, ADD COLUMN c1 INT NOT NULL DEFAULT 47, CHANGE COLUMN v v BIGINT")
    assert p.drops == ("c1",) and p.adds == ("c1",) and p.readded == {"c1"} and p.renames == ()
    p = parse_alter("ADD (a INT, `b c` INT DEFAULT 1), ADD INDEX (a), ADD UNIQUE u (b), ADD d INT, "
                    "ADD COLUMN IF NOT EXISTS `E` INT, DROP SYSTEM VERSIONING, DROP `e`, DROP x")
    assert p.adds == ("a", "b c", "d", "E") and p.drops == ("e", "x") and p.readded == {"e"}
    assert parse_alter("MODIFY c1 INT NOT NULL, ADD KEY (c1)").readded == frozenset()


def test_parse_alter_allows_index_rename_and_refuses_empty():
    assert parse_alter("RENAME INDEX a TO b").renames == ()
    with pytest.raises(AlterError, match="empty"):
        parse_alter("  ")
    with pytest.raises(AlterError, match="no clause"):
        parse_alter("ALGORITHM=COPY")


def test_cmp_tuple_expands_for_the_range_optimizer():
    sql, params = cmp_tuple(["a", "b"], [1, "x"], ">")
    assert sql == "((`a` > %s) OR (`a` = %s AND `b` > %s))"
    assert params == [1, 1, "x"]
    sql, params = cmp_tuple(["a", "b"], [5, "z"], "<=")
    assert sql == "((`a` < %s) OR (`a` = %s AND `b` <= %s))"


def test_key_range_without_lower_bound():
    sql, params = key_range(["id"], None, (10,))
    assert sql == "((`id` <= %s))" and params == [10]
    sql, params = key_range(["id"], (5,), (10,))
    assert sql == "((`id` > %s)) AND ((`id` <= %s))" and params == [5, 10]


def test_checksum_expr_converts_strings_and_marks_nulls():
    e = checksum_expr(["id", "name"], {"name"})
    assert "CONVERT(`name` USING utf8mb4)" in e and "ISNULL(`id`)" in e
    assert e.startswith("CRC32(CONCAT_WS(")
    q = checksum_sql(e, "`d`.`t`", "`id` > %s", locked=True)
    # the row hash is computed once (derived table, not merged: LIMIT), for both aggregates
    assert q.count("CRC32(") == 1 and "SUM(h)" in q and "BIT_XOR(h)" in q
    assert q.endswith("LIMIT 18446744073709551615 LOCK IN SHARE MODE) AS rows_")
    assert "LOCK IN SHARE MODE" not in checksum_sql(e, "`d`.`t`", "1=1")


def test_checksum_converts_only_pairs_whose_character_set_differs():
    from console.engine.migration.inspect import Column, Inspection

    def col(name, cs=None, string=True):
        return Column(name, "varchar(10)" if string else "int", True, string, False, cs if string else None)

    ins = Inspection.__new__(Inspection)
    object.__setattr__(ins, "columns", (col("id", string=False), col("a", "utf8mb4"), col("b", "latin1"),
                                        col("c", "utf8mb4"), col("n", string=False)))
    object.__setattr__(ins, "ghost_columns", (col("id", string=False), col("a", "utf8mb4"),
                                              col("b", "utf8mb4"), col("c2", "utf8mb4"), col("n")))
    object.__setattr__(ins, "shared", (("id", "id"), ("a", "a"), ("b", "b"), ("c", "c2"), ("n", "n")))
    assert ins.convert_columns() == ({"b"}, {"b", "n"})


def test_checksum_marks_nulls_only_of_pairs_nullable_on_either_side():
    from console.engine.migration.inspect import Column, Inspection

    def col(name, nullable):
        return Column(name, "int", nullable, False, False, None)

    ins = Inspection.__new__(Inspection)
    object.__setattr__(ins, "columns", (col("id", False), col("a", True), col("b", False), col("c", False)))
    object.__setattr__(ins, "ghost_columns", (col("id", False), col("a", True), col("b", True), col("c2", False)))
    object.__setattr__(ins, "shared", (("id", "id"), ("a", "a"), ("b", "b"), ("c", "c2")))
    null_o, null_g = ins.nullable_columns()
    assert (null_o, null_g) == ({"a", "b"}, {"a", "b"})
    e = checksum_expr(["id", "a", "b", "c"], set(), null_o)
    assert "CONCAT(ISNULL(`a`), ISNULL(`b`))" in e and "ISNULL(`id`)" not in e
    # NOT NULL everywhere: no marker at all
    assert "ISNULL" not in checksum_expr(["id", "c"], set(), set())


def test_binlog_positions_order_by_file_number_then_offset():
    from console.engine.migration.checksum import binlog_pos_key

    assert binlog_pos_key(("mysql-bin.000009", 900)) < binlog_pos_key(("mysql-bin.000010", 4))
    assert binlog_pos_key(("mysql-bin.999999", 4)) < binlog_pos_key(("mysql-bin.1000000", 4))
    assert binlog_pos_key(("mysql-bin.000010", 4)) < binlog_pos_key(("mysql-bin.000010", 5))


def test_pack_statements_wraps_one_transaction_in_bounded_packets():
    from console.engine.migration.apply import pack_statements

    assert pack_statements(["A", "B"]) == ["START TRANSACTION;\nA;\nB;\nCOMMIT"]
    parts = pack_statements(["x" * 40, "y" * 40, "z" * 40], limit=100)
    assert parts == ["START TRANSACTION;\n" + "x" * 40, "y" * 40 + ";\n" + "z" * 40 + ";\nCOMMIT"]
    assert pack_statements(["q" * 500], limit=100) == ["START TRANSACTION", "q" * 500, "COMMIT"]


def _builder():
    return DmlBuilder("d", "_t_gho", [("id", "id"), ("qty", "quantity"), ("s", "s")], ["id"], ["id"])


def test_dml_inserts_batch_into_one_replace_and_updates_keep_order():
    ops = [("ins", {"id": 1, "qty": 2, "s": "a,b"}), ("ins", {"id": 2, "qty": 3, "s": None}),
           ("upd", {"id": 1, "qty": 2, "s": None}, {"id": 1, "qty": 9, "s": None}),
           ("del", {"id": 2, "qty": 3, "s": None})]
    st = _builder().statements(ops)
    assert st[0] == ("REPLACE INTO `d`.`_t_gho` (`id`, `quantity`, `s`) VALUES (%s, %s, %s), (%s, %s, %s)",
                     [1, 2, "a,b", 2, 3, None])
    assert st[1] == ("UPDATE `d`.`_t_gho` SET `id` = %s, `quantity` = %s, `s` = %s WHERE `id` <=> %s",
                     [1, 9, None, 1])
    assert st[2] == ("DELETE FROM `d`.`_t_gho` WHERE `id` <=> %s", [2])


def test_decoded_values_become_what_the_ghost_must_be_sent():
    """python-mysql-replication's decoding, as the apply gets it: BIT as
    '0'/'1' text (sent as such: 1406 Data too long), SET as a Python set and
    the empty SET as None, YEAR 0000 as 1900, zero dates as None, a zero
    TIMESTAMP as the epoch, a negative TIME with a fraction off by the
    fraction twice."""
    from console.engine.migration.values import RowFixer, fix_value, type_kind

    assert type_kind("bit(10)") == "bit" and type_kind("int(10) unsigned") == "int"
    assert fix_value("bit", "1111111111") == 1023 and fix_value("bit", "0") == 0
    assert fix_value("set", {"z", "x"}) == "x,z" and fix_value("set", None, "empty set") == ""
    assert fix_value("set", None, "null") is None
    assert fix_value("year", 1900) == 0 and fix_value("year", 2024) == 2024
    assert fix_value("date", None, "out of date range") == "0000-00-00"
    assert fix_value("datetime", None, "out of datetime2 range") == "0000-00-00 00:00:00"
    assert fix_value("datetime", None, "null") is None
    assert fix_value("timestamp", dt.datetime(1970, 1, 1)) == "0000-00-00 00:00:00"
    assert fix_value("timestamp", dt.datetime(1970, 1, 1, 0, 0, 1)) == dt.datetime(1970, 1, 1, 0, 0, 1)
    # -00:00:01.250 decodes as -1.75 s, -00:00:00.250 as -0.75 s; whole seconds are right
    assert fix_value("time", -dt.timedelta(seconds=1.75)) == -dt.timedelta(seconds=1.25)
    assert fix_value("time", -dt.timedelta(seconds=0.75)) == -dt.timedelta(seconds=0.25)
    assert fix_value("time", -dt.timedelta(hours=838, minutes=59, seconds=59)) == \
        -dt.timedelta(hours=838, minutes=59, seconds=59)
    assert fix_value("time", dt.timedelta(seconds=1.25)) == dt.timedelta(seconds=1.25)
    assert fix_value("varchar", "1900") == "1900" and fix_value("int", 1900) == 1900
    f = RowFixer([("id", "int(11)"), ("b", "bit(3)"), ("s", "set('a','b')"), ("y", "year(4)")])
    ops = f.ops("upd", [{"before_values": {"id": 1, "b": "101", "s": None, "y": 1900},
                         "before_none_sources": {"s": "empty set"},
                         "after_values": {"id": 1, "b": "000", "s": {"b", "a"}, "y": None},
                         "after_none_sources": {"y": "null"}}])
    assert ops == [("upd", {"id": 1, "b": 5, "s": "", "y": 0}, {"id": 1, "b": 0, "s": "a,b", "y": None})]
    assert f.ops("del", [{"values": {"id": 2, "b": "1"}, "none_sources": {}}]) == [("del", {"id": 2, "b": 1})]


def test_migration_session_keeps_values_and_may_allow_zero_dates():
    from console.engine.migration.inspect import zero_date_default
    from console.engine.migration.session import session_sql

    s = session_sql()
    assert s.startswith("SET SESSION time_zone = '+00:00', sql_mode = CONCAT(@@session.sql_mode, ")
    assert "NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES" in s and "REPLACE" not in s
    z = session_sql(allow_zero_in_date=True)
    assert "REPLACE(REPLACE(CONCAT(" in z and "'NO_ZERO_DATE', '')" in z and "'NO_ZERO_IN_DATE', '')" in z
    assert zero_date_default("'0000-00-00 00:00:00'") and zero_date_default("0000-00-00")
    assert zero_date_default("'2024-00-10'") and not zero_date_default("'2024-01-10 00:00:00'")
    assert not zero_date_default(None) and not zero_date_default("current_timestamp()")


def test_dml_deletes_by_a_key_that_is_no_unique_index_of_the_ghost_before_it_writes():
    """Old key (id) inside the ghost's new primary key (id, i): a REPLACE of
    (5, 1) would not replace the ghost's (5, 2), so rows are first deleted
    by id."""
    b = DmlBuilder("d", "_t_gho", [("id", "id"), ("i", "i")], ["id"], ["id"], ghost_unique=False)
    st = b.statements([("ins", {"id": 5, "i": 1}), ("ins", {"id": 6, "i": 0}),
                       ("upd", {"id": 5, "i": 1}, {"id": 5, "i": 2}),
                       ("upd", {"id": 6, "i": 0}, {"id": 7, "i": 0}), ("del", {"id": 7, "i": 0})])
    assert st == [
        ("DELETE FROM `d`.`_t_gho` WHERE `id` IN (%s, %s)", [5, 6]),
        ("REPLACE INTO `d`.`_t_gho` (`id`, `i`) VALUES (%s, %s), (%s, %s)", [5, 1, 6, 0]),
        ("UPDATE `d`.`_t_gho` SET `id` = %s, `i` = %s WHERE `id` <=> %s", [5, 2, 5]),
        ("DELETE FROM `d`.`_t_gho` WHERE `id` <=> %s", [6]),
        ("DELETE FROM `d`.`_t_gho` WHERE `id` IN (%s)", [7]),
        ("REPLACE INTO `d`.`_t_gho` (`id`, `i`) VALUES (%s, %s)", [7, 0]),
        ("DELETE FROM `d`.`_t_gho` WHERE `id` <=> %s", [7])]


def test_dml_unique_key_update_is_delete_plus_replace():
    st = _builder().statements([("upd", {"id": 1, "qty": 2, "s": None}, {"id": 7, "qty": 2, "s": None})])
    assert [s[0].split()[0] for s in st] == ["DELETE", "REPLACE"]
    assert st[0][1] == [1] and st[1][1] == [7, 2, None]


def test_throttle_decisions_in_priority_order():
    kw = {"max_lag_millis": 1000, "max_load": {"Threads_running": 20}, "critical_load": {"Threads_running": 100}}
    assert not decide(Observation(), **kw).throttled
    v = decide(Observation(status={"Threads_running": 150}, manual=True), **kw)
    assert v.critical and v.reason.startswith("critical-load Threads_running=150")
    assert decide(Observation(manual=True), **kw).reason == "manual throttle (operator)"
    assert decide(Observation(flag_file_exists=True), **kw).reason == "throttle flag file exists"
    assert decide(Observation(replica_lags={"r1": 2.5}), **kw).reason == \
        "lag of r1 2500ms > max-lag-millis 1000"
    assert decide(Observation(replica_lags={"r1": None}), **kw).reason == "lag of r1 unknown"
    assert not decide(Observation(replica_lags={"r1": 0.2}), **kw).throttled
    assert decide(Observation(status={"Threads_running": 25}), **kw).reason == \
        "max-load Threads_running=25 >= 20"
    assert decide(Observation(throttle_query_value=1), **kw).reason == "throttle-query returned 1"


def test_parse_load():
    assert parse_load("Threads_running=25, Threads_connected=200") == \
        {"Threads_running": 25.0, "Threads_connected": 200.0}
    assert format_load({"Threads_running": 25.0}) == "Threads_running=25"
    with pytest.raises(ThrottleConfigError, match="not STATUS_VARIABLE=NUMBER"):
        parse_load("Threads_running")
    with pytest.raises(ThrottleConfigError, match="not a number"):
        parse_load("Threads_running=lots")


def test_checkpoint_values_round_trip(tmp_path):
    vals = (1, "x", decimal.Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.date(2024, 1, 2),
            b"\x00\xff", None)
    assert dec(enc(vals)) == vals
    cp = Checkpoint(tmp_path / "c.json")
    cp.save(database="d", table="t", alter="ADD  COLUMN x INT", applied_pos="0-1-5", copy_min=(1,),
            copy_max=(9,), copy_last=(4,), rows_copied=4, copy_done=False)
    s = cp.load("d", "t", "ADD COLUMN x INT")
    assert s["last"] == (4,) and s["applied_pos"] == "0-1-5" and not s["done"]
    with pytest.raises(UserError, match="another table or ALTER"):
        cp.load("d", "t", "ADD COLUMN y INT")
    cp.remove()
    with pytest.raises(UserError, match="no checkpoint"):
        cp.load("d", "t", "ADD COLUMN x INT")


@pytest.mark.parametrize("field,value,msg", [
    ("chunk_size", 5, "--chunk-size must be between 10"),
    ("dml_batch_size", 0, "--dml-batch-size must be between 1"),
    ("max_lag_millis", 10, "--max-lag-millis must be between 100 and 3600000"),
    ("max_load", "x", "--max-load"),
    ("alter", " ", "--alter must not be empty"),
])
def test_options_validate(field, value, msg):
    kw = {"database": "d", "table": "t", "alter": "ADD COLUMN c INT", field: value}
    with pytest.raises(UserError, match=msg):
        MigrationOptions(**kw).validate()


def test_control_socket_lines_without_a_server(tmp_path):
    from console.config import Secret
    from console.engine.migration.control import handle_line
    from console.engine.migration.task import MigrationTask
    from console.mysql.connection import Endpoint

    t = MigrationTask("m", Endpoint("127.0.0.1", 1, "u", Secret("pw")),
                      MigrationOptions(database="d", table="t", alter="ADD COLUMN c INT",
                                       postpone_cut_over=True), tmp_path)
    assert not t.unpostponed
    assert handle_line(t, "chunk-size=?") == "2000"
    assert handle_line(t, "chunk-size=300") == "OK chunk-size=300" and t.chunk_size == 300
    assert handle_line(t, "dml-batch-size=0").startswith("ERROR dml-batch-size must be between 1")
    assert handle_line(t, "max-load=Threads_running=9") == "OK max-load=Threads_running=9"
    assert handle_line(t, "max-load=oops").startswith("ERROR max-load 'oops' is not STATUS_VARIABLE=NUMBER")
    assert handle_line(t, "nice-ratio=x") == "ERROR nice-ratio must be a number, got 'x'"
    assert handle_line(t, "throttle-query=SELECT 0") == "OK throttle-query=SELECT 0"
    assert handle_line(t, "secret=1").startswith("ERROR unknown setting 'secret'")
    assert handle_line(t, "throttle") == "OK" and t.manual_throttle
    assert handle_line(t, "no-throttle") == "OK" and not t.manual_throttle
    assert handle_line(t, "unpostpone").startswith("OK") and t.unpostponed
    assert "chunk-size=300" in handle_line(t, "status")
    assert handle_line(t, "sup").startswith("d.t ")
    assert handle_line(t, "what").startswith("ERROR unknown command")
    assert "pw" not in handle_line(t, "status")
    t2 = MigrationTask("m2", Endpoint("127.0.0.1", 1, "u", Secret("pw")),
                       MigrationOptions(database="d", table="t", alter="ADD COLUMN c INT"), tmp_path)
    assert handle_line(t2, "cut-over").startswith("OK") and t2.unpostponed    # the alias
    assert handle_line(t2, "panic") == "OK panic: stopping" and t2._panic      # no engine: no TypeError


def _event(et: int, body: bytes) -> bytes:
    # OK byte + header (timestamp, type, server id, size, log pos, flags) + body
    import struct

    return b"\x00" + struct.pack("<IBIIIH", 0, et, 1, 19 + len(body), 0, 0) + body


def _table_map(tid: int, schema: str, table: str) -> bytes:
    return _event(0x13, tid.to_bytes(6, "little") + b"\x01\x00" + bytes([len(schema)]) + schema.encode()
                  + b"\x00" + bytes([len(table)]) + table.encode() + b"\x00" + b"\x02\x03\x03")


def test_table_filter_drops_other_tables_rows_and_maps():
    from console.engine.migration.binlog_filter import TableFilter

    f = TableFilter({("d", "t"), ("d", "_t_ghc")})
    assert f.keep(_table_map(7, "d", "t"))
    assert not f.keep(_table_map(8, "d", "_t_gho"))
    assert f.keep(_event(0x1E, (7).to_bytes(6, "little") + b"rows"))
    assert not f.keep(_event(0x1E, (8).to_bytes(6, "little") + b"rows"))
    assert not f.keep(_event(0x17, (9).to_bytes(6, "little") + b"rows"))     # never mapped
    assert f.keep(_event(0x10, b"\x01" * 8))                                 # XID passes
    assert f.keep(b"\xfe\x00\x00")                                            # EOF passes
    assert not f.keep(_table_map(7, "d", "other"))                           # id reused
    assert not f.keep(_event(0x1F, (7).to_bytes(6, "little") + b"rows"))
    assert f.dropped == 5


def test_table_filter_drops_a_repeated_identical_table_map_until_a_rotation():
    """The library keeps a decoded table map by table id (until a rotation);
    decoding the same map again for every statement was half the apply's
    CPU under load, so a repeat is dropped; a changed one passes."""
    from console.engine.migration.binlog_filter import TableFilter

    def with_crc(ev: bytes, crc: bytes) -> bytes:
        return ev + crc              # the checksum covers the header: it differs per event

    f = TableFilter({("d", "t")})
    m = _table_map(7, "d", "t")
    assert f.keep(with_crc(m, b"AAAA"))
    assert not f.keep(with_crc(m, b"BBBB"))                 # the same map again
    assert f.keep(_event(0x1E, (7).to_bytes(6, "little") + b"rows"))   # its rows still pass
    changed = m[:-1] + b"\x04"                              # another column type
    assert f.keep(with_crc(changed, b"CCCC"))
    assert f.keep(_event(0x04, b"\x04" + b"\x00" * 7 + b"mysql-bin.000002"))   # rotate passes ...
    assert f.keep(with_crc(changed, b"DDDD"))                # ... and maps pass again once
    assert not f.keep(with_crc(changed, b"EEEE"))
    assert f.maps_repeated == 2


def test_key_in_single_and_composite_keys():
    from console.engine.migration.sqlutil import key_in

    assert key_in(["id"], [(1,), (5,)]) == ("`id` IN (%s, %s)", [1, 5])
    w, p = key_in(["a", "b"], [(1, "x"), (2, "y")])
    assert w == "((`a` = %s AND `b` = %s) OR (`a` = %s AND `b` = %s))"
    assert p == [1, "x", 2, "y"]
    with pytest.raises(AssertionError):
        key_in(["id"], [])


def _applier(dirty_limit: int):
    from types import SimpleNamespace

    from console.engine.migration.apply import Applier

    key = SimpleNamespace(columns=("a", "b"), ghost_columns=("a", "b"), ghost_unique=True)
    ins = SimpleNamespace(database="d", table="t", ghost="_t_gho", flavor="mariadb", key=key,
                          shared=(("a", "a"), ("b", "b"), ("v", "v")), columns=())
    return Applier(None, ins, "", batch_size=lambda: 10, gate=lambda: None, dirty_limit=dirty_limit)


def test_dirty_keys_record_both_images_and_are_taken_once():
    a = _applier(100)
    assert a.tracking_dirty
    a.mark_dirty([("ins", {"a": 1, "b": "x", "v": 1}),
                  ("upd", {"a": 2, "b": "y", "v": 1}, {"a": 3, "b": "y", "v": 2}),
                  ("del", {"a": 4, "b": "z", "v": None}),
                  ("upd", {"a": 1, "b": "x", "v": 1}, {"a": 1, "b": "x", "v": 9})])
    assert a.take_dirty() == {(1, "x"), (2, "y"), (3, "y"), (4, "z")}
    assert a.take_dirty() == set()
    a.mark_dirty([("del", {"a": 5, "b": "q", "v": 0})])
    assert a.take_dirty() == {(5, "q")}


def test_dirty_keys_overflow_stops_tracking_and_untracked_applier_records_nothing():
    a = _applier(3)
    a.mark_dirty([("ins", {"a": i, "b": "k", "v": 0}) for i in range(4)])
    assert a.dirty_overflow and not a.tracking_dirty and a.take_dirty() is None
    b = _applier(0)
    b.mark_dirty([("ins", {"a": 1, "b": "k", "v": 0})])
    assert not b.tracking_dirty and b.take_dirty() is None and not b.dirty_overflow


def test_plain_key_clauses_pick_only_plain_secondary_indexes():
    from console.engine.migration.tables import plain_key_clauses

    ddl = ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n"
           "  `c` varchar(20) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk` (`c`),\n"
           "  KEY `k_1` (`k`),\n  KEY `odd``name` (`c`(5),`k`) COMMENT 'x',\n"
           "  FULLTEXT KEY `ft` (`c`)\n) ENGINE=InnoDB")
    assert plain_key_clauses(ddl) == [("`k_1`", "ADD KEY `k_1` (`k`)"),
                                      ("`odd``name`", "ADD KEY `odd``name` (`c`(5),`k`) COMMENT 'x'")]


def test_the_cut_over_rename_locks_the_original_first():
    """The RENAME takes its metadata locks in byte order of the names: the
    original must come before the sentry and the ghost for every name (its
    request on the original is then the one queued behind the lock)."""
    from console.engine.migration.inspect import table_names

    for t in ("s1", "orders", "Orders", "2024x", "_a", "_A", "t", "T", "é", "a b", "x" * 60):
        ghost, _, old = table_names(t)
        assert locked_before(t, ghost) and locked_before(t, old), t
    # gh-ost's names: before the original for a name that starts lower-case
    assert not locked_before("orders", "_orders_gho")
    # byte order puts "Orders" first, but lower-cased (lower_case_table_names=1) it is not
    assert not locked_before("Orders", "_Orders_gho")
    assert not locked_before("ab", "a")


def test_ghost_writers_take_turns_in_arrival_order():
    """The copy and the binlog apply take turns on the ghost: a writer that
    arrives while another holds the turn goes next, before the holder's
    next chunk (which would otherwise take the AUTO-INC lock again)."""
    import threading
    import time

    from console.engine.migration.turns import Turns

    turns = Turns()
    order: list[str] = []
    first_in = threading.Event()

    def copy():
        with turns:
            first_in.set()
            order.append("chunk 1")
            time.sleep(0.2)          # the apply arrives meanwhile
        with turns:
            order.append("chunk 2")

    def apply():
        first_in.wait()
        with turns:
            order.append("apply batch")

    ts = [threading.Thread(target=copy), threading.Thread(target=apply)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(5)
    assert order == ["chunk 1", "apply batch", "chunk 2"]


def test_deferred_keys_fall_back_to_a_shared_lock_build_when_the_online_log_overflows():
    import pymysql
    import pytest

    from console.engine.migration.tables import add_keys

    class Cur:
        def __init__(self, fail_code):
            self.sql, self.fail_code = [], fail_code

        def execute(self, sql):
            self.sql.append(sql)
            if sql.endswith("LOCK=NONE") and self.fail_code:
                raise pymysql.err.OperationalError(self.fail_code, "boom")

    ok = Cur(None)
    assert add_keys(ok, "ALTER TABLE g ADD KEY k (k), ALGORITHM=INPLACE") == "NONE" and len(ok.sql) == 1
    big = Cur(1799)       # Creating index 'k' required more than 'innodb_online_alter_log_max_size'
    assert add_keys(big, "ALTER TABLE g ADD KEY k (k), ALGORITHM=INPLACE") == "SHARED"
    assert big.sql[-1].endswith("ALGORITHM=INPLACE, LOCK=SHARED")
    with pytest.raises(pymysql.err.OperationalError):   # anything else is not retried
        add_keys(Cur(1062), "ALTER TABLE g ADD KEY k (k), ALGORITHM=INPLACE")


def test_new_unique_keys_not_implied_by_an_old_one_are_found():
    from console.engine.migration.inspect import added_unique_keys

    old = {"PRIMARY": [("id", True)], "uk_a": [("a", True)], "uk_p": [("p", False)]}   # p: prefix
    to_ghost = {"id": "id", "a": "a2", "b": "b", "p": "p"}
    new = {"PRIMARY": [("id", True)],
           "uk_ab": [("a2", True), ("b", True)],     # contains old uk_a (renamed): implied
           "uk_b": [("b", True)],                    # new: rows may collide
           "uk_p": [("p", False)],                   # a prefix key is never an old key's proof
           "uk_idp": [("id", True), ("p", False)]}   # contains the primary key: implied
    assert added_unique_keys(old, new, to_ghost) == ["uk_b", "uk_p"]


def test_turns_are_a_no_op_without_an_auto_increment_column():
    """Without an AUTO-INC lock there is nothing to take turns for, and
    parallel copy chunks must stay parallel."""
    import threading

    from console.engine.migration.turns import Turns

    turns = Turns(needed=False)
    inside = threading.Barrier(2, timeout=5)

    def chunk():
        with turns:
            inside.wait()            # both inside at once, or BrokenBarrierError

    ts = [threading.Thread(target=chunk) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(5)
    assert not inside.broken


def _unit(n: int, ops=(), markers=()):
    from console.engine.migration.apply_stream import _Unit

    return _Unit(list(ops), f"0-1-{n}", ("mysql-bin.000001", 100 * n), list(markers))


def _op(i: int):
    return ("ins", {"a": i, "b": "k", "v": i})


def test_apply_batch_merges_what_is_queued_past_markers_and_signals_them_after_commit():
    """A checksum marker must not cut the batch short (each batch is a ghost
    transaction the copy waits for); it is signalled once the batch that
    includes it committed, and the applied position is the last unit's."""
    import queue

    a = _applier(0)
    a.applied_file = ("mysql-bin.000001", 4)
    batches: list[list] = []
    seen_at_commit: list[bool] = []
    t1, t2 = a.expect_marker(), a.expect_marker()
    a._apply = lambda conn, ops, pos: (batches.append(list(ops)),
                                  seen_at_commit.append(a._markers[t1].is_set()))
    q: queue.Queue = queue.Queue()
    for u in (_unit(1, [_op(1)], [t1]), _unit(2, [_op(2)]), _unit(3, [], [t2]), None):
        q.put(u)
    failed: list = []
    a._execute(None, q, failed)
    assert not failed
    assert batches == [[_op(1), _op(2)]] and seen_at_commit == [False]
    assert a._markers[t1].is_set() and a._markers[t2].is_set()
    assert a.applied_pos == "0-1-3" and a.applied_file == ("mysql-bin.000001", 300)
    assert a.batches == 1 and a.events_applied == 2


def test_apply_batch_stops_at_the_batch_size():
    import queue

    a = _applier(0)                      # batch size 10
    batches: list[list] = []
    a._apply = lambda conn, ops, pos: batches.append(list(ops))
    q: queue.Queue = queue.Queue()
    for i in range(4):
        q.put(_unit(i + 1, [_op(3 * i + j) for j in range(3)]))
    q.put(None)
    a._execute(None, q, [])
    assert [len(b) for b in batches] == [12]   # 3+3+3 < 10, +3: the limit is checked before each merge
    assert a.applied_pos == "0-1-4"


def test_apply_batch_takes_what_queued_while_it_waited_for_its_turn():
    """The copy holds the turn (a chunk in flight): units decoded meanwhile
    join the waiting batch instead of becoming batches of their own."""
    import queue
    import threading
    import time

    from console.engine.migration.turns import Turns

    a = _applier(0)
    a.turns = turns = Turns()
    batches: list[list] = []
    a._apply = lambda conn, ops, pos: batches.append(list(ops))
    q: queue.Queue = queue.Queue()
    turns.__enter__()                    # the copy's chunk
    q.put(_unit(1, [_op(1)]))
    ex = threading.Thread(target=a._execute, args=(None, q, []))
    ex.start()
    deadline = time.monotonic() + 5
    while turns._next < 2 and time.monotonic() < deadline:   # the batch waits for its turn
        time.sleep(0.01)
    assert turns._next == 2
    q.put(_unit(2, [_op(2)]))
    q.put(_unit(3, [_op(3)]))
    q.put(None)
    turns.__exit__(None, None, None)
    ex.join(5)
    assert not ex.is_alive()
    assert batches == [[_op(1), _op(2), _op(3)]]


def test_copied_chunks_join_the_prefix_in_order_and_gather_into_check_ranges():
    from types import SimpleNamespace

    from console.engine.migration.checksum import CheckRanges
    from console.engine.migration.copy import Copier
    from console.engine.migration.turns import Turns

    key = SimpleNamespace(columns=("id",), ghost_columns=("id",), name="PRIMARY")
    ins = SimpleNamespace(database="d", table="t", ghost="_t_gho", key=key,
                          shared=(("id", "id"), ("v", "v")))
    c = Copier(ins, Turns(needed=False))
    assert c.chunk_done((10,), (20,), 10) == []           # out of order: waits for the gap
    assert c.chunk_done(None, (10,), 10) == [(None, (10,), 10), ((10,), (20,), 10)]
    assert c.last == (20,)
    r = CheckRanges(lambda: 25)
    assert r.add([(None, (10,), 10), ((10,), (20,), 10)]) == []
    assert r.add([((20,), (30,), 10), ((30,), (40,), 10)]) == [(None, (30,))]
    assert r.rest() == [((30,), (40,))] and r.rest() == []
    assert r.add([((40,), (50,), 30)]) == [((40,), (50,))]
    with pytest.raises(AssertionError, match="out of order"):
        r.add([((60,), (70,), 10)])               # (50, 60] was skipped


@pytest.mark.parametrize("src, dst, want", [
    ("datetime", "datetime(6)", "DATETIME(6)"),
    ("datetime(6)", "datetime", "DATETIME(0)"),
    ("timestamp(3)", "datetime(3)", "DATETIME(3)"),
    ("time(3)", "time", "TIME(0)"),
    ("datetime", "date", "DATE"),
    ("float", "double", "DOUBLE"),
    ("double", "float", "FLOAT"),
    ("decimal(8,3)", "decimal(10,4)", "DECIMAL(10,4)"),
    ("varchar(12)", "bigint(20)", "SIGNED"),
    ("decimal(8,2)", "int(10) unsigned", "UNSIGNED"),
    ("int(11)", "bigint(20)", None),            # the same digits
    ("int(10) unsigned", "bigint(20) unsigned", None),
    ("varchar(10)", "varchar(20)", None),       # any string target: text as it is
    ("int(11)", "varchar(20)", None),
    ("enum('a','b')", "enum('a','b','c')", None),
    ("int(11)", "int(11) zerofill", None),      # no CAST prints the zeros
    ("datetime(6)", "datetime(6)", None),
])
def test_cast_target_gives_the_new_types_text(src, dst, want):
    assert cast_target(src, dst) == want


def test_checksum_expr_casts_inside_the_conversion():
    e = checksum_expr(["id", "s", "t"], {"s"}, set(), {"s": "SIGNED", "t": "DATETIME(6)"})
    assert "CAST(CONVERT(`s` USING utf8mb4) AS SIGNED)" in e and "CAST(`t` AS DATETIME(6))" in e


def test_check_socket_path_refuses_what_it_cannot_serve_and_never_replaces_a_file(tmp_path):
    import socket as socketmod

    from console.engine.migration.control import check_socket_path

    assert check_socket_path(str(tmp_path / "m.sock")) is False         # free
    with pytest.raises(UserError, match="does not exist"):
        check_socket_path(str(tmp_path / "nodir" / "m.sock"))
    with pytest.raises(UserError, match="107 bytes"):
        check_socket_path(str(tmp_path / ("x" * 120)))
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(UserError, match="is not a socket"):
        check_socket_path(str(f))
    assert f.read_text() == "keep"
    live = socketmod.socket(socketmod.AF_UNIX)
    path = str(tmp_path / "live.sock")
    live.bind(path)
    live.listen(1)
    with pytest.raises(UserError, match="another process serves it"):
        check_socket_path(path)
    live.close()                                   # the file stays: a stale socket
    assert check_socket_path(path) is True


def test_binlog_backlog_spans_rotated_files():
    from console.engine.migration.status import binlog_backlog

    assert binlog_backlog(("b.000003", 100), ("b.000003", 350), {}) == 250
    sizes = {"b.000003": 1000, "b.000004": 500, "b.000005": 9999}
    # rest of 3 (900) + all of 4 (500) + 5 up to the server's position (40)
    assert binlog_backlog(("b.000003", 100), ("b.000005", 40), sizes) == 1440
    assert binlog_backlog(("b.000003", 100), ("b.000006", 40), sizes) is None   # sizes too old
