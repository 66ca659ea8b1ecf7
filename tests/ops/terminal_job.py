"""`sftforge` commands run as a terminal runs them, for the tests that signal them (#14 §1,
§2): a job in its own process group with SIGINT at its default, the bytes it wrote, and
whether its processes are gone."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO
from tests.ops.ops_support import SFTFORGE


def _default_sigint() -> None:
    # In the child: SIGINT at its default, as in a terminal (a test runner's worker, or a
    # script's background job, may ignore it, and an ignored SIGINT is inherited).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_job(
    command: list[str], env: dict[str, str], own_session: bool = True
) -> subprocess.Popen[str]:
    """Start `command` in the repository like a job in a terminal: its own process group,
    so killpg is what the terminal's Ctrl-C does. `own_session=False` keeps it in this
    session, as a shell's job is: the kernel discards SIGTSTP sent to a group with no
    parent in its session outside it (an orphaned group), which a new session is."""
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=own_session,
        process_group=None if own_session else 0,
        preexec_fn=_default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sharegpt_clean_run(dump: Path, out: Path, shard_size: int, *extra: str) -> list[str]:
    """`sftforge run` of the shipped ShareGPT recipe on `dump`, two workers."""
    return [
        SFTFORGE,
        "run",
        "configs/sharegpt_clean.yaml",
        "--input",
        f"sharegpt={dump}",
        "--out",
        str(out),
        "--set",
        f"runner.shard_size={shard_size}",
        "--set",
        "runner.workers=2",
        *extra,
    ]


def output_digests(out: Path) -> dict[str, str]:
    """sha256 of every file a run's outputs consist of: stage tables and exports."""
    files = [*out.glob("*.parquet"), *out.glob("export/**/*"), *out.glob("data/**/*")]
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(files)
        if p.is_file()
    }


def gone(pid: int, group: bool, wait: float = 10.0) -> bool:
    """Whether the process (or the process group) `pid` ends within `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0) if group else os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def process_state(pid: int) -> str:
    """The state letter /proc gives `pid` (R, S, T for stopped, ...); "" once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def group_members(pgid: int) -> list[int]:
    """The processes of the process group `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members
