"""The evaluation document's result sentences, computed from the tables.

The seed derives its headline numbers from the ROUNDED table percentages and
TRUNCATES (not rounds) derived ratios to two decimals:

* 'ethp' removes ``trunc2((1 - ethp_mem / thp_mem) * 100)`` % of THP memory
  waste (1 - 4.15/6.04 -> 31.29) while preserving
  ``trunc2(ethp_speedup / thp_speedup * 100)`` % of THP speedup
  (3.76/6.20 = 60.645... -> 60.64; ocean_ncp 23.66/44.76 -> 52.85);
* speedups are the negated runtime overheads, reductions the negated memory
  overheads, all as printed (``%.2f``).

"Best" and "worst" cases (docs/analysis.md):

* THP's best case: the largest speedup (most negative runtime overhead);
  its worst case: the largest ``memused.avg`` overhead.  The per-workload
  'ethp' sentence is about THP's best-case workload.
* prcl's best case: the largest residential-set (``rss.avg``) reduction; the
  seed's parsec3/freqmine.
* With repeats, best and worst cases are chosen among the workloads whose
  difference from orig is significant (Welch); when none is, the text says so
  and names the largest with its CI instead.  Without any test (one value per
  cell, as the seed's tables), among all workloads.

A claim whose number is not significantly different from zero is not made:
the sentence says what cannot be concluded and why (ethp's shares of THP's
speedup and memory waste, prcl's overhead and reductions).

Evaluative words of the seed ("only", "modest", "Interestingly") are left
out: the sentences state numbers.  Ties go to the first workload in table order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from damon_eval.analysis.tables import Cell, MetricTable
from damon_eval.analysis.templates import render_template

RUNTIME = "runtime"
MEMORY = "memused.avg"
RSS = "rss.avg"
KDAMOND_CPU = "kdamond_cpu_util"
CPU_LIMIT_PCT = Decimal(1)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Number:
    """One headline number with how it was obtained."""

    key: str
    text: str  # as printed, e.g. "31.29"
    derivation: str
    workload: str = ""
    ci95: tuple[float, float] | None = None  # of the number as stated (speedups negated)
    significant: bool | None = None  # Welch vs orig; None: no test (n < 2)
    p: float | None = None

    @property
    def value(self) -> float:
        return float(self.text)

    def uncertainty(self) -> str:
        """`` (95% CI a … b%, significant vs orig, p=…)``, or "" without repeats."""
        if self.ci95 is None:
            return ""
        low, high = self.ci95
        verdict = "significant" if self.significant else "not significant"
        p_text = "" if self.p is None else f", p={self.p:.2g}"
        return f" (95% CI {low:.2f} … {high:.2f}%, {verdict} vs orig{p_text})"


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    sentences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Headlines:
    numbers: tuple[Number, ...]
    sections: tuple[Section, ...]
    skipped: tuple[str, ...]

    def number(self, key: str) -> Number:
        for number in self.numbers:
            if number.key == key:
                return number
        raise KeyError(f"no headline number {key!r}; have: {', '.join(self.keys())}")

    def keys(self) -> list[str]:
        return [n.key for n in self.numbers]

    def text(self) -> str:
        return "\n\n".join(" ".join(s.sentences) for s in self.sections)

    def to_dict(self) -> dict:
        return {
            "numbers": {
                n.key: {
                    "value": n.value,
                    "text": n.text,
                    "derivation": n.derivation,
                    **({"workload": n.workload} if n.workload else {}),
                    **({"ci95": list(n.ci95)} if n.ci95 is not None else {}),
                    **({"significant": n.significant} if n.significant is not None else {}),
                    **({"p": n.p} if n.p is not None else {}),
                }
                for n in self.numbers
            },
            "sections": [{"title": s.title, "sentences": list(s.sentences)} for s in self.sections],
            "skipped": list(self.skipped),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_rst(self, title: str = "Results in brief") -> str:
        lines = [title, "=" * len(title), ""]
        for section in self.sections:
            lines += [section.title, "-" * len(section.title), ""]
            lines += [*_wrap(" ".join(section.sentences)), ""]
        if self.skipped:
            lines += ["Not stated (missing data):", ""]
            lines += [f"- {reason}" for reason in self.skipped] + [""]
        return "\n".join(lines)

    def to_html(self) -> str:
        return render_template("headlines.html.j2", headlines=self)


def _wrap(text: str, width: int = 79) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _printed(value: float) -> Decimal:
    """A percentage as the table prints it (``%.2f``), exactly."""
    return Decimal(f"{value:.2f}")


def _negated(value: Decimal) -> Decimal:
    return Decimal(0) - value  # not -value: keeps "0.00" from becoming "-0.00"


def _truncated(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_DOWN)


def _ratio_pct(numerator: Decimal, denominator: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return _truncated(numerator / denominator * 100)


def _removed_pct(kept: Decimal, original: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return _truncated((1 - kept / original) * 100)


def _number(
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


class _Builder:
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
        return None if overhead is None else _printed(overhead)

    def per_workload(self, metric: str, config: str) -> dict[str, Decimal]:
        table = self.tables.get(metric)
        if table is None or table.baseline is None or config not in table.configs:
            return {}
        out = {}
        for workload in table.workloads:
            overhead = table.cell(workload, config).overhead_pct
            if overhead is not None:
                out[workload] = _printed(overhead)
        return out

    def cell(self, metric: str, config: str, workload: str = "") -> Cell | None:
        """The total (``workload == ""``) or one workload's cell, if the table has it."""
        table = self.tables.get(metric)
        if table is None or table.baseline is None or config not in table.configs:
            return None
        if not workload:
            return table.summary.get(config)
        return table.cell(workload, config)

    def add(
        self,
        key: str,
        value: Decimal,
        derivation: str,
        workload: str = "",
        *,
        metric: str | None = None,
        config: str = "",
        negate: bool = False,
    ) -> str:
        """Record a number; returns ``"12.34%"`` plus its CI and significance if known.

        With ``metric``, the CI and Welch verdict are those of its (``config``,
        ``workload``) cell.
        """
        cell = None if metric is None else self.cell(metric, config, workload)
        number = _number(key, value, derivation, workload, cell, negate)
        self.numbers.append(number)
        return f"{number.text}%{number.uncertainty()}"

    def significance(self, metric: str, config: str, workload: str = "") -> bool | None:
        cell = self.cell(metric, config, workload)
        if cell is None or cell.test is None or cell.test.p is None:
            return None
        return bool(cell.test.significant)

    def describe(
        self, metric: str, config: str, value: Decimal, workload: str = "", *, negate: bool = False
    ) -> str:
        """``"12.34% (95% CI …)"`` for the text, without recording a number."""
        number = _number("", value, "", workload, self.cell(metric, config, workload), negate)
        return f"{number.text}%{number.uncertainty()}"

    def best_case(
        self, metric: str, config: str, values: Mapping[str, Decimal]
    ) -> tuple[str, bool]:
        """(workload with the largest value, whether it was chosen among significant ones).

        With any Welch test in the row, only workloads significantly different from
        orig compete; ``("", True)`` when none is.  Without tests, all do.
        """
        verdicts = {w: self.significance(metric, config, w) for w in values}
        if all(v is None for v in verdicts.values()):
            return _best(values, largest=True), False
        significant = {w: v for w, v in values.items() if verdicts[w]}
        return (_best(significant, largest=True) if significant else ""), True

    def need(self, what: str, *values: object) -> bool:
        if any(v is None for v in values):
            self.skipped.append(f"{what}: a needed table or configuration is missing")
            return False
        return True


