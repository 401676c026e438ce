"""``dbops-console sandbox up|down|status``: real mariadbd processes on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

from console.commands.common import default_state_dir, print_json


def register(sub) -> None:
    p = sub.add_parser("sandbox", help="start/stop a local replication topology of real mariadbd")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", metavar="DIR", help="sandbox directory (default STATE_DIR/sandbox)")
    p.add_argument("--replicas", type=int, default=2, metavar="N", help="number of replicas (default 2)")
    p.add_argument("--base-port", type=int, default=23306, metavar="P",
                   help="primary port; replicas use P+1... (default 23306)")
    p.add_argument("--redo-log-mb", type=int, default=96, metavar="M",
                   help="InnoDB redo log size of new nodes, MiB (default 96; smaller saves disk)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def sandbox_dir(args) -> Path:
    return Path(args.dir).expanduser() if args.dir else default_state_dir(args) / "sandbox"


def run(args) -> int:
    from console.sandbox import Sandbox, pid_alive  # lazy: keeps other subcommands' startup short

    sb = Sandbox(sandbox_dir(args), replicas=args.replicas, base_port=args.base_port,
                 redo_log_mb=args.redo_log_mb)
    quiet = args.json

    def progress(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    if args.action == "up":
        info = sb.up(progress=progress)
        if args.json:
            print_json(info.to_json())
        else:
            _print_info(info.to_json())
        return 0
    if args.action == "down":
        stopped = sb.down()
        if args.json:
            print_json({"dir": str(sb.dir), "stopped": stopped})
        else:
            print(f"stopped {', '.join(stopped)}" if stopped else f"nothing running in {sb.dir}")
        return 0
    info = sb.status()
    if info is None:
        if args.json:
            print_json({"dir": str(sb.dir), "exists": False})
        else:
            print(f"no sandbox in {sb.dir}")
        return 1
    data = info.to_json()
    if args.json:
        print_json(data)
    else:
        _print_info(data)
    return 0 if all(pid_alive(n.pid, n.defaults_file) for n in info.nodes) else 1


def _print_info(d: dict) -> None:
    print(f"sandbox {d['dir']}")
    for n in d["nodes"]:
        state = f"running (pid {n['pid']})" if n["running"] else "stopped"
        print(f"  {n['name']:<6} {n['role']:<8} 127.0.0.1:{n['port']:<6} server_id={n['server_id']:<3} {state}")
    print(f"config: {d['config']}")
    print(f"open the console: dbops-console --config {d['config']}")
