"""Topology tree (one per cluster) and the host table, updated in place."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Tree

from console.engine.topology.model import Topology
from console.tui.format import MARK, STYLE, health, health_text, lag_text, short_gtid
from console.tui.widgets.tables import sync_rows

HOST_COLUMNS = (
    ("host", "Host"), ("address", "Address"), ("role", "Role"), ("health", "State"),
    ("ro", "RO"), ("position", "Binlog file:pos"), ("gtid", "GTID"), ("threads", "IO/SQL"),
    ("behind", "Behind"), ("lag", "HB lag"), ("error", "Error"),
)


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
    """Roles, lag and health colour per host; rebuilt only when the shape changes."""

    def __init__(self, cluster: str, **kw):
        super().__init__(f"cluster {cluster}", **kw)
        self.cluster = cluster
        self._topo_shape: tuple = ()
        self.root.expand()
        self.show_root = True

    def update_topology(self, topo: Topology | None) -> None:
        if topo is None:
            self.root.set_label(Text(f"cluster {self.cluster} (discovering…)"))
            return
        shape = tuple((h.address, h.upstream) for h in topo.hosts)
        problems = f"  [{len(topo.problems)} problem(s)]" if topo.problems else ""
        self.root.set_label(Text(f"cluster {self.cluster}{problems}",
                                 style="bold red" if topo.problems else "bold"))
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
    threads = f"{h.io_thread}/{h.sql_thread}" if h.channels else "-"
    return {
        "host": Text(h.name, style="bold"),
        "address": h.address,
        "role": h.role,
        "health": health_text(h),
        "ro": ("on" if h.read_only else "off") if h.reachable else "-",
        "position": h.position or "-",
        "gtid": short_gtid(h.gtid) or "-",
        "threads": threads,
        "behind": "-" if h.seconds_behind is None else f"{h.seconds_behind}s",
        "lag": lag_text(h),
        "error": Text(err[:80], style="red") if err else "",
    }


class HostTable(DataTable):
    """One row per host, keyed by cluster/address, cells updated in place."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in HOST_COLUMNS:
            self.add_column(label, key=key)

    def update_hosts(self, topologies: list[Topology]) -> None:
        sync_rows(self, HOST_COLUMNS, ((f"{t.cluster}/{h.address}", host_cells(h))
                                       for t in topologies for h in t.hosts))