# Why TCG changes what the numbers mean (docs/statistics.md): kdamond runs in the
# emulated guest too, so its cost is emulated; page counts are not.
TCG_CAVEAT = (
    "These runs used TCG (QEMU's software emulation): DAMON's own runtime overheads "
    "(rec, prec, and the runtime cost of ethp and prcl, kdamond CPU use) are distorted, "
    "because kdamond is emulated along with the workload; RSS, system memory reductions and "
    "THP's memory overhead count pages and are kept."
)


def compute_headlines(tables: Mapping[str, MetricTable], accels: Sequence[str] = ()) -> Headlines:
    """Headline numbers and sentences from the runtime, memused.avg and rss.avg tables.

    ``tables`` maps metric names to tables (kdamond_cpu_util optional); ``accels``
    are the accelerators of the runs (``tcg`` puts the TCG caveat first).
    Sentences whose inputs are missing are listed in ``skipped``.
    """
    b = _Builder(tables)
    summary: list[str] = [TCG_CAVEAT] if "tcg" in accels else []
    _overheads(b, summary)
    _thp(b, summary)
    _prcl(b, summary)
    if summary:
        b.sections.insert(0, Section("Summary", tuple(summary)))
    return Headlines(tuple(b.numbers), tuple(b.sections), tuple(b.skipped))


