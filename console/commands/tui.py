"""Opening the Textual console (the default command), with ``--demo``."""

from __future__ import annotations

import sys

from console.commands.common import config_from_args
from console.config import load_config


def run_console(args) -> int:
    if args.demo:
        from pathlib import Path

        from console.commands.common import default_state_dir
        from console.sandbox import Sandbox

        d = Path(args.demo_dir).expanduser() if args.demo_dir else default_state_dir(args) / "sandbox"
        info = Sandbox(d, base_port=args.demo_port).up(progress=lambda m: print(m, file=sys.stderr))
        cfg = load_config(info.config)
    else:
        cfg = config_from_args(args)
    from console.tui.app import ConsoleApp

    if args.standalone:
        from console.engine.engine import Engine

        engine = Engine(cfg)
    else:  # the console is a client of the engine serving the state directory
        import os

        from console.api.launch import attach_or_start
        from console.api.remote import RemoteEngine

        client, started = attach_or_start(cfg, actor=f"console:{os.getpid()}")
        engine = RemoteEngine(cfg, client, started_here=started is not None, pid=started)
    app = ConsoleApp(engine)
    try:
        app.run()
    finally:
        engine.shutdown()
    return 0
