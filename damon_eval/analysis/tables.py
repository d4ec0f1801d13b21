"""The evaluation document's tables: one metric, workloads x configurations.

Layout (eval.rst of the seed)::

    runtime                 orig     rec      (overhead) prec     (overhead) ...
    parsec3/blackscholes    107.228  107.859  (0.59)     108.110  (0.82)     ...
    total                   3051.620 3080.230 (0.94)     3085.130 (1.10)     ...

Each value is the mean over repeats; each overhead is ``(v / orig - 1) * 100``
of the unrounded means.  This module builds the tables; :mod:`~damon_eval.analysis.table_render`
writes them as text (``%.3f`` values, ``%.2f`` overheads), CSV and HTML.

The ``total`` row sums the per-workload means and gives the overhead of the
sums.  Two arithmetics:

``exact`` (default)
    the sums in full precision.
``seed``
    the seed's own: a running sum in table order where every partial sum went
    through awk's ``print`` (integral values in full, others with
    ``OFMT="%.6g"``), which is why its totals read ``38991500.000``; the total's
    overhead is computed from those rounded sums.  This reproduces all 18
    totals and 15 total overheads of the seed from its per-workload numbers
    (docs/analysis.md, "The seed's arithmetic").

Without the baseline (e.g. ``kdamond_cpu_util``, which ``orig`` does not
have) a table shows values only and an ``average`` row (mean of the
per-workload means) instead of ``total``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from damon_eval.analysis import stats
from damon_eval.analysis.choices import ARITHMETICS, check_metric
from damon_eval.analysis.errors import RunTableError, UnknownConfigError
from damon_eval.analysis.runtable import kernels_of, ok_values, workload_ids
from damon_eval.analysis.stats import Estimate, WelchResult
from damon_eval.errors import ConfigError
from damon_eval.metrics import BASELINE_CONFIG, METRICS, SEED_CONFIGS


@dataclass(frozen=True, slots=True)
class Cell:
    """One value of a table and, for non-baseline configurations, its overhead."""

    estimate: Estimate | None  # None: no successful run
    overhead_pct: float | None = None
    overhead_ci95: tuple[float, float] | None = None
    test: WelchResult | None = None
    nr_failed: int = 0

    @property
    def significant(self) -> bool:
        return bool(self.test is not None and self.test.significant)


EMPTY_CELL = Cell(None)


@dataclass(frozen=True, slots=True)
class MetricTable:
    metric: str
    configs: tuple[str, ...]
    baseline: str | None  # None: values only, no overhead columns
    workloads: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]
    summary_label: str  # "total" (with baseline) or "average"
    summary: Mapping[str, Cell]
    summary_workloads: tuple[str, ...]
    arithmetic: str

    def cell(self, workload: str, config: str) -> Cell:
        return self.cells.get((workload, config), EMPTY_CELL)

    @property
    def compared_configs(self) -> tuple[str, ...]:
        return tuple(c for c in self.configs if c != self.baseline)

    @property
    def excluded_from_summary(self) -> tuple[str, ...]:
        return tuple(w for w in self.workloads if w not in self.summary_workloads)

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit


# -- the seed's awk arithmetic ------------------------------------------------


def awk_number(value: float) -> str:
    """How awk's ``print`` writes a number: integral values whole, others ``%.6g``."""
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return format(value, ".6g")  # C printf's %.6g, awk's default OFMT


def awk_running_sum(values: Sequence[float]) -> float:
    """``s = s + v`` where ``s`` is re-read from awk's printed text after each step."""
    total = 0.0
    for value in values:
        total = float(awk_number(total + value))
    return total


# -- building -----------------------------------------------------------------


def ordered_configs(names: Sequence[str]) -> list[str]:
    """The seed's configurations in its order, then any others alphabetically."""
    present = set(names)
    seed = [c for c in SEED_CONFIGS if c in present]
    return seed + sorted(present - set(SEED_CONFIGS))


