"""What every headline section uses: the seed's decimal arithmetic and the builder.

Rules (rounded table percentages, truncated ratios, best and worst cases):
:mod:`damon_eval.analysis.headlines`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, localcontext

from damon_eval.analysis.headline_claims import Part
from damon_eval.analysis.headline_model import Number, Section
from damon_eval.analysis.stats import share_ci95
from damon_eval.analysis.tables import Cell, MetricTable

RUNTIME = "runtime"
MEMORY = "memused.avg"
RSS = "rss.avg"
KDAMOND_CPU = "kdamond_cpu_util"
CPU_LIMIT_PCT = Decimal(1)
_CENT = Decimal("0.01")


def printed(value: float) -> Decimal:
    """A percentage as the table prints it (``%.2f``), exactly."""
    return Decimal(f"{value:.2f}")


def negated(value: Decimal) -> Decimal:
    return Decimal(0) - value  # not -value: keeps "0.00" from becoming "-0.00"


def truncated(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_DOWN)


def ratio_pct(numerator: Decimal, denominator: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return truncated(numerator / denominator * 100)


def removed_pct(kept: Decimal, original: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return truncated((1 - kept / original) * 100)


def cell_number(
    key: str,
    value: Decimal,
    derivation: str,
    workload: str,
    cell: Cell | None,
    negate: bool,
) -> Number:
    """A number with the overhead CI and Welch verdict of ``cell`` (negated for speedups)."""
    ci = significant = p = None
    if cell is not None and cell.overhead_ci95 is not None:
        low, high = cell.overhead_ci95
        ci = (-high, -low) if negate else (low, high)
        if cell.test is not None and cell.test.p is not None:
            significant, p = bool(cell.test.significant), cell.test.p
    return Number(key, f"{value:.2f}", derivation, workload, ci, significant, p)


class Builder:
    def __init__(self, tables: Mapping[str, MetricTable]):
        self.tables = tables
        self.numbers: list[Number] = []
        self.sections: list[Section] = []
        self.skipped: list[str] = []
        self.unclear: list[str] = []  # what the data cannot conclude, said in the text

    def total(self, metric: str, config: str) -> Decimal | None:
        table = self.tables.get(metric)
        if table is None or table.baseline is None or config not in table.summary:
            return None
        overhead = table.summary[config].overhead_pct
        return None if overhead is None else printed(overhead)

    def per_workload(self, metric: str, config: str) -> dict[str, Decimal]:
        table = self.tables.get(metric)
        if table is None or table.baseline is None or config not in table.configs:
            return {}
        out = {}
        for workload in table.workloads:
            overhead = table.cell(workload, config).overhead_pct
            if overhead is not None:
                out[workload] = printed(overhead)
        return out

    def cell(self, metric: str, config: str, workload: str = "") -> Cell | None:
        """The total (``workload == ""``) or one workload's cell, if the table has it."""
        table = self.tables.get(metric)
        if table is None or table.baseline is None or config not in table.configs:
            return None
        if not workload:
            return table.summary.get(config)
        return table.cell(workload, config)

    def record(
        self,
        key: str,
        value: Decimal,
        derivation: str,
        workload: str = "",
        *,
        metric: str | None = None,
        config: str = "",
        negate: bool = False,
        ci95: tuple[float, float] | None = None,
    ) -> Number:
        """Record a number and return it.

        With ``metric``, the CI and Welch verdict are those of its (``config``,
        ``workload``) cell; otherwise ``ci95``, if given, with no verdict.
        """
        if metric is None:
            number = Number(key, f"{value:.2f}", derivation, workload, ci95)
        else:
            cell = self.cell(metric, config, workload)
            number = cell_number(key, value, derivation, workload, cell, negate)
        self.numbers.append(number)
        return number

    def add(self, key: str, value: Decimal, derivation: str, workload: str = "", **kw) -> str:
        """:meth:`record`; returns ``"12.34%"`` plus its CI and significance if known."""
        number = self.record(key, value, derivation, workload, **kw)
        return f"{number.text}%{number.uncertainty()}"

    def part(
        self,
        key: str,
        value: Decimal,
        derivation: str,
        words: tuple[str, str, str, str],
        workload: str = "",
        **kw,
    ) -> Part:
        """:meth:`record`, as a sentence part with ``words`` (rise, fall, noun, doubt)."""
        return Part(self.record(key, value, derivation, workload, **kw), *words)

    def share_ci95(
        self, metric: str, part: str, whole: str, workload: str = ""
    ) -> tuple[float, float] | None:
        """CI of ``part``'s overhead as a % of ``whole``'s (delta method over all three groups)."""
        table = self.tables.get(metric)
        if table is None or table.baseline is None:
            return None
        cells = [self.cell(metric, c, workload) for c in (part, whole, table.baseline)]
        if any(c is None or c.estimate is None for c in cells):
            return None
        return share_ci95(*(c.estimate for c in cells))

    def significance(self, metric: str, config: str, workload: str = "") -> bool | None:
        cell = self.cell(metric, config, workload)
        if cell is None or cell.test is None or cell.test.p is None:
            return None
        return bool(cell.test.significant)

    def best_case(
        self, metric: str, config: str, values: Mapping[str, Decimal]
    ) -> tuple[str, bool]:
        """(workload with the largest value, whether it was chosen among significant ones).

        With any Welch test in the row, only workloads significantly different from
        orig compete; ``("", True)`` when none is.  Without tests, all do.
        """
        verdicts = {w: self.significance(metric, config, w) for w in values}
        if all(v is None for v in verdicts.values()):
            return first_largest(values, largest=True), False
        significant = {w: v for w, v in values.items() if verdicts[w]}
        return (first_largest(significant, largest=True) if significant else ""), True

    def need(self, what: str, *values: object) -> bool:
        if any(v is None for v in values):
            self.skipped.append(f"{what}: a needed table or configuration is missing")
            return False
        return True


def first_largest(values: Mapping[str, Decimal], *, largest: bool) -> str:
    """The first workload with the largest (or smallest) value, in table order."""
    target = max(values.values()) if largest else min(values.values())
    return next(w for w, v in values.items() if v == target)


def no_significant_case(
    b: Builder,
    sentences: list[str],
    label: str,
    config: str,
    metric: str,
    values: Mapping[str, Decimal],
    chosen: str,
    what: str,
    case: str,
    *,
    negate: bool = False,
) -> str:
    """When no workload is significant (``chosen`` empty), say so; returns the sentence."""
    if chosen:
        return ""
    top = first_largest(values, largest=True)
    value = cell_number("", values[top], "", top, b.cell(metric, config, top), negate).signed()
    sentence = (
        f"No workload shows a significant {label} {what} (the largest: '{top}', {value}), "
        f"so there is no {case} case to state."
    )
    sentences.append(sentence)
    b.skipped.append(f"{config} {case} case: no workload's {what} is significant")
    return sentence


def not_significant(what: str, text: str) -> str:
    return f"its {what} ({text}) is not significantly different from zero"
