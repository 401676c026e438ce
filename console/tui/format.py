"""Text and colours shared by the screens (health, lags, positions)."""

from __future__ import annotations

import math
import time

from rich.text import Text

from console.mysql.probe import HostState

LAG_WARN = 1.0
LAG_BAD = 10.0


def lag_seconds(h: HostState) -> float | None:
    if h.heartbeat_lag is not None:
        return h.heartbeat_lag
    if h.seconds_behind is not None:
        return float(h.seconds_behind)
    return None


def lag_text(h: HostState) -> str:
    if not h.reachable or h.role == "primary":
        return "-"
    if h.heartbeat_lag is not None:
        return f"{h.heartbeat_lag * 1000:.0f} ms" if h.heartbeat_lag < 1 else f"{h.heartbeat_lag:.1f} s"
    if h.seconds_behind is not None:
        return f"{h.seconds_behind} s"
    return "n/a"


def health(h: HostState) -> str:
    """ok | warn | bad"""
    if not h.reachable:
        return "bad"
    if h.replication_error or (h.channels and not (h.channels[0].io_ok and h.channels[0].sql_ok)):
        return "bad"
    lag = lag_seconds(h)
    if lag is not None and lag >= LAG_BAD:
        return "bad"
    if lag is not None and lag >= LAG_WARN:
        return "warn"
    if h.role == "replica" and not h.read_only:
        return "warn"
    return "ok"


STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red"}
MARK = {"ok": "●", "warn": "▲", "bad": "✖"}


def health_text(h: HostState) -> Text:
    hl = health(h)
    label = "up" if h.reachable else "UNREACHABLE"
    if h.reachable and hl == "bad":
        label = "ERROR"
    elif hl == "warn":
        label = "lagging" if (lag_seconds(h) or 0) >= LAG_WARN else "warn"
    return Text(f"{MARK[hl]} {label}", style=STYLE[hl])


def short_gtid(g: str, width: int = 40) -> str:
    return g if len(g) <= width else g[: width - 1] + "…"


def ago(ts: float) -> str:
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{d:.0f}s ago"
    if d < 3600:
        return f"{d / 60:.0f}m ago"
    return f"{d / 3600:.1f}h ago"


def clean(values, quantum: float = 0.01) -> list[float]:
    """Lag history for a sparkline: gaps (unreachable) as 0 and values rounded
    to ``quantum`` seconds so sub-10 ms jitter does not draw full bars."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(0.0)
        else:
            out.append(round(float(v) / quantum) * quantum)
    return out


# one colour per task state, on every screen (task list, task screens, palette)
STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "failed": "bold red",
               "done": "bold blue", "new": "cyan", "not started": "dim"}


def state_text(state: str, phase: str = "") -> Text:
    """``● running / copying`` in the state's colour."""
    t = Text()
    t.append("● " + state.upper(), style=STATE_STYLE.get(state, "bold"))
    if phase and phase != state:
        t.append(f" {phase}", style="bold")
    return t


def duration(v: float | None) -> str:
    """``3m05s`` / ``1h02m``; ``-`` when unknown."""
    if v is None:
        return "-"
    v = int(v)
    return f"{v // 3600}h{v % 3600 // 60:02d}m" if v >= 3600 else f"{v // 60}m{v % 60:02d}s"