def build_table(
    runs: pd.DataFrame,
    metric: str,
    configs: Sequence[str] | None = None,
    *,
    baseline: str = BASELINE_CONFIG,
    arithmetic: str = "exact",
) -> MetricTable:
    """The table of ``metric`` from a run table (:mod:`~damon_eval.analysis.runtable`).

    Only successful runs enter; failed runs are counted per cell.  Without
    ``configs`` the columns are the configurations that have values for
    ``metric``.
    """
    check_metric(metric)
    _check_arithmetic(arithmetic)
    kernels = kernels_of(runs)
    if len(kernels) > 1:
        # a cell's mean over two kernels' runs would be nobody's number
        named = ", ".join(k or "(unnamed)" for k in kernels)
        raise RunTableError(
            f"the run table holds runs of kernels {named}: a configuration table is of one "
            f"kernel's runs; choose one, e.g. --kernel {next(k for k in kernels if k)}"
        )
    values = ok_values(runs)
    of_metric = values[values["metric"] == metric]
    if of_metric.empty:
        present = [m for m in METRICS if m in set(values["metric"])]
        raise RunTableError(
            f"no values for metric {metric!r} in the run table; metrics with values: "
            f"{', '.join(present) or 'none'}"
        )
    all_configs = ordered_configs(runs["config"].unique())
    if configs is None:
        configs = ordered_configs(of_metric["config"].unique())
    else:
        unknown = [c for c in configs if c not in all_configs]
        if unknown:
            raise UnknownConfigError(
                f"unknown configuration {unknown[0]!r}; the run table has: {', '.join(all_configs)}"
            )
        configs = list(dict.fromkeys(configs))
    selected = runs[runs["config"].isin(configs)]
    workloads = workload_ids(selected)
    samples: dict[tuple[str, str], list[float]] = {}
    of_metric = of_metric.sort_values(["suite", "workload", "config", "repeat"])
    for (suite, workload, config), group in of_metric.groupby(
        ["suite", "workload", "config"], sort=True
    ):
        if config in configs:
            samples[(f"{suite}/{workload}", config)] = group["value"].tolist()
    failed = selected[selected["status"] != "ok"]
    nr_failed = {
        (f"{s}/{w}", c): len(g) for (s, w, c), g in failed.groupby(["suite", "workload", "config"])
    }
    has_baseline = baseline in configs and any(c == baseline for _, c in samples)
    return table_from_samples(
        metric,
        samples,
        workloads=workloads,
        configs=configs,
        baseline=baseline if has_baseline else None,
        arithmetic=arithmetic,
        nr_failed=nr_failed,
    )


def table_from_samples(
    metric: str,
    samples: Mapping[tuple[str, str], Sequence[float]],
    *,
    workloads: Sequence[str],
    configs: Sequence[str],
    baseline: str | None = BASELINE_CONFIG,
    arithmetic: str = "exact",
    nr_failed: Mapping[tuple[str, str], int] | None = None,
) -> MetricTable:
    """The table from the observations of each (workload, config).

    Published means can be fed as one-element samples (then n = 1: no spread).
    """
    check_metric(metric)
    _check_arithmetic(arithmetic)
    nr_failed = nr_failed or {}
    configs = tuple(configs)
    if baseline is not None:
        if baseline not in configs:
            raise ConfigError(
                f"baseline {baseline!r} is not among the configurations: {', '.join(configs)}"
            )
        configs = (baseline, *(c for c in configs if c != baseline))
    estimates = {key: stats.summarize(v) for key, v in samples.items() if len(v)}
    cells: dict[tuple[str, str], Cell] = {}
    for workload in workloads:
        base = estimates.get((workload, baseline)) if baseline else None
        for config in configs:
            key = (workload, config)
            estimate = estimates.get(key)
            failed = nr_failed.get(key, 0)
            if estimate is None or baseline is None or config == baseline or base is None:
                cells[key] = Cell(estimate, nr_failed=failed)
                continue
            cells[key] = Cell(
                estimate,
                stats.overhead_pct(estimate.value, base.value),
                stats.overhead_ci95(estimate, base),
                stats.welch_test(samples[key], samples[(workload, baseline)]),
                failed,
            )
    complete = tuple(w for w in workloads if all((w, c) in estimates for c in configs))
    summary = _summary(estimates, complete, configs, baseline, arithmetic)
    return MetricTable(
        metric=metric,
        configs=configs,
        baseline=baseline,
        workloads=tuple(workloads),
        cells=cells,
        summary_label="total" if baseline else "average",
        summary=summary,
        summary_workloads=complete,
        arithmetic=arithmetic,
    )


def _summary(
    estimates: Mapping[tuple[str, str], Estimate],
    workloads: Sequence[str],
    configs: Sequence[str],
    baseline: str | None,
    arithmetic: str,
) -> dict[str, Cell]:
    if not workloads:
        return {}
    sums: dict[str, Estimate] = {}
    for config in configs:
        parts = [estimates[(w, config)] for w in workloads]
        value = awk_running_sum([p.value for p in parts]) if arithmetic == "seed" else None
        total = stats.sum_estimates(parts, value)
        if baseline is None:
            total = _scaled(total, 1 / len(parts))
        sums[config] = total
    summary = {}
    for config, total in sums.items():
        if baseline is None or config == baseline:
            summary[config] = Cell(total)
            continue
        base = sums[baseline]
        summary[config] = Cell(
            total,
            stats.overhead_pct(total.value, base.value),
            stats.overhead_ci95(total, base),
            stats.welch_test_estimates(total, base),
        )
    return summary


def _scaled(estimate: Estimate, factor: float) -> Estimate:
    se = None if estimate.se is None else estimate.se * factor
    return Estimate(estimate.value * factor, estimate.n, None, se, estimate.df)


def _check_arithmetic(arithmetic: str) -> None:
    if arithmetic not in ARITHMETICS:
        raise ConfigError(f"unknown arithmetic {arithmetic!r}; valid: {', '.join(ARITHMETICS)}")
