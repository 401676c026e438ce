"""Replay stored transactions into a server, as fast as the server allows.

Row events go as ``BINLOG '<base64>'`` statements (the server applies them
itself, exactly as the source wrote them: no decoding here), DDL and other
statements as their text with the session settings of their QUERY event
after a USE of its default database (not for CREATE/DROP DATABASE: their
event names the database they create or drop, which need not exist), and
each transaction as BEGIN ... COMMIT.  Statements of 16 MiB or more go as
several packets (``protocol.command_packets``).  Statements are pipelined: up to
``BATCH_STATEMENTS`` COM_QUERY packets are written back to back by a sender
thread while their replies are read in order here, so a batch costs one
round trip.  (Multi-statement
packets cannot be used: MariaDB 10.11 answers a row-event BINLOG statement
with an OK packet lacking SERVER_MORE_RESULTS_EXISTS, which desynchronises the
client.)  The first error aborts the replay, reported with the GTIDs of the
batch; the restored copy is then unusable and the restore fails.

Supported: ROW binlogs (TABLE_MAP + rows events, any version, compressed
or not), QUERY events (DDL, statement DML with INTVAR/RAND), XID.  Not
supported (a clear error): USER_VAR events of statement-based DML.
"""

from __future__ import annotations

import base64
import re
import struct
import threading

import pymysql
from pymysql.connections import MySQLResult
from pymysql.constants import COMMAND

from console.engine.replay.txn import Txn
from console.errors import UserError
from console.mysql.binlog import events as E
from console.mysql.binlog.protocol import command_packets

INTVAR, RAND, USER_VAR = 5, 13, 14
ROWS_TYPES = frozenset({23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171})
SKIP_TYPES = frozenset({E.ANNOTATE_ROWS, 27, E.BINLOG_CHECKPOINT, E.GTID_LIST, 35, 29})
STMT_END_F = 1
# CREATE [OR REPLACE] / DROP DATABASE|SCHEMA, after blanks and comments
DATABASE_DDL = re.compile(rb"(?:\s+|/\*(?!!).*?\*/|#[^\n]*\n|--\s[^\n]*\n)*"
                          rb"(?:CREATE\s+(?:OR\s+REPLACE\s+)?|DROP\s+)(?:DATABASE|SCHEMA)\b",
                          re.IGNORECASE | re.DOTALL)
BATCH_BYTES = 8 << 20
BATCH_STATEMENTS = 5000

# QUERY status variable codes and their fixed sizes (variable ones handled below)
_Q_FIXED = {0: 4, 1: 8, 3: 4, 4: 6, 7: 2, 8: 2, 9: 8, 10: 4, 13: 3, 16: 1, 17: 8, 18: 2, 19: 1,
            20: 1, 128: 3, 129: 8, 130: 1}


class ReplayError(UserError):
    pass


def query_parts(ev: bytes, crc_len: int) -> tuple[bytes, bytes, dict]:
    """(db, statement, status vars) of a QUERY event."""
    h = E.HEADER_LEN
    db_len = ev[h + 8]
    status_len = struct.unpack_from("<H", ev, h + 11)[0]
    sv = ev[h + 13:h + 13 + status_len]
    db = ev[h + 13 + status_len:h + 13 + status_len + db_len]
    stmt = ev[h + 13 + status_len + db_len + 1:len(ev) - crc_len]
    out: dict = {}
    p = 0
    while p < len(sv):
        code = sv[p]
        p += 1
        if code == 0:
            out["flags2"] = struct.unpack_from("<I", sv, p)[0]
        elif code == 1:
            out["sql_mode"] = struct.unpack_from("<Q", sv, p)[0]
        elif code == 4:
            out["charset"] = struct.unpack_from("<HHH", sv, p)
        elif code == 3:
            out["auto_increment"] = struct.unpack_from("<HH", sv, p)
        if code in _Q_FIXED:
            p += _Q_FIXED[code]
        elif code in (2, 5, 6):      # catalog (old, len+nul), time zone, catalog: 1-byte length
            n = sv[p]
            if code == 5:
                out["time_zone"] = bytes(sv[p + 1:p + 1 + n])
            p += 1 + n + (1 if code == 2 else 0)
        elif code == 11:             # invoker: user, host
            n = sv[p]
            p += 1 + n
            n = sv[p]
            p += 1 + n
        elif code == 12:             # updated db names
            n = sv[p]
            p += 1
            if n != 254:
                for _ in range(n):
                    p = sv.index(b"\0", p) + 1
        else:
            break                    # unknown: keep what we have
    return bytes(db), bytes(stmt), out


