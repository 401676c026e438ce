"""Topology tree (one per cluster) and the host table, updated in place."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree

from console.engine.topology.model import Topology
from console.tui.format import MARK, STYLE, health, health_text, lag_text, short_gtid
from console.tui.widgets.tables import ResponsiveTable

# (key, label, usual width); a narrow table keeps HOST_PRIORITY's first columns
HOST_COLUMNS3 = (
    ("host", "Host", 8), ("address", "Address", 15), ("role", "Role", 8), ("health", "State", 13),
    ("ro", "RO", 3), ("position", "Binlog file:pos", 22), ("gtid", "GTID", 20),
    ("threads", "IO/SQL", 7), ("behind", "Behind", 6), ("lag", "HB lag", 7), ("error", "Error", 30),
)
HOST_COLUMNS = tuple((k, label) for k, label, _ in HOST_COLUMNS3)
HOST_PRIORITY = ("host", "role", "health", "lag", "threads", "position", "behind", "error",
                 "ro", "gtid", "address")


def host_label(h) -> Text:
    hl = health(h)
    t = Text()
    t.append(f"{MARK[hl]} ", style=STYLE[hl])
    t.append(h.name, style="bold")
    t.append(f" {h.role}", style="cyan" if h.role == "primary" else "")
    if not h.reachable:
        t.append(f" {h.down_word}", style="red")
    elif h.role != "primary":
        t.append(f" {lag_text(h)}", style="dim")
    return t


class TopologyTree(Tree):
    """Roles, lag and health colour per host; rebuilt only when the shape
    changes; as wide as its longest line (``content_width``)."""

    def __init__(self, cluster: str, **kw):
        super().__init__(f"cluster {cluster}", **kw)
        self.cluster = cluster
        self._topo_shape: tuple = ()
        self.root.expand()
        self.show_root = True
        self.content_width = len(f"cluster {cluster}") + 4

    def _measure(self, topo: Topology) -> None:
        depth: dict[str, int] = {}

        def walk(h, d):
            depth[h.address] = d
            if d < 8:
                for c in topo.children(h.address):
                    walk(c, d + 1)

        for r in topo.roots():
            walk(r, 1)
        widths = [len(str(self.root.label)) + 4]
        widths += [len(host_label(h)) + 4 * depth.get(h.address, 1) + 2 for h in topo.hosts]
        self.content_width = max(widths)

    def update_topology(self, topo: Topology | None) -> None:
        if topo is None:
            self.root.set_label(Text(f"cluster {self.cluster} (discovering…)"))
            return
        shape = tuple((h.address, h.upstream) for h in topo.hosts)
        problems = f"  [{len(topo.problems)} problem(s)]" if topo.problems else ""
        self.root.set_label(Text(f"cluster {self.cluster}{problems}",
                                 style="bold red" if topo.problems else "bold"))
        self._measure(topo)
        if shape != self._topo_shape:
            self._topo_shape = shape
            self.root.remove_children()
            self._host_nodes = {}

            def add(parent, h, depth=0):
                node = parent.add(host_label(h), data=h.address, expand=True)
                self._host_nodes[h.address] = node
                if depth < 8:
                    for c in topo.children(h.address):
                        add(node, c, depth + 1)

            for r in topo.roots():
                add(self.root, r)
        else:
            for h in topo.hosts:
                node = getattr(self, "_host_nodes", {}).get(h.address)
                if node is not None:
                    node.set_label(host_label(h))


def host_cells(h) -> dict[str, object]:
    err = h.error if not h.reachable else h.replication_error
    for prefix in (f"{h.name} ({h.address}): ", f"{h.address}: "):
        if err.startswith(prefix):
            err = err[len(prefix):]
    # an unreachable host has no thread states or lag: nothing stale is shown
    threads = f"{h.io_thread}/{h.sql_thread}" if h.channels and h.reachable else "-"
    return {
        "host": Text(h.name, style="bold"),
        "address": h.address,
        "role": h.role,
        "health": health_text(h),
        "ro": ("on" if h.read_only else "off") if h.reachable else "-",
        "position": h.position or "-",
        "gtid": short_gtid(h.gtid) or "-",
        "threads": threads,
        "behind": "-" if h.seconds_behind is None or not h.reachable else f"{h.seconds_behind}s",
        "lag": lag_text(h),
        "error": Text(err[:60], style="red") if err else "",
    }


class HostTable(ResponsiveTable):
    """One row per host, keyed by cluster/address, cells updated in place;
    narrow, it keeps host, role, state, lag and threads first."""

    COLUMNS = HOST_COLUMNS3
    PRIORITY = HOST_PRIORITY

    def on_mount(self) -> None:
        self.zebra_stripes = True
        super().on_mount()

    def update_hosts(self, topologies: list[Topology], keep=lambda h: True) -> None:
        self.sync((f"{t.cluster}/{h.address}", host_cells(h))
                  for t in topologies for h in t.hosts if keep(h))
