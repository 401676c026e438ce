"""The copy's value check, without a server: which warnings stop a chunk
and what the one line says."""

from __future__ import annotations

from console.engine.migration.copycheck import (
    describe_key,
    refuse,
    row_of_warning,
    value_warnings,
)


class _Cur:
    def __init__(self, warnings):
        self.warning_count = len(warnings)
        self._w = warnings
        self.asked = False

    def execute(self, sql):
        assert sql == "SHOW WARNINGS"
        self.asked = True

    def fetchall(self):
        return self._w


def test_duplicates_unsafe_statements_and_notes_do_not_stop_a_chunk():
    cur = _Cur([("Warning", 1062, "Duplicate entry '1' for key 'PRIMARY'"),
                ("Note", 1265, "Data truncated for column 'd' at row 3"),
                ("Warning", 1592, "Unsafe statement written to the binary log"),
                ("Warning", 1265, "Data truncated for column 'v' at row 7")])
    assert value_warnings(cur) == [(1265, "Data truncated for column 'v' at row 7")]
    quiet = _Cur([])
    assert value_warnings(quiet) == [] and not quiet.asked      # no round trip without warnings


def test_the_line_names_the_table_the_key_and_the_servers_error():
    w = [(1265, "Data truncated for column 'dt' at row 2"), (1264, "Out of range value at row 4")]
    assert row_of_warning(w[0][1]) == 2 and row_of_warning("no row here") is None
    e = refuse(w, table="mig.t", key=describe_key(["id"], (2,)),
               strict_error="Incorrect date value: '2020-00-01' for column `mig`.`t_gho`.`dt` (error 1292)")
    assert str(e) == ("copy: the row id=2 of mig.t cannot be copied unchanged: Incorrect date value: "
                      "'2020-00-01' for column `mig`.`t_gho`.`dt` (error 1292) (+1 more warning(s) in "
                      "its chunk); zero dates: --allow-zero-in-date keeps them")
    e = refuse(w[:1], table="mig.t", key=None, strict_error=None)
    assert str(e) == ("copy: a row of mig.t cannot be copied unchanged: Data truncated for column 'dt' "
                      "(warning 1265)")
    assert e.exit_code == 2
