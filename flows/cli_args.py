"""The `sftforge` command line's arguments and help (the commands are in flows/cli.py)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn

DESCRIPTION = (
    "`sftforge` command line. Exit codes: 0 done, 1 the run failed, 2 bad usage/config/input."
)


class _Parser(argparse.ArgumentParser):
    def format_help(self) -> str:
        # The steps table imports every step module: built when help is asked for, not on
        # every command (a run's first line waits for the parse).
        if self.epilog is _STEPS:
            self.epilog = _steps_epilog()
        return super().format_help()

    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for a bad config
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")  # argv may hold breaks
        print(f"sftforge: {one_line}", file=sys.stderr)
        raise SystemExit(2)


_Raw = argparse.RawDescriptionHelpFormatter
_STEPS = "<the steps table>"  # a placeholder epilog, filled in by format_help


def _positive_number(text: str) -> float:
    """A size in MB: `nan` and `inf` parse as floats, but would fail deep inside `push`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sftforge")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _steps_epilog() -> str:
    """The steps and output formats a recipe may use, from the registries: the same table as
    `sftforge steps` (flows/step_list.py)."""
    from sftforge.flows.step_list import steps_text

    return steps_text(width=80)


def build_parser(
    commands: dict[str, Callable[[argparse.Namespace], int]],
) -> argparse.ArgumentParser:
    """The parser; each subcommand's `fn` is `commands[name]` (flows/cli.py)."""
    parser = _Parser(prog="sftforge", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sftforge {_version()}")
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
            help="override any config value, e.g. steps.filter_language.min_score=0.8 "
            "(a step by its stage name or index: steps[2].min_score; an output or a source "
            "by its name: outputs.alpaca.shards.count=4)",
        )

    run = sub.add_parser(
        "run", help="run a recipe as a Prefect flow", epilog=_STEPS, formatter_class=_Raw
    )
    recipe_args(run)
    run.add_argument("--quiet", action="store_true", help="no progress and no summary")
    run.add_argument("--verbose", action="store_true", help="show Prefect's task logs")
    run.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="read at most the first N records of each source (a limited run, marked so)",
    )
    run.set_defaults(fn=commands["run"])

    validate = sub.add_parser(
        "validate",
        help="check a recipe and its inputs",
        epilog=_STEPS,
        formatter_class=_Raw,
    )
    recipe_args(validate)
    validate.add_argument(
        "--sample",
        type=_positive_int,
        default=300,
        metavar="N",
        help="records read per source through the readers and mapping (default 300)",
    )
    validate.set_defaults(fn=commands["validate"])

    backfill = sub.add_parser(
        "backfill", help="run a recipe once per partition of its input (e.g. per day)"
    )
    recipe_args(backfill)
    backfill.add_argument(
        "--partitions",
        required=True,
        metavar="SPEC",
        help="2023-04-01..2023-04-30, a list a,b,c, or all",
    )
    backfill.add_argument(
        "--force", action="store_true", help="rerun partitions that are already complete"
    )
    backfill.add_argument(
        "--parallel", type=int, default=1, metavar="K", help="partitions at a time (default 1)"
    )
    backfill.add_argument(
        "--retries", type=int, default=1, metavar="N", help="retries of a failed partition"
    )
    backfill.add_argument(
        "--deployment",
        metavar="NAME",
        help="run each partition through this deployment, "
        "e.g. sftforge/openchat_sharegpt (needs PREFECT_API_URL and a worker)",
    )
    backfill.add_argument("--quiet", action="store_true", help="only the final table")
    backfill.add_argument("--verbose", action="store_true", help="show Prefect's task logs")
    backfill.set_defaults(fn=commands["backfill"])

    push = sub.add_parser("push", help="publish a run's dataset on the Hugging Face Hub")
    push.add_argument("out", help="the run's output directory")
    push.add_argument("--repo-id", required=True, metavar="ORG/NAME")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument(
        "--dry-run", metavar="DIR", help="write what would be uploaded to DIR; upload nothing"
    )
    push.add_argument(
        "--token-block",
        metavar="NAME",
        default=os.environ.get("SFTFORGE_HF_TOKEN_BLOCK"),
        help="Prefect Secret block holding the token when HF_TOKEN is not set",
    )
    push.add_argument(
        "--max-shard-mb",
        type=_positive_number,
        default=500.0,
        help="largest parquet shard (default 500)",
    )
    push.set_defaults(fn=commands["push"])

    report = sub.add_parser("report", help="write OUT/report.html with plots of a run")
    report.add_argument("out", help="the run's output directory")
    report.set_defaults(fn=commands["report"])

    dataset_map = sub.add_parser(
        "map", help="write OUT/map.html: the records an embed step embedded, on a 2-D map"
    )
    dataset_map.add_argument("out", help="the run's output directory")
    dataset_map.add_argument("--stage", metavar="S", help="the embed stage (when several)")
    dataset_map.add_argument(
        "--clusters", type=_positive_int, default=12, metavar="K", help="k-means clusters (12)"
    )
    dataset_map.add_argument("--seed", type=int, default=0, help="UMAP's and k-means' seed")
    dataset_map.add_argument(
        "--text-chars",
        type=_positive_int,
        default=600,
        metavar="C",
        help="characters of each record the page keeps for its panel (600)",
    )
    dataset_map.set_defaults(fn=commands["map"])

    show = sub.add_parser("show", help="print a run's records (or rejects) as a person reads them")
    show.add_argument("out", help="the run's output directory")
    show.add_argument("--stage", metavar="S", help="a stage's records (default: the final stage)")
    show.add_argument("--rejects", action="store_true", help="rejected records instead")
    show.add_argument("--reason", metavar="R", help="only rejects with this reason")
    show.add_argument("--id", metavar="ID", help="only the record with this id")
    show.add_argument(
        "-n", type=_positive_int, default=5, metavar="N", help="at most N (default 5)"
    )
    show.set_defaults(fn=commands["show"])

    steps = sub.add_parser("steps", help="list every step and output format")
    steps.set_defaults(fn=commands["steps"])

    server = sub.add_parser("server", help="the local Prefect server sftforge runs use")
    server.add_argument("action", choices=["status", "start", "stop"])
    server.set_defaults(fn=commands["server"])
    ui = sub.add_parser("ui", help="print the URL of the Prefect UI (starts the server if needed)")
    ui.set_defaults(fn=commands["ui"])

    demo = sub.add_parser(
        "demo", help="copy the shipped demo recipes and data into DIR and run them there"
    )
    demo.add_argument("dir", nargs="?", default="sftforge-demo", help="default: sftforge-demo")
    demo.add_argument("--copy-only", action="store_true", help="copy, print DIR, run nothing")
    demo.add_argument("--quiet", action="store_true", help="no progress and no summary")
    demo.set_defaults(fn=commands["demo"])
    return parser
