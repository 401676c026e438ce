"""The cluster lease: only one console recovers a cluster at a time.

The lease lives on the managed cluster itself: a named lock
(``GET_LOCK('dbops-failover:<cluster>', 0)``) taken on EVERY reachable host
of the cluster, in address order, on connections held open for the whole
recovery.  Two consoles that can both reach any one host cannot both hold
it; taking the hosts in the same order means the loser fails on the first
host the winner holds and gives back what it took.  A named lock needs no
write (so it works on read-only replicas and never creates a GTID), and it
is released by the server when the holder's connection dies: a console
killed mid-recovery never leaves a stale lease behind.

A state-dir ``flock`` adds the same guarantee between consoles on one machine
even when no host is reachable; the engine's coordinator adds it between the
engines of a fleet (etcd: ``failover/CLUSTER`` on a lease of its own, taken
first; the state directory's coordinator has nothing to add).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from console.errors import UserError
from console.mysql.connection import DBError, Endpoint, connect, query_one, scalar


class LeaseBusy(UserError):
    """Another console holds the recovery lease of this cluster."""


def lock_name(cluster: str) -> str:
    return f"dbops-failover:{cluster}"[:64]


class ClusterLease:
    def __init__(self, cluster: str, state_dir: Path | None = None, coordinator=None):
        self.cluster = cluster
        self.coordinator = coordinator
        self._named = False
        self.name = lock_name(cluster)
        self.state_dir = state_dir
        self._conns: dict[str, object] = {}
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return bool(self._conns)

    def thread_ids(self) -> dict[str, int]:
        """Our lock connections per address (fencing must not kill them)."""
        return {a: c.thread_id() for a, c in self._conns.items()}

    def acquire(self, endpoints: Iterable[Endpoint]) -> list[str]:
        """Take the lease on every reachable endpoint; raise ``LeaseBusy`` if any
        host has it already.  Returns the addresses where it is held."""
        self._local_lock()
        try:
            self._fleet_lock()
            unreachable = []
            eps = sorted(endpoints, key=lambda e: e.address)

            def open_one(ep):
                try:
                    return connect(ep, connect_timeout=1.0, read_timeout=10.0)
                except DBError as e:
                    return e
            # connect in parallel; lock in address order (so two consoles meet
            # on the same first host and only one goes on)
            with ThreadPoolExecutor(max_workers=max(1, min(8, len(eps)))) as ex:
                conns = list(ex.map(open_one, eps))
            for i, (ep, conn) in enumerate(zip(eps, conns, strict=True)):
                if isinstance(conn, DBError):
                    unreachable.append(f"{ep.address} ({conn})")
                    continue
                got = scalar(conn, "SELECT GET_LOCK(%s, 0)", (self.name,))
                if got != 1:
                    holder = query_one(conn, "SELECT p.ID AS id, p.USER AS user, p.HOST AS host "
                                             "FROM information_schema.PROCESSLIST p "
                                             "WHERE p.ID = IS_USED_LOCK(%s)", (self.name,))
                    for c in [conn, *conns[i + 1:]]:
                        if not isinstance(c, DBError):
                            c.close()
                    who = f"connection {holder['id']} from {holder['host']}" if holder else "another session"
                    raise LeaseBusy(f"cluster {self.cluster}: another recovery holds the lease "
                                    f"({who} on {ep.address}); try again when it is done")
                self._conns[ep.address] = conn
            if not self._conns:
                raise LeaseBusy(f"cluster {self.cluster}: no host reachable to hold the recovery "
                                f"lease ({'; '.join(unreachable)})")
            return sorted(self._conns)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for conn in self._conns.values():
            try:
                scalar(conn, "SELECT RELEASE_LOCK(%s)", (self.name,))
            except Exception:  # noqa: BLE001 - closing releases it anyway
                pass
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._conns.clear()
        if self._named:
            self._named = False
            self.coordinator.give_named(f"failover/{self.cluster}")
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _fleet_lock(self) -> None:
        if self.coordinator is None or not self.coordinator.shared:
            return
        holder = self.coordinator.take_named(f"failover/{self.cluster}")
        if holder:
            raise LeaseBusy(f"cluster {self.cluster}: engine {holder} of the fleet is recovering "
                            f"it ({self.coordinator.description}); try again when it is done")
        self._named = True

    def _local_lock(self) -> None:
        if self.state_dir is None:
            return
        d = Path(self.state_dir) / "failover"
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / f"{self.cluster}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LeaseBusy(f"cluster {self.cluster}: another console on this machine is "
                            f"recovering it (lock {d / (self.cluster + '.lock')})") from None
        self._fd = fd

    def __enter__(self) -> ClusterLease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
