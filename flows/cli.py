"""`sftforge` command line. Exit codes: 0 done, 1 the run failed, 2 bad usage/config/input."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from schemas.loading import ConfigError, load_recipe, resolve_source_files
from schemas.recipe import Recipe


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for a bad config
        print(f"sftforge: {message}", file=sys.stderr)
        raise SystemExit(2)


def _inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--input {pair}: expected NAME=PATH")
        inputs[name] = path
    return inputs


def _checked_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe, with its inputs found and readable — or ConfigError (exit 2)."""
    from tasks.read_sources import UnreadableInput, probe

    recipe = load_recipe(args.config, sets=args.set, inputs=_inputs(args.input), out=args.out)
    files = resolve_source_files(recipe, args.config)
    for source in recipe.sources:
        try:
            probe(source, files.get(source.name))
        except UnreadableInput as exc:
            raise ConfigError(str(exc)) from None
    return recipe


def _prefect_defaults(verbose: bool) -> None:
    # Before Prefect is imported: no analytics calls (offline machines), and Prefect's
    # per-task INFO lines would drown the progress display unless asked for.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def cmd_run(args: argparse.Namespace) -> int:
    recipe = _checked_recipe(args)
    _prefect_defaults(args.verbose)

    from rich.console import Console

    from flows.progress import summary_table
    from flows.recipe_flow import flow_for

    workers = recipe.runner.workers or os.cpu_count() or 1
    state = flow_for(workers, recipe.runner)(
        recipe_path=args.config,
        inputs=_inputs(args.input),
        out=args.out,
        sets=args.set,
        quiet=args.quiet,
        return_state=True,
    )
    if not state.is_completed():
        from tasks.read_sources import UnreadableInput

        error = state.result(raise_on_failure=False)
        if isinstance(error, UnreadableInput):  # a file that broke after the check
            print(f"sftforge: {error}", file=sys.stderr)
            return 2
        print(f"sftforge: run failed: {error}", file=sys.stderr)
        return 1
    body = state.result()
    if not args.quiet:
        Console().print(summary_table(body))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    _checked_recipe(args)
    print(f"{args.config}: ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sftforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def recipe_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="recipe YAML")
        p.add_argument(
            "--input",
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="replace the path (file, glob or directory) of source NAME",
        )
        p.add_argument("--out", help="output directory (replaces output_dir)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override any config value, e.g. steps[2].min_score=0.8",
        )

    run = sub.add_parser("run", help="run a recipe as a Prefect flow")
    recipe_args(run)
    run.add_argument("--quiet", action="store_true", help="no progress and no summary")
    run.add_argument("--verbose", action="store_true", help="show Prefect's task logs")
    run.set_defaults(fn=cmd_run)

    validate = sub.add_parser("validate", help="check a recipe and its inputs")
    recipe_args(validate)
    validate.set_defaults(fn=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"sftforge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sftforge: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
