"""Traffic follows the primary: HAProxy's runtime API on its admin socket.

After a promotion the writer backend of the cluster's ``[haproxy]`` table
(``console/kinds/haproxy.py``) is pointed at the new primary:

* ``mode = "servers"`` (one server per host, named by ``server``, e.g.
  ``{name}``): ``set server B/NEW state ready``, then ``state maint`` for
  every other server of the cluster's hosts in that backend (servers of
  other hosts are left alone);
* ``mode = "addr"`` (one server): ``set server B/S addr IP port PORT`` and
  ``state ready``.

Then the sessions still open to the old primary are closed (``shutdown
sessions server``: maint alone keeps them) and ``show servers state B`` is
read back to confirm.  Each is a journal step whose "SQL" are the runtime
commands, so the dry run prints them.  A failure is a failed step in the
report; the recovery itself stands.

The functions at the top are pure (command building, reply checks,
``show servers state`` parsing); ``Runtime`` speaks to the socket.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from console.engine.topology.discovery import norm_address
from console.kinds.haproxy import HaproxyOptions

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited and
# resolution maintenance; CMAINT (0x04) only says "disabled in the config"
FMAINT, IMAINT, CMAINT, FDRAIN, IDRAIN, RMAINT, HMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
MAINT_MASK = FMAINT | IMAINT | RMAINT | HMAINT
DRAIN_MASK = FDRAIN | IDRAIN
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}


class HaproxyError(Exception):
    """The runtime API could not be reached or refused a command."""


@dataclass(frozen=True)
class ServerState:
    """One line of ``show servers state``."""

    backend: str
    name: str
    addr: str
    port: int
    op_state: int
    admin_state: int

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & MAINT_MASK)

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & DRAIN_MASK)

    @property
    def address(self) -> str:
        return f"{self.addr}:{self.port}"

    def describe(self) -> str:
        admin = "maint" if self.maint else "drain" if self.drain else "ready"
        return f"{self.name} {self.address} {admin}/{OP_STATES.get(self.op_state, self.op_state)}"


def parse_servers_state(text: str) -> list[ServerState]:
    """``show servers state [BACKEND]`` -> its servers (columns found by the
    header line, so versions with more columns read the same)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header: list[str] = []
    out = []
    for ln in lines:
        if ln.startswith("#"):
            header = ln.lstrip("#").split()
            continue
        if not header:  # the format version line ("1") or an error message
            if not ln.strip().isdigit():
                raise HaproxyError(ln.strip())
            continue
        f = dict(zip(header, ln.split(), strict=False))
        try:
            out.append(ServerState(f["be_name"], f["srv_name"], f["srv_addr"], int(f.get("srv_port", 0)),
                                   int(f["srv_op_state"]), int(f["srv_admin_state"])))
        except (KeyError, ValueError):
            raise HaproxyError(f"unexpected line in show servers state: {ln[:120]!r}") from None
    if not header and not out:
        raise HaproxyError("empty reply to show servers state")
    return out


def check_reply(command: str, reply: str) -> str:
    """The reply of a ``set``/``shutdown`` command when it succeeded (empty,
    or the address change notice); raises with HAProxy's first line otherwise
    (``No such server.``, ``Can't find backend.``, ``Permission denied``...)."""
    text = reply.strip()
    if not text:
        return ""
    if " addr " in command and ("changed from" in text or "no need to change" in text):
        return text.splitlines()[0]
    raise HaproxyError(f"{command}: {text.splitlines()[0]}")


def server_name(opts: HaproxyOptions, name: str, address: str) -> str:
    host, _, port = address.rpartition(":")
    return opts.server.format(name=name, host=host, port=port)


def cmd_state(backend: str, server: str, state: str) -> str:
    return f"set server {backend}/{server} state {state}"


def cmd_addr(backend: str, server: str, ip: str, port: int) -> str:
    return f"set server {backend}/{server} addr {ip} port {port}"


def cmd_shutdown(backend: str, server: str) -> str:
    return f"shutdown sessions server {backend}/{server}"


def cmd_show(backend: str) -> str:
    return f"show servers state {backend}"


