"""Published versus reproduced: the seed's numbers next to a campaign's.

Per workload and configuration: the published value and overhead, the
reproduced value and overhead, and the difference of the overheads in
percentage points (reproduced - published).  Differences of setup (TCG
instead of KVM, other workloads, another kernel) are stated as caveats next to
the numbers, not hidden in a footnote of the report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from damon_eval.analysis.reference import SEED_SETUP, TOTAL, PublishedTable
from damon_eval.analysis.tables import MetricTable
from damon_eval.analysis.templates import render_template

NOT_IN_SEED = "not in the seed"
COMPARE_COLUMNS = (
    "metric",
    "workload",
    "config",
    "published_value",
    "published_overhead_pct",
    "reproduced_value",
    "reproduced_overhead_pct",
    "diff_pp",
    "note",
)


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    workload: str
    config: str
    published_value: float | None
    published_overhead_pct: float | None
    reproduced_value: float | None
    reproduced_overhead_pct: float | None
    note: str = ""

    @property
    def diff_pp(self) -> float | None:
        """Reproduced minus published overhead, in percentage points."""
        if self.published_overhead_pct is None or self.reproduced_overhead_pct is None:
            return None
        return self.reproduced_overhead_pct - self.published_overhead_pct


@dataclass(frozen=True, slots=True)
class SeedComparison:
    metric: str
    source: str
    rows: tuple[ComparisonRow, ...]
    caveats: tuple[str, ...]


def caveats_for(
    *,
    accels: Sequence[str],
    workloads: Sequence[str],
    published: PublishedTable,
    kernels: Sequence[str] = (),
) -> list[str]:
    """Plain statements of how the campaign differs from the seed's setup."""
    out = [f"The seed ({published.source}): {SEED_SETUP}."]
    known = sorted({a for a in accels if a})
    if "tcg" in known:
        out.append(
            "This campaign ran under TCG (QEMU software emulation), the seed under KVM: "
            "emulation slows workloads and DAMON alike and changes their timing relations, "
            "so runtimes are not comparable and overheads only roughly."
        )
    if any(not a for a in accels):
        out.append("The accelerator of some runs is not recorded.")
    if known and "tcg" not in known:
        out.append(f"Accelerator: {', '.join(known)}.")
    seed = set(published.workloads)
    extra = [w for w in workloads if w not in seed]
    if extra:
        out.append(
            f"Workloads {NOT_IN_SEED}: {', '.join(extra)} (their rows have no published numbers)."
        )
    missing = [w for w in published.workloads if w not in set(workloads)]
    if missing:
        out.append(
            f"{len(missing)} of the seed's {len(published.workloads)} workloads were not run: "
            f"{', '.join(missing)}."
        )
    kernels = sorted({k for k in kernels if k})
    if kernels:
        out.append(
            f"Guest kernel: {', '.join(kernels)} (the seed: Linux v5.7 with DAMON v16 patches)."
        )
    return out


def compare_with_published(
    table: MetricTable,
    published: PublishedTable,
    *,
    accels: Sequence[str] = (),
    kernels: Sequence[str] = (),
) -> SeedComparison:
    """Rows for every reproduced workload and configuration, plus the total."""
    if published.metric != table.metric:
        raise ValueError(f"published {published.metric} vs reproduced {table.metric}")
    rows = []
    seed_workloads = set(published.workloads)
    for workload in table.workloads:
        for config in table.configs:
            cell = table.cell(workload, config)
            note = ""
            if workload not in seed_workloads:
                note = NOT_IN_SEED
            elif config not in published.configs:
                note = "configuration not in the seed"
            elif cell.estimate is None:
                note = "no successful run"
            rows.append(
                ComparisonRow(
                    workload,
                    config,
                    published.value(workload, config),
                    published.overhead(workload, config),
                    cell.estimate.value if cell.estimate else None,
                    cell.overhead_pct,
                    note,
                )
            )
    same_set = set(table.summary_workloads) == seed_workloads
    for config in table.configs:
        cell = table.summary.get(config)
        if cell is None:
            continue
        if same_set:
            rows.append(
                ComparisonRow(
                    table.summary_label,
                    config,
                    published.value(TOTAL, config),
                    published.overhead(TOTAL, config),
                    cell.estimate.value if cell.estimate else None,
                    cell.overhead_pct,
                )
            )
        else:
            rows.append(
                ComparisonRow(
                    table.summary_label,
                    config,
                    None,
                    None,
                    cell.estimate.value if cell.estimate else None,
                    cell.overhead_pct,
                    f"over {len(table.summary_workloads)} workloads, the seed's over "
                    f"{len(seed_workloads)} others: not comparable",
                )
            )
    caveats = caveats_for(
        accels=accels, workloads=table.workloads, published=published, kernels=kernels
    )
    return SeedComparison(table.metric, published.source, tuple(rows), tuple(caveats))


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def render_comparison_text(comparison: SeedComparison) -> str:
    header = [
        comparison.metric,
        "config",
        "published",
        "(overhead)",
        "reproduced",
        "(overhead)",
        "diff(pp)",
        "note",
    ]
    grid = [header]
    for row in comparison.rows:
        grid.append(
            [
                row.workload,
                row.config,
                _fmt(row.published_value, 3) or "-",
                f"({_fmt(row.published_overhead_pct, 2)})"
                if row.published_overhead_pct is not None
                else "",
                _fmt(row.reproduced_value, 3) or "-",
                f"({_fmt(row.reproduced_overhead_pct, 2)})"
                if row.reproduced_overhead_pct is not None
                else "",
                f"{row.diff_pp:+.2f}" if row.diff_pp is not None else "",
                row.note,
            ]
        )
    widths = [max(len(r[i]) for r in grid) + 1 for i in range(len(header))]
    lines = ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in grid]
    lines += [f"# {c}" for c in comparison.caveats]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_comparison_csv(comparisons: SeedComparison | Sequence[SeedComparison]) -> str:
    if isinstance(comparisons, SeedComparison):
        comparisons = [comparisons]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COMPARE_COLUMNS)
    for comparison in comparisons:
        for row in comparison.rows:
            writer.writerow(
                [
                    comparison.metric,
                    row.workload,
                    row.config,
                    _number(row.published_value),
                    _number(row.published_overhead_pct),
                    _number(row.reproduced_value),
                    _number(row.reproduced_overhead_pct),
                    _number(row.diff_pp),
                    row.note,
                ]
            )
    return buffer.getvalue()


def render_comparison_html(comparison: SeedComparison) -> str:
    rows = [
        {
            "workload": r.workload,
            "config": r.config,
            "published": _fmt(r.published_value, 3),
            "published_overhead": _fmt(r.published_overhead_pct, 2),
            "reproduced": _fmt(r.reproduced_value, 3),
            "reproduced_overhead": _fmt(r.reproduced_overhead_pct, 2),
            "diff": f"{r.diff_pp:+.2f}" if r.diff_pp is not None else "",
            "note": r.note,
        }
        for r in comparison.rows
    ]
    return render_template("compare.html.j2", comparison=comparison, rows=rows)
