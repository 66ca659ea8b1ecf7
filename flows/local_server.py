"""The local Prefect server sftforge runs share: started on first use, reused by the next runs
(which then start in about a second, not the 10–30 s of a temporary server per run), stopped
by itself after an idle time, and the Prefect UI's home for the run history.

`PREFECT_API_URL`, when set, wins: runs use that server and this module starts nothing.
The server's record is in server_state.py; the server process is server_daemon.py.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sftforge.flows.server_state import ServerState, server_dir

_held: IO[str] | None = None  # this process's shared hold on the in-use lock


class ServerStartFailed(RuntimeError):
    pass


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def startup_timeout() -> float:
    return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))


def _start(state: ServerState) -> dict[str, Any]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with open(state.log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sftforge.flows.server_daemon", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C to a run must not reach it
        )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + startup_timeout()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartFailed(
                f"the local Prefect server exited with code {process.returncode} while "
                f"starting; its log: {state.log}"
            )
        if healthy(url, timeout=1.0):
            return {"pid": process.pid, "port": port, "url": url}
        time.sleep(0.2)
    process.kill()
    raise ServerStartFailed(
        f"the local Prefect server did not answer within {startup_timeout():.0f} s "
        f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); its log: {state.log}"
    )


def running_server(state: ServerState) -> dict[str, Any] | None:
    """The recorded server when its process lives and answers, else None."""
    info = state.read_info()
    if info is None or not _alive(int(info.get("pid", 0))):
        return None
    return info if healthy(str(info.get("url")), timeout=2.0) else None


def _hold(state: ServerState) -> None:
    """Hold the in-use lock shared until this process ends (the kernel lets go of it then,
    however the process ends): the server does not stop while a command uses it."""
    global _held
    if _held is None:
        handle = open(state.in_use, "a+")  # noqa: SIM115 - kept open for the process's life
        fcntl.flock(handle, fcntl.LOCK_SH)  # waits while a server that went idle stops
        _held = handle
    state.last_used.touch()


def release() -> None:
    """Let go of the server (at exit): its idle time counts from now."""
    global _held
    if _held is not None:
        ServerState(server_dir()).last_used.touch()
        _held.close()
        _held = None


def configured_api_url() -> str | None:
    """A Prefect API URL the user configured: `PREFECT_API_URL` in the environment, in the
    settings of a process that has Prefect loaded already (a notebook, a test harness), or
    in the active Prefect profile (`prefect config set PREFECT_API_URL=…`; read from the
    file, since importing Prefect's settings here would freeze them before ours are set)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def use_local_server(announce: Callable[[str], None] = lambda line: None) -> str:
    """The API URL runs in this process use: `PREFECT_API_URL` when set, else the local
    server's (started now when none runs), which is then set as `PREFECT_API_URL`. Call
    before Prefect is imported. `SFTFORGE_LOCAL_SERVER=0` keeps Prefect's own default, a
    temporary server per process ("" returned)."""
    configured = configured_api_url()
    if configured:
        return configured
    if os.environ.get("SFTFORGE_LOCAL_SERVER", "1") == "0":
        return ""  # Prefect's temporary server, started for this process and gone with it
    state = ServerState(server_dir())
    hold_local_server(state)
    with open(state.start_lock, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one command starts it; the others wait and reuse
        info = running_server(state)
        if info is None:
            announce("starting the local Prefect server (once; the next runs reuse it)")
            info = _start(state)
    url = str(info["url"])
    os.environ["PREFECT_API_URL"] = url
    return url


def hold_local_server(state: ServerState, held: IO[str] | None = None) -> None:
    """This process uses the local server until it exits. `held`: the in-use lock, taken
    already (the warm process takes it for each run it forks, before it checks that its
    server still runs; it holds none itself, or the server would never go idle)."""
    global _held
    import atexit

    if _held is None:
        atexit.register(release)
        _held = held
    _hold(state)


def ui_url(api_url: str) -> str:
    return api_url.removesuffix("/api")


def stop_server(state: ServerState, grace: float = 10.0) -> bool:
    """Stop the recorded server (SIGTERM, then SIGKILL after `grace` s); False if none ran."""
    info = state.read_info()
    if info is None or not _alive(int(info.get("pid", 0))):
        state.info.unlink(missing_ok=True)
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    state.info.unlink(missing_ok=True)
    return True


def server_command(action: str) -> int:
    """`sftforge server status|start|stop`."""
    state = ServerState(server_dir())
    configured = configured_api_url()
    if configured and action != "stop":
        print(f"PREFECT_API_URL is set: runs use {configured} (the local server is not used)")
        return 0
    if action == "start":
        from sftforge.flows.warm_client import start_warm_process, warm_wanted

        env = dict(os.environ)  # the warm process's, as a run from this shell would send it
        wanted = warm_wanted(env)  # before PREFECT_API_URL is set to the local server's
        url = use_local_server(lambda line: print(f"sftforge: {line}", file=sys.stderr))
        print(f"running at {url} (UI: {ui_url(url)})")
        if wanted:
            start_warm_process(env)  # ready for the first run too
        return 0
    if action == "stop":
        print("stopped" if stop_server(state) else "not running")
        return 0
    info = running_server(state)
    if info is None:
        print("not running (the next run starts it)")
        return 3  # as `systemctl status` says "not running"
    minutes = (time.time() - float(info.get("started", time.time()))) / 60
    from sftforge.flows.server_daemon import idle_minutes

    print(
        f"running at {info['url']} (UI: {ui_url(str(info['url']))}), pid {info['pid']}, "
        f"up {minutes:.0f} min, stops after {idle_minutes():.0f} min unused; log: {state.log}"
    )
    print(_warm_status(state))
    return 0


def _warm_status(state: ServerState) -> str:
    from sftforge.flows.warm_client import warm_pid

    pid = warm_pid(state)
    if pid is None:
        return "warm process: none (the next run starts one)"
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        memory = f", {int(rss) / 1024:.0f} MB resident"
    except (OSError, StopIteration):
        memory = ""
    return f"warm process: pid {pid}{memory}, runs start in it; log: {state.warm_log}"


def ui_command() -> int:
    """`sftforge ui`: the Prefect UI's URL (the server is started if needed)."""
    url = use_local_server(lambda line: print(f"sftforge: {line}", file=sys.stderr))
    print(ui_url(url))
    return 0
