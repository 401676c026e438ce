"""The console config written into a sandbox directory (``DIR/dbops.toml``).

Task kinds that want a ready-made task in the sandbox add a section in
``task_sections``; tasks there are declared with ``autostart = false``.
"""

from __future__ import annotations

from typing import Any


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(sb: Any, info: Any) -> str:
    """``sb``: the Sandbox, ``info``: its SandboxInfo (console.sandbox, which calls this)."""
    OPS_USER, REPL_USER = sb.OPS_USER, sb.REPL_USER

    lines = [
        "# Console config for the local sandbox, written by `dbops-console sandbox up`.",
        "# Passwords live in the secrets/ directory beside this file (mode 0600).",
        f"state_dir = {_q(sb.dir / 'state')}",
        "",
        "[ui]",
        'theme = "dark"',
        "refresh_interval = 1.0",
        "",
        "[clusters.sandbox]",
        "# keep a heartbeat table (dbops.heartbeat) on the primary for lag in ms",
        "heartbeat = true",
        "check_interval = 1.0",
        "",
        "[clusters.sandbox.replication]",
        f"user = {_q(REPL_USER)}",
        f"password_file = {_q(sb.secret_path(REPL_USER))}",
        "",
    ]
    for n in info.nodes:
        lines += [
            f"[clusters.sandbox.hosts.{n.name}]",
            'host = "127.0.0.1"',
            f"port = {n.port}",
            f"user = {_q(OPS_USER)}",
            f"password_file = {_q(sb.secret_path(OPS_USER))}",
            f'tags = {{ dc = "local", role = "{n.role}" }}',
            "",
        ]
    lines += task_sections(sb, info)
    return "\n".join(lines)


def task_sections(sb: Any, info: Any) -> list[str]:
    """Task declarations for the sandbox config (one block per task kind)."""
    lines: list[str] = []
    lines += [
        "# relay: the primary's binlog into local relay files (start it from the console",
        "# or with `dbops-console relay --config THIS --task sandbox-relay`)",
        "[tasks.sandbox-relay]",
        'kind = "relay"',
        'cluster = "sandbox"',
        f"host = {_q(info.nodes[0].name)}",
        f"relay_dir = {_q(sb.dir / 'relay')}",
        "server_id = 4242",
        "heartbeat = 1.0",
        "autostart = false",
        "",
    ]
    lines += [
        "# backup: continuous binlog backup + snapshots under the sandbox directory (start it",
        "# from the console or with `dbops-console backup --config THIS --task sandbox-backup`)",
        "[tasks.sandbox-backup]",
        'kind = "backup"',
        'cluster = "sandbox"',
        f"storage = {_q(sb.dir / 'backup')}",
        "server_id = 4243",
        "keep_snapshots = 3",
        "autostart = false",
        "",
    ]
    lines += [
        "# failover: watch the cluster, rank candidates, switchover (s) / failover (F)",
        "[tasks.failover]",
        'kind = "failover"',
        'cluster = "sandbox"',
        "autostart = false",
        "",
    ]
    return lines
