"""JSON values back into the engine's frozen snapshot dataclasses (the
inverse of ``snapshots.jsonable``), by their type annotations: a console
attached to an engine reads the very ``TaskStatus`` / ``RelayStatus`` /
``Topology`` types that a console holding the engine in-process reads.

Unknown keys are ignored (a newer engine), missing ones take the field's
default (an older engine); a value that does not fit its annotation is
kept as it came."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Union


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, value: Any) -> Any:
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for a in args:  # the first annotation the value fits
            if _fits(a, value):
                return from_jsonable(a, value)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = _hints(tp)
        kw = {}
        for f in dataclasses.fields(tp):
            if not f.init or f.name not in value:
                continue
            kw[f.name] = from_jsonable(hints.get(f.name, Any), value[f.name])
        try:
            return tp(**kw)
        except TypeError:  # a required field missing (an older engine): keep the JSON
            return value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(from_jsonable(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if tp is tuple and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if origin in (list, set, frozenset) and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return origin(from_jsonable(arg, v) for v in value)
    if origin is dict and isinstance(value, dict):
        k, v = typing.get_args(tp) or (Any, Any)
        return {from_jsonable(k, a): from_jsonable(v, b) for a, b in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _fits(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if origin in (tuple, list, set, frozenset):
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(origin, type):
        return isinstance(value, origin)
    return True
