"""The interactive control socket (a unix socket, one command per line,
like gh-ost's): ``echo status | nc -U /tmp/x.sock``.

Commands: status, sup, coordinates, chunk-size=N, dml-batch-size=N,
max-lag-millis=N, max-load=..., critical-load=..., nice-ratio=F,
throttle-query=..., throttle, no-throttle, unpostpone (alias cut-over),
panic, help, and ``<name>=?`` to read a value.  Every command goes through
the engine (audited, actor ``socket``) when the task runs in one."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

from console.errors import UserError
from console.kinds.migration import MigrationOptions
from console.options import live_help, live_options

# the live options, as declared once (console/kinds/migration.py)
SETTABLE = tuple(o.setting for o in live_options(MigrationOptions))

HELP = "\n".join([
    "available commands:",
    "status                 full status",
    "sup                    one-line status",
    "coordinates            binlog coordinates read and applied",
    live_help(MigrationOptions),
    "<name>=?               print a value, e.g. chunk-size=?",
    "throttle | no-throttle manual throttle on / off",
    "unpostpone | cut-over  cut over as soon as ready",
    "panic                  stop now, original untouched, ghost dropped",
    "help                   this text",
])


def handle_line(task, line: str) -> str:
    """One command line -> reply text (never raises)."""
    line = line.strip()
    if not line:
        return ""
    try:
        hooks = getattr(task, "hooks", None)
        if hooks is not None:       # gh-ost-on-interactive-command (its failure is logged)
            hooks.run("interactive-command", GH_OST_COMMAND=line)
        return _dispatch(task, line)
    except UserError as e:
        return f"ERROR {e}"
    except Exception as e:  # noqa: BLE001 - the socket must answer, not die
        return f"ERROR {type(e).__name__}: {e}"


def _cmd(task, command_name: str, **args):
    eng = task.engine
    if eng is not None:
        return eng.command(task.task_id, command_name, actor="socket", **args)
    args.pop("confirm", None)       # the engine checks it; the method does not take it
    return task.commands()[command_name][0](**args)


def _dispatch(task, line: str) -> str:
    if "=" in line:
        name, _, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if name not in SETTABLE:
            raise UserError(f"unknown setting {name!r}; settable: {', '.join(SETTABLE)}")
        if value == "?":
            return str(task.get_setting(name))
        _cmd(task, "set", setting=name, value=value)
        return f"OK {name}={task.get_setting(name)}"
    cmd = line.lower()
    if cmd == "help":
        return HELP
    if cmd == "status":
        return task.status_text()
    if cmd == "sup":
        return task.summary()
    if cmd == "coordinates":
        d = task.detail()
        return f"read {d.binlog_coordinates or '-'} applied {d.applied_pos or '-'}"
    if cmd in ("throttle", "no-throttle"):
        _cmd(task, cmd)
        return "OK"
    if cmd in ("unpostpone", "cut-over"):
        _cmd(task, "cut-over")
        return "OK cut-over will proceed when ready"
    if cmd == "panic":
        _cmd(task, "panic", confirm=task.confirm_target())
        return "OK panic: stopping"
    raise UserError(f"unknown command {line!r}; try help")


def check_socket_path(path: str) -> bool:
    """Can ``--serve-socket-file`` be served at ``path``?  Raises a one-line
    UserError if not; True if a stale socket (nobody listening) is there and
    may be replaced.  Anything that is not a socket is never replaced."""
    if len(os.fsencode(path)) > 107:
        raise UserError(f"--serve-socket-file {path}: longer than the 107 bytes a unix socket "
                        f"path may have; choose a shorter path")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"--serve-socket-file {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--serve-socket-file {path}: cannot create files in {parent}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise UserError(f"--serve-socket-file {path}: exists and is not a socket; "
                        f"choose another path (it is left alone)")
    probe = socket.socket(socket.AF_UNIX)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return True                     # stale: nobody listens
    finally:
        probe.close()
    raise UserError(f"--serve-socket-file {path}: another process serves it")


class ControlServer(threading.Thread):
    def __init__(self, path: str, task):
        super().__init__(name=f"control-{task.task_id}", daemon=True)
        self.path, self.task = path, task
        if check_socket_path(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(path)
        except OSError as e:
            raise UserError(f"--serve-socket-file {path}: {e.strerror}") from None
        finally:
            os.umask(old)
        self.sock.listen(8)
        self._closed = False

    def run(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                break
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(60)
        buf = b""
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply = handle_line(self.task, line.decode(errors="replace"))
                    conn.sendall((reply + "\n").encode())
            if buf.strip():
                conn.sendall((handle_line(self.task, buf.decode(errors="replace")) + "\n").encode())
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        finally:
            try:
                Path(self.path).unlink()
            except OSError:
                pass