def resolve_ip(host: str) -> str:
    """``set server addr`` takes an IP address: a host name is resolved here."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as e:
        raise HaproxyError(f"cannot resolve {host} for set server addr: {e}") from None


@dataclass(frozen=True)
class SwitchPlan:
    """The runtime commands that move the writer backend to the new primary."""

    switch: tuple[str, ...]  # made in this order: the new primary ready first
    shutdown: tuple[str, ...]  # sessions still open to the old primary
    new_server: str
    old_server: str  # "" when the old primary has no server of its own (mode addr)
    notes: tuple[str, ...] = ()


def plan_switch(opts: HaproxyOptions, hosts: Iterable[tuple[str, str]], old: str, new: str,
                existing: Iterable[str] | None = None) -> SwitchPlan:
    """``hosts``: (name, address) of the cluster's hosts; ``old``/``new``:
    the primaries' addresses; ``existing``: the backend's server names when
    known (then servers of hosts the backend lacks are skipped, and a
    missing new-primary server is an error)."""
    b = opts.backend
    hosts = list(hosts)
    have = None if existing is None else set(existing)
    names = {addr: server_name(opts, name, addr) for name, addr in hosts}
    if opts.mode == "addr":
        if have is not None and opts.server not in have:
            raise HaproxyError(f"backend {b} has no server {opts.server} "
                                f"(servers: {', '.join(sorted(have)) or 'none'})")
        host, _, port = new.rpartition(":")
        return SwitchPlan((cmd_addr(b, opts.server, resolve_ip(host), int(port)),
                           cmd_state(b, opts.server, "ready")),
                          (cmd_shutdown(b, opts.server),) if opts.shutdown_sessions and old else (),
                          opts.server, "")
    new_srv = names.get(new) or server_name(opts, "", new)
    if have is not None and new_srv not in have:
        raise HaproxyError(f"backend {b} has no server {new_srv} for the new primary {new} "
                            f"(servers: {', '.join(sorted(have)) or 'none'}; see haproxy.server)")
    switch = [cmd_state(b, new_srv, "ready")]
    notes = []
    old_srv = ""
    for _name, addr in hosts:
        srv = names[addr]
        if addr == new or srv == new_srv:
            continue
        if have is not None and srv not in have:
            notes.append(f"{srv}: no such server in {b} (left alone)")
            continue
        switch.append(cmd_state(b, srv, "maint"))
        if addr == old:
            old_srv = srv
    shutdown = (cmd_shutdown(b, old_srv),) if opts.shutdown_sessions and old_srv else ()
    return SwitchPlan(tuple(switch), shutdown, new_srv, old_srv, tuple(notes))


def confirm(opts: HaproxyOptions, plan: SwitchPlan, states: list[ServerState], new: str) -> str:
    """What ``show servers state`` says after the switch, or raises when the
    writer backend does not point at the new primary."""
    by = {s.name: s for s in states if s.backend == opts.backend}
    s = by.get(plan.new_server)
    if s is None:
        raise HaproxyError(f"{opts.backend}/{plan.new_server} is gone from show servers state")
    if s.maint:
        raise HaproxyError(f"{opts.backend}/{plan.new_server} is still in maintenance")
    if opts.mode == "addr":
        host, _, port = new.rpartition(":")
        if s.port != int(port) or s.addr != resolve_ip(host):
            raise HaproxyError(f"{opts.backend}/{plan.new_server} points at {s.address}, not {new}")
    bad = [x.name for x in by.values()
           if not x.maint and cmd_state(opts.backend, x.name, "maint") in plan.switch]
    if bad:
        raise HaproxyError(f"still in service: {', '.join(bad)}")
    return "; ".join(x.describe() for x in by.values())


class Runtime:
    """One command per connection on the admin socket (non-interactive
    mode: HAProxy answers and closes)."""

    def __init__(self, path: str, timeout: float = 2.0):
        self.path, self.timeout = path, timeout

    def command(self, cmd: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.path)
                s.sendall(cmd.encode() + b"\n")
                chunks = []
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    chunks.append(d)
        except OSError as e:
            why = "no reply within the timeout" if isinstance(e, TimeoutError) else (e.strerror or str(e))
            raise HaproxyError(f"haproxy admin socket {self.path}: {why}") from None
        return b"".join(chunks).decode("utf-8", "replace")

    def servers(self, backend: str) -> list[ServerState]:
        return parse_servers_state(self.command(cmd_show(backend)))


def _hosts(cluster) -> list[tuple[str, str]]:
    return [(h.name, norm_address(h.host, h.port)) for h in cluster.hosts]


class TrafficSwitch:
    """The steps of one recovery's switch (journal steps ``haproxy ...``)."""

    def __init__(self, opts: HaproxyOptions, cluster, journal):
        self.opts, self.cluster, self.journal = opts, cluster, journal
        self.api = Runtime(opts.admin_socket, opts.timeout)
        self.target = f"haproxy {opts.admin_socket}"

    def plan(self, old: str, new: str) -> None:
        """Dry run: the exact commands (server names read from HAProxy when
        it answers; a read-only ``show servers state``)."""
        existing, note = None, ""
        try:
            existing = [s.name for s in self.api.servers(self.opts.backend)]
        except HaproxyError as e:
            note = f"not read from haproxy ({e}); names from haproxy.server"
        try:
            p = plan_switch(self.opts, _hosts(self.cluster), old, new, existing)
        except HaproxyError as e:
            self.journal.plan("haproxy switch", self.target, [], f"would fail: {e}")
            return
        self.journal.plan("haproxy switch", self.target, [*p.switch, *p.shutdown],
                          "; ".join([*p.notes, note] if note else p.notes))
        self.journal.plan("haproxy confirm", self.target, [cmd_show(self.opts.backend)],
                          f"{p.new_server} in service"
                          + (f", {p.old_server} in maint" if p.old_server else ""))

    def run(self, old: str, new: str) -> str:
        """Switch and confirm; returns the outcome line (``ok: ...`` or
        ``failed: ...``); never raises (the recovery stands)."""
        try:
            with self.journal.step("haproxy switch", self.target) as s:
                s.sql.append(cmd_show(self.opts.backend))
                existing = [x.name for x in self.api.servers(self.opts.backend)]
                p = plan_switch(self.opts, _hosts(self.cluster), old, new, existing)
                for c in p.switch:
                    s.sql.append(c)
                    check_reply(c, self.api.command(c))
                closed = []
                for c in p.shutdown:
                    s.sql.append(c)
                    check_reply(c, self.api.command(c))
                    closed.append(p.old_server)
                s.detail = "; ".join([f"{self.opts.backend} -> {p.new_server} ({new})",
                                      *([f"{p.old_server} in maint"] if p.old_server else []),
                                      *([f"sessions of {', '.join(closed)} closed"] if closed else []),
                                      *p.notes])
            with self.journal.step("haproxy confirm", self.target) as s:
                s.sql.append(cmd_show(self.opts.backend))
                s.detail = confirm(self.opts, p, self.api.servers(self.opts.backend), new)
        except HaproxyError as e:
            return f"failed: {e}"
        except Exception as e:  # noqa: BLE001 - recorded as a failed step; the recovery stands
            return f"failed: {type(e).__name__}: {e}"
        return f"ok: {self.opts.backend} -> {p.new_server}"
