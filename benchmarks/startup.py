"""Fixed overhead of `sftforge run`: command wall minus flow wall, warm vs shared vs temporary.

    python benchmarks/startup.py [--repeats 5] [--recipe configs/demo.yaml]

For each mode, one warm-up run (it starts the shared server and the warm process, or fills
the OS's file cache), then --repeats runs of the installed `sftforge run RECIPE --out TMP`
into a fresh directory each, timed from the parent: command wall, the manifest's flow wall
(`wall_seconds`: inside the flow), their difference (the fixed overhead: interpreter start,
imports, recipe checks, the Prefect server and the flow run's bookkeeping), and the time to
the command's first line on stderr. Modes:

* warm: the default; the shared local server, and runs forked from the warm process beside
  it (flows/warm_process.py). The runs start once the warm-up's warm process is ready
  (about 4 s after the warm-up ends; a command arriving sooner waits for it);
* shared: `SFTFORGE_WARM=0`, the shared server, each command importing everything itself;
* temporary: also `SFTFORGE_LOCAL_SERVER=0`, Prefect's own default of a temporary server
  per run (what every run did before the shared server).

A fresh SFTFORGE_HOME and PREFECT_HOME are used per mode, and its server is stopped at the
end. Medians are printed; nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The console script a user runs (flows/warm_client.py), from this interpreter's environment.
SFTFORGE = [str(Path(sys.executable).parent / "sftforge")]
MODES = ("warm", "shared", "temporary")


def one_run(recipe: str, out: Path, env: dict[str, str]) -> dict[str, float]:
    """Command wall is until the process exits, as a shell sees it: not until stderr closes,
    which waits for multiprocessing's resource tracker too (it inherits the descriptor)."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [*SFTFORGE, "run", recipe, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[tuple[float, bytes]] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append((time.perf_counter() - began, line))

    reader = threading.Thread(target=read)
    reader.start()
    code = process.wait()
    command = time.perf_counter() - began
    reader.join()
    if code != 0:
        text = b"".join(line for _, line in lines).decode(errors="replace")
        raise SystemExit(f"sftforge run failed ({code}): {text[-2000:]}")
    flow = json.loads((out / "manifest.json").read_text())["wall_seconds"]
    first = lines[0][0] if lines else float("nan")
    return {"command": command, "flow": flow, "overhead": command - flow, "first": first}


def wait_ready(log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "ready in" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm process did not start: {log}")
        time.sleep(0.1)
    print("  " + log.read_text().strip().splitlines()[-1])


def measure(mode: str, recipe: str, repeats: int, root: Path) -> list[dict[str, float]]:
    home = root / mode
    env = {**os.environ, "SFTFORGE_HOME": str(home / "home"), "PREFECT_HOME": str(home / "ph")}
    # As a user's shell runs it: with Python's bytecode cache (some CI and sandbox shells set
    # PYTHONDONTWRITEBYTECODE, and every command then compiles what it imports).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PREFECT_API_URL", None)
    env.pop("SFTFORGE_WARM", None)
    if mode != "warm":
        env["SFTFORGE_WARM"] = "0"
    if mode == "temporary":
        env["SFTFORGE_LOCAL_SERVER"] = "0"
    runs = []
    for i in range(repeats + 1):
        out = root / f"{mode}-{i}"
        result = one_run(recipe, out, env)
        shutil.rmtree(out)
        if mode == "warm" and i == 0:
            wait_ready(home / "home" / "server" / "warm.log")
        if i:  # the first is the warm-up
            runs.append(result)
            print(f"  {mode} run {i}: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.items()))
    if mode != "temporary":
        subprocess.run([*SFTFORGE, "server", "stop"], env=env, cwd=REPO, check=False)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recipe", default="configs/demo.yaml")
    parser.add_argument("--modes", default=",".join(MODES), help="a comma-separated subset")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    root = Path(tempfile.mkdtemp(prefix="sftforge-startup-"))
    try:
        results = {m: measure(m, args.recipe, args.repeats, root) for m in args.modes.split(",")}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"\nmedians of {args.repeats} runs of `sftforge run {args.recipe}` (seconds):")
    print(f"{'':<11}{'command':>9}{'flow':>8}{'overhead':>10}{'first line':>12}")
    for mode, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{mode:<11}{med['command']:>9.2f}{med['flow']:>8.2f}{med['overhead']:>10.2f}"
            f"{med['first']:>12.2f}"
        )


if __name__ == "__main__":
    main()
