"""Throughput and peak memory of the `sharegpt_clean` recipe, optionally against FastChat.

    python benchmarks/sharegpt_pipeline.py --records 20000 --fastchat --one-core
    python benchmarks/sharegpt_pipeline.py --records 100000 --repeats 1
    python benchmarks/sharegpt_pipeline.py --keep /tmp/bench --json /tmp/bench/results.json

Run it with the project's interpreter (e.g. /tmp/venv/bin/python); it needs psutil (a dev
dependency). Options: --records N (20000), --repeats R (3, runs per configuration), --workers K
(all cores: sftforge's runner.workers, and the cores FastChat's "all cores" runs get),
--fastchat (also FastChat's cleaner), --one-core (also sftforge with 1 worker under
`taskset -c 0`, to compare with FastChat on one core), --keep DIR (keep inputs, outputs and
logs), --json PATH (all figures and every run's raw values). `--fastchat` creates
`benchmarks/.fastchat-venv` on first use: fschat==0.2.36 without its dependencies, plus the
markdownify==0.11.6 FastChat pinned, beautifulsoup4, tqdm and six, all from PyPI.

The input is made once per invocation with the demo generator (`data/make_sharegpt_sample.py`,
code_heavy=True, flawed_share=0.1): a JSONL file for sftforge and, with --fastchat, the same
records as one JSON list for FastChat's `clean_sharegpt.py`. The list leaves out the lines that
are not JSON and the records FastChat's cleaner cannot read at all (no `conversations` list, or a
turn whose `from`/`value` is not a string: it raises on them and the whole run dies); sftforge
reads all lines and rejects those in its read stage. Each tool's rate is its own input count
divided by time; both counts are printed (they differ by about 2.5 %).

What each figure means (every figure is the median of --repeats runs):

* sftforge, by flow wall: input records / the manifest's `wall_seconds` (time inside the flow:
  read, steps, outputs, manifest; not Prefect's temporary server startup).
* sftforge, by command wall: input records / wall time of the whole `sftforge run` command,
  including Python imports and connecting to the local Prefect server, which the benchmark
  starts (untimed) before the first run, in its fresh PREFECT_HOME: a user's first run on a
  machine starts it, and the next ones reuse it. Commands run without PYTHONDONTWRITEBYTECODE.
* per-stage conv/s: the stage's `in` / its `seconds` from the manifest. Seconds are work time
  summed over shards, so for the map stages run in the worker pool (html_to_markdown,
  check_structure, filter_blocked_words) this is the rate of ONE worker; read and dedup_exact
  run in the flow's process. "~wall s" divides pooled seconds by the workers (perfect balance
  assumed); the flow wall minus all of those is shown as outputs/manifest/scheduling.
* peak RSS: the process tree (the command and all its descendants: the Prefect server, the
  worker processes) sampled every 0.1 s. "total" is the largest sum over the tree at one
  sample, "single" the largest process, "by role" the largest sum per kind of process. A sum
  of RSS counts pages shared between processes (shared libraries) once per process; "PSS
  total" (sampled every 1 s) divides those among the processes and is the better estimate of
  memory really in use. Spikes shorter than the sampling interval are missed.
* CPU seconds by role: CPU time (user + system) of the main process, the Prefect server, the
  workers (summed) over the whole command: where the machine's cores went.
* FastChat: its input records / command wall (JSON load, cleaning in ProcessPoolExecutor(),
  JSON dump), with all cores (the first K with --workers K) and under `taskset -c 0`.
* ratios: sftforge rate / FastChat rate on the same cores.
* other load: CPU used by processes outside the measured tree during a run, in cores (machine
  busy time minus the tree's and this script's, over wall time). On a 2-core machine anything
  above ~0.1 means the figures are skewed; the load average before and after is printed too.

These are measurements, not tests: nothing passes or fails on time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from sftforge.schemas.steps import step_class
from sftforge.tasks.base.step_protocol import RecordStep
from sftforge.tasks.pipeline.plan import READ_STAGE

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "sharegpt_clean.yaml"
GENERATOR = ROOT / "data" / "make_sharegpt_sample.py"
FASTCHAT_VENV = ROOT / "benchmarks" / ".fastchat-venv"
FASTCHAT_PACKAGES = ["markdownify==0.11.6", "beautifulsoup4", "tqdm", "six"]
SAMPLE_SECONDS = 0.1
PSS_EVERY = 10
MB = 1024 * 1024


# ---------------------------------------------------------------- input


def code_fingerprint() -> str:
    """A hash of the code the runs execute (the recipe and the project's packages)."""
    digest = hashlib.sha256()
    paths = [RECIPE]
    for package in ("flows", "tasks", "schemas"):
        paths.extend((ROOT / package).rglob("*.py"))
    for path in sorted(paths):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sharegpt_sample", GENERATOR)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fastchat_readable(item: dict[str, Any] | str) -> bool:
    """False for what makes FastChat's clean_sharegpt.py raise (and abort the whole run)."""
    if isinstance(item, str) or "id" not in item:
        return False
    turns = item.get("conversations")
    return isinstance(turns, list) and all(
        isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
        for t in turns
    )


@dataclass
class InputInfo:
    jsonl: str
    json_list: str | None
    records: int = 0
    not_json_lines: int = 0
    unreadable_for_fastchat: int = 0
    fastchat_records: int = 0
    answers: int = 0
    answer_bytes: int = 0

    @property
    def answer_kb(self) -> float:
        return self.answer_bytes / self.answers / 1000 if self.answers else 0.0


def count_item(info: InputInfo, item: dict[str, Any] | str) -> None:
    info.records += 1
    if isinstance(item, str):
        info.not_json_lines += 1
        return
    if not fastchat_readable(item):
        info.unreadable_for_fastchat += 1
        return
    info.fastchat_records += 1
    for turn in item["conversations"]:
        if turn["from"] == "gpt":
            info.answers += 1
            info.answer_bytes += len(turn["value"].encode())


def write_inputs(work: Path, records: int, with_json_list: bool) -> InputInfo:
    """One pass over the generator: the JSONL file, and the JSON list when asked for."""
    gen = load_generator()
    jsonl = work / "sharegpt.jsonl"
    json_list = work / "sharegpt.json" if with_json_list else None
    info = InputInfo(str(jsonl), str(json_list) if json_list else None)
    list_fh = json_list.open("w", encoding="utf-8") if json_list else None
    try:
        if list_fh:
            list_fh.write("[")

        def tee() -> Iterator[dict[str, Any] | str]:
            for item in gen.generate(records, code_heavy=True, flawed_share=0.1):
                count_item(info, item)
                if list_fh and fastchat_readable(item):
                    sep = ",\n" if info.fastchat_records > 1 else "\n"
                    list_fh.write(sep + json.dumps(item, ensure_ascii=False))
                yield item

        gen.write_jsonl(jsonl, tee())
        if list_fh:
            list_fh.write("\n]\n")
    finally:
        if list_fh:
            list_fh.close()
    return info


# ---------------------------------------------------------------- process-tree sampling


def role_of(proc: psutil.Process, root: psutil.Process) -> str:
    """main, prefect server, worker (spawned, or forked: same command line), helper, other."""
    if proc.pid == root.pid:
        return "main"
    try:
        cmdline = proc.cmdline()
        root_cmdline = root.cmdline()
    except psutil.Error:
        return "other"
    text = " ".join(cmdline)
    if "prefect.server" in text:
        return "prefect server"
    if "resource_tracker" in text:
        return "helper"
    if "multiprocessing.spawn" in text or cmdline == root_cmdline:
        return "worker"
    return "other"


@dataclass
class TreeUsage:
    """Peaks over the samples of one run (bytes), and CPU seconds per kind of process."""

    rss_total: int = 0
    rss_single: int = 0
    rss_by_role: dict[str, int] = field(default_factory=dict)
    pss_total: int = 0  # sampled every PSS_EVERY samples only
    cpu_seconds_by_role: dict[str, float] = field(default_factory=dict)


class TreeSampler:
    """Samples the RSS of a process and all its descendants on a background thread.

    Every PSS_EVERY-th sample also reads PSS (shared pages divided among the processes that
    map them; /proc/PID/smaps_rollup, some ms per process, hence less often). The CPU time
    of each process is its last sampled value (what a process uses in its final interval
    before exiting is missed).
    """

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.usage = TreeUsage()
        self._roles: dict[int, str] = {}
        self._samples = 0
        self._cpu: dict[int, float] = {}  # CPU seconds of each process, last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid, seconds in self._cpu.items():
            role = self._roles[pid]
            by_role = self.usage.cpu_seconds_by_role
            by_role[role] = by_role.get(role, 0.0) + seconds

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> None:
        with_pss = self._samples % PSS_EVERY == 0
        self._samples += 1
        total, pss_total, by_role = 0, 0, {}
        for proc in self._tree():
            try:
                if with_pss:
                    info = proc.memory_full_info()
                    rss, pss_total = info.rss, pss_total + info.pss
                else:
                    rss = proc.memory_info().rss
            except psutil.Error:
                continue
            role = self._roles.setdefault(proc.pid, role_of(proc, self.root))
            with contextlib.suppress(psutil.Error):
                cpu = proc.cpu_times()
                self._cpu[proc.pid] = cpu.user + cpu.system
            total += rss
            by_role[role] = by_role.get(role, 0) + rss
            self.usage.rss_single = max(self.usage.rss_single, rss)
        self.usage.rss_total = max(self.usage.rss_total, total)
        self.usage.pss_total = max(self.usage.pss_total, pss_total)
        for role, rss in by_role.items():
            self.usage.rss_by_role[role] = max(self.usage.rss_by_role.get(role, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


@dataclass
class CommandRun:
    seconds: float
    returncode: int
    usage: TreeUsage
    other_cpu_cores: float
    stderr_tail: str


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children).

    Children count once waited for, with their own waited-for descendants (so a whole
    finished process tree).
    """
    t = psutil.cpu_times()
    machine = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    ours = sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return machine, ours


def run_sampled(cmd: list[str], env: dict[str, str], log: Path) -> CommandRun:
    """Run a command, time it and sample its process tree; output goes to `log`.

    Also measures how many cores other processes on the machine kept busy meanwhile.
    """
    with log.open("w") as out:
        machine0, ours0 = cpu_seconds()
        # As a user's shell runs them: Python caches bytecode (PYTHONDONTWRITEBYTECODE, set in
        # some CI and sandbox shells, made every run compile what it imports, ~1-6 s here).
        env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        with TreeSampler(proc.pid) as sampler:
            proc.wait()
        seconds = time.perf_counter() - began
        machine1, ours1 = cpu_seconds()
    other = max(0.0, (machine1 - machine0) - (ours1 - ours0)) / seconds
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return CommandRun(seconds, proc.returncode, sampler.usage, other, tail)


def check(run: CommandRun, what: str) -> None:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed (exit {run.returncode}):\n{run.stderr_tail}")


# ---------------------------------------------------------------- sftforge


@dataclass
class SftforgeRun:
    command_seconds: float
    flow_seconds: float
    usage: TreeUsage
    stages: list[dict[str, Any]]
    workers: int
    other_cpu_cores: float


def prefect_env(prefect_home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        # Prefect 3.7 derives this from ~/.prefect, not from PREFECT_HOME: keep it in the temp dir
        "PREFECT_MEMO_STORE_PATH": str(prefect_home / "memo_store.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # sftforge's shared local server for these runs, in the temp dir too; it stops itself
        # 2 minutes after the last run, not to weigh on the next benchmark.
        "SFTFORGE_HOME": str(prefect_home / "sftforge-home"),
        "SFTFORGE_SERVER_IDLE_MINUTES": "2",
    }


def sftforge_executable() -> list[str]:
    """The `sftforge` script next to this interpreter, else the CLI module."""
    script = Path(sys.executable).with_name("sftforge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sftforge.flows.cli"]


def sftforge_command(jsonl: str, out: Path, workers: int, one_core: bool) -> list[str]:
    cmd = [
        *sftforge_executable(),
        "run",
        str(RECIPE),
        "--input",
        f"sharegpt={jsonl}",
        "--out",
        str(out),
        "--quiet",
        "--set",
        f"runner.workers={workers}",
    ]
    return ["taskset", "-c", "0", *cmd] if one_core else cmd


def run_sftforge(
    jsonl: str, work: Path, label: str, index: int, workers: int, one_core: bool, keep: bool
) -> SftforgeRun:
    out = work / f"{label}-{index}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = sftforge_command(jsonl, out, workers, one_core)
    run = run_sampled(cmd, prefect_env(work / "prefect-home"), work / f"{label}-{index}.log")
    check(run, f"sftforge run {index}")
    manifest = json.loads((out / "manifest.json").read_text())
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return SftforgeRun(
        run.seconds,
        manifest["wall_seconds"],
        run.usage,
        manifest["stages"],
        manifest["workers"],
        run.other_cpu_cores,
    )


# ---------------------------------------------------------------- FastChat


def base_python3() -> Path:
    """The interpreter this venv was made from (`python3` of sys.base_prefix)."""
    return Path(sys.base_prefix) / "bin" / "python3"


def fastchat_ready(python: Path) -> bool:
    probe = [str(python), "-c", "import fastchat.data.clean_sharegpt"]
    return python.exists() and subprocess.run(probe, capture_output=True).returncode == 0


def ensure_fastchat_venv() -> Path:
    python = FASTCHAT_VENV / "bin" / "python"
    if fastchat_ready(python):
        return python
    print(f"creating {FASTCHAT_VENV.relative_to(ROOT)} (fschat==0.2.36) ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not python.exists():
        subprocess.run([str(base_python3()), "-m", "venv", str(FASTCHAT_VENV)], check=True)
    subprocess.run([*pip, "--no-deps", "fschat==0.2.36"], check=True)
    subprocess.run([*pip, *FASTCHAT_PACKAGES], check=True)
    return python


def cpu_list(cores: int) -> str:
    return "0" if cores == 1 else f"0-{cores - 1}"


def run_fastchat(
    python: Path, json_list: str, work: Path, cores: int, index: int, keep: bool
) -> CommandRun:
    out = work / f"fastchat-{cores}c-{index}.json"
    cmd = [str(python), "-m", "fastchat.data.clean_sharegpt", "--in", json_list, "--out", str(out)]
    if cores < (os.cpu_count() or 1):
        cmd = ["taskset", "-c", cpu_list(cores), *cmd]
    run = run_sampled(cmd, dict(os.environ), work / f"fastchat-{cores}c-{index}.log")
    check(run, f"FastChat ({cores} cores) run {index}")
    if not keep:
        out.unlink(missing_ok=True)
    return run


# ---------------------------------------------------------------- summaries


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def median_or_none(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


def usage_summary(usages: list[TreeUsage]) -> dict[str, Any]:
    roles = sorted({role for u in usages for role in u.rss_by_role})
    return {
        "peak_total_rss_mb": median(u.rss_total / MB for u in usages),
        "peak_single_rss_mb": median(u.rss_single / MB for u in usages),
        "peak_total_pss_mb": median(u.pss_total / MB for u in usages),
        "peak_rss_by_role_mb": {
            r: median(u.rss_by_role.get(r, 0) / MB for u in usages) for r in roles
        },
        "cpu_seconds_by_role": {
            r: median(u.cpu_seconds_by_role.get(r, 0.0) for u in usages) for r in roles
        },
    }


def stage_summary(runs: list[SftforgeRun]) -> list[dict[str, Any]]:
    rows = []
    workers = runs[0].workers
    for i, stage in enumerate(runs[0].stages):
        seconds = median(r.stages[i]["seconds"] for r in runs)
        # stage names are the step types in sharegpt_clean (no `name:` overrides); record steps
        # run in the pool, the read stage and whole-input passes in the flow's process
        step = step_class(stage["name"])
        pooled = (
            workers > 1
            and stage["name"] != READ_STAGE
            and isinstance(step, type)
            and (issubclass(step, RecordStep))
        )
        rows.append(
            {
                "stage": stage["name"],
                "in": stage["in"],
                "out": stage["out"],
                "seconds": seconds,
                "where": f"pool of {workers}" if pooled else "flow process",
                "conv_per_s": median_or_none(
                    r.stages[i]["in"] / r.stages[i]["seconds"]
                    for r in runs
                    if r.stages[i]["seconds"]
                ),
                "approx_wall_seconds": seconds / workers if pooled else seconds,
            }
        )
    return rows


def sftforge_summary(runs: list[SftforgeRun], records: int) -> dict[str, Any]:
    stages = stage_summary(runs)
    flow = median(r.flow_seconds for r in runs)
    return {
        "workers": runs[0].workers,
        "command_seconds": median(r.command_seconds for r in runs),
        "flow_seconds": flow,
        "startup_seconds": median(r.command_seconds - r.flow_seconds for r in runs),
        "conv_per_s_flow": median(records / r.flow_seconds for r in runs),
        "conv_per_s_command": median(records / r.command_seconds for r in runs),
        "unaccounted_flow_seconds": flow - sum(s["approx_wall_seconds"] for s in stages),
        "stages": stages,
        **usage_summary([r.usage for r in runs]),
        "other_cpu_cores": median(r.other_cpu_cores for r in runs),
        "runs": [asdict(r) for r in runs],
    }


def fastchat_summary(runs: list[CommandRun], records: int, cores: int) -> dict[str, Any]:
    return {
        "cores": cores,
        "command_seconds": median(r.seconds for r in runs),
        "conv_per_s": median(records / r.seconds for r in runs),
        **usage_summary([r.usage for r in runs]),
        "other_cpu_cores": median(r.other_cpu_cores for r in runs),
        "runs": [
            {"seconds": r.seconds, "usage": asdict(r.usage), "other_cpu_cores": r.other_cpu_cores}
            for r in runs
        ],
    }


# ---------------------------------------------------------------- report


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_input(info: InputInfo) -> None:
    print(
        f"\ninput: {info.records} JSONL lines for sftforge ({info.not_json_lines} not JSON), "
        f"average answer {info.answer_kb:.2f} KB ({info.answers} answers)"
    )
    if info.json_list:
        print(
            f"       {info.fastchat_records} records in the JSON list for FastChat: left out "
            f"{info.not_json_lines} non-JSON lines and {info.unreadable_for_fastchat} records "
            "its cleaner raises on (no conversations list / non-string turn)"
        )


def fmt_mb(value: float) -> str:
    return f"{value:,.0f} MB"


def print_sftforge(label: str, s: dict[str, Any], repeats: int) -> None:
    print_table(
        f"{label}: {s['workers']} worker(s), median of {repeats}",
        ["end to end", "seconds", "conv/s"],
        [
            [
                "by flow wall (manifest wall_seconds)",
                f"{s['flow_seconds']:.2f}",
                f"{s['conv_per_s_flow']:,.0f}",
            ],
            [
                "by command wall (incl. imports + Prefect server)",
                f"{s['command_seconds']:.2f}",
                f"{s['conv_per_s_command']:,.0f}",
            ],
            ["  of which outside the flow (startup)", f"{s['startup_seconds']:.2f}", ""],
        ],
    )
    rows = [
        [
            st["stage"],
            st["where"],
            str(st["in"]),
            str(st["out"]),
            f"{st['seconds']:.2f}",
            "-" if st["conv_per_s"] is None else f"{st['conv_per_s']:,.0f}",
            f"{st['approx_wall_seconds']:.2f}",
        ]
        for st in s["stages"]
    ]
    rows.append(
        [
            "(outputs, manifest, scheduling)",
            "flow process",
            "",
            "",
            "",
            "",
            f"{s['unaccounted_flow_seconds']:.2f}",
        ]
    )
    print_table(
        "per stage (conv/s = in / work seconds; for pooled stages: per worker)",
        ["stage", "runs in", "in", "out", "work s", "conv/s", "~wall s"],
        rows,
    )
    print_memory(s)
    print(f"other processes on the machine kept {s['other_cpu_cores']:.2f} cores busy meanwhile")


def print_memory(s: dict[str, Any]) -> None:
    roles = ", ".join(f"{role} {fmt_mb(mb)}" for role, mb in s["peak_rss_by_role_mb"].items() if mb)
    print(
        f"peak RSS: total {fmt_mb(s['peak_total_rss_mb'])}, single process "
        f"{fmt_mb(s['peak_single_rss_mb'])} (peaks by role: {roles}); "
        f"peak total PSS {fmt_mb(s['peak_total_pss_mb'])}"
    )
    cpu = ", ".join(
        f"{role} {sec:.1f}" for role, sec in s["cpu_seconds_by_role"].items() if sec >= 0.05
    )
    print(f"CPU seconds by role (whole command): {cpu}")


def print_fastchat(results: dict[str, Any], repeats: int) -> None:
    rows = []
    for key in ("fastchat_1_core", "fastchat_all_cores"):
        if key in results:
            f = results[key]
            rows.append(
                [
                    f"{f['cores']} core(s)",
                    f"{f['command_seconds']:.2f}",
                    f"{f['conv_per_s']:,.0f}",
                    fmt_mb(f["peak_total_rss_mb"]),
                    fmt_mb(f["peak_single_rss_mb"]),
                    fmt_mb(f["peak_total_pss_mb"]),
                    f"{f['other_cpu_cores']:.2f}",
                ]
            )
    print_table(
        f"FastChat clean_sharegpt.py (fschat 0.2.36), median of {repeats}",
        [
            "cores",
            "seconds",
            "conv/s",
            "peak RSS total",
            "peak RSS single",
            "peak PSS total",
            "other load (cores)",
        ],
        rows,
    )


def ratio_rows(results: dict[str, Any]) -> list[list[str]]:
    pairs = [("sftforge", "fastchat_all_cores"), ("sftforge_one_core", "fastchat_1_core")]
    rows = []
    for ours, theirs in pairs:
        if ours not in results or theirs not in results:
            continue
        s, f = results[ours], results[theirs]
        cores = f["cores"]
        rows.append(
            [f"{cores} core(s): flow wall", f"{s['conv_per_s_flow'] / f['conv_per_s']:.2f}x"]
        )
        rows.append(
            [f"{cores} core(s): command wall", f"{s['conv_per_s_command'] / f['conv_per_s']:.2f}x"]
        )
    return rows


def print_report(results: dict[str, Any], info: InputInfo, repeats: int) -> None:
    print_input(info)
    print(f"code: sftforge sources {results['code_fingerprint']}")
    if "code_fingerprint_after" in results:
        print(
            f"WARNING: the sources changed during the benchmark (now "
            f"{results['code_fingerprint_after']}): runs may have measured different code"
        )
    print_sftforge("sftforge sharegpt_clean", results["sftforge"], repeats)
    if "sftforge_one_core" in results:
        print_sftforge(
            "sftforge sharegpt_clean under taskset -c 0", results["sftforge_one_core"], repeats
        )
    if "fastchat_all_cores" in results:
        print_fastchat(results, repeats)
    rows = ratio_rows(results)
    if rows:
        print_table(
            "ratio sftforge / FastChat conversations/s (same cores)", ["comparison", "ratio"], rows
        )


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="records to generate")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument(
        "--workers",
        type=int,
        default=cores,
        help=f"sftforge runner.workers; FastChat gets as many cores (default {cores})",
    )
    parser.add_argument(
        "--fastchat",
        action="store_true",
        help="also run FastChat's clean_sharegpt.py on the same input",
    )
    parser.add_argument(
        "--fastchat-all-cores-only",
        action="store_true",
        help="with --fastchat: skip its one-core runs (long at 100,000)",
    )
    parser.add_argument(
        "--one-core", action="store_true", help="also run sftforge with 1 worker under taskset -c 0"
    )
    parser.add_argument(
        "--keep", type=Path, help="working directory to keep (inputs, outputs, logs)"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeats < 1 or args.workers < 1:
        parser.error("--records, --repeats and --workers must be positive")
    if (args.fastchat or args.one_core) and not shutil.which("taskset"):
        parser.error("taskset (util-linux) is needed for the one-core runs")
    return args


def benchmark(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], InputInfo]:
    load_before = os.getloadavg()
    code_before = code_fingerprint()
    began = time.perf_counter()
    info = write_inputs(work, args.records, with_json_list=args.fastchat)
    print(f"generated {info.records} records in {time.perf_counter() - began:.1f} s", flush=True)
    results: dict[str, Any] = {
        "records": args.records,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "input": asdict(info),
        "load_average_before": load_before,
        "code_fingerprint": code_before,
    }
    results["input"]["answer_kb"] = info.answer_kb
    configs = [("sftforge", args.workers, False)]
    if args.one_core:
        configs.append(("sftforge_one_core", 1, True))
    # The local Prefect server is started once per machine and reused (a fixed cost of the
    # first run only): start it untimed, so every timed run is a next run, as a user's is.
    subprocess.run(
        [*sftforge_executable(), "server", "start"],
        cwd=ROOT,
        check=True,
        env=prefect_env(work / "prefect-home"),
        capture_output=True,
    )
    for label, workers, one_core in configs:
        runs = []
        for i in range(1, args.repeats + 1):
            runs.append(
                run_sftforge(info.jsonl, work, label, i, workers, one_core, args.keep is not None)
            )
            print(
                f"{label} run {i}: command {runs[-1].command_seconds:.1f} s, "
                f"flow {runs[-1].flow_seconds:.1f} s, other load "
                f"{runs[-1].other_cpu_cores:.2f} cores",
                flush=True,
            )
        results[label] = sftforge_summary(runs, args.records)
    if args.fastchat and info.json_list:
        python = ensure_fastchat_venv()
        cores = min(args.workers, os.cpu_count() or 1)
        settings = [("fastchat_all_cores", cores), ("fastchat_1_core", 1)]
        for key, n in settings[: 1 if args.fastchat_all_cores_only else 2]:
            fruns = []
            for i in range(1, args.repeats + 1):
                fruns.append(
                    run_fastchat(python, info.json_list, work, n, i, args.keep is not None)
                )
                print(
                    f"FastChat {n} core(s) run {i}: {fruns[-1].seconds:.1f} s, other load "
                    f"{fruns[-1].other_cpu_cores:.2f} cores",
                    flush=True,
                )
            results[key] = fastchat_summary(fruns, info.fastchat_records, n)
    code_after = code_fingerprint()
    if code_after != code_before:
        results["code_fingerprint_after"] = code_after
    return results, info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results, info = benchmark(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="sftforge-bench-") as tmp:
            results, info = benchmark(args, Path(tmp))
    results["load_average_after"] = os.getloadavg()
    print_report(results, info, args.repeats)
    print(
        "\nload average (1/5/15 min) before: {}, after: {} (other work on the machine skews "
        "every figure)".format(
            *(
                ", ".join(f"{x:.2f}" for x in results[k])
                for k in ("load_average_before", "load_average_after")
            )
        )
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
