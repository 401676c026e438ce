"""Load thresholds as gh-ost writes them: ``Threads_running=25,Threads_connected=200``
(``--max-load``, ``--critical-load``).  The syntax only; whether the server
has such status variables is checked against it (``migration/throttle.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from console.errors import UserError


class ThrottleConfigError(UserError):
    pass


def parse_load(text: str, flag: str = "--max-load") -> dict[str, float]:
    """``Threads_running=25,Threads_connected=200`` -> {name: threshold}."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, val = item.partition("=")
        if not sep or not name.strip():
            raise ThrottleConfigError(f"{flag}: {item!r} is not STATUS_VARIABLE=NUMBER")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise ThrottleConfigError(f"{flag}: {val!r} in {item!r} is not a number") from None
    return out


def format_load(load: Mapping[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in load.items())


def load_problem(text: str) -> str | None:
    """Why ``text`` is not a load threshold list, or None."""
    try:
        parse_load(text, "")
    except ThrottleConfigError as e:
        return str(e).removeprefix(": ")
    return None
