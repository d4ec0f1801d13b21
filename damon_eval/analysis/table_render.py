"""The tables of :mod:`damon_eval.analysis.tables` as text (the seed's form), CSV and HTML.

Text: each value is the mean over repeats (``%.3f``), each overhead ``%.2f``; each
column is as wide as its widest cell plus one space, lines carry no trailing blanks.
``annotate`` adds significance markers (``*x*``) and footnotes on the statistics.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from damon_eval.analysis import stats
from damon_eval.analysis.choices import TABLE_FORMATS as FORMATS
from damon_eval.analysis.tables import EMPTY_CELL, Cell, MetricTable
from damon_eval.analysis.templates import render_template
from damon_eval.errors import ConfigError

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
