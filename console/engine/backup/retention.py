"""Retention: keep N snapshots and/or D days; never delete a log segment
that the oldest kept snapshot (or anything after it) needs.

A snapshot is deleted when it is outside *every* configured keep rule (not
among the newest ``keep_snapshots``, older than ``keep_days``).  Then log
segments that end at or before the oldest kept snapshot's GTID position are
deleted (restores start at a snapshot and only need what follows it).
Without any snapshot, or without any keep rule, nothing is deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from console.engine.backup.catalog import Catalog, SnapshotManifest
from console.mysql import gtid as G


@dataclass(frozen=True)
class Removed:
    snapshots: tuple[str, ...]
    segments: tuple[int, ...]

    def describe(self) -> str:
        if not self.snapshots and not self.segments:
            return "nothing to remove"
        segs = f"segments {self.segments[0]}..{self.segments[-1]}" if self.segments else "no segment"
        return f"removed {len(self.snapshots)} snapshot(s) and {len(self.segments)} log segment(s) ({segs})"


def plan(snapshots: list[SnapshotManifest], keep_n: int, keep_days: float,
         now: float | None = None) -> tuple[list[SnapshotManifest], list[SnapshotManifest]]:
    """(kept, deleted) snapshots, oldest first."""
    now = time.time() if now is None else now
    ordered = sorted(snapshots, key=lambda s: (s.finished, s.id))
    if keep_n <= 0 and keep_days <= 0:
        return ordered, []
    kept, gone = [], []
    for i, s in enumerate(ordered):
        newest_n = keep_n > 0 and i >= len(ordered) - keep_n
        young = keep_days > 0 and now - s.finished < keep_days * 86400
        (kept if newest_n or young else gone).append(s)
    if not kept and ordered:           # never delete the last snapshot
        kept, gone = [ordered[-1]], ordered[:-1]
    return kept, gone


def apply_retention(catalog: Catalog, keep_n: int, keep_days: float,
                    now: float | None = None) -> Removed:
    if keep_n <= 0 and keep_days <= 0:
        return Removed((), ())          # no retention rule configured: keep everything
    kept, gone = plan(catalog.snapshots(), keep_n, keep_days, now)
    for s in gone:
        catalog.delete_snapshot(s)
    segs: list[int] = []
    if kept:
        oldest = G.position(kept[0].gtid)
        for seq in catalog.segment_seqs():
            m = catalog.manifest(seq)
            if G.position(m.gtid_end) <= oldest and m.gtid_end != "":
                segs.append(seq)
            else:
                break                       # only a prefix of the log may go
        for seq in segs:
            catalog.delete_segment(seq)
    return Removed(tuple(s.id for s in gone), tuple(segs))
