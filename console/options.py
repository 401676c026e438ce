"""Options declared once.

Each task kind's options are one frozen dataclass whose fields are made with
``opt()``: the field's type and default are the dataclass's, and its
metadata holds the rest of the declaration (doc line, bounds, choices, unit,
CLI flag, whether a running task can change it).  Everything else is
generated from that: the TOML parser (``console.config``), the CLI flags
(``add_arguments``), the bounds check of a CLI run (``validate``), live
``set`` parsing and its help (``parse_live``, ``live_help``), the config
reference tables (``markdown_table``) and the JSON Schema (``json_schema``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from console.errors import UserError

REQUIRED: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class Spec:
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    unit: str = ""
    flag: str | None = ""          # "": --name-with-dashes; None: no CLI flag
    live: bool = False              # a running task accepts ``set NAME VALUE``
    config: bool = True             # read from a [tasks.NAME] table
    path: bool = False              # a file name: relative to the config file's directory
    check: Callable[[Any], str | None] | None = None   # extra rule: the reason, or None


def opt(default: Any = REQUIRED, doc: str = "", **spec: Any) -> Any:
    """A dataclass field with its declaration (see ``Spec``)."""
    if not doc:
        raise TypeError("every option needs its doc line")
    meta = {"option": Spec(doc=doc, **spec)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a list default")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Option:
    """One declared option, resolved: its name, value type and default."""

    name: str
    type: type                      # int, float, bool, str, Path or tuple (of str)
    optional: bool                  # None is a valid value
    default: Any
    spec: Spec

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def is_path(self) -> bool:
        return self.type is Path or self.spec.path

    @property
    def flag(self) -> str | None:
        if self.spec.flag is None:
            return None
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def setting(self) -> str:
        """The name a live ``set`` and the control socket use."""
        return self.name.replace("_", "-")

    def bounds_text(self) -> str:
        lo, hi = self.spec.minimum, self.spec.maximum
        if lo is not None and hi is not None:
            return f"{_num(lo)}..{_num(hi)}"
        if lo is not None:
            return f">= {_num(lo)}"
        if hi is not None:
            return f"<= {_num(hi)}"
        if self.spec.choices:
            return " | ".join(map(str, self.spec.choices))
        return ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _value_type(hint: Any) -> tuple[type, bool]:
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
        origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple, optional
    if hint in (int, float, bool, str, Path):
        return hint, optional
    raise TypeError(f"unsupported option type {hint!r}")


@functools.cache
def options_of(cls: type) -> tuple[Option, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with opt()")
        typ, optional = _value_type(hints[f.name])
        out.append(Option(f.name, typ, optional, f.default, spec))
    return tuple(out)


def option(cls: type, name: str) -> Option:
    for o in options_of(cls):
        if o.name == name:
            return o
    raise KeyError(name)


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               Path: "a path (string)", tuple: "a list of strings", list: "a list", dict: "a table"}


def wanted_word(t: type) -> str:
    """What a value of type ``t`` must be, in words (config errors)."""
    return _TYPE_WORDS.get(t, t.__name__)


def type_word(value: Any) -> str:
    """What ``value`` is, in words (config errors)."""
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            list: "a list", dict: "a table", tuple: "a list"}.get(type(value), type(value).__name__)


def bound_problem(value: float, lo: float | None, hi: float | None) -> str | None:
    """Why ``value`` is outside [lo, hi] (either may be None), or None."""
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"must be between {_num(lo)} and {_num(hi)}, got {value!r}"
    if lo is not None and value < lo:
        return f"must be at least {_num(lo)}, got {value!r}"
    if hi is not None and value > hi:
        return f"must be at most {_num(hi)}, got {value!r}"
    return None


def convert(o: Option, value: Any) -> Any:
    """``value`` (as TOML or JSON gives it) as the option's type, checked
    against every rule of its declaration; raises ValueError(reason)."""
    if value is None and o.optional:
        return None
    t = o.type
    ok = True
    if t is bool:
        ok = isinstance(value, bool)
    elif t is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):  # TOML has nan and inf
                raise ValueError(f"must be a finite number, got {value!r}")
    elif t in (str, Path):
        ok = isinstance(value, str)
    elif t is tuple:
        ok = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
        if ok:
            value = tuple(value)
    if not ok:
        raise ValueError(f"must be {_TYPE_WORDS[t]}, got {type_word(value)} {value!r}")
    why = problem(o, value)
    if why:
        raise ValueError(why)
    return value


def problem(o: Option, value: Any) -> str | None:
    """Why ``value`` (already of the option's type) breaks its rules, or None."""
    s = o.spec
    if value is None:
        return None
    if s.choices is not None and value not in s.choices:
        return f"must be one of {', '.join(map(str, s.choices))}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        why = bound_problem(value, s.minimum, s.maximum)
        if why:
            return why
    if s.check is not None:
        return s.check(value)
    return None


def validate(obj: Any) -> Any:
    """Every field of ``obj`` against its declaration; the first problem is a
    UserError naming the CLI flag (this is how a CLI run is checked; a config
    file is checked as it is read, naming its file and key)."""
    for o in options_of(type(obj)):
        value = getattr(obj, o.name)
        why = problem(o, value)
        if why:
            raise UserError(f"{o.flag or o.name} {why}")
    return obj


# ---- CLI ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, only: tuple[str, ...] = (),
                  exclude: tuple[str, ...] = (), defaults: Mapping[str, Any] | None = None) -> None:
    """argparse flags for ``cls``'s options (dest = option name).  A flag's
    default is None ("not given"), so a caller can tell a flag from the
    declared default; ``values(args, cls)`` collects the given ones."""
    for o in options_of(cls):
        if o.flag is None or o.name in exclude or (only and o.name not in only):
            continue
        default = (defaults or {}).get(o.name, o.default)
        shown = "" if default in (REQUIRED, None, "", ()) else f" (default {default})"
        unit = f" [{o.spec.unit}]" if o.spec.unit else ""
        help_ = f"{o.spec.doc}{unit}{shown}"
        if o.type is bool:
            parser.add_argument(o.flag, dest=o.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_)
        elif o.type is tuple:
            parser.add_argument(o.flag, dest=o.name, default=None, metavar="A,B",
                                type=lambda v: tuple(x.strip() for x in v.split(",") if x.strip()),
                                help=help_)
        else:
            typ = {int: int, float: float}.get(o.type, str)
            metavar = None if o.spec.choices else "FILE" if o.is_path else \
                {int: "N", float: "X"}.get(o.type, "TEXT")
            parser.add_argument(o.flag, dest=o.name, type=typ, default=None, required=o.required,
                                choices=o.spec.choices, metavar=metavar, help=help_)


