"""``--coordinator`` URLs (pure): ``etcd://HOST:PORT[,HOST:PORT...]``."""

from __future__ import annotations

from dataclasses import dataclass

from console.errors import UserError

SCHEMES = ("etcd",)


@dataclass(frozen=True)
class CoordinatorUrl:
    scheme: str
    endpoints: tuple[tuple[str, int], ...]

    def text(self) -> str:
        return f"{self.scheme}://" + ",".join(f"{h}:{p}" for h, p in self.endpoints)


def parse_coordinator(url: str) -> CoordinatorUrl:
    """The URL's endpoints, or one line saying what is wrong with it."""
    def bad(why: str) -> UserError:
        return UserError(f"--coordinator {url!r}: {why}; expected etcd://HOST:PORT[,HOST:PORT...]")

    scheme, sep, rest = url.partition("://")
    if not sep:
        raise bad("no scheme")
    if scheme not in SCHEMES:
        raise bad(f"unknown scheme {scheme!r}")
    rest = rest.rstrip("/")
    if not rest:
        raise bad("no endpoint")
    eps = []
    for part in rest.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host:
            raise bad(f"endpoint {part!r} is not HOST:PORT")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"endpoint {part!r} has no port between 1 and 65535")
        eps.append((host.strip("[]"), int(port)))
    return CoordinatorUrl(scheme, tuple(eps))
