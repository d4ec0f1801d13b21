"""``damon-eval analyze runs.csv --out DIR``: all tables, statistics, headlines, plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from damon_eval.analysis.choices import ARITHMETICS, comma_list
from damon_eval.commands import _run_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs_csv", type=Path, metavar="RUNS_CSV", help="runs.csv from `damon-eval collect`"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/summary"),
        help="output directory (default: results/summary)",
    )
    _run_table.add_configs(parser)
    parser.add_argument(
        "--metrics",
        type=comma_list,
        metavar=_run_table.METRICS_METAVAR,
        help="metrics to analyze, comma-separated (default: every metric with values)",
    )
    _run_table.add_kernel(parser)
    parser.add_argument(
        "--arithmetic",
        choices=ARITHMETICS,
        default="exact",
        help="total rows: exact sums (default) or the seed's awk arithmetic",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots")


def run(args: argparse.Namespace) -> int:
    _run_table.check(args)
    from damon_eval.analysis.analyze import analyze

    result = analyze(
        args.runs_csv,
        args.out,
        configs=args.configs,
        metrics=args.metrics,
        arithmetic=args.arithmetic,
        kernel=args.kernel,
        with_plots=not args.no_plots,
    )
    print(f"{len(result.metrics)} metrics, {len(result.files)} files -> {result.out_dir}")
    return 0
