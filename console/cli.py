"""Argument parsing; every subcommand is a thin call into the engine.

Each subcommand lives in ``console/commands/<name>.py`` with
``register(subparsers)`` that sets ``func`` on its parser.  User errors
print one line on stderr and exit with their code (2 by default); no
traceback ever reaches the operator for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from console import __version__
from console.commands.signals import StopRequested
from console.errors import UserError

COMMAND_MODULES = [
    "console.commands.sandbox",
    "console.commands.status",
    "console.commands.relay",
    "console.commands.backup",
    "console.commands.restore",
    "console.commands.migrate",
    "console.commands.switchover",
    "console.commands.failover",
    "console.commands.monitor",
    "console.commands.topology",
    "console.commands.config",
    "console.commands.serve",
    "console.commands.web",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dbops-console",
                description="Operate MySQL-family replication topologies from the keyboard.")
    p.add_argument("--version", action="version", version=f"dbops-console {__version__}")
    p.add_argument("--config", "-c", metavar="FILE", help="console config (TOML); default "
                   "$DBOPS_CONFIG, ./dbops.toml or ~/.config/dbops-console/config.toml")
    p.add_argument("--demo", action="store_true",
                   help="start (or reuse) a local sandbox and open the console on it")
    p.add_argument("--demo-dir", metavar="DIR", help="sandbox directory for --demo")
    p.add_argument("--demo-port", metavar="P", type=int, default=23306,
                   help="sandbox base port for --demo (default 23306)")
    p.add_argument("--standalone", action="store_true",
                   help="run the engine inside this console instead of attaching to (or "
                        "starting) the background engine: its tasks stop when the console quits")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # every subcommand also takes --config after its name
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS,
                        help="console config (TOML)")
    orig_add = sub.add_parser

    def add_parser(name, **kw):
        kw.setdefault("parents", []).append(common)
        return orig_add(name, **kw)

    sub.add_parser = add_parser
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    p.set_defaults(func=_console)
    return p


def _console(args: argparse.Namespace) -> int:
    from console.commands.tui import run_console

    return run_console(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"dbops-console: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `... | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
    except StopRequested as e:
        print(f"dbops-console: stopped by {e} before it finished; nothing was kept", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("dbops-console: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
