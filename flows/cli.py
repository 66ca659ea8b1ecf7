"""`sftforge` command line. Exit codes: 0 done, 1 the run failed, 2 bad usage/config/input."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sftforge.flows.cli_args import build_parser
from sftforge.schemas.loading import ConfigError
from sftforge.tasks.pipeline.request import RunRequest, prefect_defaults


def _inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--input {pair}: expected NAME=PATH")
        inputs[name] = path
    return inputs


def _request(args: argparse.Namespace) -> RunRequest:
    return RunRequest(
        recipe_path=args.config,
        inputs=_inputs(args.input),
        out=args.out,
        sets=args.set,
        limit=getattr(args, "limit", None),
    )


def _say(quiet: bool) -> Callable[[str], None]:
    """A line on stderr (progress the user sees before the live display), or nothing."""
    if quiet:
        return lambda line: None
    return lambda line: print(f"sftforge: {line}", file=sys.stderr, flush=True)


def _connect(verbose: bool, say: Callable[[str], None]) -> None:
    """Prefect set up for this process, on the shared local server unless PREFECT_API_URL
    names one; before Prefect is imported."""
    from sftforge.flows.local_server import use_local_server

    prefect_defaults(verbose)
    use_local_server(say)


def cmd_run(args: argparse.Namespace) -> int:
    request = _request(args)
    # Inputs found and readable, or exit 2 (one line, nothing else said) before Prefect
    # starts; the flow gets this load.
    loaded = request.load(check_inputs=True)
    say = _say(args.quiet)
    limited = f" (the first {args.limit} records of each source)" if args.limit else ""
    say(f"run {args.config} -> {loaded.recipe.output_dir}{limited}")
    _connect(args.verbose, say)

    from rich.console import Console

    from sftforge.flows.interruptible import Interruptible
    from sftforge.flows.progress import summary_table
    from sftforge.flows.recipe_flow import RunFailed, run_checked
    from sftforge.tasks.pipeline.plan import plan_run
    from sftforge.tasks.pipeline.run_state import describe_progress

    out = Path(loaded.recipe.output_dir)
    plan = plan_run(loaded.recipe, loaded.files, request.limit)
    guard = Interruptible(lambda: describe_progress(out, plan))
    try:
        body = guard.run(run_checked, request, loaded=loaded, quiet=args.quiet)
    except RunFailed as exc:
        print(f"sftforge: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        Console().print(summary_table(body))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from sftforge.tasks.pipeline.partitions import plan_partitions

    if args.parallel < 1:
        raise ConfigError(f"--parallel {args.parallel}: expected 1 or more")
    if args.retries < 0:
        raise ConfigError(f"--retries {args.retries}: expected 0 or more")
    # Misuse (no partitions declared, a bad SPEC, nothing on disk) is exit 2 before Prefect;
    # the flow runs this plan rather than reading the recipe again.
    request = _request(args)
    plan = plan_partitions(request, args.partitions)
    say = _say(args.quiet)
    say(f"backfill {args.config}: {len(plan.runs)} partitions")
    _connect(args.verbose, say)

    from rich.console import Console

    from sftforge.flows.ad_hoc_settings import ad_hoc_run_settings
    from sftforge.flows.backfill_flow import backfill_flow_for
    from sftforge.flows.interruptible import Interruptible
    from sftforge.flows.progress import backfill_table

    began = time.perf_counter()
    guard = Interruptible(lambda: "finished partitions keep their outputs")
    backfill = backfill_flow_for(args.parallel)

    def backfill_here(**parameters: Any) -> Any:
        with ad_hoc_run_settings():  # in the flow's thread, where the settings are read
            return backfill(**parameters)

    state = guard.run(
        backfill_here,
        request=request,
        spec=args.partitions,
        plan=plan,
        force=args.force,
        retries=args.retries,
        deployment=args.deployment,
        quiet=args.quiet,
        return_state=True,
    )
    if not state.is_completed():
        print(f"sftforge: backfill failed: {state.result(raise_on_failure=False)}", file=sys.stderr)
        return 1
    rows = state.result()
    seconds = time.perf_counter() - began
    where = f"deployment {args.deployment}" if args.deployment else "this machine"
    title = (
        f"sftforge backfill · {args.config} · {args.partitions} · {where} · "
        f"parallel {args.parallel} · {seconds:.1f} s"
    )
    Console().print(backfill_table(rows, title))
    return 1 if any(row["state"] == "failed" for row in rows) else 0


def cmd_push(args: argparse.Namespace) -> int:
    from sftforge.tasks.pipeline.out_check import check_out
    from sftforge.tasks.publish.hub import HubError

    out = Path(args.out)
    # A finished, full run whose manifest describes its files, or exit 2 (a --limit run too).
    check_out(out, publishing=True)
    if "/" not in args.repo_id or args.repo_id.count("/") != 1:
        raise ConfigError(f"--repo-id {args.repo_id}: expected ORG/NAME")
    if args.max_shard_mb <= 0:
        raise ConfigError("--max-shard-mb: expected a positive number")
    from sftforge.tasks.publish.push import push

    token = None
    try:
        if args.dry_run is None:
            _connect(False, _say(True))
            from sftforge.tasks.publish.hub import hub_token

            token = hub_token(args.token_block)
        result = push(
            out,
            args.repo_id,
            private=args.private,
            dry_run=Path(args.dry_run) if args.dry_run else None,
            token=token,
            max_shard_bytes=int(args.max_shard_mb * 1_000_000),
        )
    except HubError as exc:
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # the Hub refused or could not be reached: the run failed
        from sftforge.tasks.publish.hub import redact

        print(
            f"sftforge: push failed: {redact(f'{type(exc).__name__}: {exc}', token)}",
            file=sys.stderr,
        )
        return 1
    print(result)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sftforge.tasks.pipeline.out_check import check_out, limited_note
    from sftforge.tasks.publish.report import write_report  # first: a missing extra is exit 2

    out = Path(args.out)
    body = check_out(out)  # a finished run whose manifest describes its files, or exit 2
    note = limited_note(out, body)
    if note is not None:  # reported all the same: a sample is what one looks at first
        print(f"sftforge: note: {note}", file=sys.stderr)
    print(write_report(out))
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from sftforge.tasks.publish.dataset_map import build_map

    print(build_map(Path(args.out), args.stage, args.clusters, args.seed, args.text_chars))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from sftforge.flows.validate import validate

    return validate(_request(args), args.sample)


def cmd_show(args: argparse.Namespace) -> int:
    from sftforge.flows.show import show

    options = {"stage": args.stage, "rejects": args.rejects, "reason": args.reason}
    return show(Path(args.out), **options, record_id=args.id, limit=args.n)


def cmd_steps(args: argparse.Namespace) -> int:
    from sftforge.flows.step_list import print_steps

    print_steps()
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from sftforge.flows.local_server import server_command

    return server_command(args.action)


def cmd_ui(args: argparse.Namespace) -> int:
    from sftforge.flows.local_server import ui_command

    return ui_command()


def cmd_demo(args: argparse.Namespace) -> int:
    """Copy the shipped recipes and sample data into DIR, then run both demos there."""
    from sftforge.flows.demo import DEMO_RECIPES, copy_demo

    dest = Path(args.dir).resolve()
    copied = copy_demo(dest)
    print(f"{dest}: {len(copied)} files copied (configs/, data/)")
    if args.copy_only:
        return 0
    os.chdir(dest)  # the recipes' paths (data/..., out/...) are relative to where they run
    for recipe in DEMO_RECIPES:
        code = main(["run", recipe, *(["--quiet"] if args.quiet else [])])
        if code:
            return code
    return 0


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "backfill": cmd_backfill,
    "push": cmd_push,
    "report": cmd_report,
    "map": cmd_map,
    "demo": cmd_demo,
    "show": cmd_show,
    "steps": cmd_steps,
    "server": cmd_server,
    "ui": cmd_ui,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser(COMMANDS).parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"sftforge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sftforge: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """`python -m sftforge.flows.cli`: the command in this process (the `sftforge` command
    hands runs to the warm process when it can: warm_client.py)."""
    exit_now(main())


def exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: with Prefect, pandas and pyarrow loaded,
    freeing every module costs about 0.6 s (benchmarks/startup.py). The exit handlers still
    run (Prefect sends its last logs and events), the streams are flushed."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`sftforge steps | head`): nothing left to tell it.
        with contextlib.suppress(OSError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
