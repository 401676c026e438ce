"""TOML config -> typed, frozen dataclasses.

Every error is one line naming the file, the key and the reason, e.g.::

    config error: prod.toml: clusters.main.hosts.db1.pasword: unknown key (did you mean 'password'?)

Layout (see ``sample-configs/`` for commented examples)::

    state_dir = "~/.local/state/dbops-console"
    [ui]            theme, refresh_interval
    [clusters.NAME] heartbeat, auto_failover, ...
    [clusters.NAME.hosts.HOSTNAME]  host, port, user, password|password_file|password_env, tags
    [clusters.NAME.replication]     user, password|password_file|password_env
    [clusters.NAME.haproxy]         admin_socket, backend, mode, server, ... (console.kinds.haproxy)
    [tasks.TASKNAME] kind = "relay" | ... ; options checked by that kind

Every option is read by its declaration (``console.options.opt`` fields):
a task's by its kind's options dataclass in ``console.kinds``, a cluster's,
a host's, the replication user's, the hooks' and the UI's by the
dataclasses below (``ClusterOptions``, ``HostOptions``, ...), the
``haproxy`` table's by ``console.kinds.haproxy``.  The parser,
``config check``, the JSON Schema and the README's option tables all come
from those declarations.  Only the password sources (``Table.secret``), a
host's ``tags`` and ``state_dir`` are read by hand.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.errors import UserError
from console.kinds.haproxy import HaproxyOptions, parse_haproxy
from console.kinds.registry import get as get_kind
from console.kinds.registry import names as kind_names
from console.kinds.storage_url import is_url
from console.options import bound_problem, convert, opt, options_of, type_word, wanted_word
from console.secret import Secret

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_STATE_DIR = "~/.local/state/dbops-console"
DEFAULT_CONFIG_PATHS = ("./dbops.toml", "~/.config/dbops-console/config.toml")
THEMES = ("dark", "light", "solarized")



class ConfigError(UserError):
    exit_code = 2

    def __init__(self, file: str | os.PathLike | None, key: str, reason: str):
        self.file, self.key, self.reason = str(file or "<config>"), key, reason
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(f"config error: {where}{reason}")


@dataclass(frozen=True, kw_only=True)
class HostOptions:
    """The declared keys of a ``[clusters.NAME.hosts.HOST]`` table (besides
    its password source and its ``tags``)."""

    host: str = opt("127.0.0.1", "address (name or IP) of the server", flag=None)
    port: int = opt(3306, "port", minimum=1, maximum=65535, flag=None)
    user: str = opt(doc="operations user", flag=None)


@dataclass(frozen=True, kw_only=True)
class HostConfig(HostOptions):
    name: str
    password: Secret = field(repr=False)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ReplicationOptions:
    """The declared keys of ``[clusters.NAME.replication]`` (besides its
    password source)."""

    user: str = opt(doc="user replicas connect to a primary with", flag=None)


@dataclass(frozen=True, kw_only=True)
class Credentials(ReplicationOptions):
    password: Secret = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class HookOptions:
    """``[clusters.NAME.hooks]``: executables run around a recovery."""

    pre_failover: tuple[str, ...] = opt((), "executables run before a recovery (a failing one "
                                            "stops it)", flag=None)
    post_failover: tuple[str, ...] = opt((), "executables run after a recovery", flag=None)


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """The declared keys of a ``[clusters.NAME]`` table (besides its
    ``hosts``, ``replication`` and ``hooks`` tables)."""

    heartbeat: bool = opt(False, "keep dbops.heartbeat on the primary (like pt-heartbeat) for "
                                 "millisecond lag", flag=None)
    heartbeat_interval: float = opt(0.5, "heartbeat write interval", minimum=0.05, unit="s",
                                    flag=None)
    auto_failover: bool = opt(False, "automatic failover (opt-in)", flag=None)
    check_interval: float = opt(1.0, "failure-detection interval", minimum=0.1, unit="s",
                                flag=None)
    max_lag_seconds: float = opt(10.0, "lag above which a replica is not a promotion candidate",
                                 minimum=0, unit="s", flag=None)
    block_period: float = opt(600.0, "anti-flapping period between automatic recoveries",
                              minimum=0, unit="s", flag=None)


@dataclass(frozen=True, kw_only=True)
class ClusterConfig(ClusterOptions):
    name: str
    hosts: tuple[HostConfig, ...]
    replication: Credentials | None = None
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    haproxy: HaproxyOptions | None = None  # [clusters.NAME.haproxy]: traffic follows the primary

    def host(self, name_or_address: str) -> HostConfig | None:
        for h in self.hosts:
            if name_or_address in (h.name, h.address):
                return h
        return None


@dataclass(frozen=True)
class UIConfig:
    """``[ui]``, declared like every option."""

    theme: str = opt("dark", "colour theme (themes/*.tcss)", choices=THEMES, flag=None)
    refresh_interval: float = opt(1.0, "dashboard and monitor refresh", minimum=0.1, unit="s",
                                  flag=None)


@dataclass(frozen=True)
class TaskConfig:
    name: str
    kind: str
    cluster: str | None
    autostart: bool
    options: Any  # the kind's own frozen dataclass


@dataclass(frozen=True)
class Config:
    path: Path | None
    state_dir: Path
    ui: UIConfig
    clusters: Mapping[str, ClusterConfig]
    tasks: Mapping[str, TaskConfig]

    def cluster(self, name: str | None) -> ClusterConfig:
        if name is None:
            if len(self.clusters) == 1:
                return next(iter(self.clusters.values()))
            raise UserError(f"{self.path}: several clusters ({', '.join(self.clusters)}); pass --cluster NAME")
        try:
            return self.clusters[name]
        except KeyError:
            raise UserError(f"{self.path}: no cluster named {name!r} (known: {', '.join(self.clusters) or 'none'})") from None

    def task(self, name: str) -> TaskConfig:
        try:
            return self.tasks[name]
        except KeyError:
            raise UserError(f"{self.path}: no task named {name!r} (known: {', '.join(self.tasks) or 'none'})") from None


# ---------------------------------------------------------------------------
# small schema helper shared with the task kinds


class Table:
    """A TOML table being read: tracks which keys were used so unknown keys
    (typos) are reported with a suggestion."""

    def __init__(self, data: Mapping[str, Any], path: str, file: str | os.PathLike | None):
        if not isinstance(data, Mapping):
            raise ConfigError(file, path, f"must be a table, got {type_word(data)}")
        self.data, self.path, self.file = data, path, file
        self._known: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), reason)

    def get(self, name: str, typ: type | tuple[type, ...], default: Any = ..., *,
            choices: tuple | None = None, minimum: float | None = None,
            maximum: float | None = None) -> Any:
        self._known.add(name)
        if name not in self.data:
            if default is ...:
                raise self.error(name, "missing (required)")
            return default
        value = self.data[name]
        types = typ if isinstance(typ, tuple) else (typ,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(wanted_word(t) for t in types)
            raise self.error(name, f"must be {want}, got {type_word(value)} {value!r}")
        if choices is not None and value not in choices:
            raise self.error(name, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # TOML has nan and inf
            raise self.error(name, f"must be a finite number, got {value!r}")
        why = bound_problem(value, minimum, maximum) if isinstance(value, (int, float)) else None
        if why:
            raise self.error(name, why)
        return value

    def table(self, name: str, default_empty: bool = True) -> Table:
        self._known.add(name)
        if name not in self.data:
            if default_empty:
                return Table({}, self.key(name), self.file)
            raise self.error(name, "missing (required table)")
        return Table(self.data[name], self.key(name), self.file)

    def secret(self, prefix: str = "password", required: bool = True) -> Secret | None:
        """One of ``password``, ``password_file`` or ``password_env``."""
        names = (prefix, f"{prefix}_file", f"{prefix}_env")
        given = [n for n in names if n in self.data]
        for n in names:
            self._known.add(n)
        if len(given) > 1:
            raise self.error(given[1], f"give only one of {', '.join(names)}")
        if not given:
            for k in self.data:  # a misspelt source is a typo, not a missing source
                close = difflib.get_close_matches(k, names, n=1)
                if close and k not in names:
                    raise self.error(k, f"unknown key (did you mean {close[0]!r}?)")
            if required:
                raise ConfigError(self.file, self.path,
                                  f"no password source: set one of {', '.join(names)}")
            return None
        n = given[0]
        value = self.get(n, str)
        if n == prefix:
            return Secret(value)
        if n.endswith("_file"):
            p = Path(value).expanduser()
            if not p.is_absolute() and self.file:
                p = Path(self.file).resolve().parent / p
            secret = Secret(file=str(p))
            try:
                empty = not secret.reveal()
            except (OSError, UnicodeDecodeError) as e:
                why = getattr(e, "strerror", None) or "not UTF-8 text"
                raise self.error(n, f"cannot read password file {p}: {why}") from None
            if empty:  # the server would be asked "using password: NO"
                raise self.error(n, f"password file {p} is empty: write the password on its first line")
            return secret
        if value not in os.environ:
            raise self.error(n, f"environment variable {value} is not set")
        if not os.environ[value]:
            raise self.error(n, f"environment variable {value} is empty: export the password in it")
        return Secret(env=value)

    def path_value(self, name: str, default: Any = ...) -> Path:
        raw = self.get(name, str, default)
        if raw is None:
            return None  # type: ignore[return-value]
        p = Path(raw).expanduser()
        if not p.is_absolute() and self.file:
            p = Path(self.file).resolve().parent / p
        return p

    def finish(self, errors: list[ConfigError] | None = None) -> None:
        """Unknown keys (typos): the first raised, or every one added to ``errors``."""
        for k in self.data:
            if k not in self._known:
                close = difflib.get_close_matches(k, sorted(self._known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else \
                    f" (known keys: {', '.join(sorted(self._known))})" if self._known else ""
                err = self.error(k, f"unknown key{hint}")
                if errors is None:
                    raise err
                errors.append(err)


# ---------------------------------------------------------------------------
# task options: read by their declaration (console.options, console.kinds)


def parse_options(cls: type, t: Table, errors: list[ConfigError] | None = None) -> Any:
    """An options object of ``cls`` from the table ``t``: every declared
    option checked, file names made absolute (relative to the config file).
    With ``errors``, every problem is added there (and None returned when
    there was one); without, the first is raised."""
    values: dict[str, Any] = {}
    found: list[ConfigError] = []
    for o in options_of(cls):
        if not o.spec.config:
            continue
        t._known.add(o.name)
        if o.name not in t.data:
            if o.required:
                found.append(t.error(o.name, "missing (required)"))
            continue
        try:
            value = convert(o, t.data[o.name])
        except ValueError as e:
            found.append(t.error(o.name, str(e)))
            continue
        if o.is_path and value is not None and not is_url(value):
            p = Path(value).expanduser()
            if not p.is_absolute() and t.file:
                p = Path(t.file).resolve().parent / p
            value = p if o.type is Path else str(p)
        values[o.name] = value
    if found:
        if errors is None:
            raise found[0]
        errors.extend(found)
        return None
    return cls(**values)


def task_kinds() -> tuple[str, ...]:
    return kind_names()


# ---------------------------------------------------------------------------


def find_config(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("DBOPS_CONFIG")
    if env:
        return Path(env).expanduser()
    for cand in DEFAULT_CONFIG_PATHS:
        p = Path(cand).expanduser()
        if p.exists():
            return p
    raise UserError("no config file: pass --config FILE, set DBOPS_CONFIG, "
                    "or try `dbops-console --demo` to start a local sandbox")


def load_config(path: str | os.PathLike, *, require_clusters: bool = True) -> Config:
    """``require_clusters=False`` for the commands that take only settings
    from a config (``migrate``: its state_dir); an empty file is still an error."""
    path = Path(path).expanduser()
    data = _read_toml(path)
    cfg = parse_config(data, path)
    if not cfg.clusters and (require_clusters or not data):  # an empty file, /dev/null, a typo
        raise _no_cluster(path)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read file: {e.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"invalid TOML: {e}") from None


def _no_cluster(path: Path) -> ConfigError:
    return ConfigError(path, "clusters", "no cluster configured: add a [clusters.NAME.hosts.HOST] "
                                         "table (see sample-configs/)")


def parse_config(data: Mapping[str, Any], path: Path | None = None,
                 errors: list[ConfigError] | None = None) -> Config:
    """The config of ``data``.  Without ``errors`` the first problem is
    raised; with it, every section is read and each problem added there
    (``config check``: the first of each host or cluster table, every one of
    a task's options and every unknown key)."""

    def section(fn, *args):
        try:
            return fn(*args)
        except ConfigError as e:
            if errors is None:
                raise
            errors.append(e)
            return None

    top = Table(data, "", path)
    state_dir = section(top.path_value, "state_dir", DEFAULT_STATE_DIR) or Path(DEFAULT_STATE_DIR)

    def ui_of(ui_t: Table) -> UIConfig:
        ui = parse_options(UIConfig, ui_t)
        ui_t.finish(errors)
        return ui

    ui = section(lambda: ui_of(top.table("ui"))) or UIConfig()

    clusters: dict[str, ClusterConfig] = {}
    broken: set[str] = set()  # clusters whose problems were reported: tasks may name them
    cl_t = section(top.table, "clusters")
    for cname in (cl_t.data if cl_t else ()):
        c = section(lambda n=cname: _parse_cluster(cl_t.table(n, default_empty=False), n))
        if c is not None:
            clusters[cname] = c
        else:
            broken.add(cname)
    if cl_t:
        cl_t.finish(errors)

    tasks: dict[str, TaskConfig] = {}
    t_t = section(top.table, "tasks")
    for tname in (t_t.data if t_t else ()):
        tc = section(lambda n=tname: _parse_task(t_t.table(n, default_empty=False), n, clusters,
                                                 errors, broken))
        if tc is not None:
            tasks[tname] = tc
    if t_t:
        t_t.finish(errors)
    top.finish(errors)
    return Config(path=path, state_dir=state_dir, ui=ui, clusters=clusters, tasks=tasks)


def check_config(path: str | os.PathLike) -> tuple[Config | None, list[ConfigError]]:
    """Every problem of the config file at ``path`` (``config check``)."""
    path = Path(path).expanduser()
    errors: list[ConfigError] = []
    try:
        data = _read_toml(path)
    except ConfigError as e:
        return None, [e]
    cfg = parse_config(data, path, errors)
    if not cfg.clusters and not errors:
        errors.append(_no_cluster(path))
    return cfg, errors


def _parse_cluster(t: Table, name: str) -> ClusterConfig:
    hosts_t = t.table("hosts", default_empty=False)
    if not hosts_t.data:
        raise ConfigError(t.file, hosts_t.path, "a cluster needs at least one host")
    hosts = []
    for hname in hosts_t.data:
        h = hosts_t.table(hname, default_empty=False)
        tags_t = h.table("tags")
        tags = {k: tags_t.get(k, str) for k in tags_t.data}
        tags_t.finish()
        o = parse_options(HostOptions, h)
        hosts.append(HostConfig(**_fields(o), name=hname, password=h.secret(), tags=tags))
        h.finish()
    hosts_t.finish()
    seen: dict[str, str] = {}
    for h in hosts:
        if h.address in seen:
            raise ConfigError(t.file, f"{hosts_t.path}.{h.name}",
                              f"same address {h.address} as host {seen[h.address]!r}")
        seen[h.address] = h.name

    repl = None
    if "replication" in t.data:
        r = t.table("replication")
        o = parse_options(ReplicationOptions, r)
        repl = Credentials(**_fields(o), password=r.secret())
        r.finish()
    hooks_t = t.table("hooks")
    hooks = _fields(parse_options(HookOptions, hooks_t))
    hooks_t.finish()
    c = ClusterConfig(**_fields(parse_options(ClusterOptions, t)), name=name, hosts=tuple(hosts),
                      replication=repl, hooks=hooks, haproxy=parse_haproxy(t, parse_options))
    t.finish()
    return c


def _fields(obj: Any) -> dict[str, Any]:
    """The declared options of ``obj`` as keyword arguments (shallow)."""
    return {o.name: getattr(obj, o.name) for o in options_of(type(obj))}


def _parse_task(t: Table, name: str, clusters: Mapping[str, ClusterConfig],
                errors: list[ConfigError] | None = None,
                broken: Collection[str] = ()) -> TaskConfig | None:
    kinds = task_kinds()
    kind = t.get("kind", str, choices=kinds)
    cluster = t.get("cluster", str, None)
    autostart = t.get("autostart", bool, False)
    if cluster in broken:  # its own problems were reported; the task's options still are
        parse_options(get_kind(kind).options, t, errors)
        t.finish(errors)
        return None
    if cluster is not None and cluster not in clusters:
        raise t.error("cluster", f"no cluster named {cluster!r} (known: {', '.join(clusters) or 'none'})")
    options = parse_options(get_kind(kind).options, t, errors)
    if options is None:  # its problems are in errors
        t.finish(errors)
        return None
    checked = get_kind(kind).check
    problems = [t.error(k, why) for k, why in (checked(options) if checked else [])]
    if problems:
        if errors is None:
            raise problems[0]
        errors.extend(problems)
        t.finish(errors)
        return None
    if cluster is None and len(clusters) > 1:
        raise t.error("cluster", f"missing: the config has several clusters ({', '.join(clusters)}); "
                                 f"name the task's")
    home = clusters[cluster] if cluster else next(iter(clusters.values()), None)
    for key in ("host", "snapshot_host"):  # a task's hosts are its cluster's, by name or address
        value = getattr(options, key, None)
        if home is not None and value and home.host(value) is None:
            raise t.error(key, f"no host {value!r} in cluster {home.name} "
                               f"(known: {', '.join(h.name for h in home.hosts)})")
    t.finish(errors)
    return TaskConfig(name=name, kind=kind, cluster=cluster, autostart=autostart, options=options)


def task_table(tc: TaskConfig) -> dict[str, Any]:
    """``tc`` as the ``[tasks.NAME]`` table that declares it (JSON-safe:
    paths as strings, lists as lists; options left unset omitted): what a
    shared fleet keeps of a task (``engine/fleet.py``)."""
    out: dict[str, Any] = {"kind": tc.kind, "autostart": tc.autostart}
    if tc.cluster is not None:
        out["cluster"] = tc.cluster
    for o in options_of(type(tc.options)):
        v = getattr(tc.options, o.name)
        if v is None or not o.spec.config:
            continue
        out[o.name] = str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
    return out


def parse_task_table(data: Mapping[str, Any], name: str, clusters: Mapping[str, ClusterConfig],
                     origin: str) -> TaskConfig:
    """A ``[tasks.NAME]`` table from elsewhere than the config file (the
    fleet's definitions in etcd), checked exactly as the file's are; a
    ``ConfigError`` names ``origin`` and the key."""
    task = _parse_task(Table(data, f"tasks.{name}", origin), name, clusters)
    assert task is not None  # (no error list: a problem raises)
    return task


# ---------------------------------------------------------------------------
# the JSON Schema of a config file (``config schema``): every option from its
# declaration; the password sources, tags and state_dir as the parser reads them


def declared_tables() -> tuple[tuple[str, str, type], ...]:
    """(TOML table, what it is, its options dataclass) of every table besides
    the tasks' whose keys are declared (README tables, ``config schema``)."""
    return (
        ("ui", "the console", UIConfig),
        ("clusters.NAME", "one replication topology", ClusterOptions),
        ("clusters.NAME.hosts.HOST", "one server; also one password source (`password`, "
                                     "`password_file` or `password_env`) and `tags`", HostOptions),
        ("clusters.NAME.replication", "what replicas connect to a primary as; also one password "
                                      "source", ReplicationOptions),
        ("clusters.NAME.hooks", "executables run around a recovery (their environment: "
                                "docs/failover.md, \"Hooks\")", HookOptions),
        ("clusters.NAME.haproxy", "optional: HAProxy's writer backend follows the primary "
                                  "(docs/failover.md, \"Traffic follows the primary\")", HaproxyOptions),
    )


def config_schema() -> dict[str, Any]:
    from console import __version__
    from console.kinds.registry import all_kinds
    from console.options import json_schema_of

    def secret_source() -> dict[str, Any]:
        return {"password": {"type": "string", "description": "inline (prefer a file)"},
                "password_file": {"type": "string", "description": "file whose first line is it"},
                "password_env": {"type": "string", "description": "environment variable holding it"}}

    def table(cls: type, **extra: Any) -> dict[str, Any]:
        s = json_schema_of(cls)
        s["properties"].update(extra)
        s["additionalProperties"] = False
        return s

    host = table(HostOptions, tags={"type": "object", "additionalProperties": {"type": "string"}},
                 **secret_source())
    cluster = table(ClusterOptions,
                    hosts={"type": "object", "minProperties": 1, "additionalProperties": host},
                    replication=table(ReplicationOptions, **secret_source()),
                    hooks=table(HookOptions), haproxy=table(HaproxyOptions))
    cluster["required"] = ["hosts", *cluster.get("required", [])]
    common = {"kind": {"type": "string"}, "cluster": {"type": "string"},
              "autostart": {"type": "boolean", "default": False}}
    task_variants = []
    for k in all_kinds():
        s = json_schema_of(k.options)
        s["properties"] = {**common, **s["properties"], "kind": {"const": k.name}}
        s["required"] = ["kind", *s.get("required", [])]
        s["additionalProperties"] = False
        s["description"] = k.doc
        task_variants.append(s)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"dbops-console {__version__} config (TOML)",
        "type": "object", "additionalProperties": False,
        "properties": {
            "state_dir": {"type": "string", "default": DEFAULT_STATE_DIR},
            "ui": table(UIConfig),
            "clusters": {"type": "object", "additionalProperties": cluster},
            "tasks": {"type": "object", "additionalProperties": {"oneOf": task_variants}},
        },
    }
