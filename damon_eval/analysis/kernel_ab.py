"""Kernel A/B: per configuration and metric, a patched kernel against its base.

From a run table with a ``kernel`` column (the campaign's kernel names, e.g.
``base`` and ``patched``), one table per (configuration, metric) in the seed's
form, the kernels as its columns::

    # configuration prcl
    runtime          base    patched (overhead)
    parsec3/canneal  107.228 110.660 (3.20)
    total            ...

Each cell is :func:`damon_eval.analysis.tables.table_from_samples` with the
base kernel as the baseline: mean over repeats, overhead
``(patched / base - 1) * 100``, its delta-method 95 % CI and Welch's t-test
(:mod:`damon_eval.analysis.stats`).  :func:`headline` says in one sentence
which comparisons differ significantly (p < :data:`stats.ALPHA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from damon_eval.analysis import stats, table_render, tables
from damon_eval.analysis.choices import check_metric
from damon_eval.analysis.errors import RunTableError, UnknownConfigError
from damon_eval.analysis.runtable import ok_values, workload_ids
from damon_eval.analysis.tables import MetricTable, ordered_configs
from damon_eval.metrics import METRICS

KERNEL_COLUMN = "kernel"
DEFAULT_BASE = "base"
DEFAULT_PATCHED = "patched"
_MAX_LISTED = 8


@dataclass(frozen=True, slots=True)
class Change:
    """One comparison where the patched kernel differs significantly."""

    config: str
    metric: str
    workload: str  # a suite/workload id, or the table's summary label ("total")
    overhead_pct: float | None
    overhead_ci95: tuple[float, float] | None
    p: float

    def describe(self) -> str:
        shown = "n/a" if self.overhead_pct is None else f"{self.overhead_pct:+.2f} %"
        ci = ""
        if self.overhead_ci95 is not None:
            ci = f" [{self.overhead_ci95[0]:+.2f}, {self.overhead_ci95[1]:+.2f}]"
        where = "in total" if self.workload == "total" else f"on {self.workload}"
        return f"{self.metric} of {self.config} {where} {shown}{ci} (p={self.p:.3g})"


@dataclass(frozen=True, slots=True)
class KernelComparison:
    base: str
    patched: str
    tables: dict[tuple[str, str], MetricTable]  # (config, metric) -> table

    def changes(self) -> list[Change]:
        """Significant differences, in table order (workload rows, then the total)."""
        found = []
        for (config, metric), table in self.tables.items():
            rows = [(w, table.cell(w, self.patched)) for w in table.workloads]
            if self.patched in table.summary:
                rows.append((table.summary_label, table.summary[self.patched]))
            for workload, cell in rows:
                if cell.significant and cell.test is not None and cell.test.p is not None:
                    found.append(
                        Change(
                            config,
                            metric,
                            workload,
                            cell.overhead_pct,
                            cell.overhead_ci95,
                            cell.test.p,
                        )
                    )
        return found

    def nr_tested(self) -> int:
        """Comparisons that had a test (n >= 2 on both sides)."""
        count = 0
        for table in self.tables.values():
            cells = [table.cell(w, self.patched) for w in table.workloads]
            cells += [table.summary[self.patched]] if self.patched in table.summary else []
            count += sum(1 for c in cells if c.test is not None and c.test.p is not None)
        return count


def kernel_names(runs: pd.DataFrame) -> list[str]:
    if KERNEL_COLUMN not in runs.columns:
        raise RunTableError(
            "the run table has no kernel column; a kernel comparison needs the runs of a "
            "campaign with several kernels (kernels: {base: ..., patched: ...})"
        )
    return sorted(str(k) for k in runs[KERNEL_COLUMN].dropna().unique())


def compare_kernels(
    runs: pd.DataFrame,
    *,
    base: str = DEFAULT_BASE,
    patched: str = DEFAULT_PATCHED,
    configs: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    arithmetic: str = "exact",
) -> KernelComparison:
    """The A/B tables of ``patched`` against ``base`` (only successful runs enter)."""
    present = kernel_names(runs)
    for role, name in (("base", base), ("patched", patched)):
        if name not in present:
            raise UnknownConfigError(
                f"{role} kernel {name!r} is not in the run table's kernel column; "
                f"kernels there: {', '.join(present) or 'none'}"
            )
    if base == patched:
        raise UnknownConfigError(f"base and patched kernel are both {base!r}")
    for metric in metrics or ():
        check_metric(metric)
    runs = runs[runs[KERNEL_COLUMN].isin((base, patched))]
    all_configs = ordered_configs(runs["config"].unique())
    if configs is not None:
        unknown = [c for c in configs if c not in all_configs]
        if unknown:
            raise UnknownConfigError(
                f"unknown configuration {unknown[0]!r}; the run table has: {', '.join(all_configs)}"
            )
    values = ok_values(runs)
    chosen_metrics = list(metrics) if metrics else [m for m in METRICS if m in set(values.metric)]
    result: dict[tuple[str, str], MetricTable] = {}
    for config in configs or all_configs:
        of_config = runs[runs["config"] == config]
        workloads = workload_ids(of_config)
        failed = of_config[of_config["status"] != "ok"]
        nr_failed = {
            (f"{s}/{w}", k): len(g)
            for (s, w, k), g in failed.groupby(["suite", "workload", KERNEL_COLUMN])
        }
        config_values = values[values["config"] == config]
        for metric in chosen_metrics:
            of_metric = config_values[config_values["metric"] == metric]
            if of_metric.empty:
                continue
            samples: dict[tuple[str, str], list[float]] = {}
            of_metric = of_metric.sort_values(["suite", "workload", KERNEL_COLUMN, "repeat"])
            for (suite, workload, kernel), group in of_metric.groupby(
                ["suite", "workload", KERNEL_COLUMN], sort=True
            ):
                samples[(f"{suite}/{workload}", str(kernel))] = group["value"].tolist()
            result[(config, metric)] = tables.table_from_samples(
                metric,
                samples,
                workloads=workloads,
                configs=(base, patched),
                baseline=base,
                arithmetic=arithmetic,
                nr_failed=nr_failed,
            )
    if not result:
        raise RunTableError(
            f"no successful values of kernels {base} and {patched} for the chosen "
            "configurations and metrics"
        )
    return KernelComparison(base, patched, result)


def headline(comparison: KernelComparison) -> str:
    """One sentence: what the patched kernel changed significantly, or that nothing did."""
    changes = comparison.changes()
    tested = comparison.nr_tested()
    who = f"{comparison.patched} against {comparison.base}"
    test = f"Welch's t-test, p < {stats.ALPHA}"
    if tested == 0:
        return f"{who}: no comparison could be tested (n < 2 on a side everywhere)."
    if not changes:
        return f"{who}: none of {tested} comparisons differs significantly ({test})."
    shown = "; ".join(c.describe() for c in changes[:_MAX_LISTED])
    more = f"; and {len(changes) - _MAX_LISTED} more" if len(changes) > _MAX_LISTED else ""
    return (
        f"{who}: {len(changes)} of {tested} comparisons differ significantly ({test}): "
        f"{shown}{more}."
    )


def render_text(comparison: KernelComparison, *, annotate: bool = True) -> str:
    """The headline, then every (configuration, metric) table in the seed's form."""
    parts = [headline(comparison) + "\n"]
    for (config, _metric), table in comparison.tables.items():
        text = table_render.render_text(table, annotate=annotate)
        parts.append(f"# configuration {config}\n" + text)
    return "\n".join(parts)
