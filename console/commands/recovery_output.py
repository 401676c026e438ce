"""Text and JSON output of switchover/failover reports (shared by the
``switchover``, ``failover`` and ``monitor`` subcommands)."""

from __future__ import annotations

import sys
from dataclasses import asdict

from console.errors import UserError


def report_dict(rep) -> dict:
    return asdict(rep)


def candidates_text(cands) -> list[str]:
    lines = ["candidates:"]
    for c in cands:
        mark = f"#{c.rank}" if c.eligible else "--"
        lines.append(f"  {mark:<3} {c.name:<10} {c.address:<18} {'; '.join(c.reasons)}")
    return lines


def report_text(rep) -> str:
    lines = [f"{rep.kind} of cluster {rep.cluster}: {rep.outcome.upper()}"
             + (" (dry run: nothing was changed)" if rep.dry_run else "")]
    if rep.error:
        lines.append(f"  error: {rep.error}")
    if rep.recovery_id and not rep.dry_run:
        lines.append(f"  recovery id: {rep.recovery_id}")
    if rep.old_primary or rep.new_primary:
        lines.append(f"  primary: {rep.old_primary or '?'} -> {rep.new_primary or '?'}")
    if rep.candidates:
        lines += ["  " + ln for ln in candidates_text(rep.candidates)]
    lines.append("  steps:")
    for s in rep.steps:
        t = "" if rep.dry_run else f" {s.ms:7.1f} ms"
        lines.append(f"    [{s.outcome:<7}]{t} {s.name:<30} {s.target}" + (f"  {s.detail}" if s.detail else ""))
        if rep.dry_run or s.outcome == "failed":
            lines += [f"        {q}" for q in s.sql]
    if rep.repointed:
        lines.append(f"  repointed: {', '.join(rep.repointed)}")
    for n in rep.not_repointed:
        lines.append(f"  NOT repointed: {n}")
    if rep.traffic:
        lines.append(f"  haproxy: {rep.traffic}")
    if rep.salvaged:
        lines.append(f"  salvaged: {rep.salvaged}")
        lines += [f"    from {s}" for s in rep.salvaged_from]
    if rep.kind == "failover" and not rep.dry_run and rep.outcome == "ok":
        lines.append(f"  lost: {rep.lost or 'nothing (every transaction known to any reachable server is on the new primary)'}")
    for label, v in (("write block", rep.write_block_ms), ("confirmation (unreachable -> dead)", rep.detection_ms),
                     ("promoted after", rep.promoted_ms), ("total", rep.total_ms)):
        if v is not None:
            lines.append(f"  {label}: {v:.0f} ms")
    if rep.journal:
        lines.append(f"  journal: {rep.journal}")
    return "\n".join(lines)


def confirm_or_refuse(cluster: str, what: str, check_only: bool = False) -> None:
    """Typed confirmation of the cluster name on a terminal; refuse otherwise."""
    if not sys.stdin.isatty():
        raise UserError(f"{what} of cluster {cluster} needs confirmation: pass --yes "
                        f"(stdin is not a terminal), or --dry-run to see the plan")
    if check_only:
        return
    typed = input(f"type the cluster name ({cluster}) to run the {what}: ").strip()
    if typed != cluster:
        raise UserError(f"confirmation did not match {cluster!r}: nothing was done")


def exit_code(rep) -> int:
    return {"ok": 0, "planned": 0, "refused": 2}.get(rep.outcome, 1)
