from console.mysql.flavor import (
    MariaDBDialect,
    MySQL84Dialect,
    MySQLDialect,
    dialect_for,
    normalize_replica_row,
)


def test_dialect_detection():
    assert isinstance(dialect_for("10.11.19-MariaDB-0+deb12u1-log"), MariaDBDialect)
    assert isinstance(dialect_for("8.0.36"), MySQLDialect)
    assert isinstance(dialect_for("8.4.2"), MySQL84Dialect)
    assert dialect_for("8.4.2").binlog_status_sql == "SHOW BINARY LOG STATUS"
    assert dialect_for("8.0.36").binlog_status_sql == "SHOW MASTER STATUS"


def test_replica_rows_normalised_across_flavors():
    maria = normalize_replica_row({"Connection_name": "", "Master_Host": "10.0.0.1", "Master_Port": 3306,
                                   "Slave_IO_Running": "Yes", "Slave_SQL_Running": "No",
                                   "Seconds_Behind_Master": None, "Using_Gtid": "Slave_Pos",
                                   "Last_SQL_Error": "boom", "Gtid_IO_Pos": "0-1-5"})
    mysql = normalize_replica_row({"Channel_Name": "", "Source_Host": "10.0.0.1", "Source_Port": 3306,
                                   "Replica_IO_Running": "Yes", "Replica_SQL_Running": "No",
                                   "Seconds_Behind_Source": None, "Auto_Position": 1,
                                   "Last_SQL_Error": "boom", "Retrieved_Gtid_Set": "u:1-5"})
    for r in (maria, mysql):
        assert r.source_host == "10.0.0.1" and r.source_port == 3306
        assert r.io_ok and not r.sql_ok and r.seconds_behind is None and r.last_sql_error == "boom"


def test_statements_per_flavor():
    m, y = dialect_for("10.11.5-MariaDB"), dialect_for("8.4.0")
    assert m.set_read_only_sql(True) == ["SET GLOBAL read_only = ON"]
    assert y.set_read_only_sql(True)[-1] == "SET GLOBAL super_read_only = ON"
    assert "MASTER_GTID_WAIT" in m.wait_for_gtid_sql() and "WAIT_FOR_EXECUTED_GTID_SET" in y.wait_for_gtid_sql()
    assert m.wait_succeeded(0) and not m.wait_succeeded(-1)
    assert y.wait_succeeded(0) and not y.wait_succeeded(1)
    sql, args = m.change_source_sql("h", 1, "u")
    assert "MASTER_USE_GTID=slave_pos" in sql and args == ("h", 1, "u")
    sql, _ = y.change_source_sql("h", 1, "u")
    assert "SOURCE_AUTO_POSITION=1" in sql