def _overheads(b: _Builder, summary: list[str]) -> None:
    sentences = []
    for config in ("rec", "prec"):
        rt, mem = b.total(RUNTIME, config), b.total(MEMORY, config)
        if not b.need(f"DAMON overheads ('{config}')", rt, mem):
            continue
        rt = b.add(
            f"{config}_runtime_overhead_pct",
            rt,
            f"runtime total overhead of {config}",
            metric=RUNTIME,
            config=config,
        )
        mem = b.add(
            f"{config}_memory_overhead_pct",
            mem,
            f"memused.avg total overhead of {config}",
            metric=MEMORY,
            config=config,
        )
        if config == "rec":
            summary.append(
                f"DAMON increases system memory usage by {mem} and slows target workloads "
                f"down by {rt}."
            )
            sentences.append(
                f"In total, DAMON virtual memory access recording feature ('rec') incurs {rt} "
                f"runtime overhead and {mem} memory space overhead."
            )
        else:
            sentences.append(
                f"The physical memory access recording ('prec') shows {rt} for runtime and "
                f"{mem} for memory footprint."
            )
    _kdamond_cpu(b, summary, sentences)
    if sentences:
        b.sections.append(Section("DAMON Overheads", tuple(sentences)))


def _kdamond_cpu(b: _Builder, summary: list[str], sentences: list[str]) -> None:
    table = b.tables.get(KDAMOND_CPU)
    if table is None:
        b.skipped.append("kdamond CPU use: no kdamond_cpu_util table")
        return
    values = [
        Decimal(repr(cell.estimate.value))
        for cell in table.cells.values()
        if cell.estimate is not None
    ]
    if not values:
        b.skipped.append("kdamond CPU use: no kdamond_cpu_util values")
        return
    below = sum(1 for v in values if v < CPU_LIMIT_PCT)
    highest = max(values)
    b.numbers.append(
        Number(
            "kdamond_cpu_below_1pct_cells",
            str(below),
            f"cells (workload, configuration) with mean kdamond_cpu_util < 1 of {len(values)}",
        )
    )
    peak = b.add("kdamond_cpu_max_pct", highest, "largest mean kdamond_cpu_util of any cell")
    sentence = (
        f"kdamond consumes less than 1% CPU time in {below} of {len(values)} measured cases "
        f"(at most {peak})."
    )
    summary.append(sentence)
    sentences.append(sentence)


def _best(values: Mapping[str, Decimal], *, largest: bool) -> str:
    """The first workload with the largest (or smallest) value, in table order."""
    target = max(values.values()) if largest else min(values.values())
    return next(w for w, v in values.items() if v == target)


