"""One complete transaction of a binlog stream: the unit a backup segment
holds, a relay salvage reads and the replayer applies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Txn:
    """One complete transaction: its GTID, commit time and raw events."""

    domain: int
    server_id: int
    seq: int
    commit_ts: int
    data: bytes
    end_pos: int = 0

    @property
    def gtid(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"
