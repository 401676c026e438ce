"""Before a relay starts (``RelayTask.start_checks``): which upstream will it
read, may it, and from where.  Each refusal is one line, and nothing is
created before them.

* A relay from the config follows the upstream its ``relay.meta`` names
  (a switch-master is kept across restarts, whatever the config's host says).
* An ad hoc relay (``--host`` given on the command line, ``AdHoc``) is never
  moved off the host the operator typed in silence: when its directory follows
  another server, the start is refused with how to go on, unless
  ``--switch-master`` asks for the switch (continued by GTID in a new
  subdirectory, refused when the new upstream lacks relayed transactions).
* The account may log in and read binlogs, the start exists (``preflight``);
  an unreachable upstream is refused only for a fresh ad hoc relay (a relay
  with something to resume waits for its upstream).
* The server_id is no server's nor a registered replica's (``server_id``).
"""

from __future__ import annotations

from dataclasses import dataclass

from console.engine.relay.preflight import Upstream, check_upstream
from console.engine.relay.store import META, RelayMeta
from console.engine.server_id import check_server_id
from console.errors import UserError
from console.mysql import gtid as G
from console.mysql.connection import DBError, Endpoint, is_access_denied, is_transient

_LOCAL = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class AdHoc:
    """The relay's upstream was given on the command line."""

    credentials: str = "--user and --password-file"  # where the operator set the account
    switch: bool = False                              # --switch-master


def same_address(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        host, _, port = x.rpartition(":")
        return f"{'127.0.0.1' if host in _LOCAL else host}:{port}"
    return norm(a) == norm(b)


def meta_upstream(meta: RelayMeta | None, endpoint: Endpoint, resolve) -> Endpoint | None:
    """The upstream ``relay.meta`` names when it is not ``endpoint`` (the relay
    was switched earlier), else None."""
    if not meta or not meta.server or same_address(meta.server, endpoint.address):
        return None
    host, _, port = meta.server.rpartition(":")
    if not host or not port.isdigit():
        return None
    return (resolve(meta.server) if resolve else None) or endpoint.with_address(host, int(port))


def start_checks(task) -> str:
    """Raise the one-line refusal, or return a note to log when the relay
    starts ("" for none)."""
    meta = task.store.load_meta()
    adhoc: AdHoc | None = task.adhoc
    ep = task.endpoint if adhoc else (meta_upstream(meta, task.endpoint, task.resolve_target)
                                      or task.endpoint)
    flag = "--start-from" if adhoc else f"tasks.{task.task_id}.start_from"
    up: Upstream | None = None
    try:
        up = check_upstream(ep, task.opts.start_from if meta is None else "oldest",
                            credentials=adhoc.credentials if adhoc else "", start_flag=flag)
    except DBError as e:
        unreachable = not is_access_denied(e) and (e.code is None or is_transient(e))
        if not unreachable or (adhoc and meta is None):
            raise
    note = ""
    if adhoc and meta and meta.server and not same_address(meta.server, ep.address):
        note = _explicit_upstream(task, meta, ep, up, adhoc)
    sid, eps, setting = task.dump_registration(ep)
    check_server_id(task.task_id, sid, eps, setting, own_report_host=task.report_host)
    return note


def _explicit_upstream(task, meta: RelayMeta, ep: Endpoint, up: Upstream | None, adhoc: AdHoc) -> str:
    if up is not None and up.identity == meta.identity:
        return ""  # the same server, reached by another address
    root = task.store.root
    host, _, port = meta.server.rpartition(":")
    if not adhoc.switch:
        raise UserError(f"relay directory {root} follows {meta.server} (its {META}), not {ep.address}: "
                        f"to continue it give --host {host} --port {port}; to make it follow "
                        f"{ep.address} from here on add --switch-master; or give another --relay-dir")
    if up is None:
        raise UserError(f"--switch-master: cannot reach {ep.label} (is the server running and the "
                        f"port right?); relay directory {root} still follows {meta.server}")
    missing = G.parse(meta.gtid, G.MARIADB).subtract(G.parse(up.gtid_pos, G.MARIADB))
    if not missing.is_empty():
        raise UserError(f"--switch-master: {ep.label} lacks relayed transactions {missing.describe()} "
                        f"(it is at {up.gtid_pos or 'nothing'}): relay directory {root} cannot "
                        f"continue there without a gap; it still follows {meta.server}")
    return (f"switching relay directory {root} from {meta.server} to {ep.label} (--switch-master): "
            f"continuing by GTID after {meta.gtid or 'nothing'} in a new subdirectory")
