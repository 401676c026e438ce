"""The console as a client reads the engine's typed snapshots: every kind's
status detail (and the monitor's topology) survives JSON and back equal;
the route table and the OpenAPI document agree."""

import dataclasses
import json
import typing

from console.api.openapi import document
from console.api.remote import status_of
from console.api.routes import ROUTES
from console.api.snapshots import jsonable, task_dict
from console.api.typed import from_jsonable
from console.engine.task import TaskStatus
from console.engine.topology.monitor import MonitorDetail
from console.kinds.registry import get, names


def sample(tp, depth=0):
    """A value of annotation ``tp`` with every field filled (not defaults)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return sample(args[0], depth)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: sample(hints[f.name], depth + 1) for f in dataclasses.fields(tp)
                     if f.init})
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0], depth + 1),) * (0 if depth > 3 else 2)
        return tuple(sample(a, depth + 1) for a in args)
    if origin is dict:
        k, v = typing.get_args(tp)
        return {sample(k, depth + 1): sample(v, depth + 1)}
    if origin is list:
        return [sample(typing.get_args(tp)[0], depth + 1)]
    return {int: 7, float: 1.5, str: "s", bool: True}.get(tp, None)


def test_every_detail_survives_json_and_back():
    classes = [get(k).detail_class() for k in names()] + [MonitorDetail]
    assert len(classes) == 5 and all(classes)
    for cls in classes:
        value = sample(cls)
        text = json.dumps(jsonable(value))
        assert from_jsonable(cls, json.loads(text)) == value, cls.__name__


def test_status_of_rebuilds_a_task_status():
    detail = sample(get("relay").detail_class())
    st = TaskStatus("r", "relay", "running", "streaming", 1.0, "", "", "relay from x", detail)
    back = status_of(json.loads(json.dumps(task_dict(st))))
    assert back == st
    unknown = status_of({"task_id": "x", "kind": "from-a-newer-engine", "detail": {"a": 1}})
    assert unknown.detail == {"a": 1} and unknown.state == ""


def test_missing_and_unknown_keys():
    cls = get("relay").detail_class()
    data = jsonable(sample(cls))
    data["new_field_of_a_newer_engine"] = 1
    assert from_jsonable(cls, data) == sample(cls)
    del data["upstream"]  # a required field an older engine did not send: kept as JSON
    assert isinstance(from_jsonable(cls, data), dict)


def test_openapi_lists_every_route_once():
    doc = document()
    ops = [op["operationId"] for p in doc["paths"].values() for op in p.values()]
    assert len(ops) == len(ROUTES) == len(set(ops))
    for r in ROUTES:
        op = doc["paths"][r.full_path][r.method.lower()]
        params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert params == {seg[1:-1] for seg in r.full_path.split("/") if seg.startswith("{")}
    assert doc["components"]["schemas"]["TaskDeclaration"]["oneOf"]
