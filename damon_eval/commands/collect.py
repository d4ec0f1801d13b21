"""``damon-eval collect RESULTS_DIR -o runs.csv``: the tidy run table."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results_dir", type=Path, metavar="RESULTS_DIR", help="directory holding runs/"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the table (default: RESULTS_DIR/summary/runs.csv)",
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.analysis.runtable import collect_runs, write_runs_csv

    output = args.output or args.results_dir / "summary" / "runs.csv"
    frame = collect_runs(args.results_dir)
    write_runs_csv(frame, output)
    runs = frame.drop_duplicates(["suite", "workload", "config", "repeat"])
    failed = int((runs["status"] != "ok").sum())
    print(f"{len(runs)} runs ({failed} failed), {len(frame)} rows -> {output}")
    return 0
