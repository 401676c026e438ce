"""``dbops-console relay``: run a relay task in the foreground (headless).

Two forms::

    dbops-console relay --config FILE --task NAME
    dbops-console relay --host H --port P --user U --password-file F --relay-dir DIR
                        [--server-id N] [--start-from S] [--semi-sync] [--stop-at-end]

Before anything is created the upstream is checked (login, privileges, the
start, the server_id against the upstream and the replicas it lists) and
the relay directory is locked (one relay per directory); each refusal is one
line, exit 2.  An ad hoc relay whose directory follows another upstream
(``relay.meta``, after a switch) is refused unless ``--switch-master`` asks
to follow the ``--host`` given from now on; a configured one (``--task``)
follows the upstream its relay.meta names.

SIGINT/SIGTERM/SIGHUP stop it cleanly: the last complete transaction is fsynced
and recorded in relay.meta, the last line says where, and it exits 128 + the
signal number (130, 143, 129).  ``--stop-at-end`` exits 0 once the relay has
caught up with the end of the upstream's binlogs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from console.commands.common import run_foreground
from console.config import Config, Secret, UIConfig
from console.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("relay", help="stream an upstream's binlog into local relay files (foreground)")
    p.add_argument("--task", metavar="NAME", help="a relay task declared in the config")
    p.add_argument("--host", metavar="H", help="ad hoc: upstream host")
    p.add_argument("--port", metavar="P", type=int, default=3306, help="ad hoc: upstream port (3306)")
    p.add_argument("--user", metavar="U", help="ad hoc: replication user")
    p.add_argument("--password-file", metavar="F", help="ad hoc: file holding the password")
    p.add_argument("--relay-dir", metavar="DIR", help="ad hoc: relay directory")
    p.add_argument("--server-id", metavar="N", type=int, help="our replica server_id (default 4242)")
    p.add_argument("--start-from", metavar="S",
                   help='ad hoc: oldest (default) | now | gtid:D-S-N | file:NAME:POS')
    p.add_argument("--semi-sync", action="store_true",
                   help="act as a semi-synchronous replica (ACK after fsync)")
    p.add_argument("--switch-master", action="store_true",
                   help="ad hoc: the relay directory follows another upstream (relay.meta): follow "
                        "--host from now on (by GTID; refused if it lacks relayed transactions)")
    p.add_argument("--stop-at-end", action="store_true",
                   help="exit 0 once caught up with the upstream's current end")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _build(args):
    """(engine, task): the task not added yet (``run_foreground`` checks it first)."""
    import sys

    from console.engine.engine import Engine
    from console.engine.relay import RelayTask
    from console.engine.relay.startcheck import AdHoc
    from console.kinds.relay import RelayOptions, check_start_from
    from console.mysql.connection import Endpoint

    if args.task:
        if args.host or args.relay_dir:
            raise UserError("relay: give either --task NAME (with --config) or --host/--relay-dir, not both")
        if args.switch_master:
            raise UserError("relay: --switch-master is for the ad hoc form (--host ...); a configured "
                            "relay follows its relay.meta: switch it with the task's switch-master "
                            "command (relay screen key m)")
        from console.commands.common import config_from_args

        cfg = config_from_args(args)
        tc = cfg.task(args.task)
        if tc.kind != "relay":
            raise UserError(f"relay: task {args.task!r} is a {tc.kind} task, not a relay task")
        changes = {}
        if args.stop_at_end:
            changes["stop_at_end"] = True
        if args.server_id:
            changes["server_id"] = args.server_id
        if args.semi_sync:
            changes["semi_sync"] = True
        if changes:
            tc = dataclasses.replace(tc, options=dataclasses.replace(tc.options, **changes))
        engine = Engine(cfg)
        from console.engine.relay import make_relay_task

        return engine, make_relay_task(engine, tc)
    missing = [n for n, v in (("--host", args.host), ("--user", args.user),
                              ("--password-file", args.password_file),
                              ("--relay-dir", args.relay_dir)) if not v]
    if missing:
        raise UserError(f"relay: missing {', '.join(missing)} (or use --config FILE --task NAME)")
    pw = Path(args.password_file).expanduser()
    try:
        if not pw.read_text().strip():
            raise UserError(f"relay: password file {pw} (--password-file) is empty: write the "
                            f"password of --user {args.user} into it")
    except OSError as e:
        raise UserError(f"relay: cannot read password file {pw} (--password-file): {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"relay: password file {pw} (--password-file) is not a text file") from None
    if args.server_id is not None and not 1 <= args.server_id <= 0xFFFFFFFF:
        raise UserError(f"relay: --server-id must be between 1 and 4294967295, got {args.server_id}")
    if not 1 <= args.port <= 65535:
        raise UserError(f"relay: --port must be between 1 and 65535, got {args.port}")
    start = args.start_from or "oldest"
    why = check_start_from(start)
    if why:
        raise UserError(f"relay: --start-from {why}")
    relay_dir = Path(args.relay_dir).expanduser()
    opts = RelayOptions(relay_dir=relay_dir, server_id=args.server_id or 4242,
                        start_from=start, stop_at_end=args.stop_at_end, semi_sync=args.semi_sync)
    ep = Endpoint(args.host, args.port, args.user, Secret(file=str(pw)))
    cfg = Config(path=None, state_dir=relay_dir / ".state", ui=UIConfig(), clusters={}, tasks={})
    engine = Engine(cfg)
    return engine, RelayTask("relay", ep, opts, adhoc=AdHoc(switch=args.switch_master),
                             log=lambda msg: print(f"relay: {msg}", file=sys.stderr, flush=True))


def run(args) -> int:
    if args.task and not (args.host or args.relay_dir or args.switch_master or args.stop_at_end
                          or args.server_id or args.semi_sync):
        from console.commands.common import config_from_args
        from console.commands.engine_link import run_in_engine, served

        cfg = config_from_args(args)
        tc = cfg.task(args.task)
        client = served(cfg) if tc.kind == "relay" else None
        if client:  # an engine serves this state directory: the relay runs there
            return run_in_engine(client, args.task, "relay")
    engine, task = _build(args)

    def progress(d) -> str:
        behind = d.bytes_behind if d.bytes_behind is not None else "?"
        return (f"{d.relayed_file}:{d.relayed_pos} gtid {d.relayed_gtid or '-'} "
                f"behind {behind} B {d.mb_per_s:.1f} MB/s retries {d.retries}")

    return run_foreground(engine, task, name="relay", quiet=args.quiet, progress=progress,
                          final=lambda d: f"stopped at {d.relayed_subdir}/{d.relayed_file}:{d.relayed_pos} "
                                          f"gtid {d.relayed_gtid or '-'} ({d.total_events} events, "
                                          f"{d.total_bytes} bytes)")