def _thp(b: _Builder, summary: list[str]) -> None:
    sentences: list[str] = []
    thp_rt, thp_mem = b.total(RUNTIME, "thp"), b.total(MEMORY, "thp")
    if not b.need("THP", thp_rt, thp_mem):
        return
    thp_speedup = _negated(thp_rt)
    speed = b.add(
        "thp_speedup_pct",
        thp_speedup,
        "negated runtime total overhead of thp",
        metric=RUNTIME,
        config="thp",
        negate=True,
    )
    mem = b.add(
        "thp_memory_overhead_pct",
        thp_mem,
        "memused.avg total overhead of thp",
        metric=MEMORY,
        config="thp",
    )
    sentences.append(
        f"THP 'always' enabled policy achieves {speed} speedup but incurs {mem} memory overhead."
    )
    speedups = {w: _negated(v) for w, v in b.per_workload(RUNTIME, "thp").items()}
    memory = b.per_workload(MEMORY, "thp")
    best = worst = ""
    if speedups and memory:
        best, tested = b.best_case(RUNTIME, "thp", speedups)
        worst, worst_tested = b.best_case(MEMORY, "thp", memory)
        tested = tested or worst_tested
        _no_significant_case(b, sentences, "THP", "thp", RUNTIME, speedups, best, "speedup", "best")
        _no_significant_case(
            b, sentences, "THP", "thp", MEMORY, memory, worst, "memory overhead", "worst"
        )
        best_text = worst_text = ""
        if best:
            best_text = b.add(
                "thp_best_speedup_pct",
                speedups[best],
                "largest per-workload" + (" of the significant ones" if tested else ""),
                best,
                metric=RUNTIME,
                config="thp",
                negate=True,
            )
        if worst:
            worst_text = b.add(
                "thp_worst_memory_overhead_pct",
                memory[worst],
                "largest per-workload" + (" of the significant ones" if tested else ""),
                worst,
                metric=MEMORY,
                config="thp",
            )
        # With repeats each case is named next to its number and CI; from means alone
        # (the seed's tables) the seed's wording, whose next sentence names them.
        best_case = f"{best_text} speedup in the best case" + (f" ('{best}')" if tested else "")
        worst_case = f"{worst_text} memory overhead in the worst case" + (
            f" ('{worst}')" if tested else ""
        )
        if best and worst:
            sentences.append(f"It achieves {best_case}, but {worst_case}.")
            if best == worst:
                sentences.append(f"Both the best and worst-case are with '{best}'.")
            elif not tested:
                sentences.append(f"The best case is '{best}', the worst case '{worst}'.")
        elif best:
            sentences.append(f"It achieves {best_case}.")
        elif worst:
            sentences.append(f"It incurs {worst_case}.")
    ethp_rt, ethp_mem = b.total(RUNTIME, "ethp"), b.total(MEMORY, "ethp")
    if b.need("ethp", ethp_rt, ethp_mem):
        ethp_speedup = _negated(ethp_rt)
        e_speed = b.add(
            "ethp_speedup_pct",
            ethp_speedup,
            "negated runtime total overhead",
            metric=RUNTIME,
            config="ethp",
            negate=True,
        )
        e_mem = b.add(
            "ethp_memory_overhead_pct",
            ethp_mem,
            "memused.avg total overhead",
            metric=MEMORY,
            config="ethp",
        )
        sentences.append(f"'ethp' shows {e_speed} speedup and {e_mem} memory overhead.")
        ratios = _ethp_ratios(b, thp_speedup, thp_mem, ethp_speedup, ethp_mem, "", "in total")
        if ratios:
            removed, kept = ratios
            sentences.append(
                f"In other words, 'ethp' removes {removed} of THP memory waste while "
                f"preserving {kept} of THP speedup in total."
            )
            summary.append(
                f"'ethp' removes {removed} of THP memory overheads while preserving "
                f"{kept} of THP speedup."
            )
        elif b.unclear and b.unclear[-1].endswith("in total."):
            sentences.append(b.unclear[-1])
            summary.append(b.unclear[-1])
        ethp_speedups = {w: _negated(v) for w, v in b.per_workload(RUNTIME, "ethp").items()}
        ethp_memory = b.per_workload(MEMORY, "ethp")
        if best and best in ethp_speedups and best in ethp_memory and best in memory:
            ratios = _ethp_ratios(
                b,
                speedups[best],
                memory[best],
                ethp_speedups[best],
                ethp_memory[best],
                best,
                f"for {best}",
            )
            if ratios:
                removed, kept = ratios
                sentences.append(
                    f"In the case of the '{best}', 'ethp' removes {removed} of THP memory "
                    f"waste while preserving {kept} of THP speedup."
                )
            elif b.unclear and b.unclear[-1].endswith(f"for {best}."):
                sentences.append(b.unclear[-1])
    b.sections.append(Section("Efficient THP", tuple(sentences)))


