"""Drop other tables' row events before python-mysql-replication sees them.

The migration's binlog stream carries the copy's own row events (the whole
table, written to the ghost) plus every other table's; parsing each packet
into an event object is what makes python-mysql-replication slow.  This
connection class (passed as ``pymysql_wrapper``) looks at the raw packet
once the dump command was sent: TABLE_MAP events tell which table ids belong
to the tables we want; row events of any other table id, and the table maps
of other tables, are dropped right there; so is a table map identical to
the last one passed on for the same table id (the library keeps what it
decoded by table id until a rotation).  Everything else passes."""

from __future__ import annotations

from pymysql.protocol import MysqlPacket

from console.mysql.connection import Connection

TABLE_MAP = 0x13
ROTATE = 0x04
# v1, v2, MySQL partial update, MariaDB compressed v1 and v2
ROW_EVENTS = frozenset({0x17, 0x18, 0x19, 0x1E, 0x1F, 0x20, 0x27, 166, 167, 168, 169, 170, 171})
DUMP_COMMANDS = (0x12, 0x1E)  # COM_BINLOG_DUMP, COM_BINLOG_DUMP_GTID
_HEADER = 20                   # OK byte + 19-byte event header


class TableFilter:
    def __init__(self, tables: set[tuple[str, str]]):
        self.tables = {(s.encode(), t.encode()) for s, t in tables}
        self.wanted: set[int] = set()
        self.dropped = 0
        self.maps_repeated = 0
        # body of the last table map passed on, per wanted table id: the
        # library decodes every TABLE_MAP it gets (half of the apply's CPU
        # under a write load: one map per statement) and keeps the result by
        # table id until a rotation, so an identical map again is dropped
        self._maps: dict[int, bytes] = {}

    def keep(self, data: bytes) -> bool:
        if len(data) < _HEADER + 6 or data[0] != 0:
            return True
        et = data[5]
        if et == ROTATE:
            self._maps.clear()       # the library may clear its table map here
            return True
        if et == TABLE_MAP:
            tid = int.from_bytes(data[_HEADER:_HEADER + 6], "little")
            try:
                p = _HEADER + 8                      # table id (6) + flags (2)
                sl = data[p]
                schema = bytes(data[p + 1:p + 1 + sl])
                p += 1 + sl + 1                      # length, name, NUL
                tl = data[p]
                table = bytes(data[p + 1:p + 1 + tl])
            except IndexError:
                return True
            if (schema, table) in self.tables:
                self.wanted.add(tid)
                # the body without the event's checksum (it covers the header)
                body = bytes(data[_HEADER:-4])
                if self._maps.get(tid) == body:
                    self.maps_repeated += 1
                    return False
                self._maps[tid] = body
                return True
            self._maps.pop(tid, None)
            self.wanted.discard(tid)
        elif et in ROW_EVENTS:
            if int.from_bytes(data[_HEADER:_HEADER + 6], "little") in self.wanted:
                return True
        else:
            return True
        self.dropped += 1
        return False


def connection_class(filt: TableFilter):
    class FilteringConnection(Connection):
        _dumping = False

        def _write_bytes(self, data):
            if len(data) > 4 and data[4] in DUMP_COMMANDS:
                self._dumping = True
            return super()._write_bytes(data)

        def _read_packet(self, packet_type=MysqlPacket):
            while True:
                pkt = super()._read_packet(packet_type)
                if not self._dumping or filt.keep(pkt._data):
                    return pkt

    return FilteringConnection