class Replayer:
    """``keep_gtids``: each transaction is written with its own GTID (its
    domain, server id and sequence number set in the session before it),
    as a failover's salvage needs; a restore lets the server number them."""

    def __init__(self, conn: pymysql.Connection, *, keep_gtids: bool = False):
        self.conn = conn
        self.keep_gtids = keep_gtids
        self.parts: list[bytes] = []
        self.size = 0
        self.fde = b""
        self.crc_len = 4
        self.db = b""
        self.session: dict = {}
        self.current = ""
        self.first_in_batch = ""
        self.transactions = 0
        self.bytes = 0

    def _add(self, stmt: bytes) -> None:
        self.parts.append(stmt)
        self.size += len(stmt) + 1

    def set_fde(self, fde: bytes) -> None:
        if fde == self.fde:
            return
        self.fde = fde
        self.crc_len = 4 if E.fde_checksum_alg(fde) == E.CHECKSUM_CRC32 else 0
        self._add(b"BINLOG '" + base64.b64encode(fde) + b"'")

    def _query_session(self, sv: dict, ts: int) -> None:
        sets = [b"TIMESTAMP=%d" % ts]
        if "sql_mode" in sv and self.session.get("sql_mode") != sv["sql_mode"]:
            sets.append(b"@@session.sql_mode=%d" % sv["sql_mode"])
        if "charset" in sv and self.session.get("charset") != sv["charset"]:
            a, b, c = sv["charset"]
            sets.append(b"@@session.character_set_client=%d,@@session.collation_connection=%d,"
                        b"@@session.collation_server=%d" % (a, b, c))
        if "flags2" in sv:
            f = sv["flags2"]
            sets.append(b"@@session.foreign_key_checks=%d,@@session.unique_checks=%d" % (
                0 if f & (1 << 26) else 1, 0 if f & (1 << 27) else 1))
        if "time_zone" in sv and self.session.get("time_zone") != sv["time_zone"]:
            sets.append(b"@@session.time_zone='" + sv["time_zone"].replace(b"'", b"''") + b"'")
        self.session.update({k: sv[k] for k in ("sql_mode", "charset", "time_zone") if k in sv})
        self._add(b"SET " + b",".join(sets))

    def add(self, t: Txn) -> None:
        data = t.data
        p, n = 0, len(data)
        rows: list[bytes] = []
        if not self.first_in_batch:
            self.first_in_batch = t.gtid
        while p < n:
            size = int.from_bytes(data[p + 9:p + 13], "little")
            ev = data[p:p + size]
            p += size
            typ = ev[4]
            if typ == E.GTID:
                seq, domain, flags2 = E.gtid_body(ev)
                if self.keep_gtids:
                    self._add(b"SET @@session.gtid_domain_id=%d,@@session.server_id=%d,"
                              b"@@session.gtid_seq_no=%d" % (domain, t.server_id, seq))
                if not flags2 & E.FL_STANDALONE:
                    self._add(b"BEGIN")
            elif typ == E.TABLE_MAP or typ in ROWS_TYPES:
                rows.append(ev)
                if typ in ROWS_TYPES and struct.unpack_from("<H", ev, E.HEADER_LEN + 6)[0] & STMT_END_F:
                    self._add(b"BINLOG '" + base64.b64encode(b"".join(rows)) + b"'")
                    rows = []
            elif typ == E.XID:
                self._add(b"COMMIT")
            elif typ == E.QUERY:
                db, stmt, sv = query_parts(ev, self.crc_len)
                word = stmt.lstrip()[:8].upper()
                if word.startswith(b"BEGIN"):
                    continue
                if word.startswith((b"COMMIT", b"ROLLBACK")):
                    self._add(stmt)
                    continue
                self._query_session(sv, E.HEADER.unpack_from(ev, 0)[0])
                if DATABASE_DDL.match(stmt):
                    # its event names the database it creates or drops (which
                    # need not exist): no USE; and the session's default
                    # database may be gone afterwards, so USE again next time
                    self._add(stmt)
                    self.db = b""
                    continue
                if db and db != self.db:
                    self._add(b"USE `" + db.replace(b"`", b"``") + b"`")
                    self.db = db
                self._add(stmt)
            elif typ == INTVAR:
                kind = ev[E.HEADER_LEN]
                val = struct.unpack_from("<Q", ev, E.HEADER_LEN + 1)[0]
                self._add(b"SET INSERT_ID=%d" % val if kind == 2 else b"SET LAST_INSERT_ID=%d" % val)
            elif typ == RAND:
                s1, s2 = struct.unpack_from("<QQ", ev, E.HEADER_LEN)
                self._add(b"SET @@RAND_SEED1=%d, @@RAND_SEED2=%d" % (s1, s2))
            elif typ in SKIP_TYPES:
                continue
            else:
                raise ReplayError(f"transaction {t.gtid}: cannot replay a "
                                  f"{E.TYPE_NAMES.get(typ, f'type {typ}')} event (statement-based "
                                  f"binlog with user variables?)")
        if rows:
            self._add(b"BINLOG '" + base64.b64encode(b"".join(rows)) + b"'")
        self.transactions += 1
        self.bytes += n
        self.current = t.gtid
        if self.size >= BATCH_BYTES or len(self.parts) >= BATCH_STATEMENTS:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        parts = self.parts
        first, last = self.first_in_batch, self.current
        self.parts, self.size, self.first_in_batch = [], 0, ""
        try:
            self._pipeline(parts)
        except (pymysql.MySQLError, OSError) as e:
            if self.conn.open:
                self.conn.close()
            msg = e.args[1] if isinstance(e, pymysql.MySQLError) and len(e.args) > 1 else str(e)
            raise ReplayError(f"replay failed in transactions {first}..{last}: {msg}") from None

    def _read_results(self, reply_seqs: list[int]) -> None:
        conn = self.conn
        for seq in reply_seqs:
            conn._next_seq_id = seq
            MySQLResult(conn).read()
        conn._result = None

    def _pipeline(self, stmts: list[bytes]) -> None:
        """Send COM_QUERY packets from a thread while reading the replies here
        (a writer that never reads would deadlock once the replies fill the
        socket buffer)."""
        if not stmts:
            return
        framed = [command_packets(COMMAND.COM_QUERY, s) for s in stmts]
        data = b"".join(packets for packets, _ in framed)
        reply_seqs = [seq for _, seq in framed]
        del framed
        sock = self.conn._sock
        failed: list[BaseException] = []

        def send() -> None:
            try:
                sock.sendall(data)
            except OSError as e:
                failed.append(e)

        th = threading.Thread(target=send, name="replay-send", daemon=True)
        th.start()
        try:
            self._read_results(reply_seqs)
        except BaseException:
            if self.conn.open:
                self.conn.close()
            raise
        finally:
            th.join()
        if failed:
            raise failed[0]
