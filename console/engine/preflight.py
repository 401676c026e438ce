"""Before a task starts: may its accounts log in?

A refused login (error 1045, a wrong password) is an operator error: one
line naming the host, the user and where the password comes from, exit 2,
never retried.  An unreachable host is not refused here: a task waits for
it (reconnect with backoff) and says so in its status."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from console.mysql.connection import ACCESS_DENIED_CODES, DBError, Endpoint, close_quietly, connect


def _login(ep: Endpoint, timeout: float) -> DBError | None:
    try:
        conn = connect(ep, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    except DBError as e:
        return e if e.code in ACCESS_DENIED_CODES else None
    close_quietly(conn)
    return None


def check_logins(endpoints: Iterable[Endpoint], timeout: float = 3.0) -> None:
    """Raise the first refused login's ``DBError`` (in the given order); all
    endpoints are tried in parallel, each (address, user, password source) once."""
    seen: dict[tuple, Endpoint] = {}
    for ep in endpoints:
        seen.setdefault((ep.address, ep.user, ep.password.source), ep)
    eps = list(seen.values())
    if not eps:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(eps)), thread_name_prefix="login") as ex:
        errors = list(ex.map(lambda ep: _login(ep, timeout), eps))
    for err in errors:
        if err is not None:
            raise err
