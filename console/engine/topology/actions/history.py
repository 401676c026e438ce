"""Recovery history of a cluster: every past recovery (switchover,
failover, reattach) with its step journal and its acknowledgement.

Sources, all in the state directory (``failover.history`` has the
anti-flapping records and ``failover.journal`` writes the journals):

* ``failover/<cluster>/journal/*.json``: one file per recovery, every step
  (name, host, SQL, start, duration, outcome, detail) and the summary;
* ``failover/<cluster>/history.json``: the recoveries recorded for
  anti-flapping, with ``acknowledged``; ``ack.json``: when this console
  last acknowledged (who: the audit log's ``acknowledge`` entries).

A journal without a final outcome is ``running`` while it is written
(every step rewrites it, the outcome comes last), ``interrupted`` when
nobody wrote it for ``STALE_AFTER`` (an engine that died mid-recovery).

A journal is matched to a history record by kind and time (the record is
written at the end of the recovery, within its journal's span).  The
cluster's own table (``dbops.failover_history``) is read too when a
connection is given, so recoveries made by other consoles show up.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from console.engine.failover import history as fh
from console.engine.state import read_json


@dataclass(frozen=True)
class PastRecovery:
    kind: str
    started: float
    old_primary: str
    new_primary: str
    outcome: str  # ok | failed | refused | planned | "" (unknown: no journal)
    acknowledged: bool | None  # None: not an anti-flapping record (reattach)
    acknowledged_by: str  # actor of the acknowledge in the audit log ("" unknown)
    acknowledged_at: float | None
    actor: str
    journal: str  # path ("" when only the history record exists)
    steps: tuple[dict, ...]
    summary: dict  # lost, salvaged, errant, rolled_back, error ... as the journal has them
    source: str  # "journal" | "history" | "cluster"
    cluster: str = ""
    id: str = ""  # the recovery id (journal, hooks' DBOPS_RECOVERY_ID), else the journal's name
    duration_ms: float | None = None  # start to the last step's end (so far, while running)

    def to_dict(self) -> dict:
        return asdict(self)


def _acks(state_dir: Path) -> list[tuple[float, str, str]]:
    """(time, actor, target) of every acknowledge in the audit log."""
    out = []
    p = Path(state_dir) / "audit.log"
    if not p.exists():
        return out
    for line in p.read_text(errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("action") == "acknowledge":
            out.append((float(e.get("ts", 0) or 0), str(e.get("actor", "")), str(e.get("target", ""))))
    return out


# a journal with a step still running that nobody wrote for this long was
# left by an engine that died mid-recovery
STALE_AFTER = 600.0


def journal_outcome(j: dict, mtime: float, now: float) -> str:
    """The journal's final outcome (every recovery writes one when it ends);
    without one: ``running`` while the journal is being written (after
    every step), ``interrupted`` once nobody wrote it for ``STALE_AFTER``."""
    if j.get("outcome"):
        return str(j["outcome"])
    return "running" if now - mtime < STALE_AFTER else "interrupted"


def _duration_ms(j: dict, started: float, end: float, outcome: str, now: float) -> float | None:
    if j.get("total_ms") is not None:
        return float(j["total_ms"])
    if outcome == "running":
        return max(0.0, (now - started) * 1000)
    return max(0.0, (end - started) * 1000) if j.get("steps") else None


def recoveries(state_dir: Path, cluster: str, conn=None) -> list[PastRecovery]:
    now = time.time()
    d = Path(state_dir) / "failover" / cluster
    recs = fh.load_local(state_dir, cluster) if d.exists() else []
    remote = fh.load_remote(conn, cluster) if conn is not None else []
    ack_file = read_json(d / "ack.json", {}) or {}
    ack_at = (float(ack_file.get("at", 0.0) or 0.0), str(ack_file.get("by", "")))
    acks = functools.cache(lambda: _acks(state_dir))  # the audit log is read only when needed
    out: list[PastRecovery] = []
    used: set[int] = set()
    for p in sorted((d / "journal").glob("*.json")) if (d / "journal").exists() else []:
        j = read_json(p, {}) or {}
        steps = tuple(j.get("steps", ()))
        started = float(j.get("started", 0.0))
        end = max([started] + [float(s.get("started") or 0) + float(s.get("ms") or 0) / 1000 for s in steps])
        kind = j.get("kind", "")
        match = None
        for r in recs:
            if r.id not in used and r.kind == kind and started - 1 <= r.at <= end + 5:
                match = r
                used.add(r.id)
                break
        try:
            mtime = p.stat().st_mtime
        except OSError:  # removed meanwhile
            mtime = now
        outcome = journal_outcome(j, mtime, now)
        rec = _make(kind, started, j.get("old_primary") or (match.old_primary if match else ""),
                    j.get("new_primary") or (match.new_primary if match else ""), outcome, match,
                    ack_at, acks, j.get("actor", ""), str(p), steps,
                    {k: v for k, v in j.items() if k not in ("steps", "kind", "cluster", "started")},
                    "journal")
        out.append(replace(rec, cluster=cluster, id=str(j.get("recovery_id") or p.stem),
                           duration_ms=_duration_ms(j, started, end, outcome, now)))
    for r in recs:
        if r.id not in used:
            out.append(replace(_make(r.kind, r.at, r.old_primary, r.new_primary, "", r, ack_at, acks, "", "",
                                     (), {}, "history"), cluster=cluster, id=_record_id(r)))
    seen = {(o.kind, round(o.started)) for o in out}
    for r in remote:
        if not any(k == r.kind and abs(s - r.at) < 60 for k, s in seen):
            out.append(replace(_make(r.kind, r.at, r.old_primary, r.new_primary, "", r, ack_at, acks, "", "",
                                     (), {}, "cluster"), cluster=cluster, id=_record_id(r)))
    return sorted(out, key=lambda o: o.started)


def _record_id(r: fh.Recovery) -> str:
    return r.recovery_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(r.at)) + f"-{r.kind}"


def _make(kind, started, old, new, outcome, rec, ack, acks, actor, journal, steps, summary, source):
    ack_at, ack_by = ack
    acked = None if rec is None else (rec.acknowledged or rec.at <= ack_at)
    by, at = "", None
    if acked and ack_by and rec.at <= ack_at:
        by, at = ack_by, ack_at
    elif acked:
        for t, a, _target in sorted(acks()):
            if t >= (rec.at if rec else started):
                by, at = a, t
                break
    return PastRecovery(kind, started, old, new, outcome, acked, by, at, actor, journal, tuple(steps),
                        summary, source)
