"""A one-line sparkline with its unit, a zero baseline and min/max labels.

Textual's ``Sparkline`` scales between the data's own minimum and maximum,
so 0-3 ms of jitter draws full-height bars.  Here the bars are measured
from zero up to ``max(data max, floor)``: a quiet series stays low.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.widget import Widget

BLOCKS = "▁▂▃▄▅▆▇█"


def bars(values: Sequence[float], top: float) -> str:
    """One block per value, 0 -> ``▁`` (the baseline), ``top`` -> ``█``."""
    if top <= 0:
        return BLOCKS[0] * len(values)
    out = []
    for v in values:
        frac = min(1.0, max(0.0, v / top))
        out.append(BLOCKS[min(len(BLOCKS) - 1, int(frac * (len(BLOCKS) - 1) + 0.5))])
    return "".join(out)


def spark_text(label: str, values: Sequence[float], width: int, *, floor: float,
               fmt: Callable[[float], str]) -> Text:
    """``label ▁▂█▁  min 0 ms  max 3 ms``, the bars as wide as ``width`` allows
    (newest at the right)."""
    vals = [float(v) for v in values if v is not None]
    lo = min(vals) if vals else 0.0
    hi = max(vals) if vals else 0.0
    scale = f" min {fmt(lo)} max {fmt(hi)}"
    if floor > hi:
        scale += f" (bars 0..{fmt(floor)})"
    room = max(4, width - len(label) - len(scale) - 2)
    t = Text(f"{label} ", style="bold")
    shown = vals[-room:]
    t.append(bars(shown, max(hi, floor)).rjust(room, " "), style="cyan")
    t.append(scale, style="dim")
    return t


class Spark(Widget):
    """A labelled sparkline: ``values`` set on every refresh."""

    DEFAULT_CSS = "Spark { height: 1; }"

    def __init__(self, label: str, *, floor: float, fmt: Callable[[float], str], **kw):
        super().__init__(**kw)
        self.label, self.floor, self.fmt = label, floor, fmt
        self._values: tuple[float, ...] = ()

    def set_values(self, values: Sequence[float]) -> None:
        values = tuple(values)
        if values != self._values:
            self._values = values
            self.refresh()

    def render(self) -> Text:
        return spark_text(self.label, self._values, self.size.width or 40, floor=self.floor, fmt=self.fmt)
