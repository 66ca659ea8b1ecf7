"""The warm process: sftforge with Prefect, pandas and pyarrow imported, forking one copy of
itself per `sftforge run`/`backfill` command (the client side is warm_client.py).

Started in its own session, it takes `warm.lock`, listens on `warm.sock` and imports what a
run imports. Per command it checks the request's key against its own (interpreter, code,
environment) and that its server still runs, then forks; the fork takes the command's
streams, directory, environment and arguments and runs `cli.main` in its own process group.
The client gets the fork's pid, then its exit code; if the client goes (killed), the fork's
group is killed, workers included, as killing a run in the foreground does.

It stops taking runs on a request it does not fit ("stale": the client runs the command
itself and starts a new one) or once its server is gone (stopped, idle, its SFTFORGE_HOME
deleted), and exits when its runs have ended. It holds no hold on the server.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import IO, Any, NoReturn

from sftforge.flows.server_state import ServerState, server_dir
from sftforge.flows.warm_client import VOLATILE_ENV, warm_key

POLL_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0
# Imported before serving: what `sftforge run` and `backfill` import before their flow starts
# and while it runs in the main process.
_PRELOAD = (
    "sftforge.flows.cli",
    "sftforge.flows.recipe_flow",
    "sftforge.flows.backfill_flow",
    "sftforge.flows.interruptible",
    "sftforge.flows.progress",
    "sftforge.tasks.pipeline.plan",
    "sftforge.tasks.pipeline.run_state",
    "prefect.flow_engine",
    "prefect.task_engine",
    "rich.console",
    "rich.live",
)


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} pid {os.getpid()}: {message}", flush=True)


class WarmProcess:
    def __init__(self, state: ServerState, key: str) -> None:
        self.state = state
        self.key = key
        self.env = dict(os.environ)  # as started, before Prefect's defaults are set
        self.server = state.read_info() or {}
        self.listener: socket.socket | None = None
        self.socket_inode = 0  # of the socket file it made (another may replace it)
        self.runs: dict[int, socket.socket | None] = {}  # fork pid -> its client
        self.lock: IO[str] | None = None  # warm.lock, held while it lives (not by forks)

    def fits(self) -> bool:
        """Its server still runs: the record names the one it was started for."""
        info = self.state.read_info()
        return info is not None and info.get("pid") == self.server.get("pid")

    def close_listener(self) -> None:
        """No new requests: the socket goes (a new warm process may take its place)."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                if os.stat(self.state.warm_socket).st_ino == self.socket_inode:
                    self.state.warm_socket.unlink()
            except FileNotFoundError:
                pass

    def listen(self) -> None:
        self.state.warm_socket.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.state.warm_socket))
        os.chmod(self.state.warm_socket, 0o600)
        listener.listen(16)
        self.socket_inode = os.stat(self.state.warm_socket).st_ino
        self.listener = listener

    def serve(self) -> None:
        while self.listener is not None or self.runs:
            if self.listener is not None and not self.fits():
                _log("its server is gone: stops taking runs")
                self.close_listener()
            clients = {conn: pid for pid, conn in self.runs.items() if conn is not None}
            watched = [*clients, *([self.listener] if self.listener else [])]
            ready, _, _ = select.select(watched, [], [], POLL_SECONDS)
            for conn in ready:
                if conn is self.listener:
                    self.accept()
                else:
                    self.client_gone(clients[conn], conn)
            self.reap()

    def accept(self) -> None:
        assert self.listener is not None
        conn, _ = self.listener.accept()
        try:
            request, fds = self.receive(conn)
        except (OSError, ValueError) as exc:
            _log(f"a request that could not be read: {exc}")
            conn.close()
            return
        # The run's hold on the server, taken before checking that the server still runs
        # (one that went idle drops its record, then stops, while holding the lock
        # exclusively): the fork inherits it, and the server cannot go meanwhile.
        held = open(self.state.in_use, "a+")  # noqa: SIM115 - the fork keeps it open
        fcntl.flock(held, fcntl.LOCK_SH)
        stale = self.stale(request)
        if stale:
            _log(f"stale ({stale}): stops taking runs; the command runs itself")
            held.close()
            self.reply(conn, "stale")
            conn.close()
            for fd in fds:
                os.close(fd)
            self.close_listener()
            return
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_command(self, conn, Command(request, fds, held))  # never returns
        held.close()
        for fd in fds:
            os.close(fd)
        self.runs[pid] = conn
        _log(f"run {pid}: sftforge {' '.join(request['argv'])} (in {request['cwd']})")
        self.reply(conn, f"pid {pid}")

    def stale(self, request: dict[str, Any]) -> str:
        """Why this process must not run the request ("" if it may), for its log."""
        if not self.fits():
            return "its server is gone"
        if request.get("key") == self.key:
            return ""
        env: dict[str, str] = request.get("env", {})
        names = {*env, *self.env} - VOLATILE_ENV
        differ = sorted(n for n in names if env.get(n) != self.env.get(n))
        if differ:
            return f"another environment: {', '.join(differ[:5])}"
        return "another interpreter, installed packages or sftforge code"

    def receive(self, conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
        conn.settimeout(REQUEST_TIMEOUT_SECONDS)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        header, fds, _, _ = socket.recv_fds(conn, 8, 3)
        if uid != os.getuid():
            for fd in fds:
                os.close(fd)
            raise ValueError(f"from uid {uid}, not this user")
        if len(header) != 8 or len(fds) != 3:
            raise ValueError("no standard streams")
        size, body = int.from_bytes(header, "big"), bytearray()
        while len(body) < size:
            chunk = conn.recv(min(size - len(body), 1 << 16))
            if not chunk:
                raise ValueError("cut short")
            body.extend(chunk)
        conn.settimeout(None)
        return json.loads(body), fds

    def reply(self, conn: socket.socket, line: str) -> None:
        # The client may be gone: its run (if any) is killed when that is seen.
        with contextlib.suppress(OSError):
            conn.sendall(f"{line}\n".encode())

    def reap(self) -> None:
        for pid in list(self.runs):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                code = 128 - code if code < 0 else code  # killed by signal N: 128 + N
                conn = self.runs.pop(pid)
                if conn is not None:
                    self.reply(conn, f"exit {code}")
                    conn.close()
                _log(f"run {pid}: exit {code}")

    def client_gone(self, pid: int, conn: socket.socket) -> None:
        """A client's connection became readable: it sends nothing after its request, so it
        closed (killed, or its terminal went). Its run goes with it."""
        try:
            still_there = conn.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            still_there = False
        if still_there:
            conn.recv(4096)
            return
        _log(f"run {pid}: its command is gone: killing the run")
        conn.close()
        self.runs[pid] = None  # reaped later; nobody to tell its exit code
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@dataclass
class Command:
    """What a client sent: its request, its standard streams, and the run's server hold."""

    request: dict[str, Any]
    fds: list[int]
    held: IO[str]


def run_command(warm: WarmProcess, conn: socket.socket, command: Command) -> NoReturn:
    """In the fork: become the command the client asked for, run it, exit with its code."""
    request, fds = command.request, command.fds
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: killed as one if the client goes
        for held in [warm.listener, conn, *warm.runs.values(), warm.lock]:
            if held is not None:
                held.close()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout.reconfigure(line_buffering=sys.stdout.isatty())
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["sftforge", *request["argv"]]
        _run_cli(warm, command)  # exits with the command's code
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the fork must never return into the loop
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        os._exit(code)


def _run_cli(warm: WarmProcess, command: Command) -> NoReturn:
    from sftforge.flows import cli
    from sftforge.flows.local_server import hold_local_server
    from sftforge.tasks.pipeline.request import prefect_defaults

    prefect_defaults(verbose=False)
    os.environ["PREFECT_API_URL"] = str(warm.server["url"])  # as the warm process runs
    hold_local_server(warm.state, command.held)
    cli.exit_now(cli.main(command.request["argv"]))


def main() -> int:
    state = ServerState(server_dir())
    key = warm_key(os.environ)  # of the environment it was started with, before defaults
    lock = open(state.warm_lock, "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another one serves
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")  # for `sftforge server status`
    lock.flush()
    warm = WarmProcess(state, key)
    warm.lock = lock
    if not warm.server or not warm.fits():
        _log("no local server to serve runs of")
        return 0
    warm.listen()  # a command that comes while this imports waits for it, not longer
    began = time.perf_counter()
    from sftforge.tasks.pipeline.request import prefect_defaults

    prefect_defaults(verbose=False)
    os.environ["PREFECT_API_URL"] = str(warm.server["url"])
    import importlib

    for module in _PRELOAD:
        importlib.import_module(module)
    _log(f"ready in {time.perf_counter() - began:.1f} s (server pid {warm.server['pid']})")
    try:
        warm.serve()
    finally:
        warm.close_listener()
    _log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
