"""The local Prefect server process that sftforge runs share (see local_server.py).

`python -m sftforge.flows.server_daemon PORT` serves Prefect's API and UI on 127.0.0.1:PORT,
as `prefect server start` does (the same app, services and database), and stops itself once
it has been idle for `SFTFORGE_SERVER_IDLE_MINUTES` (default 60): no process holds the
in-use lock (every sftforge command that talks to the server holds it shared while it runs,
and the kernel drops it when that process dies, even by SIGKILL) and none has used it since.
It runs in its own session, so the Ctrl-C a terminal sends to a run's process group never
reaches it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time

from sftforge.flows.server_state import ServerState, server_dir

CHECK_SECONDS = 15.0


def idle_minutes() -> float:
    return float(os.environ.get("SFTFORGE_SERVER_IDLE_MINUTES", "60"))


def _idle_since(state: ServerState) -> float:
    """When the server was last in use: the later of the last user's exit and its start."""
    try:
        return max(state.last_used.stat().st_mtime, state.info.stat().st_mtime)
    except FileNotFoundError:
        return time.time()


def _orphaned(state: ServerState) -> bool:
    """No command can find this server any more: its SFTFORGE_HOME was deleted (a test's or a
    benchmark's temporary one) or a newer server's record replaced its own. Without this it
    would never be idle by its files, and run for ever."""
    current = state.read_info()
    return current is None or current.get("pid") != os.getpid()


def _watch_idle(state: ServerState, server: object, stop: threading.Event) -> None:
    """Ask uvicorn to stop once nobody holds the in-use lock and the idle time has passed.
    The exclusive lock taken to check is kept while stopping: a command arriving then waits
    for it, finds the server gone and starts a new one, rather than use a dying one."""
    limit = idle_minutes() * 60
    with open(state.in_use, "a+") as handle:
        while not stop.wait(min(CHECK_SECONDS, max(limit / 4, 0.5))):
            if _orphaned(state):
                server.should_exit = True  # type: ignore[attr-defined]
                return
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a run is using the server
            if time.time() - _idle_since(state) >= limit:
                state.info.unlink(missing_ok=True)
                server.should_exit = True  # type: ignore[attr-defined]
                stop.wait()  # hold the lock until the process ends
                return
            fcntl.flock(handle, fcntl.LOCK_UN)


def serve(port: int) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    state = ServerState(server_dir())
    app = create_app(final=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_idle, args=(state, server, stop), daemon=True)

    url = f"http://127.0.0.1:{port}/api"
    info = {"pid": os.getpid(), "port": port, "url": url, "started": time.time()}
    # Written before serving: a client that reads it polls /health until the server answers.
    state.write_info(info)
    watcher.start()
    try:
        server.run()
    finally:
        stop.set()
        # Only our own record: a newer server may have replaced it after an idle stop.
        current = state.read_info()
        if current is not None and current.get("pid") == os.getpid():
            state.info.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    port = int(argv[0])
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    print(json.dumps({"event": "start", "pid": os.getpid(), "port": port}), flush=True)
    serve(port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
