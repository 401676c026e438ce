"""``dbops-console config check FILE`` and ``config schema``.

``check`` reads the whole file and prints every problem (file, key, reason),
one per line, exit 2; or one line saying what it holds, exit 0.  ``schema``
prints the JSON Schema of a config file (every option from its declaration:
``console.kinds`` for the tasks', ``console.config`` for the other tables),
or with ``--markdown`` the option tables of the README's config reference.
"""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("config", help="check a config file, or print its schema")
    s = p.add_subparsers(dest="config_command", metavar="ACTION", required=True,
                         parser_class=type(p))
    c = s.add_parser("check", help="every problem of config files (exit 2 if any)")
    c.add_argument("files", metavar="FILE", nargs="+")
    c.set_defaults(func=check)
    sc = s.add_parser("schema", help="the JSON Schema of a config file")
    sc.add_argument("--markdown", action="store_true",
                    help="the option tables (the README's config reference) instead")
    sc.set_defaults(func=schema)


def check(args) -> int:
    from console.config import check_config

    bad = 0
    for f in args.files:
        cfg, errors = check_config(f)
        for e in errors:
            print(e, file=sys.stderr)
        if errors:
            bad += 1
            continue
        assert cfg is not None
        print(f"{f}: OK: {len(cfg.clusters)} cluster(s) "
              f"({sum(len(c.hosts) for c in cfg.clusters.values())} hosts), {len(cfg.tasks)} task(s)")
    if bad:
        print(f"dbops-console: config check: {bad} of {len(args.files)} file(s) have problems "
              f"(each listed above: file, key, reason)", file=sys.stderr)
        return 2
    return 0


def schema(args) -> int:
    if args.markdown:
        print(option_tables())
        return 0
    from console.config import config_schema

    json.dump(config_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def option_tables() -> str:
    from console.config import declared_tables
    from console.kinds.registry import all_kinds
    from console.options import markdown_table

    parts = [f"#### `[{name}]`: {what}\n\n{markdown_table(cls)}"
             for name, what, cls in declared_tables()]
    for k in all_kinds():
        parts.append(f"#### `kind = \"{k.name}\"`: {k.doc}\n\n{markdown_table(k.options)}")
    return "\n\n".join(parts)
