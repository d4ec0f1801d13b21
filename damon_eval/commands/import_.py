"""``damon-eval import damon-tests DIR -o runs.csv``: an old campaign as the run table."""

from __future__ import annotations

import argparse
from pathlib import Path

SOURCES = ("damon-tests",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=SOURCES, help="the harness that wrote DIR")
    parser.add_argument(
        "directory",
        type=Path,
        metavar="DIR",
        help="damon-tests perf/ directory (holding results/) or the results/ directory itself",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs.csv"),
        help="where to write the table (default: runs.csv)",
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.analysis.damon_tests import import_damon_tests
    from damon_eval.analysis.runtable import write_runs_csv

    frame = import_damon_tests(args.directory)
    write_runs_csv(frame, args.output)
    runs = frame.drop_duplicates(["suite", "workload", "config", "repeat"])
    print(f"{len(runs)} runs, {len(frame)} rows -> {args.output}")
    return 0
