"""A logical (mariadb-dump method) snapshot restores every value exactly:
FLOAT (the server prints it with 6 significant digits: 123456792 came back
as 123457000), DOUBLE, DECIMAL, BLOB, BIT, zero and partial dates,
fractional times, utf8mb4 and latin1 text, JSON, ENUM/SET, geometry, INET6
and UUID, invisible and generated columns, a table without a key; triggers
do not fire again while the data loads.  Compared row by row on the source
and the restored copy (CHECKSUM TABLE, and a SELECT of exact forms)."""

import random
import struct

import pytest

from console.engine.backup.restore import restore
from tests.support.backup_helpers import running_backup, take_snapshot, wait_backed_up
from tests.support.sandboxes import free_port_block

pytestmark = pytest.mark.integration
DB = "bk_exact"

SCHEMA = [
    f"DROP DATABASE IF EXISTS {DB}",
    f"CREATE DATABASE {DB}",
    f"""CREATE TABLE {DB}.v (
        id INT PRIMARY KEY,
        f FLOAT, f73 FLOAT(7,3), fu FLOAT UNSIGNED, d DOUBLE, d52 DOUBLE(5,2),
        dec1 DECIMAL(65,30), dec2 DECIMAL(10,0) UNSIGNED, i BIGINT UNSIGNED, ti TINYINT,
        b BLOB, vb VARBINARY(300), bn BINARY(4), bt BIT(13), b1 BIT(1),
        dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(3), y YEAR,
        s VARCHAR(200) CHARACTER SET utf8mb4, l TEXT CHARACTER SET latin1,
        c CHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, j JSON,
        e ENUM('a','b','ü') CHARACTER SET utf8mb4, st SET('x','y','z'),
        g POINT, ip INET6, u UUID,
        hid INT INVISIBLE DEFAULT 7,
        gen DOUBLE AS (d / 2) VIRTUAL, gens VARCHAR(210) AS (CONCAT(s, '!')) PERSISTENT
    ) DEFAULT CHARSET=utf8mb4""",
    f"CREATE TABLE {DB}.nokey (f FLOAT, d DOUBLE, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4",
    f"CREATE TABLE {DB}.fired (id INT AUTO_INCREMENT PRIMARY KEY, src INT)",
    f"CREATE TRIGGER {DB}.v_ins AFTER INSERT ON {DB}.v FOR EACH ROW "
    f"INSERT INTO {DB}.fired (src) VALUES (NEW.id)",
    f"CREATE VIEW {DB}.vv AS SELECT id, f, s FROM {DB}.v",
]

# the exact form of every column (strings and binary as hex, FLOAT widened)
EXACT = {
    "v": "id, CAST(f AS DOUBLE), CAST(f73 AS DOUBLE), CAST(fu AS DOUBLE), d, d52, dec1, dec2, "
         "i, ti, HEX(b), HEX(vb), HEX(bn), bt + 0, b1 + 0, CAST(dt AS CHAR), CAST(dtm AS CHAR), "
         "CAST(ts AS CHAR), CAST(tm AS CHAR), y, HEX(s), HEX(l), HEX(c), HEX(j), HEX(e), "
         "HEX(st), HEX(g), CAST(ip AS CHAR), CAST(u AS CHAR), hid, gen, HEX(gens)",
    "nokey": "CAST(f AS DOUBLE), d, HEX(s)",
    "fired": "id, src",
}


def _f32(rng) -> float:
    while True:
        x = struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0]
        if x == x and abs(x) != float("inf"):
            return x


def _f64(rng) -> float:
    while True:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if x == x and abs(x) != float("inf"):
            return x


