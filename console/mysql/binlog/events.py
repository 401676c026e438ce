"""Binlog event headers and the few event bodies the relay must understand.

Only headers are decoded on the hot path.  A handful of bodies are read
because transaction boundaries and positions depend on them: GTID (start of
a group), XID / COMMIT query / XA PREPARE (end of a group), GTID_LIST (the
GTID state at the start of a file), ROTATE (next file) and
FORMAT_DESCRIPTION (checksum algorithm of the file).

Header (v4, 19 bytes, little endian)::

    timestamp u32 | type u8 | server_id u32 | event_size u32 | log_pos u32 | flags u16

``log_pos`` is the position *after* the event in the upstream's binlog file.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from console.mysql.gtid import GtidPosition

MAGIC = b"\xfebin"
HEADER_LEN = 19
CRC_LEN = 4
HEADER = struct.Struct("<IBIIIH")

# event types (MySQL common + MariaDB)
QUERY = 2
STOP = 3
ROTATE = 4
FORMAT_DESCRIPTION = 15
XID = 16
TABLE_MAP = 19
HEARTBEAT = 27
MYSQL_GTID = 33
MYSQL_ANONYMOUS_GTID = 34
MYSQL_PREVIOUS_GTIDS = 35
XA_PREPARE = 38
ANNOTATE_ROWS = 160
BINLOG_CHECKPOINT = 161
GTID = 162
GTID_LIST = 163
START_ENCRYPTION = 164
QUERY_COMPRESSED = 165

TYPE_NAMES = {
    QUERY: "Query", STOP: "Stop", ROTATE: "Rotate", FORMAT_DESCRIPTION: "Format_desc",
    XID: "Xid", TABLE_MAP: "Table_map", HEARTBEAT: "Heartbeat", MYSQL_GTID: "Gtid(mysql)",
    MYSQL_ANONYMOUS_GTID: "Anonymous_gtid", MYSQL_PREVIOUS_GTIDS: "Previous_gtids",
    XA_PREPARE: "XA_prepare", ANNOTATE_ROWS: "Annotate_rows",
    BINLOG_CHECKPOINT: "Binlog_checkpoint", GTID: "Gtid", GTID_LIST: "Gtid_list",
    START_ENCRYPTION: "Start_encryption", QUERY_COMPRESSED: "Query_compressed",
}

# header flags
LOG_EVENT_BINLOG_IN_USE_F = 0x1
LOG_EVENT_ARTIFICIAL_F = 0x20

# MariaDB GTID event flags2
FL_STANDALONE = 1

# FORMAT_DESCRIPTION checksum algorithm byte
CHECKSUM_OFF = 0
CHECKSUM_CRC32 = 1

_GTID_BODY = struct.Struct("<QIB")
_GTID_LIST_ITEM = struct.Struct("<IIQ")
_U32 = struct.Struct("<I")


class BinlogFormatError(Exception):
    """A stream or file does not hold well-formed binlog events."""


@dataclass(frozen=True)
class EventHeader:
    timestamp: int
    type: int
    server_id: int
    size: int
    log_pos: int
    flags: int

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type{self.type}")

    @property
    def artificial(self) -> bool:
        return bool(self.flags & LOG_EVENT_ARTIFICIAL_F)


def parse_header(buf, offset: int = 0) -> EventHeader:
    return EventHeader(*HEADER.unpack_from(buf, offset))


def crc_ok(event) -> bool:
    """True when the trailing CRC32 of ``event`` (header + body + crc) matches."""
    mv = memoryview(event)
    return zlib.crc32(mv[:-CRC_LEN]) == _U32.unpack_from(mv, len(mv) - CRC_LEN)[0]


def fde_checksum_alg(event) -> int:
    """Checksum algorithm declared by a FORMAT_DESCRIPTION event (0 off, 1 CRC32).

    Since MySQL 5.6.1 / MariaDB 5.3 the FDE ends with the algorithm byte and
    four checksum bytes, whatever the algorithm."""
    return event[len(event) - CRC_LEN - 1]


def rotate_target(event, crc_len: int) -> tuple[str, int]:
    """(next file name, position) of a ROTATE event."""
    pos = struct.unpack_from("<Q", event, HEADER_LEN)[0]
    name = bytes(event[HEADER_LEN + 8:len(event) - crc_len]).decode("utf-8", "replace")
    return name, pos


def gtid_body(event) -> tuple[int, int, int]:
    """(seq_no, domain_id, flags2) of a MariaDB GTID event."""
    return _GTID_BODY.unpack_from(event, HEADER_LEN)


def gtid_list(event) -> list[tuple[int, int, int]]:
    """[(domain, server_id, seq), ...] of a MariaDB GTID_LIST event."""
    count = _U32.unpack_from(event, HEADER_LEN)[0] & 0x0FFFFFFF
    out = []
    off = HEADER_LEN + 4
    for _ in range(count):
        out.append(_GTID_LIST_ITEM.unpack_from(event, off))
        off += _GTID_LIST_ITEM.size
    return out


def query_text(event, crc_len: int) -> bytes:
    """The statement of a QUERY event (without checksum)."""
    db_len = event[HEADER_LEN + 8]
    status_len = struct.unpack_from("<H", event, HEADER_LEN + 11)[0]
    start = HEADER_LEN + 13 + status_len + db_len + 1
    return bytes(event[start:len(event) - crc_len])


_ENDS = (b"COMMIT", b"ROLLBACK", b"XA COMMIT", b"XA ROLLBACK")


def query_ends_group(event, crc_len: int) -> bool:
    q = query_text(event, crc_len).lstrip().upper()
    return q.startswith(_ENDS)


class GroupTracker:
    """Follows event groups (transactions) and the GTID position.

    ``feed(type, event, crc_len)`` returns True when the event ends a group or
    stands outside any group: the position after it is a safe place to
    resume from.  ``state`` is the ``GtidPosition`` after the newest
    complete transaction (MariaDB ``gtid_binlog_pos`` style); ``last_gtid``
    is the (domain, server_id, seq) of the group that just ended (None for
    events outside groups).  Only MariaDB GTIDs are tracked; MySQL groups
    are delimited but their GTIDs are not decoded.
    """

    __slots__ = ("in_group", "standalone", "pending", "state", "last_gtid", "first_query")

    def __init__(self, state: GtidPosition | None = None):
        self.in_group = False
        self.standalone = False
        self.first_query = False
        self.pending: tuple[int, int, int] | None = None  # (domain, server, seq)
        self.state = state.copy() if state is not None else GtidPosition()
        self.last_gtid: tuple[int, int, int] | None = None

    def reset_group(self) -> None:
        """Forget a partial group (a reconnect restarts at a boundary)."""
        self.in_group = False
        self.pending = None

    def feed(self, typ: int, event, crc_len: int) -> bool:
        if typ == XID or typ == XA_PREPARE:
            return self.end_group()
        if typ == GTID:
            self.begin_gtid(event, 0)
            return False
        if typ == MYSQL_GTID or typ == MYSQL_ANONYMOUS_GTID:
            self.in_group, self.standalone, self.first_query, self.pending = True, False, True, None
            return False
        if not self.in_group:
            self.last_gtid = None
            if typ == GTID_LIST:
                for domain, server, seq in gtid_list(event):
                    self.state.put_newer(domain, server, seq)
            return True
        if typ == QUERY or typ == QUERY_COMPRESSED:
            if self.standalone:
                return self.end_group()
            if typ == QUERY and query_ends_group(event, crc_len):
                return self.end_group()
            if self.first_query:  # MySQL: a DDL right after the GTID is its own group
                self.first_query = False
                if typ == QUERY and query_text(event, crc_len).lstrip().upper() != b"BEGIN":
                    return self.end_group()
        return False

    def begin_gtid(self, buf, off: int) -> None:
        """A MariaDB GTID event starting at ``buf[off]`` opens a group."""
        seq, domain, flags2 = _GTID_BODY.unpack_from(buf, off + HEADER_LEN)
        self.in_group = True
        self.standalone = bool(flags2 & FL_STANDALONE)
        self.first_query = False
        self.pending = (domain, _U32.unpack_from(buf, off + 5)[0], seq)

    def end_group(self) -> bool:
        """XID / XA PREPARE (or the group's last QUERY): the group is complete."""
        self.in_group = False
        g = self.pending
        self.last_gtid = g
        if g is not None:
            self.state.put(g[0], g[1], g[2])
            self.pending = None
        return True
