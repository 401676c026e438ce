"""Topology snapshot: hosts with decided roles and the replication edges."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from console.mysql.probe import HostState


@dataclass(frozen=True)
class Topology:
    cluster: str
    hosts: tuple[HostState, ...]
    taken_at: float = field(default_factory=time.time)
    problems: tuple[str, ...] = ()

    def host(self, key: str) -> HostState | None:
        for h in self.hosts:
            if key in (h.name, h.address):
                return h
        return None

    @property
    def primaries(self) -> tuple[HostState, ...]:
        return tuple(h for h in self.hosts if h.role == "primary")

    @property
    def primary(self) -> HostState | None:
        p = self.primaries
        return p[0] if len(p) == 1 else None

    def children(self, address: str) -> tuple[HostState, ...]:
        return tuple(h for h in self.hosts if h.upstream == address and h.address != address)

    def roots(self) -> tuple[HostState, ...]:
        addrs = {h.address for h in self.hosts}
        return tuple(h for h in self.hosts if not h.upstream or h.upstream not in addrs)
