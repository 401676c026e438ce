"""GTID sets for both notations, with full set arithmetic.

MariaDB writes a position as ``domain-server-seq`` per domain
(``0-1-100,1-2-7``).  Within a domain sequence numbers grow monotonically, so
a position means "every seq from 1 to N in that domain".  We model it as a set
of intervals per domain, plus the server id of the newest GTID per domain so a
position formats back exactly as the server printed it.  A set that is not a
prefix (the result of a subtraction, say) formats with explicit ranges:
``0-1-101..150``; ``parse`` reads that form back.

MySQL writes ``uuid:1-5:7-9,uuid2:1-3`` (8.4 also ``uuid:tag:1-5``).  The key
is the uuid, or ``uuid:tag`` for tagged GTIDs.

MariaDB has no ``GTID_SUBTRACT``; errant-transaction checks use ``subtract``
here, per domain.

``GtidPosition`` is the other concept: where a stream, a relay, a backup or
an apply stands, as ``@@gtid_slave_pos``/``@@gtid_binlog_pos`` hold it.  On
MariaDB that is, per domain, the last transaction (server id and sequence
number) and nothing else; it moves with ``advance`` as transactions are
applied.  On MySQL a position is the executed set itself.  ``to_set`` and
``GtidPosition.from_set`` convert where set arithmetic is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from console.errors import UserError

MARIADB = "mariadb"
MYSQL = "mysql"

Interval = tuple[int, int]  # inclusive
Key = int | str

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_TAG_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,31}$")
_MARIA_ITEM_RE = re.compile(r"^(\d+)-(\d+)-(\d+)(?:\.\.(\d+))?$")


class GtidError(UserError):
    """A GTID text could not be parsed or two sets of different flavors were mixed."""


@dataclass(frozen=True, order=True)
class Gtid:
    """One MariaDB GTID ``domain-server-seq``."""

    domain: int
    server_id: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> Gtid:
        m = _MARIA_ITEM_RE.match(text.strip())
        if not m or m.group(4):
            raise GtidError(f"not a MariaDB GTID: {text!r} (expected domain-server-seq, e.g. 0-1-42)")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


# --------------------------------------------------------------------------
# interval helpers (pure functions on sorted, merged, inclusive intervals)


def _normalize(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _subtract(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            blo, bhi = b[k]
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
            if cur > hi:
                break
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _count(iv: tuple[Interval, ...]) -> int:
    return sum(hi - lo + 1 for lo, hi in iv)


# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GtidSet:
    """An immutable GTID set.  ``flavor`` is ``None`` only for an empty set
    parsed without a flavor; it then combines with either flavor."""

    flavor: str | None
    _sets: tuple[tuple[Key, tuple[Interval, ...]], ...] = ()
    # MariaDB: server id of the newest GTID per domain (formatting, divergence).
    _servers: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    # ---- construction -----------------------------------------------------

    @classmethod
    def empty(cls, flavor: str | None = None) -> GtidSet:
        return cls(flavor)

    @classmethod
    def _build(cls, flavor: str | None, sets: dict[Key, Iterable[Interval]],
               servers: dict[int, int] | None = None) -> GtidSet:
        norm = {k: _normalize(v) for k, v in sets.items()}
        norm = {k: v for k, v in norm.items() if v}
        srv = {}
        if flavor == MARIADB and servers:
            srv = {d: s for d, s in servers.items() if d in norm}
        return cls(flavor, tuple(sorted(norm.items(), key=lambda kv: str(kv[0]) if flavor == MYSQL else kv[0])),
                   tuple(sorted(srv.items())))

    @classmethod
    def from_gtids(cls, gtids: Iterable[Gtid]) -> GtidSet:
        """The set holding exactly these MariaDB GTIDs (not prefixes)."""
        sets: dict[Key, list[Interval]] = {}
        servers: dict[int, tuple[int, int]] = {}
        for g in gtids:
            sets.setdefault(g.domain, []).append((g.seq, g.seq))
            if g.domain not in servers or g.seq >= servers[g.domain][0]:
                servers[g.domain] = (g.seq, g.server_id)
        return cls._build(MARIADB, sets, {d: s for d, (_, s) in servers.items()})

    @classmethod
    def from_position(cls, gtids: Iterable[Gtid]) -> GtidSet:
        """A MariaDB position: every seq up to each GTID in its domain."""
        sets: dict[Key, list[Interval]] = {}
        servers: dict[int, int] = {}
        for g in gtids:
            if g.domain in sets:
                raise GtidError(f"domain {g.domain} appears twice in a GTID position")
            sets[g.domain] = [(1, g.seq)] if g.seq > 0 else []
            servers[g.domain] = g.server_id
        return cls._build(MARIADB, sets, servers)

    # ---- inspection ----------------------------------------------------------

    def _map(self) -> dict[Key, tuple[Interval, ...]]:
        return dict(self._sets)

    def keys(self) -> tuple[Key, ...]:
        """Domains (MariaDB) or source uuids (MySQL) present in the set."""
        return tuple(k for k, _ in self._sets)

    def intervals(self, key: Key) -> tuple[Interval, ...]:
        return self._map().get(key, ())

    def server_of(self, domain: int) -> int | None:
        return dict(self._servers).get(domain)

    def last_seq(self, key: Key) -> int:
        """Highest sequence number in a domain (0 when absent)."""
        iv = self.intervals(key)
        return iv[-1][1] if iv else 0

    def last_gtids(self) -> tuple[Gtid, ...]:
        """MariaDB: the newest GTID per domain, as a position lists them."""
        self._need(MARIADB, "last_gtids")
        srv = dict(self._servers)
        return tuple(Gtid(int(d), srv.get(int(d), 0), iv[-1][1]) for d, iv in self._sets)

    def count(self) -> int:
        return sum(_count(iv) for _, iv in self._sets)

    def is_empty(self) -> bool:
        return not self._sets

    def __bool__(self) -> bool:
        return not self.is_empty()

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[tuple[Key, tuple[Interval, ...]]]:
        return iter(self._sets)

    def is_prefix(self) -> bool:
        """True when every domain/uuid is one interval starting at 1 (a plain position)."""
        return all(len(iv) == 1 and iv[0][0] == 1 for _, iv in self._sets)

    def has(self, gtid: Gtid) -> bool:
        for lo, hi in self.intervals(gtid.domain):
            if lo <= gtid.seq <= hi:
                return True
        return False

    # ---- arithmetic ------------------------------------------------------

    def _need(self, flavor: str, what: str) -> None:
        if self.flavor not in (flavor, None):
            raise GtidError(f"{what} needs a {flavor} GTID set, got {self.flavor}")

    def _combine_flavor(self, other: GtidSet) -> str | None:
        if self.flavor and other.flavor and self.flavor != other.flavor:
            raise GtidError(f"cannot combine a {self.flavor} GTID set with a {other.flavor} one")
        return self.flavor or other.flavor

    def union(self, other: GtidSet) -> GtidSet:
        flavor = self._combine_flavor(other)
        a, b = self._map(), other._map()
        sets = {k: a.get(k, ()) + b.get(k, ()) for k in set(a) | set(b)}
        servers = dict(self._servers)
        for d, s in other._servers:
            if d not in servers or other.last_seq(d) >= self.last_seq(d):
                servers[d] = s
        return GtidSet._build(flavor, sets, servers)

    __or__ = union

    def subtract(self, other: GtidSet) -> GtidSet:
        flavor = self._combine_flavor(other)
        b = other._map()
        sets = {k: _subtract(iv, b.get(k, ())) for k, iv in self._sets}
        return GtidSet._build(flavor, sets, dict(self._servers))

    __sub__ = subtract

    def intersection(self, other: GtidSet) -> GtidSet:
        flavor = self._combine_flavor(other)
        b = other._map()
        sets = {k: _intersect(iv, b[k]) for k, iv in self._sets if k in b}
        return GtidSet._build(flavor, sets, dict(self._servers))

    __and__ = intersection

    def contains(self, other: GtidSet) -> bool:
        """True when every transaction of ``other`` is in this set."""
        self._combine_flavor(other)
        return other.subtract(self).is_empty()

    def __ge__(self, other: GtidSet) -> bool:  # type: ignore[override]
        return self.contains(other)

    def __le__(self, other: GtidSet) -> bool:  # type: ignore[override]
        return other.contains(self)

    def restrict(self, keys: Iterable[Key]) -> GtidSet:
        """Only the given domains (or uuids)."""
        keep = set(keys)
        return GtidSet._build(self.flavor, {k: iv for k, iv in self._sets if k in keep},
                              dict(self._servers))

    def add(self, gtid: Gtid) -> GtidSet:
        return self.union(GtidSet.from_gtids([gtid]))

    def compare_domains(self, other: GtidSet) -> dict[Key, int]:
        """Per domain/uuid: -1 when this set is behind ``other``, 0 equal, 1 ahead,
        2 when each has something the other lacks (diverged)."""
        self._combine_flavor(other)
        out: dict[Key, int] = {}
        a, b = self._map(), other._map()
        for k in set(a) | set(b):
            ahead = bool(_subtract(a.get(k, ()), b.get(k, ())))
            behind = bool(_subtract(b.get(k, ()), a.get(k, ())))
            out[k] = 2 if ahead and behind else 1 if ahead else -1 if behind else 0
        return out

    def diverged_domains(self, other: GtidSet) -> tuple[int, ...]:
        """MariaDB: domains where both sets end at the same seq but that seq was
        written by different servers: the same GTID number names two different
        transactions, a sure sign of divergence."""
        self._need(MARIADB, "diverged_domains")
        mine, theirs = dict(self._servers), dict(other._servers)
        out = []
        for d in sorted(set(mine) & set(theirs)):
            if self.last_seq(d) == other.last_seq(d) and mine[d] != theirs[d]:
                out.append(d)
        return tuple(out)

    # ---- text ------------------------------------------------------------

    def __str__(self) -> str:
        return self.format()

    def format(self) -> str:
        if self.flavor == MYSQL:
            parts = []
            for key, iv in self._sets:
                rng = ":".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in iv)
                parts.append(f"{key}:{rng}")
            return ",".join(parts)
        srv = dict(self._servers)
        parts = []
        for d, iv in self._sets:
            s = srv.get(d, 0)
            for lo, hi in iv:
                parts.append(f"{d}-{s}-{hi}" if lo == 1 else f"{d}-{s}-{lo}..{hi}")
        return ",".join(parts)

    def describe(self) -> str:
        """Human text for reports: ranges with counts, e.g. ``0: 101-150 (50)``."""
        if self.is_empty():
            return "none"
        parts = []
        for key, iv in self._sets:
            rng = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in iv)
            label = f"domain {key}" if self.flavor == MARIADB else str(key)
            parts.append(f"{label}: {rng} ({_count(iv)})")
        return "; ".join(parts)


def parse(text: str | None, flavor: str | None = None) -> GtidSet:
    """Parse either notation.  ``flavor`` forces one; otherwise it is guessed
    (a uuid means MySQL)."""
    text = (text or "").strip()
    if not text:
        return GtidSet.empty(flavor)
    items = [t.strip() for t in text.replace("\n", "").split(",") if t.strip()]
    if flavor is None:
        flavor = MYSQL if ":" in items[0] else MARIADB
    if flavor == MARIADB:
        return _parse_mariadb(items, text)
    if flavor == MYSQL:
        return _parse_mysql(items, text)
    raise GtidError(f"unknown GTID flavor {flavor!r}")


def _parse_mariadb(items: list[str], text: str) -> GtidSet:
    sets: dict[Key, list[Interval]] = {}
    servers: dict[int, tuple[int, int]] = {}
    for item in items:
        m = _MARIA_ITEM_RE.match(item)
        if not m:
            raise GtidError(f"not a MariaDB GTID position: {text!r} (bad item {item!r}; expected domain-server-seq)")
        d, s, a, b = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        if b is None:
            iv = (1, a)
            top = a
        else:
            if int(b) < a:
                raise GtidError(f"bad GTID range {item!r}: end before start")
            iv = (a, int(b))
            top = int(b)
        if top > 0:
            sets.setdefault(d, []).append(iv)
        if d not in servers or top >= servers[d][0]:
            servers[d] = (top, s)
    return GtidSet._build(MARIADB, sets, {d: s for d, (_, s) in servers.items()})


def _parse_mysql(items: list[str], text: str) -> GtidSet:
    sets: dict[Key, list[Interval]] = {}
    for item in items:
        parts = item.split(":")
        uuid = parts[0].strip().lower()
        if not _UUID_RE.match(uuid):
            raise GtidError(f"not a MySQL GTID set: {text!r} (bad uuid {parts[0]!r})")
        if "-" not in uuid:
            uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
        key = uuid
        if len(parts) < 2:
            raise GtidError(f"not a MySQL GTID set: {text!r} (no interval after {uuid})")
        for p in parts[1:]:
            p = p.strip()
            if _TAG_RE.match(p):
                key = f"{uuid}:{p.lower()}"
                continue
            lo, _, hi = p.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise GtidError(f"not a MySQL GTID set: {text!r} (bad interval {p!r})")
            lo_i, hi_i = int(lo), int(hi or lo)
            if lo_i < 1 or hi_i < lo_i:
                raise GtidError(f"not a MySQL GTID set: {text!r} (bad interval {p!r})")
            sets.setdefault(key, []).append((lo_i, hi_i))
    return GtidSet._build(MYSQL, sets)


# --------------------------------------------------------------------------
# positions


class GtidPosition:
    """A GTID position: MariaDB's ``domain-server-seq`` per domain (the
    newest transaction of each domain, "slave pos" semantics), or on MySQL
    the executed GTID set.

    Mutable (it advances per transaction, on the relay's and the backup's
    hot paths); ``copy()`` before handing it to another owner.  Equal when
    the flavor and every domain's (server id, seq) are.  ``a <= b``: ``a`` is
    nowhere ahead of ``b`` (every domain of ``a`` is in ``b``, at a seq not
    above ``b``'s); a partial order, so ``not a <= b`` does not mean
    ``b <= a``."""

    __slots__ = ("flavor", "_doms", "_set")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, flavor: str = MARIADB):
        if flavor not in (MARIADB, MYSQL):
            raise GtidError(f"unknown GTID flavor {flavor!r}")
        self.flavor = flavor
        self._doms: dict[int, tuple[int, int]] = {}      # MariaDB: domain -> (server_id, seq)
        self._set = GtidSet.empty(MYSQL) if flavor == MYSQL else None

    # ---- construction -----------------------------------------------------

    @classmethod
    def parse(cls, text: str | None, flavor: str = MARIADB) -> GtidPosition:
        """``0-1-100,1-2-7`` (MariaDB; a domain named twice: the last wins) or
        a MySQL GTID set.  Raises GtidError (one line) on anything else."""
        pos = cls(flavor)
        if flavor == MYSQL:
            pos._set = parse(text or "", MYSQL)
            return pos
        for item in (text or "").replace("\n", "").split(","):
            if item.strip():
                m = _MARIA_ITEM_RE.match(item.strip())
                if not m or m.group(4):
                    raise GtidError(f"not a MariaDB GTID position: {text!r} (bad item "
                                    f"{item.strip()!r}; expected domain-server-seq, e.g. 0-1-42)")
                pos._doms[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        return pos

    @classmethod
    def of(cls, gtids: Iterable[Gtid]) -> GtidPosition:
        """MariaDB: the position after these GTIDs, applied in order."""
        pos = cls(MARIADB)
        for g in gtids:
            pos._doms[g.domain] = (g.server_id, g.seq)
        return pos

    @classmethod
    def from_set(cls, gtids: GtidSet) -> GtidPosition:
        """The position a set ends at: MariaDB, the newest GTID per domain
        (what came before it in its domain is implied); MySQL, the set."""
        if gtids.flavor == MYSQL:
            pos = cls(MYSQL)
            pos._set = gtids
            return pos
        return cls.of(gtids.last_gtids())

    def copy(self) -> GtidPosition:
        pos = object.__new__(GtidPosition)     # (a copy per relayed batch: no __init__)
        pos.flavor, pos._doms, pos._set = self.flavor, self._doms.copy(), self._set
        return pos

    # ---- moving -----------------------------------------------------------

    def advance(self, gtid: Gtid | str) -> None:
        """The transaction ``gtid`` was applied: on MariaDB its domain is now
        at it (whatever it was before, as in ``gtid_slave_pos``); on MySQL it
        joins the set."""
        if self.flavor == MYSQL:
            assert self._set is not None
            self._set = self._set.union(parse(str(gtid), MYSQL))
            return
        g = gtid if isinstance(gtid, Gtid) else Gtid.parse(gtid)
        self._doms[g.domain] = (g.server_id, g.seq)

    def put(self, domain: int, server_id: int, seq: int) -> None:
        """``advance`` for a GTID in pieces (the binlog readers' hot path)."""
        self._doms[domain] = (server_id, seq)

    def put_newer(self, domain: int, server_id: int, seq: int) -> None:
        """``put`` unless the domain is already past ``seq`` (a GTID_LIST
        event's entries never move a domain back)."""
        cur = self._doms.get(domain)
        if cur is None or seq >= cur[1]:
            self._doms[domain] = (server_id, seq)

    def common(self, other: GtidPosition) -> GtidPosition:
        """MariaDB: what both positions hold: the domains of both, each at
        the lesser of the two (``other``'s GTID where it is behind)."""
        self._need(MARIADB, "common")
        out = GtidPosition(MARIADB)
        for d, (s, q) in self._doms.items():
            theirs = other._doms.get(d)
            if theirs is not None:
                out._doms[d] = theirs if theirs[1] < q else (s, q)
        return out

    # ---- inspection ---------------------------------------------------------

    def _need(self, flavor: str, what: str) -> None:
        if self.flavor != flavor:
            raise GtidError(f"{what} needs a {flavor} GTID position, got {self.flavor}")

    def domains(self) -> tuple[int, ...]:
        self._need(MARIADB, "domains")
        return tuple(sorted(self._doms))

    def seq(self, domain: int) -> int:
        """MariaDB: the sequence number a domain is at (0 when absent)."""
        cur = self._doms.get(domain)
        return cur[1] if cur else 0

    def gtid(self, domain: int) -> Gtid | None:
        """MariaDB: the last GTID of a domain (None when absent)."""
        cur = self._doms.get(domain)
        return Gtid(domain, cur[0], cur[1]) if cur else None

    def gtids(self) -> tuple[Gtid, ...]:
        """MariaDB: the last GTID of every domain, by domain."""
        self._need(MARIADB, "gtids")
        return tuple(Gtid(d, s, q) for d, (s, q) in sorted(self._doms.items()))

    def total(self) -> int:
        """MariaDB: the sum of the domains' sequence numbers (a rough "how far")."""
        return sum(q for _, q in self._doms.values())

    def contains(self, gtid: Gtid | str) -> bool:
        """The transaction ``gtid`` is at or before this position (MariaDB:
        its domain is here, at its seq or later; MySQL: it is in the set)."""
        if self.flavor == MYSQL:
            assert self._set is not None
            return self._set.contains(parse(str(gtid), MYSQL))
        g = gtid if isinstance(gtid, Gtid) else Gtid.parse(gtid)
        cur = self._doms.get(g.domain)
        return cur is not None and g.seq <= cur[1]

    def __contains__(self, gtid: Gtid | str) -> bool:
        return self.contains(gtid)

    def __le__(self, other: GtidPosition) -> bool:
        if self.flavor != other.flavor:
            raise GtidError(f"cannot compare a {self.flavor} GTID position with a {other.flavor} one")
        if self.flavor == MYSQL:
            assert self._set is not None and other._set is not None
            return other._set.contains(self._set)
        theirs = other._doms
        return all(d in theirs and q <= theirs[d][1] for d, (_, q) in self._doms.items())

    def __ge__(self, other: GtidPosition) -> bool:
        return other.__le__(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GtidPosition):
            return NotImplemented
        return self.flavor == other.flavor and self._doms == other._doms and self._set == other._set

    def is_empty(self) -> bool:
        return not self._set if self.flavor == MYSQL else not self._doms

    def __bool__(self) -> bool:
        return not self.is_empty()

    # ---- conversion and text --------------------------------------------------

    def to_set(self) -> GtidSet:
        """Every transaction up to this position (MariaDB: 1..seq per domain)."""
        if self.flavor == MYSQL:
            assert self._set is not None
            return self._set
        return GtidSet.from_position(self.gtids())

    def text(self) -> str:
        """The flavor's own notation (``0-1-100,1-2-7``, domains in order;
        "" when empty): what ``gtid_slave_pos`` and a dump start take."""
        if self.flavor == MYSQL:
            assert self._set is not None
            return self._set.format()
        return ",".join(f"{d}-{s}-{q}" for d, (s, q) in sorted(self._doms.items()))

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"GtidPosition({self.text()!r}, {self.flavor!r})"


def position(text: str | None, flavor: str = MARIADB) -> GtidPosition:
    """``GtidPosition.parse``: the position a server or a file wrote."""
    return GtidPosition.parse(text, flavor)
