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
    from console.engine.engine import Engine
    from console.tui.app import ConsoleApp

    engine = Engine(cfg)
    app = ConsoleApp(engine)
    try:
        app.run()
    finally:
        engine.shutdown()
    return 0
