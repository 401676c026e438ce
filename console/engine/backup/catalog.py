"""What the backup storage holds: log segments, snapshots and the checkpoint.

Publish order for a segment: data object, then its manifest (the segment
exists from here on), then ``checkpoint.json``.  After a crash the last
manifest is the truth: data objects numbered after it are orphans and are
removed; the checkpoint is rebuilt from the last manifest if it lags.  The
checkpoint never moves backwards (sequence number and GTID per domain).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from console.engine.backup.segments import (
    LOG_PREFIX,
    SegmentManifest,
    data_key,
    manifest_key,
)
from console.engine.backup.storage import Storage, StorageError
from console.mysql import gtid as G

CHECKPOINT_KEY = "checkpoint.json"
SNAPSHOT_PREFIX = "snapshots"


class CheckpointRegression(StorageError):
    """Somebody tried to move the checkpoint backwards."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int = 0                 # last published segment
    gtid: str = ""               # GTID state durably stored
    source: str = ""
    binlog_file: str = ""
    binlog_pos: int = 0
    last_event_ts: int = 0       # commit time of the newest stored transaction
    caught_up_at: float = 0.0    # wall time when everything the source had was stored
    updated: float = 0.0
    started: float = 0.0         # wall time of the task's first start; until the first
    #                              segment (seq 0), ``gtid`` is where the log backup starts

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Checkpoint:
        d = json.loads(raw)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def covered_until(self) -> float:
        """Wall time up to which a restore by time is complete."""
        return max(float(self.last_event_ts), self.caught_up_at)


@dataclass(frozen=True)
class SnapshotManifest:
    id: str
    method: str                  # mariadb-backup | mariadb-dump
    source: str
    gtid: str                    # GTID position the snapshot is consistent at
    binlog_file: str = ""
    binlog_pos: int = 0
    started: float = 0.0
    finished: float = 0.0
    key: str = ""                # the data object
    stored_bytes: int = 0
    sha256: str = ""
    server_version: str = ""
    key_id: str = ""             # the encryption key's id ("" = stored unencrypted)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SnapshotManifest:
        d = json.loads(raw)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def manifest_key(self) -> str:
        return f"{SNAPSHOT_PREFIX}/{self.id}/manifest.json"


class Catalog:
    def __init__(self, storage: Storage):
        self.storage = storage

    # ---- segments -------------------------------------------------------------

    def segment_seqs(self) -> list[int]:
        out = []
        for k in self.storage.list(LOG_PREFIX):
            name = k.rsplit("/", 1)[-1]
            if name.endswith(".json") and name[:-5].isdigit():
                out.append(int(name[:-5]))
        return sorted(out)

    def manifest(self, seq: int) -> SegmentManifest:
        raw = self.storage.get(manifest_key(seq))
        try:
            return SegmentManifest.from_json(raw)
        except (ValueError, TypeError) as e:
            raise StorageError(f"segment manifest {seq} is corrupt: {e}") from None

    def manifests(self) -> list[SegmentManifest]:
        return [self.manifest(s) for s in self.segment_seqs()]

    def last_manifest(self) -> SegmentManifest | None:
        seqs = self.segment_seqs()
        return self.manifest(seqs[-1]) if seqs else None

    def publish_segment(self, stored: bytes, manifest: SegmentManifest) -> None:
        self.storage.put(data_key(manifest.seq), stored)
        self.storage.put(manifest_key(manifest.seq), manifest.to_json())

    def delete_segment(self, seq: int) -> None:
        self.storage.delete(manifest_key(seq))   # unpublish first
        self.storage.delete(data_key(seq))

    def recover(self) -> Checkpoint:
        """Remove orphans after a crash and return the checkpoint to resume from."""
        self.storage.clean_temp()
        self.storage.remove_empty_dirs(SNAPSHOT_PREFIX)  # snapshots interrupted before their data
        last = self.last_manifest()
        top = last.seq if last else 0
        for k in self.storage.list(LOG_PREFIX):
            name = k.rsplit("/", 1)[-1]
            num = name.split(".", 1)[0]
            if num.isdigit() and int(num) > top:
                self.storage.delete(k)
        cp = self.load_checkpoint()
        if last is not None and (cp is None or cp.seq < last.seq):
            cp = Checkpoint(seq=last.seq, gtid=last.gtid_end, source=last.source,
                            binlog_file=last.binlog_file, binlog_pos=last.end_pos,
                            last_event_ts=last.last_ts, caught_up_at=0.0, updated=time.time(),
                            started=cp.started if cp else 0.0)
            self.storage.put(CHECKPOINT_KEY, cp.to_json())
        return cp or Checkpoint()

    # ---- checkpoint -------------------------------------------------------------

    def load_checkpoint(self) -> Checkpoint | None:
        try:
            raw = self.storage.get(CHECKPOINT_KEY)
        except StorageError:
            return None
        try:
            return Checkpoint.from_json(raw)
        except (ValueError, TypeError) as e:
            raise StorageError(f"{CHECKPOINT_KEY} is corrupt ({e}); remove it: it is "
                               f"rebuilt from the last segment manifest") from None

    def save_checkpoint(self, cp: Checkpoint) -> Checkpoint:
        old = self.load_checkpoint()
        if old is not None:
            if cp.seq < old.seq or not G.position(old.gtid) <= G.position(cp.gtid):
                raise CheckpointRegression(f"refusing to move the checkpoint back from "
                                           f"{old.seq}/{old.gtid or '-'} to {cp.seq}/{cp.gtid or '-'}")
            if cp.last_event_ts < old.last_event_ts or cp.caught_up_at < old.caught_up_at:
                from dataclasses import replace

                cp = replace(cp, last_event_ts=max(cp.last_event_ts, old.last_event_ts),
                             caught_up_at=max(cp.caught_up_at, old.caught_up_at))
        self.storage.put(CHECKPOINT_KEY, cp.to_json())
        return cp

    # ---- snapshots ----------------------------------------------------------------

    def snapshots(self) -> list[SnapshotManifest]:
        out = []
        for k in self.storage.list(SNAPSHOT_PREFIX):
            if k.endswith("/manifest.json"):
                try:
                    out.append(SnapshotManifest.from_json(self.storage.get(k)))
                except (ValueError, TypeError):
                    continue
        return sorted(out, key=lambda s: (s.finished, s.id))

    def sweep_unfinished_snapshots(self) -> None:
        """Remove what interrupted snapshots left: temp files of dead writers,
        then snapshot directories left empty."""
        self.storage.clean_temp(SNAPSHOT_PREFIX)
        self.storage.remove_empty_dirs(SNAPSHOT_PREFIX)

    def publish_snapshot(self, m: SnapshotManifest) -> None:
        self.storage.put(m.manifest_key, m.to_json())

    def delete_snapshot(self, m: SnapshotManifest) -> None:
        self.storage.delete(m.manifest_key)
        prefix = f"{SNAPSHOT_PREFIX}/{m.id}/"
        for k in self.storage.list(f"{SNAPSHOT_PREFIX}/{m.id}"):
            if k.startswith(prefix):
                self.storage.delete(k)

    def stored_bytes(self) -> tuple[int, int, int]:
        """(segments, segment bytes, snapshot bytes)."""
        seg_n = seg_b = snap_b = 0
        for k in self.storage.list(LOG_PREFIX):
            if k.endswith(".zst"):
                seg_n += 1
                seg_b += self.storage.size(k)
        for k in self.storage.list(SNAPSHOT_PREFIX):
            snap_b += self.storage.size(k)
        return seg_n, seg_b, snap_b
