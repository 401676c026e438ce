"""What the dump client yields: batches (fast path) and single events."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.mysql.binlog import events as E
from console.mysql.gtid import GtidPosition


@dataclass
class Batch:
    """Events received in one read of the socket, all from one upstream file.

    ``data`` holds the events to store, byte for byte (header..CRC), in order
    (a ``bytearray`` from ``batches()``, ``bytes`` with ``with_events``).
    ``boundary_end`` is the length of the prefix of ``data`` that ends at the
    last transaction boundary (-1: none in this batch); ``boundary_pos`` is
    the upstream position after it and ``gtid_state`` the GTID position there
    (a ``GtidPosition``).  ``events`` is filled only when asked for:
    ``(offset, size, type, log_pos, boundary, gtid)`` per event.
    """

    file: str
    data: bytes = b""
    count: int = 0
    boundary_end: int = -1
    boundary_pos: int = 0
    gtid_state: GtidPosition = field(default_factory=GtidPosition)
    new_file: bool = False       # data starts with the FDE of a new file (write the magic first)
    rotate_to: str = ""          # batch ends with a real ROTATE to this file
    upstream_pos: int = 0        # newest upstream position seen (events or heartbeat)
    heartbeat: bool = False
    last_ts: int = 0             # header timestamp of the last event in data
    idle: bool = False           # nothing more is waiting on the socket right now
    eof: bool = False            # the server reached its end (stop_at_end)
    events: list | None = None
    need_ack: bool = False       # semi-sync: the upstream waits for an ACK of boundary_pos


@dataclass(frozen=True)
class RawEvent:
    """One event as stored, with where it ends upstream and the GTID state.

    ``boundary`` is True when the event ends a transaction (or stands outside
    one): ``file:end_pos`` and ``position`` (GTID position, MariaDB notation)
    are then a safe place to resume from.  ``gtid`` names the transaction the
    boundary event closes ("" outside transactions).
    """

    file: str
    end_pos: int
    timestamp: int
    type: int
    server_id: int
    flags: int
    data: bytes
    boundary: bool
    gtid: str
    position: str

    @property
    def type_name(self) -> str:
        return E.TYPE_NAMES.get(self.type, f"type{self.type}")
