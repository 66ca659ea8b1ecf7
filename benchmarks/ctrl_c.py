"""How long `sftforge run` takes to exit after one Ctrl-C during html_to_markdown.

    python benchmarks/ctrl_c.py [--repeats 5] [--records 20000] [--signal INT|TERM]

The input is made once with the demo generator (code-heavy ShareGPT, as in #14's report: 20,000
records); each repeat starts `sftforge run configs/sharegpt_clean.yaml` on it into a fresh
directory in its own process group (a terminal job), waits until html_to_markdown has finished
its first shard, then sends SIGINT to the whole group, as a terminal's Ctrl-C does (or, with
--signal TERM, SIGTERM to the main process alone), and times the exit. It prints the exit
code, the seconds to exit, the lines printed after the signal, and whether any process of
the group outlived the command (and, for a run forked by the warm process, of the run's own
group); then the median. The runs use the installed `sftforge` command and the shared local
Prefect server in a fresh SFTFORGE_HOME (`sftforge server start`, which also starts the warm
process; stopped at the end). `--mode in-process` sets SFTFORGE_WARM=0: each command runs
the flow itself, as before the warm process.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SFTFORGE = [str(Path(sys.executable).parent / "sftforge")]
READY_SECONDS = 60.0


def _default_sigint() -> None:
    # In the child: SIGINT at its default, as in a terminal (a test runner's worker, or a
    # script's background job, may ignore it, and an ignored SIGINT is inherited).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_input(path: Path, records: int) -> None:
    spec = importlib.util.spec_from_file_location("gen", REPO / "data" / "make_sharegpt_sample.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.write_jsonl(path, gen.generate(records, seed=3, code_heavy=True, flawed_share=0.1))


def group_alive(pgid: int) -> list[str]:
    """The group's processes still running (a zombie is dead: only its exit status is left,
    for init to collect)."""
    listing = subprocess.run(
        ["ps", "-o", "stat=,pid=,args=", "-g", str(pgid)], capture_output=True, text=True
    ).stdout.splitlines()
    return [line.strip()[:100] for line in listing if line.strip() and line.split()[0][0] != "Z"]


def warm_log(env: dict[str, str]) -> str:
    path = Path(env["SFTFORGE_HOME"]) / "server" / "warm.log"
    return path.read_text() if path.exists() else ""


def warm_runs(env: dict[str, str]) -> list[int]:
    """The pids of the runs the warm process forked, in order."""
    return [int(pid) for pid in re.findall(r"run (\d+): sftforge", warm_log(env))]


def one(data: Path, out: Path, env: dict[str, str], sig: signal.Signals) -> dict:
    command = [*SFTFORGE, "run", "configs/sharegpt_clean.yaml", "--input", f"sharegpt={data}"]
    proc = subprocess.Popen(
        [*command, "--out", str(out)],
        cwd=REPO,
        env=env,
        start_new_session=True,
        preexec_fn=_default_sigint,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = out / ".sftforge" / "state" / "html_to_markdown"
    while not any(state.glob("part-*.json")):
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before html_to_markdown: {proc.stderr.read()}")
        time.sleep(0.02)
    began = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate()
    seconds = time.monotonic() - began
    groups = [proc.pid, *warm_runs(env)[-1:]]  # a warm run's own group too
    left = [p for g in groups for p in group_alive(g)]
    while left and time.monotonic() - began < 30:
        time.sleep(0.05)
        left = [p for g in groups for p in group_alive(g)]
    group_seconds = time.monotonic() - began
    tail = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    return {
        "code": proc.returncode,
        "seconds": seconds,
        "lines_after": len(tail) - 1,  # less the run's first line
        "group_gone_after": group_seconds,
        "left": left,
        "last": tail[-1] if tail else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--signal", choices=["INT", "TERM"], default="INT")
    parser.add_argument("--mode", choices=["warm", "in-process"], default="warm")
    args = parser.parse_args()
    sig = signal.SIGINT if args.signal == "INT" else signal.SIGTERM
    root = Path(tempfile.mkdtemp(prefix="sftforge-ctrlc-"))
    env = {**os.environ, "SFTFORGE_HOME": str(root / "home"), "PREFECT_HOME": str(root / "ph")}
    env.pop("PREFECT_API_URL", None)
    env["SFTFORGE_WARM"] = "1" if args.mode == "warm" else "0"
    try:
        data = root / "dump.jsonl"
        make_input(data, args.records)
        subprocess.run([*SFTFORGE, "server", "start"], env=env, cwd=REPO, check=True)
        deadline = time.monotonic() + READY_SECONDS
        while args.mode == "warm" and "ready in" not in warm_log(env):
            if time.monotonic() > deadline:
                raise SystemExit(f"the warm process did not start:\n{warm_log(env)}")
            time.sleep(0.1)
        print(f"mode: {args.mode}; load average before: {os.getloadavg()}")
        results = []
        for i in range(args.repeats):
            result = one(data, root / f"out-{i}", env, sig)
            results.append(result)
            print(
                f"  run {i + 1}: exit {result['code']} after {result['seconds']:.2f} s, "
                f"{result['lines_after']} line(s), every process gone after "
                f"{result['group_gone_after']:.2f} s {result['left']}"
                f"\n    {result['last']}"
            )
            shutil.rmtree(root / f"out-{i}")
        print(f"load average after: {os.getloadavg()}")
        if args.mode == "warm":
            assert len(warm_runs(env)) == args.repeats, warm_log(env)  # all forked warm
        print(
            f"median seconds from SIG{args.signal} to exit over {args.repeats} runs: "
            f"{statistics.median(r['seconds'] for r in results):.2f}"
        )
    finally:
        subprocess.run([*SFTFORGE, "server", "stop"], env=env, cwd=REPO, check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
