"""The options ``analyze`` and ``table`` share: a run table, its configurations, its
kernel, metric names and where the output goes.

Declared once here and checked in :func:`check` before anything heavy is imported: a
bad value is one :class:`~damon_eval.errors.ConfigError` line naming the value and what
is valid.  What only the run table can tell (its configurations, kernels, metrics with
values) is checked by :mod:`damon_eval.analysis` once it is read.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from damon_eval.analysis.choices import check_metric, comma_list
from damon_eval.errors import ConfigError

CONFIGS_METAVAR = "CONFIG[,CONFIG...]"
METRICS_METAVAR = "METRIC[,METRIC...]"


def add_configs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--configs",
        type=comma_list,
        metavar=CONFIGS_METAVAR,
        help="configurations to show, in order, comma-separated (default: all with values)",
    )


def add_kernel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kernel",
        metavar="NAME",
        help="a kernels: campaign's runs.csv: the tables of this kernel's runs "
        "(required there: two kernels' runs are never averaged together)",
    )


def check_runs_csv(path: Path) -> None:
    if path.is_dir():
        inside = path / "runs.csv"
        hint = f", e.g. {inside}" if inside.is_file() else " (make one with `damon-eval collect`)"
        raise ConfigError(f"RUNS_CSV {path} is a directory; give a runs.csv file{hint}")
    if not path.exists():
        raise ConfigError(f"RUNS_CSV {path}: no such file (make it with `damon-eval collect`)")


def check_names(option: str, names: Sequence[str], what: str, example: str) -> None:
    """A comma-separated list names at least one thing, each once."""
    if not names:
        raise ConfigError(f"{option} names no {what}; give one or more, e.g. {option} {example}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{option} names {what} {name!r} twice; give each once")
        seen.add(name)


def check_metrics(option: str, names: Sequence[str]) -> None:
    check_names(option, names, "metric", "runtime,rss.avg")
    for name in names:
        check_metric(name)


def check_kernel(kernel: str | None) -> None:
    if kernel is not None and not kernel.strip():
        raise ConfigError(
            "--kernel is empty; give a kernel name of the run table's kernels: campaign "
            "(or leave --kernel out for a campaign without kernels:)"
        )


def check_out_dir(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give a directory (made if missing)")


def check_out_file(option: str, path: Path) -> None:
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give a file name in it")


def check(args: argparse.Namespace) -> None:
    """Check the shared options ``args`` has (each command has a subset)."""
    if getattr(args, "runs_csv", None) is not None:
        check_runs_csv(args.runs_csv)
    if args.configs is not None:
        check_names("--configs", args.configs, "configuration", "orig,thp")
    if getattr(args, "metrics", None) is not None:
        check_metrics("--metrics", args.metrics)
    if getattr(args, "metric", None) is not None:
        check_metrics("--metric", [args.metric])
    check_kernel(args.kernel)
    if getattr(args, "out", None) is not None:
        check_out_dir("--out", args.out)
    if getattr(args, "output", None) is not None:
        check_out_file("-o/--output", args.output)
