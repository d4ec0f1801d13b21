"""``damon-eval table --metric M runs.csv``: one table in the seed's form (or CSV/HTML)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damon_eval.analysis.choices import ARITHMETICS, TABLE_FORMATS
from damon_eval.atomic import atomic_write_text
from damon_eval.commands import _run_table
from damon_eval.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs_csv",
        type=Path,
        nargs="?",
        metavar="RUNS_CSV",
        help="runs.csv from `damon-eval collect`, or a plain long table with only suite, "
        "workload, config, repeat, metric, value (not with --published)",
    )
    parser.add_argument("--metric", required=True, help="metric name, e.g. runtime, memused.avg")
    parser.add_argument(
        "--format",
        choices=TABLE_FORMATS,
        default="text",
        dest="fmt",
        help="output format (default: text, the evaluation document's form)",
    )
    _run_table.add_configs(parser)
    _run_table.add_kernel(parser)
    parser.add_argument(
        "--arithmetic",
        choices=ARITHMETICS,
        default=None,
        help="total row: exact sums, or the seed's awk-rounded running sums "
        "(default: exact; seed with --published)",
    )
    parser.add_argument(
        "--annotate",
        action="store_true",
        help="text: mark significant overheads *x* and add statistics notes",
    )
    parser.add_argument(
        "--published",
        action="store_true",
        help="render the seed's published table (eval-v18) from reference data",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")


def run(args: argparse.Namespace) -> int:
    _run_table.check(args)
    from damon_eval.analysis import reference, table_render, tables
    from damon_eval.analysis.runtable import defaults_note, read_runs_csv, runs_of_kernel

    if args.published:
        if args.runs_csv is not None or args.kernel:
            raise ConfigError("give either RUNS_CSV (and --kernel) or --published, not both")
        published = reference.load_published(args.metric)
        if args.arithmetic is None:
            table = reference.as_metric_table(published, args.configs)
        else:
            configs = list(reference.as_metric_table(published, args.configs).configs)
            table = tables.table_from_samples(
                args.metric,
                published.means_as_samples(),
                workloads=published.workloads,
                configs=configs,
                baseline=published.baseline if published.baseline in configs else None,
                arithmetic=args.arithmetic,
            )
    else:
        if args.runs_csv is None:
            raise ConfigError("RUNS_CSV is required (or --published for the seed's table)")
        runs = runs_of_kernel(read_runs_csv(args.runs_csv), args.kernel)
        note = defaults_note(runs)
        if note:
            # stderr, so the table on stdout keeps the evaluation document's exact form
            print(f"{args.runs_csv}: {note}", file=sys.stderr)
        table = tables.build_table(
            runs,
            args.metric,
            args.configs,
            arithmetic=args.arithmetic or "exact",
        )
    text = table_render.render(table, args.fmt, annotate=args.annotate)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