def _ethp_ratios(
    b: _Builder,
    thp_speedup: Decimal,
    thp_mem: Decimal,
    ethp_speedup: Decimal,
    ethp_mem: Decimal,
    workload: str,
    where: str,
) -> tuple[str, str] | None:
    # A ratio of a part indistinguishable from zero is noise: state why instead.
    unclear = [
        _number("", value, "", workload, b.cell(metric, "thp", workload), negate)
        for metric, value, negate in ((RUNTIME, thp_speedup, True), (MEMORY, thp_mem, False))
    ]
    speedup_unclear, memory_unclear = (n.significant is False for n in unclear)
    if speedup_unclear or memory_unclear:
        parts = []
        if speedup_unclear:
            parts.append(
                f"no significant speedup ({unclear[0].text}%{unclear[0].uncertainty()}), "
                "so 'preserved speedup' is undefined"
            )
        if memory_unclear:
            parts.append(
                f"no significant memory overhead ({unclear[1].text}%"
                f"{unclear[1].uncertainty()}), so 'removed memory waste' is undefined"
            )
        sentence = f"THP shows {' and '.join(parts)} {where}."
        b.unclear.append(sentence)
        b.skipped.append(f"ethp's share of THP waste and speedup {where}: not significant")
        return None
    if thp_mem <= 0 or thp_speedup <= 0:
        b.skipped.append(
            f"ethp's share of THP waste and speedup {where}: THP shows "
            f"{thp_speedup}% speedup and {thp_mem}% memory overhead; the shares are defined "
            "only when both are positive"
        )
        return None
    suffix = "_thp_best_case" if workload else ""
    removed = b.add(
        f"ethp_thp_memory_waste_removed_pct{suffix}",
        _removed_pct(ethp_mem, thp_mem),
        f"(1 - {ethp_mem}/{thp_mem}) * 100, truncated",
        workload,
    )
    kept = b.add(
        f"ethp_thp_speedup_preserved_pct{suffix}",
        _ratio_pct(ethp_speedup, thp_speedup),
        f"{ethp_speedup}/{thp_speedup} * 100, truncated",
        workload,
    )
    return removed, kept