def values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` that were given on the command line."""
    out = {}
    for o in options_of(cls):
        v = getattr(args, o.name, None)
        if v is not None:
            out[o.name] = v
    return out


# ---- live settings -------------------------------------------------------------


def live_options(cls: type) -> tuple[Option, ...]:
    return tuple(o for o in options_of(cls) if o.spec.live)


def parse_live(cls: type, setting: str, text: str) -> tuple[str, Any]:
    """(option name, value) for ``set SETTING TEXT`` on a running task; a
    CommandError-style UserError when the setting is unknown or out of bounds."""
    names = {o.setting: o for o in live_options(cls)}
    o = names.get(setting.replace("_", "-"))
    if o is None:
        raise UserError(f"unknown setting {setting!r}; settable: {', '.join(names)}")
    try:
        return o.name, convert(o, parse_text(o, text))
    except ValueError as e:
        raise UserError(f"{o.setting} {e}") from None


def parse_text(o: Option, text: str) -> Any:
    """A value typed as text (a live ``set``, a console form) as the
    option's type: a number, true/false (yes/no, on/off, 1/0), a list of
    comma-separated strings, or the text; a one-line UserError otherwise."""
    raw: Any = text.strip()
    try:
        if o.type is int:
            return int(raw)
        if o.type is float:
            return float(raw)
        if o.type is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes", "on")
    except ValueError:
        raise UserError(f"{o.setting} must be {_TYPE_WORDS[o.type]}, got {text!r}") from None
    if o.type is tuple:
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    return raw


def live_help(cls: type) -> str:
    """One line per live setting: NAME=VALUE, doc, [unit], (bounds)."""
    lines = []
    for o in live_options(cls):
        value = {int: "N", float: "X"}.get(o.type, "TEXT")
        b = o.bounds_text()
        lines.append(f"{o.setting + '=' + value:<22} {o.spec.doc}"
                     + (f" [{o.spec.unit}]" if o.spec.unit else "") + (f" ({b})" if b else ""))
    return "\n".join(lines)


# ---- generated documents ----------------------------------------------------------


def _default_text(o: Option) -> str:
    if o.required:
        return "required"
    d = o.default
    if d is None or d == "" or d == ():
        return "—"
    if isinstance(d, bool):
        return "true" if d else "false"
    return f"`{d}`"


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path",
               tuple: "list of strings"}


def markdown_table(cls: type) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| key | type | default | bounds | unit | live | meaning |",
            "|---|---|---|---|---|---|---|"]
    for o in options_of(cls):
        if not o.spec.config:
            continue
        typ = "path" if o.spec.path else _TYPE_NAMES[o.type]
        rows.append(f"| `{o.name}` | {typ} | {cell(_default_text(o))} | {cell(o.bounds_text())} | "
                    f"{o.spec.unit} | {'yes' if o.spec.live else ''} | {cell(o.spec.doc)} |")
    return "\n".join(rows)


def json_schema_of(cls: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for o in options_of(cls):
        if not o.spec.config:
            continue
        p: dict[str, Any] = {"description": o.spec.doc + (f" ({o.spec.unit})" if o.spec.unit else "")}
        p["type"] = {int: "integer", float: "number", bool: "boolean", str: "string",
                     Path: "string", tuple: "array"}[o.type]
        if o.type is tuple:
            p["items"] = {"type": "string"}
        if o.spec.choices is not None:
            p["enum"] = list(o.spec.choices)
        if o.spec.minimum is not None:
            p["minimum"] = o.spec.minimum
        if o.spec.maximum is not None:
            p["maximum"] = o.spec.maximum
        if o.required:
            required.append(o.name)
        elif o.default not in (None,):
            p["default"] = list(o.default) if isinstance(o.default, tuple) else \
                str(o.default) if isinstance(o.default, Path) else o.default
        if o.spec.live:
            p["x-live"] = True
        props[o.name] = p
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema
