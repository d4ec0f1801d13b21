"""The evaluation document's tables: one metric, workloads x configurations.

Layout (eval.rst of the seed)::

    runtime                 orig     rec      (overhead) prec     (overhead) ...
    parsec3/blackscholes    107.228  107.859  (0.59)     108.110  (0.82)     ...
    total                   3051.620 3080.230 (0.94)     3085.130 (1.10)     ...

Each value is the mean over repeats (``%.3f``); each overhead is
``(v / orig - 1) * 100`` of the unrounded means (``%.2f``); each column is as
wide as its widest cell plus one space, lines carry no trailing blanks.

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

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from damon_eval.analysis import stats
from damon_eval.analysis.choices import ARITHMETICS
from damon_eval.analysis.choices import TABLE_FORMATS as FORMATS
from damon_eval.analysis.errors import RunTableError, UnknownConfigError
from damon_eval.analysis.runtable import check_metric, ok_values, workload_ids
from damon_eval.analysis.stats import Estimate, WelchResult
from damon_eval.analysis.templates import render_template
from damon_eval.errors import ConfigError
from damon_eval.metrics import BASELINE_CONFIG, METRICS, SEED_CONFIGS

NOT_AVAILABLE = "n/a"
_MAX_LISTED = 12

CSV_COLUMNS = (
    "metric",
    "workload",
    "config",
    "value",
    "overhead_pct",
    "overhead_ci95_low",
    "overhead_ci95_high",
    "n",
    "stdev",
    "ci95_low",
    "ci95_high",
    "cv_pct",
    "cv_warning",
    "welch_p",
    "significant",
    "note",
)


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


# -- text ---------------------------------------------------------------------


def format_value(cell: Cell) -> str:
    return NOT_AVAILABLE if cell.estimate is None else f"{cell.estimate.value:.3f}"


def format_overhead(cell: Cell, annotate: bool = False) -> str:
    if cell.overhead_pct is None:
        return f"({NOT_AVAILABLE})"
    text = f"{cell.overhead_pct:.2f}"
    if annotate and cell.significant:
        text = f"*{text}*"
    return f"({text})"


def _grid(table: MetricTable, annotate: bool) -> list[list[str]]:
    header = [table.metric]
    for config in table.configs:
        header.append(config)
        if config != table.baseline and table.baseline is not None:
            header.append("(overhead)")
    grid = [header]
    for label, cells in [
        *((w, [table.cell(w, c) for c in table.configs]) for w in table.workloads),
        (table.summary_label, [table.summary.get(c, EMPTY_CELL) for c in table.configs]),
    ]:
        line = [label]
        for config, cell in zip(table.configs, cells, strict=True):
            line.append(format_value(cell))
            if config != table.baseline and table.baseline is not None:
                line.append(format_overhead(cell, annotate))
        grid.append(line)
    return grid


def render_text(table: MetricTable, *, annotate: bool = False) -> str:
    """The seed's fixed-width form; ``annotate`` adds significance markers and notes."""
    grid = _grid(table, annotate)
    widths = [max(len(row[i]) for row in grid) + 1 for i in range(len(grid[0]))]
    lines = [
        "".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in grid
    ]
    lines.extend(notes(table, annotate=annotate))
    return "\n".join(lines) + "\n"


def notes(table: MetricTable, *, annotate: bool) -> list[str]:
    """Footnotes: always the exclusions from the summary; with ``annotate`` the statistics."""
    out = []
    excluded = table.excluded_from_summary
    if excluded:
        out.append(
            f"# {table.summary_label} over {len(table.summary_workloads)} of "
            f"{len(table.workloads)} workloads; without a value in every configuration: "
            + ", ".join(excluded)
        )
    failed = sorted(
        (w, c, cell.nr_failed) for (w, c), cell in table.cells.items() if cell.nr_failed
    )
    if failed:
        out.append(
            "# failed runs (not in any mean): " + ", ".join(f"{w} {c} x{n}" for w, c, n in failed)
        )
    if not annotate:
        return out
    if table.baseline is not None:
        out.append(f"# *x*: differs from {table.baseline} by Welch's t-test, p < {stats.ALPHA}")
    noisy = [
        (w, c, cell.estimate.cv_pct)
        for w in table.workloads
        for c in table.configs
        if (cell := table.cell(w, c)).estimate is not None and cell.estimate.cv_warning
    ]
    if noisy:
        shown = ", ".join(f"{w} {c} ({cv:.1f} %)" for w, c, cv in noisy[:_MAX_LISTED])
        more = f" and {len(noisy) - _MAX_LISTED} more" if len(noisy) > _MAX_LISTED else ""
        out.append(f"# CV > {stats.CV_WARN_PCT:g} %: {shown}{more}")
    with_values = [
        (w, c, cell.estimate.n)
        for w in table.workloads
        for c in table.configs
        if (cell := table.cell(w, c)).estimate is not None
    ]
    single = [f"{w} {c}" for w, c, n in with_values if n < 2]
    if single and len(single) == len(with_values):
        out.append("# n < 2 in every cell: no CI and no test")
    elif single:
        shown = ", ".join(single[:_MAX_LISTED])
        more = f" and {len(single) - _MAX_LISTED} more" if len(single) > _MAX_LISTED else ""
        out.append(f"# n < 2, no CI and no test: {shown}{more}")
    return out


# -- CSV ----------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def csv_rows(table: MetricTable) -> list[dict[str, str]]:
    rows = []
    entries = [(w, c, table.cell(w, c)) for w in table.workloads for c in table.configs]
    entries += [
        (table.summary_label, c, table.summary[c]) for c in table.configs if c in table.summary
    ]
    for workload, config, cell in entries:
        estimate = cell.estimate
        ci = estimate.ci95 if estimate else None
        oci = cell.overhead_ci95
        test = cell.test
        note = []
        if estimate is None:
            note.append("no successful run")
        elif estimate.se is None:
            note.append(
                f"n={estimate.n}: no CI"
                if workload != table.summary_label
                else "a part has n < 2: no CI"
            )
        if test is not None and test.note:
            note.append(test.note)
        if cell.nr_failed:
            note.append(f"{cell.nr_failed} failed run(s) excluded")
        rows.append(
            {
                "metric": table.metric,
                "workload": workload,
                "config": config,
                "value": _number(estimate.value if estimate else None),
                "overhead_pct": _number(cell.overhead_pct),
                "overhead_ci95_low": _number(oci[0] if oci else None),
                "overhead_ci95_high": _number(oci[1] if oci else None),
                "n": str(estimate.n) if estimate else "0",
                "stdev": _number(estimate.stdev if estimate else None),
                "ci95_low": _number(ci[0] if ci else None),
                "ci95_high": _number(ci[1] if ci else None),
                "cv_pct": _number(estimate.cv_pct if estimate else None),
                "cv_warning": str(bool(estimate and estimate.cv_warning)),
                "welch_p": _number(test.p if test else None),
                "significant": "" if test is None or test.p is None else str(test.significant),
                "note": "; ".join(note),
            }
        )
    return rows


def render_csv(tables: MetricTable | Sequence[MetricTable]) -> str:
    if isinstance(tables, MetricTable):
        tables = [tables]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for table in tables:
        writer.writerows(csv_rows(table))
    return buffer.getvalue()


# -- HTML ---------------------------------------------------------------------


def _html_cell(table: MetricTable, cell: Cell) -> dict:
    estimate = cell.estimate
    title = []
    if estimate is not None:
        title.append(f"n={estimate.n}")
        if estimate.stdev is not None:
            title.append(f"stdev={estimate.stdev:.3f}")
        if estimate.ci95 is not None:
            title.append(f"95% CI [{estimate.ci95[0]:.3f}, {estimate.ci95[1]:.3f}]")
        if estimate.cv_pct is not None:
            title.append(f"CV={estimate.cv_pct:.2f}%")
    if cell.nr_failed:
        title.append(f"{cell.nr_failed} failed run(s) excluded")
    overhead_title = []
    if cell.overhead_ci95 is not None:
        overhead_title.append(
            f"95% CI [{cell.overhead_ci95[0]:.2f}, {cell.overhead_ci95[1]:.2f}] %"
        )
    if cell.test is not None:
        if cell.test.p is not None:
            overhead_title.append(f"Welch p={cell.test.p:.3g}")
        if cell.test.note:
            overhead_title.append(cell.test.note)
    return {
        "value": format_value(cell),
        "title": ", ".join(title),
        "cv_warning": bool(estimate and estimate.cv_warning),
        "cv_pct": estimate.cv_pct if estimate else None,
        "overhead": None if cell.overhead_pct is None else f"{cell.overhead_pct:.2f}",
        "overhead_title": ", ".join(overhead_title),
        "significant": cell.significant,
        "single": bool(estimate and estimate.n < 2),
        "failed": cell.nr_failed,
    }


def render_html(table: MetricTable) -> str:
    """A self-contained ``<section>`` with the table, markers and notes."""
    rows = [
        {"label": w, "cells": [_html_cell(table, table.cell(w, c)) for c in table.configs]}
        for w in table.workloads
    ]
    summary = {
        "label": table.summary_label,
        "cells": [_html_cell(table, table.summary.get(c, EMPTY_CELL)) for c in table.configs],
    }
    return render_template(
        "table.html.j2",
        table=table,
        rows=rows,
        summary=summary,
        alpha=stats.ALPHA,
        cv_warn=stats.CV_WARN_PCT,
        notes=[n.lstrip("# ") for n in notes(table, annotate=False)],
    )


def render(table: MetricTable, fmt: str, *, annotate: bool = False) -> str:
    if fmt == "text":
        return render_text(table, annotate=annotate)
    if fmt == "csv":
        return render_csv(table)
    if fmt == "html":
        return render_html(table)
    raise ConfigError(f"unknown table format {fmt!r}; valid: {', '.join(FORMATS)}")
