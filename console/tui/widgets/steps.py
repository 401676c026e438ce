"""A recovery's steps as a table (the failover screen's live steps, the
recovery history's journal): outcome, ms, step, target, detail (or its SQL),
each outcome in its colour on every screen."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from console.tui.widgets.tables import ResponsiveTable

STEP_COLS3 = (("outcome", "outcome", 7), ("ms", "ms", 5), ("name", "step", 12),
              ("target", "target", 15), ("detail", "detail", 40))
# one colour per recovery/step outcome, wherever one is shown
OUTCOME_STYLE = {"ok": "green", "failed": "bold red", "refused": "red", "running": "bold yellow",
                 "interrupted": "bold red", "planned": "cyan", "skipped": "dim", "pending": "dim"}


def outcome_text(outcome: str) -> Text:
    return Text(outcome or "?", style=OUTCOME_STYLE.get(outcome, ""))


def _get(step, key: str, default=None):
    return step.get(key, default) if isinstance(step, dict) else getattr(step, key, default)


def step_rows(steps: Iterable) -> list[tuple[str, dict[str, object]]]:
    """Rows of ``StepTable`` from StepRecords or their JSON (a journal's)."""
    rows = []
    for i, s in enumerate(steps):
        ms = float(_get(s, "ms") or 0)
        sql = _get(s, "sql") or ()
        rows.append((str(i), {"outcome": outcome_text(str(_get(s, "outcome", ""))),
                              "ms": f"{ms:.0f}" if ms else "", "name": _get(s, "name", ""),
                              "target": _get(s, "target", ""),
                              "detail": _get(s, "detail") or " | ".join(sql)[:120]}))
    return rows


class StepTable(ResponsiveTable):
    COLUMNS = STEP_COLS3
    PRIORITY = ("name", "outcome", "ms", "detail", "target")
