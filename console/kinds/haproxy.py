"""``[clusters.NAME.haproxy]``: traffic follows the primary through HAProxy's
runtime API (the engine's side: ``console/engine/failover/haproxy.py``).

::

    [clusters.main.haproxy]
    admin_socket = "/run/haproxy/admin.sock"   # stats socket ... level admin
    backend = "writer"                          # the backend the applications write through
    mode = "servers"                            # one server per host (default) | "addr"
    server = "{name}"                           # server name of a host: {name} {host} {port}

The declaration only (like ``load.py``, syntax without behaviour): the
options are read by ``console.config`` like its own tables (and listed in
its ``declared_tables``: README tables, JSON Schema), then
``parse_haproxy`` checks what spans two options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.options import opt

PLACEHOLDERS = ("{name}", "{host}", "{port}")


def _server_problem(value: str) -> str | None:
    if not value.strip() or any(c.isspace() or c == "/" for c in value):
        return f"must be a server name without spaces or '/', got {value!r}"
    try:
        value.format(name="n", host="h", port=1)
    except (KeyError, IndexError, ValueError):
        return f"may use only {', '.join(PLACEHOLDERS)} as placeholders, got {value!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class HaproxyOptions:
    admin_socket: str = opt(doc="HAProxy's admin socket (`stats socket PATH level admin`)",
                            path=True, flag=None)
    backend: str = opt("writer", "the backend the applications write through", flag=None)
    mode: str = opt("servers", "servers: one server per host, the new primary's made ready "
                               "and every other in maint; addr: one server whose address is "
                               "set to the new primary",
                    choices=("servers", "addr"), flag=None)
    server: str = opt("{name}", "the server name of a host ({name}: its name in the config, "
                                "{host}, {port}); mode addr: the one server's name",
                      check=_server_problem, flag=None)
    shutdown_sessions: bool = opt(True, "close the sessions still open to the old primary "
                                        "(maint alone keeps them)", flag=None)
    timeout: float = opt(2.0, "seconds to wait for each runtime API reply", minimum=0.1,
                         maximum=60, unit="s", flag=None)


def parse_haproxy(table: Any, parse_options: Callable[..., Any]) -> HaproxyOptions | None:
    """The cluster table's ``haproxy`` table, or None without one.  ``table``
    is ``console.config``'s ``Table`` of the cluster and ``parse_options``
    its reader of declared options (passed in: the config module imports
    this one, never the other way round)."""
    if "haproxy" not in table.data:
        return None
    t = table.table("haproxy")
    opts = parse_options(HaproxyOptions, t)
    if opts.mode == "addr" and any(p in opts.server for p in PLACEHOLDERS):
        raise t.error("server", f"mode addr sets the address of one server: name it "
                                f"(e.g. \"primary\"), got {opts.server!r}")
    t.finish()
    return opts
