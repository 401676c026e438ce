"""The OpenAPI 3.1 document of the API, made from ``console.api.routes``
(the routes) and the registry's JSON Schema (a task's declaration)."""

from __future__ import annotations

from functools import lru_cache

from console.api.routes import ROUTES


def _declaration_schema() -> dict:
    """A ``[tasks.NAME]`` table as JSON: the registry's schema of one task."""
    from console.config import config_schema

    one = dict(config_schema()["properties"]["tasks"]["additionalProperties"])
    one["description"] = ("a [tasks.NAME] table as JSON (kind, cluster, autostart and the "
                          "kind's options), checked by the registry as `config check` does")
    return one


def _hand_over_schema() -> dict:
    from console.kinds.migration import MigrationOptions
    from console.options import json_schema_of

    return {"type": "object", "required": ["host", "port", "user", "password", "options"],
            "properties": {"host": {"type": "string"},
                           "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                           "user": {"type": "string"}, "password": {"type": "string"},
                           "cluster": {"type": "string", "description": "a cluster of the engine's "
                                       "config: a failover moves the migration to the new primary "
                                       "found among its hosts"},
                           "options": json_schema_of(MigrationOptions)}}


@lru_cache(maxsize=1)
def document() -> dict:
    from console import __version__

    paths: dict[str, dict] = {}
    for r in ROUTES:
        op: dict = {"summary": r.summary, "operationId": f"{r.method.lower()}_{r.handler.__name__}",
                    "parameters": [{"name": p.name, "in": p.where, "required": p.required,
                                    "description": p.doc, "schema": p.schema} for p in r.params],
                    "responses": {"200": {"description": "ok",
                                          "content": {c.strip(): {} for c in r.produces.split(" or ")}},
                                  **{s: {"description": d} for s, d in r.responses.items()}}}
        if r.full_path.startswith("/api/"):
            op["responses"]["401"] = {"description": "on TCP: missing or wrong bearer token; "
                                                     "nothing done"}
        if r.body:
            op["requestBody"] = {"required": r.method == "PUT", "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{r.body}"}}}}
        paths.setdefault(r.full_path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "dbops-console engine API", "version": __version__,
                 "description": "The engine of `dbops-console serve`: clusters, tasks, commands, "
                                "the audit log and live snapshots.  On the unix socket "
                                "STATE_DIR/run/api.sock no token; on --listen TCP a bearer token "
                                "(STATE_DIR/api.token)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "TaskDeclaration": _declaration_schema(),
                "KillSession": {"type": "object", "required": ["session", "confirm"],
                                "properties": {"session": {"type": "integer"},
                                               "query_only": {"type": "boolean"},
                                               "confirm": {"type": "string"}}},
                "Acknowledge": {"type": "object", "required": ["confirm"],
                                "properties": {"confirm": {"type": "string",
                                                           "description": "the cluster's name"}}},
                "MigrationHandOver": _hand_over_schema(),
                "CommandCall": {"type": "object", "properties": {
                    "args": {"type": "object", "description": "the command's arguments"},
                    "confirm": {"type": "string",
                                "description": "a dangerous command's confirm target"}}},
            },
        },
        "security": [{"bearer": []}, {}],
    }
