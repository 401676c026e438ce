"""Frozen records of the failover task: candidates, plan steps, recoveries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """One replica as a promotion candidate, with the reasons for its place."""

    name: str
    address: str
    eligible: bool
    reasons: tuple[str, ...]  # why excluded, or what counted for it
    advanced: int  # transactions in the primary's domains (higher = more advanced)
    gtid: str  # its applied position, in the flavor's notation
    errant: str = ""  # errant GTIDs, described ("" when none)
    prefer: bool = False
    same_dc: bool = False
    lag: float | None = None
    rank: int = 0  # 1 = best eligible; 0 = excluded


@dataclass(frozen=True)
class Verdict:
    """Detection outcome for one cluster at one moment."""

    state: str  # healthy | primary-unreachable | dead | no-primary | unknown
    primary: str  # address of the (last known) primary, "" if none
    reason: str
    confirmations: tuple[str, ...] = ()  # replicas that confirm the primary is gone
    dissent: tuple[str, ...] = ()  # replicas that still replicate from it

    @property
    def dead(self) -> bool:
        return self.state == "dead"


@dataclass(frozen=True)
class StepRecord:
    """One step of a recovery, as the journal keeps it."""

    name: str
    target: str  # host address the step acts on ("" for console-side steps)
    sql: tuple[str, ...] = ()  # statements issued (never with passwords)
    started: float = 0.0
    ms: float = 0.0
    outcome: str = "pending"  # pending | running | ok | failed | skipped | planned
    detail: str = ""


@dataclass(frozen=True)
class RecoveryReport:
    """What a switchover or failover did (or, with dry-run, would do)."""

    kind: str  # switchover | failover
    cluster: str
    dry_run: bool
    old_primary: str
    new_primary: str
    outcome: str  # planned | ok | failed | refused
    steps: tuple[StepRecord, ...]
    candidates: tuple[Candidate, ...] = ()
    repointed: tuple[str, ...] = ()
    not_repointed: tuple[str, ...] = ()  # "address: reason"
    salvaged: str = ""  # GTIDs applied to the candidate from a donor (described)
    salvaged_from: tuple[str, ...] = ()  # "source: GTIDs it gave" (replica, relay task, binlog files)
    lost: str = ""  # GTIDs known but not saved (described); "" when none
    write_block_ms: float | None = None
    detection_ms: float | None = None  # first check finding the primary unreachable -> "dead"
    promoted_ms: float | None = None  # since start of the recovery
    repointed_ms: float | None = None  # since start: every reachable replica repointed
    total_ms: float | None = None
    error: str = ""
    started: float = field(default_factory=time.time)
    journal: str = ""  # path of the journal file
    recovery_id: str = ""  # also in the journal, the history and the hooks' DBOPS_RECOVERY_ID
    traffic: str = ""  # the HAProxy switch: "ok: ..." | "failed: ..." | "" (none configured)