def _no_significant_case(
    b: _Builder,
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
    top = _best(values, largest=True)
    value = b.describe(metric, config, values[top], top, negate=negate)
    sentence = (
        f"No workload shows a significant {label} {what} (the largest: '{top}', {value}), "
        f"so there is no {case} case to state."
    )
    sentences.append(sentence)
    b.skipped.append(f"{config} {case} case: no workload's {what} is significant")
    return sentence


def _not_significant(what: str, text: str) -> str:
    return f"its {what} ({text}) is not significantly different from zero"


def _prcl(b: _Builder, summary: list[str]) -> None:
    sentences: list[str] = []
    rt, mem = b.total(RUNTIME, "prcl"), b.total(MEMORY, "prcl")
    if b.need("prcl", rt, mem):
        rt_text = b.add(
            "prcl_runtime_overhead_pct",
            rt,
            "runtime total overhead of prcl",
            metric=RUNTIME,
            config="prcl",
        )
        mem_text = b.add(
            "prcl_memory_reduction_pct",
            _negated(mem),
            "negated memused.avg total overhead",
            metric=MEMORY,
            config="prcl",
            negate=True,
        )
        rt_clear = b.significance(RUNTIME, "prcl") is not False
        mem_clear = b.significance(MEMORY, "prcl") is not False
        if rt_clear and mem_clear:
            sentences.append(
                f"In total, 'prcl' incurred {rt_text} runtime overhead while achieving "
                f"{mem_text} system memory usage reduction."
            )
        elif rt_clear:
            sentences.append(
                f"In total, 'prcl' incurred {rt_text} runtime overhead, but "
                f"{_not_significant('system memory usage reduction', mem_text)}, "
                "so no reduction can be concluded."
            )
        elif mem_clear:
            sentences.append(
                f"In total, 'prcl' achieved {mem_text} system memory usage reduction; "
                f"{_not_significant('runtime overhead', rt_text)}, so no slowdown can be "
                "concluded."
            )
        else:
            sentences.append(
                f"In total, neither the runtime overhead of 'prcl' ({rt_text}) nor its system "
                f"memory usage reduction ({mem_text}) is significantly different from zero, "
                "so neither a cost nor a saving can be concluded."
            )
    rss = b.total(RSS, "prcl")
    if b.need("prcl residential sets", rss):
        rss_text = b.add(
            "prcl_rss_reduction_pct",
            _negated(rss),
            "negated rss.avg total overhead",
            metric=RSS,
            config="prcl",
            negate=True,
        )
        if b.significance(RSS, "prcl") is not False:
            sentences.append(f"In total, {rss_text} of residential sets were reduced.")
        else:
            sentences.append(
                f"In total, the reduction of residential sets ({rss_text}) is not "
                "significantly different from zero, so no reduction can be concluded."
            )
    reductions = {w: _negated(v) for w, v in b.per_workload(RSS, "prcl").items()}
    if reductions:
        _prcl_best_case(b, summary, sentences, reductions)
    if sentences:
        b.sections.append(Section("Proactive Reclamation", tuple(sentences)))


def _prcl_best_case(
    b: _Builder, summary: list[str], sentences: list[str], reductions: Mapping[str, Decimal]
) -> None:
    """The largest (significant) residential-set reduction, with what it cost there."""
    memory = b.per_workload(MEMORY, "prcl")
    runtime = b.per_workload(RUNTIME, "prcl")
    best, _ = b.best_case(RSS, "prcl", reductions)
    none = _no_significant_case(
        b,
        sentences,
        "'prcl'",
        "prcl",
        RSS,
        reductions,
        best,
        "residential set reduction",
        "best",
        negate=True,
    )
    if none:
        summary.append(none)
        return
    if best not in memory or best not in runtime:
        b.skipped.append(f"prcl best case {best}: no memused.avg or runtime overhead")
        return
    rss_best = b.add(
        "prcl_best_rss_reduction_pct",
        reductions[best],
        "largest rss.avg reduction",
        best,
        metric=RSS,
        config="prcl",
        negate=True,
    )
    mem_best = b.add(
        "prcl_best_memory_reduction_pct",
        _negated(memory[best]),
        "at that workload",
        best,
        metric=MEMORY,
        config="prcl",
        negate=True,
    )
    rt_best = b.add(
        "prcl_best_runtime_overhead_pct",
        runtime[best],
        "at that workload",
        best,
        metric=RUNTIME,
        config="prcl",
    )
    mem_clear = b.significance(MEMORY, "prcl", best) is not False
    rt_clear = b.significance(RUNTIME, "prcl", best) is not False
    if mem_clear and rt_clear:
        sentences.append(
            f"With {best}, 'prcl' reduced {rss_best} of residential sets and {mem_best} "
            f"of system memory usage while incurring {rt_best} runtime overhead."
        )
        summary.append(
            f"'prcl' reduces {rss_best} of residential sets and {mem_best} of system "
            f"memory footprint while incurring {rt_best} runtime overhead in the best "
            f"case ({best})."
        )
        return
    claims = [f"{rss_best} of residential sets"]
    if mem_clear:
        claims.append(f"{mem_best} of system memory usage")
    cost = f" while incurring {rt_best} runtime overhead" if rt_clear else ""
    unclear = []
    if not mem_clear:
        unclear.append(_not_significant("system memory usage reduction there", mem_best))
    if not rt_clear:
        unclear.append(_not_significant("runtime overhead there", rt_best))
    if mem_clear or rt_clear:
        what = "a reduction cannot" if not mem_clear else "a slowdown cannot"
    else:
        what = "neither a saving nor a cost can"
    note = f"{' and '.join(unclear)}, so {what} be concluded for {best}."
    main = " and ".join(claims)
    sentences.append(f"With {best}, 'prcl' reduced {main}{cost}; {note}")
    summary.append(f"'prcl' reduces {main}{cost} in the best case ({best}); {note}")
