"""``backup verify``: every checksum, and no gap (or duplicate) in the GTIDs.

Checks, in order: each segment's data object exists and matches the sha256
of its manifest; segment numbers are consecutive and each segment starts at
the GTID state the previous one ended at; with ``deep`` each segment is
decompressed and parsed (event CRC32s, whole transactions), its transactions
match the manifest, and sequence numbers advance by exactly one per domain;
the checkpoint agrees with the log (``checkpoint_problems``); each
snapshot's data matches its sha256 and the log reaches back to its GTID
position.

Verify runs while the task may be publishing: segments appear while it
reads, and the checkpoint moves right after each segment's manifest.  So
the checkpoint is read *before* the log is listed (every segment it covers
was published before it, so the listing holds them all) and once more
*after* (a single writer saves the checkpoint of segment N before it
publishes segment N+1, so by then the checkpoint trails the newest listed
segment by at most the one being published).  Retention (after a
snapshot) may delete the log's prefix and old snapshots meanwhile: a listed
segment that is gone and now precedes the oldest one, and a snapshot whose
manifest is gone, are skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from console.engine.backup import zstd
from console.engine.backup.catalog import Catalog, Checkpoint
from console.engine.backup.segments import SegmentManifest, data_key, split_transactions
from console.engine.backup.storage import StorageError
from console.mysql import gtid as G
from console.mysql.binlog import events as E


@dataclass
class VerifyReport:
    segments: int = 0
    transactions: int = 0
    snapshots: int = 0
    first_gtid: str = ""
    last_gtid: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha(catalog: Catalog, key: str) -> str:
    h = hashlib.sha256()
    with catalog.storage.reader(key) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _get(catalog: Catalog, key: str) -> tuple[bytes, str]:
    """(the object's bytes, decrypted, and the key id it was encrypted with)."""
    st = catalog.storage
    if hasattr(st, "get_sealed"):
        return st.get_sealed(key)
    return st.get(key), ""


def _object_key_id(catalog: Catalog, key: str) -> str:
    st = catalog.storage
    return st.key_id_of(key) if hasattr(st, "key_id_of") else ""


def _key_problem(key: str, want: str, got: str) -> str:
    if want and not got:
        return f"{key} is not encrypted but its manifest says key id {want} (object replaced?)"
    if got and not want:
        return f"{key} is encrypted with key id {got} but its manifest says unencrypted"
    return f"{key} is encrypted with key id {got} but its manifest says {want}"


def _cp(cp: Checkpoint) -> str:
    return f"{cp.seq}/{cp.gtid or '-'}"


def checkpoint_problems(before: Checkpoint | None, after: Checkpoint | None,
                        manifests: list[SegmentManifest]) -> list[str]:
    """How the checkpoint disagrees with the log (segment manifests, oldest
    first), given the checkpoint read before listing them and again after.

    Consistent: the checkpoint read before names a listed segment and equals
    its end state (or, when retention removed that segment, is at or before
    the oldest listed segment's start), never beyond the newest segment; the
    checkpoint read after trails the newest listed segment by at most one
    (the segment being published, or the last one before a crash, which the
    task's next start adopts).
    """
    if not manifests:
        return []
    first, last = manifests[0], manifests[-1]
    if before is None:
        return [f"checkpoint.json is missing although segments {first.seq}..{last.seq} are "
                f"stored (the task's next start rebuilds it from the last segment)"]
    out = []
    by_seq = {m.seq: m for m in manifests}
    gtid = G.position(before.gtid)
    if before.seq > last.seq:
        out.append(f"checkpoint ({_cp(before)}) is ahead of the log, which ends with segment "
                   f"{last.seq} ({last.gtid_end}): segments are missing")
    elif before.seq in by_seq:
        m = by_seq[before.seq]
        if gtid != G.position(m.gtid_end):
            out.append(f"checkpoint ({_cp(before)}) does not match segment {m.seq} "
                       f"(ends at {m.gtid_end})")
    elif before.seq < first.seq:
        if not gtid <= G.position(first.gtid_start):
            out.append(f"checkpoint ({_cp(before)}) is ahead of the oldest stored segment "
                       f"{first.seq} (starts at {first.gtid_start})")
    else:
        out.append(f"checkpoint ({_cp(before)}) names segment {before.seq}, which is missing")
    if after is not None and after.seq < last.seq - 1:
        out.append(f"checkpoint ({_cp(after)}) trails the log: segments {after.seq + 1}.."
                   f"{last.seq} are stored but not covered (restores stop at the checkpoint)")
    return out


def _pruned(catalog: Catalog, n: int) -> bool:
    """Segment ``n`` (listed, now unreadable) was removed by retention while
    verify ran: retention deletes a prefix of the log, manifest first."""
    now = catalog.segment_seqs()
    return not now or n < now[0]


def verify(catalog: Catalog, deep: bool = True) -> VerifyReport:
    r = VerifyReport()
    prev = None
    reached = G.GtidPosition()         # where each domain's transactions got to
    cp_before = catalog.load_checkpoint()          # before the listing: see the module doc
    seqs = catalog.segment_seqs()
    listed: list[SegmentManifest] = []
    for n in seqs:
        m = stored = None
        kid = ""
        try:
            m = catalog.manifest(n)
            stored, kid = _get(catalog, data_key(n))
        except StorageError as e:
            if _pruned(catalog, n):       # retention removed the log's prefix meanwhile:
                prev, listed, reached = None, [], G.GtidPosition()   # verify what is left
                r.segments = r.transactions = 0
                r.first_gtid = ""
                continue
            r.problems.append(str(e) if m is None else f"segment {n}: {e}")
            if m is None:
                continue
        listed.append(m)
        r.segments += 1
        if prev is None:
            r.first_gtid = m.gtid_start
            reached = G.position(m.gtid_start)
        else:
            if m.seq != prev.seq + 1:
                r.problems.append(f"segments {prev.seq + 1}..{m.seq - 1} are missing: GTID gap "
                                  f"between {prev.gtid_end} and {m.gtid_start}")
            elif G.position(m.gtid_start) != G.position(prev.gtid_end):
                r.problems.append(f"GTID gap: segment {m.seq} starts at {m.gtid_start} but "
                                  f"segment {prev.seq} ended at {prev.gtid_end}")
        prev = m
        if stored is None:
            continue
        if kid != m.key_id:
            r.problems.append(f"segment {n}: {_key_problem(data_key(n), m.key_id, kid)}")
            continue
        if hashlib.sha256(stored).hexdigest() != m.sha256:
            r.problems.append(f"segment {n}: sha256 mismatch (stored data is corrupt)")
            continue
        if not deep:
            r.transactions += m.transactions
            continue
        try:
            _, txns = split_transactions(zstd.decompress(stored))
        except (zstd.ZstdError, E.BinlogFormatError) as e:
            r.problems.append(f"segment {n}: unreadable: {e}")
            continue
        if len(txns) != m.transactions:
            r.problems.append(f"segment {n}: holds {len(txns)} transactions, manifest says "
                              f"{m.transactions}")
        for t in txns:
            before = reached.gtid(t.domain)
            if before is not None and t.seq <= before.seq:
                r.problems.append(f"segment {n}: duplicate or backwards GTID {t.gtid} "
                                  f"(domain {t.domain} already at {before.seq})")
            elif before is not None and t.seq != before.seq + 1:
                r.problems.append(f"segment {n}: GTID gap in domain {t.domain}: "
                                  f"{before.seq} -> {t.seq}")
            reached.put(t.domain, t.server_id, t.seq)
        r.transactions += len(txns)
    if prev is not None:
        r.last_gtid = prev.gtid_end
    r.problems += checkpoint_problems(cp_before, catalog.load_checkpoint(), listed)
    for s in catalog.snapshots():
        try:
            kid = _object_key_id(catalog, s.key)
            if kid != s.key_id:
                r.problems.append(f"snapshot {s.id}: {_key_problem(s.key, s.key_id, kid)}")
            elif _sha(catalog, s.key) != s.sha256:
                r.problems.append(f"snapshot {s.id}: sha256 mismatch (stored data is corrupt)")
        except StorageError as e:
            if not catalog.storage.exists(s.manifest_key):
                continue                  # deleted by retention meanwhile
            r.problems.append(f"snapshot {s.id}: {e}")
        r.snapshots += 1
        if seqs and not G.position(r.first_gtid) <= G.position(s.gtid):
            r.problems.append(f"snapshot {s.id} (at {s.gtid}) is older than the log backup "
                              f"(starts at {r.first_gtid}): it cannot be rolled forward")
    return r
