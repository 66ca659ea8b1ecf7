"""Where the local Prefect server's record lives: `$SFTFORGE_HOME/server/` (default
`~/.sftforge/server/`), shared by every sftforge command of this user on this machine.

- `server.json`: pid, port and API URL of the running server (absent when none runs);
- `start.lock`: held while one command finds or starts the server, so two never start two;
- `in-use.lock`: held shared by each command while it talks to the server; the server stops
  itself only when it can take this lock exclusively (nobody uses it) for its idle time;
- `last-used`: touched when a command lets go of the server (the idle clock starts there);
- `server.log`: the server's own output;
- `warm.sock`, `warm.lock`, `warm.log`: the warm process beside the server (warm_process.py):
  its socket, the lock it holds while it serves, and its log (one line per run it forked).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def server_dir() -> Path:
    home = os.environ.get("SFTFORGE_HOME") or Path.home() / ".sftforge"
    folder = Path(home) / "server"
    # Private: the warm process's socket in it runs commands as this user.
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class ServerState:
    folder: Path

    @property
    def info(self) -> Path:
        return self.folder / "server.json"

    @property
    def start_lock(self) -> Path:
        return self.folder / "start.lock"

    @property
    def in_use(self) -> Path:
        return self.folder / "in-use.lock"

    @property
    def last_used(self) -> Path:
        return self.folder / "last-used"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def warm_socket(self) -> Path:
        return self.folder / "warm.sock"

    @property
    def warm_lock(self) -> Path:
        return self.folder / "warm.lock"

    @property
    def warm_log(self) -> Path:
        return self.folder / "warm.log"

    def read_info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.info.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return info if isinstance(info, dict) else None

    def write_info(self, info: dict[str, Any]) -> None:
        temp = self.info.with_name(f".server.json.{os.getpid()}.tmp")
        temp.write_text(json.dumps(info))
        os.replace(temp, self.info)