def _rows(rng, first: int, n: int):
    fixed = [
        (123456789.0, 1.2345678, 16777217.0, 0.1 + 0.2, 1.005, "0.000000000000000000000000000001",
         "9999999999", 2**64 - 1, -128, b"\x00\x01'\\\"\n\r\x1a\xff", b"", b"\x00\x00ab",
         0b1010101010101, 1, "0000-00-00", "2024-02-29 23:59:59.999999",
         "2000-01-01 00:00:00.000001", "-838:59:59.000", 1901, "h\u00e9llo \U0001F600 '\\\" \t",
         "caf\u00e9 \u00fc\u00df", "ab ", '{"k": [1, 2.5, "\u00fc"], "n": null}', "\u00fc", "x,z",
         "POINT(1.5 -2.25)", "::ffff:1.2.3.4", "123e4567-e89b-12d3-a456-426614174000"),
        (-3.4e38, 1.235, 0.0, -0.0, -999.99, "-12345678901234567890123456789012345.5",
         "0", 0, 127, None, b"\xff" * 300, b"\xff\xfe\xfd\xfc", 0, 0, "2020-00-00",
         "0000-00-00 00:00:00.000000", None, "00:00:00.001", 2155, "", "", "", "[]", "a", "",
         "POINT(0 0)", "2001:db8::1", "00000000-0000-0000-0000-000000000000"),
        (1.17549435e-38, None, 3.4e38, 5e-324, 0.01, None, None, None, None, None, None, None,
         None, None, "2024-05-00", None, "2030-01-19 03:14:07.999999", "838:59:59.999", 0,
         None, None, None, None, None, None, None, None, None),
    ]
    out = []
    for k in range(n):
        if first + k - 1 < len(fixed):
            vals = fixed[first + k - 1]
        else:
            vals = (_f32(rng), round(rng.uniform(-9999, 9999), 3), abs(_f32(rng)), _f64(rng),
                    round(rng.uniform(-999, 999), 2), f"{rng.randint(-10**30, 10**30)}.{rng.randint(0, 10**29)}",
                    str(rng.randint(0, 10**9)), rng.getrandbits(64), rng.randint(-128, 127),
                    rng.randbytes(rng.randint(0, 2000)), rng.randbytes(rng.randint(0, 300)),
                    rng.randbytes(4), rng.getrandbits(13), rng.getrandbits(1),
                    f"{rng.randint(0, 9999):04d}-{rng.randint(0, 12):02d}-{rng.randint(0, 28):02d}",
                    f"2{rng.randint(0, 999):03d}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} "
                    f"1{rng.randint(0, 9)}:3{rng.randint(0, 9)}:0{rng.randint(0, 9)}.{rng.randint(0, 999999):06d}",
                    None, f"{rng.randint(-838, 838)}:{rng.randint(0, 59):02d}:00.{rng.randint(0, 999):03d}",
                    rng.randint(1901, 2155), "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(160, 0x2FFF), rng.randint(0x1F300, 0x1F64F)])) for _ in range(rng.randint(0, 60))),
                    "".join(chr(rng.randint(32, 255)) for _ in range(rng.randint(0, 80))),
                    rng.choice(["", "a", "zz\u00fc"]), f'{{"f": {_f64(rng)!r}, "s": "\u00e9\U0001F600"}}',
                    rng.choice(["a", "b", "\u00fc", None]), rng.choice(["", "x", "y,z", "x,y,z"]),
                    f"POINT({rng.uniform(-1e6, 1e6)!r} {rng.uniform(-90, 90)!r})", f"fe80::{rng.getrandbits(16):x}",
                    f"123e4567-e89b-12d3-a456-4266141740{rng.randint(0, 99):02d}")
        out.append((first + k, *vals))
    return out


INSERT = (f"INSERT INTO {DB}.v (id, f, f73, fu, d, d52, dec1, dec2, i, ti, b, vb, bn, bt, b1, dt, "
          f"dtm, ts, tm, y, s, l, c, j, e, st, g, ip, u) VALUES "
          f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
          f"%s, %s, %s, %s, %s, ST_GeomFromText(%s), %s, %s)")


def _write(conn, rows, nokey_rng) -> None:
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")       # zero and partial dates
        for r in rows:
            cur.execute(INSERT, [repr(x) if isinstance(x, float) else x for x in r])
            cur.execute(f"INSERT INTO {DB}.nokey VALUES (%s, %s, %s)",
                        (repr(_f32(nokey_rng)), repr(_f64(nokey_rng)), "n\u00e9"))
        cur.execute(f"INSERT INTO {DB}.nokey VALUES (%s, %s, %s)", (repr(_f32(nokey_rng)), None, None))


def _exact(conn, table: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {EXACT[table]} FROM {DB}.{table}")
        return sorted(cur.fetchall(), key=repr)


def _checksum(conn, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {DB}.{table} EXTENDED")
        return cur.fetchone()[1]


def test_dump_snapshot_restores_every_value_exactly(sandbox, tmp_path):
    rng = random.Random(20261203)
    sandbox.sql("node1", *SCHEMA)
    src = sandbox.connect("node1")
    try:
        _write(src, _rows(rng, 1, 300), rng)             # in the snapshot
        with running_backup(sandbox, tmp_path, start_from="now") as (engine, task):
            take_snapshot(engine, task, "mariadb-dump")
            _write(src, _rows(rng, 1001, 50), rng)       # replayed from the log backup
            gtid = wait_backed_up(sandbox, task)
        port = free_port_block(1)
        r = restore(tmp_path / "store", tmp_path / "restored", port=port, to_gtid=gtid,
                    keep_running=True)
        try:
            assert r.snapshot_method == "mariadb-dump" and r.restored_gtid == gtid
            dst = r.server.connect()
            try:
                for table in EXACT:
                    want, got = _exact(src, table), _exact(dst, table)
                    assert len(got) == len(want), table
                    diff = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
                    assert not diff, f"{table}: {len(diff)} rows differ, first {diff[0]}"
                    assert _checksum(dst, table) == _checksum(src, table), table
                with dst.cursor() as cur:
                    cur.execute("SELECT TABLE_NAME FROM information_schema.VIEWS "
                                "WHERE TABLE_SCHEMA = %s", (DB,))
                    assert cur.fetchall() == (("vv",),)     # (its definer is not restored)
                    cur.execute(f"SHOW TRIGGERS FROM {DB}")
                    assert [t[0] for t in cur.fetchall()] == ["v_ins"]
            finally:
                dst.close()
        finally:
            r.stop()
    finally:
        src.close()
