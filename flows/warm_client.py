"""The `sftforge` command's entry point: a run handed to the warm process, else run here.

`sftforge run` and `sftforge backfill` spend about 3 s importing Prefect, pandas and pyarrow
and setting up before their flow starts. The warm process (warm_process.py), kept beside the
local Prefect server, has done that once; it forks a copy of itself per command, which runs
the command with this process's arguments, directory, environment, and standard streams
(passed over a Unix socket), so the run starts in a fraction of a second. This process
stays in the foreground: it relays signals (Ctrl-C, SIGTERM, Ctrl-Z) to the run and exits
with the run's code. If it is killed, the warm process kills the run.

It is used when all hold: the command is `run` or `backfill`, without --verbose; runs use
the local server (no PREFECT_API_URL, `SFTFORGE_LOCAL_SERVER` not 0); `SFTFORGE_WARM` is
not 0; and the warm process was started from the same interpreter, the same sftforge code
and the same environment (`warm_key`). Otherwise the command runs in this process, as
`python -m sftforge.flows.cli` does, and a warm process is started for the next one.

Only the standard library is imported here: this module is what every command loads first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

from sftforge.flows.server_state import ServerState, server_dir

WARM_COMMANDS = ("run", "backfill")
# What differs from one shell command to the next and nothing reads at import.
VOLATILE_ENV = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES"})
_PACKAGES = ("sftforge", "sftforge.flows", "sftforge.tasks", "sftforge.schemas")
_RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)


def warm_key(env: Mapping[str, str]) -> str:
    """What a forked run inherits from the warm process instead of loading it itself: the
    interpreter, the installed packages (a site-packages folder changes when one is
    installed), sftforge's code (every module's size and time), and the environment
    (libraries read PREFECT_*, HF_*, OMP_* and others at import)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0".encode())
    for entry in sys.path[1:]:  # [0] is the script's folder, or the warm process's cwd
        with contextlib.suppress(OSError):
            digest.update(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}\0".encode())
    for package in _PACKAGES:
        spec = find_spec(package)
        for folder in (spec and spec.submodule_search_locations) or []:
            for path in sorted(Path(folder).rglob("*.py")):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    for name in sorted(set(env) - VOLATILE_ENV):
        digest.update(f"{name}={env[name]}\0".encode())
    return digest.hexdigest()


def warm_eligible(argv: list[str], env: Mapping[str, str]) -> bool:
    """Whether this command may be run by the warm process (see the module's docstring)."""
    if not argv or argv[0] not in WARM_COMMANDS or not warm_wanted(env):
        return False
    if any(a.startswith("--verb") or a in ("-h", "--help") for a in argv[1:]):
        return False  # --verbose sets Prefect's logging up differently, at import
    return not _prefect_settings_here()


def warm_wanted(env: Mapping[str, str]) -> bool:
    """Runs from this environment use a warm process: the local server, Linux (fork,
    SO_PEERCRED), and SFTFORGE_WARM not 0."""
    from sftforge.flows.local_server import configured_api_url

    if env.get("SFTFORGE_WARM", "1") == "0" or sys.platform != "linux":
        return False
    return env.get("SFTFORGE_LOCAL_SERVER", "1") != "0" and not configured_api_url()


def _prefect_settings_here() -> bool:
    """Prefect reads settings from `prefect.toml`, `.env` and `pyproject.toml`'s
    [tool.prefect] in the working directory, once, at import: the warm process imported
    Prefect elsewhere, so a command run where they are runs itself."""
    if Path("prefect.toml").exists() or Path(".env").exists():
        return True
    try:
        return "[tool.prefect" in Path("pyproject.toml").read_text(errors="replace")
    except OSError:
        return False


def _receive_line(conn: socket.socket, buffer: bytearray) -> str | None:
    """The next line the warm process sends, or None once it closed the connection."""
    while b"\n" not in buffer:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


class _Relay:
    """Signals this process receives, sent on to the run (its pid once known)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        # A signal ignored when the command started (`sftforge run … &` in a script ignores
        # SIGINT) stays ignored, as it would for a run in this process.
        for signum in (*_RELAYED, signal.SIGTSTP):
            handler = self._suspend if signum == signal.SIGTSTP else self._forward
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self.previous[signum] = signal.signal(signum, handler)

    def uninstall(self) -> None:
        """Back to the handlers before; a signal that came meanwhile is handled by them."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        for signum in self.pending:
            signal.raise_signal(signum)

    def started(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self._send(signum)

    def _send(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid or 0, signum)

    def _forward(self, signum: int, frame: object) -> None:
        if self.pid is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def _suspend(self, signum: int, frame: object) -> None:
        """Ctrl-Z: the run (its whole process group) stops with this process, and goes on
        when the shell resumes it (`fg`, `bg`)."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, self._suspend)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)


def run_warm(argv: list[str], env: Mapping[str, str]) -> int | None:
    """The command run by the warm process: its exit code, or None if no warm process took
    it (none running, or one started from another environment or code) and nothing ran."""
    state = ServerState(server_dir())
    request = json.dumps(
        {
            "key": warm_key(env),
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(env),
            "umask": os.umask(os.umask(0o22)),
        }
    ).encode()
    relay = _Relay()
    buffer = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(str(state.warm_socket))
            socket.send_fds(conn, [len(request).to_bytes(8, "big")], [0, 1, 2])
            conn.sendall(request)
        except OSError:
            return None
        relay.install()  # from here a Ctrl-C reaches the run once it has started
        reply = _receive_line(conn, buffer)
        if reply is None or not reply.startswith("pid "):
            # "stale": it did not fork, and stops; or it died while starting. Nothing ran.
            relay.uninstall()
            return None
        relay.started(int(reply.split()[1]))
        while (line := _receive_line(conn, buffer)) is not None:
            if line.startswith("exit "):
                return int(line.split()[1])
    print("sftforge: the warm process ended without the run's exit code", file=sys.stderr)
    return 1


def warm_pid(state: ServerState) -> int | None:
    """The pid of the warm process serving (or starting), which holds `warm.lock` and wrote
    its pid in it; None when there is none."""
    import fcntl

    with open(state.warm_lock, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            text = lock.read().strip()
            return int(text) if text.isdigit() else 0  # 0: one starting, pid not written yet
    return None


def start_warm_process(env: Mapping[str, str]) -> None:
    """Start a warm process for the next commands, unless one is serving already."""
    state = ServerState(server_dir())
    if warm_pid(state) is not None:
        return
    with open(state.warm_log, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "sftforge.flows.warm_process"],
            cwd=state.folder,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C to a command must not reach it
        )


def entry() -> NoReturn:
    """The `sftforge` command."""
    argv, env = sys.argv[1:], dict(os.environ)  # as the shell gave them, before any default
    eligible = warm_eligible(argv, env)
    if eligible:
        try:
            code = run_warm(argv, env)
        except KeyboardInterrupt:  # before anything ran
            raise SystemExit(130) from None
        if code is not None:
            raise SystemExit(code)
    from sftforge.flows import cli

    code = cli.main(argv)
    if eligible and code != 2:  # a run that started: the local server is up for the next
        start_warm_process(env)
    cli.exit_now(code)
