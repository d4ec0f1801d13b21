"""Headlines on DAMON's own cost: 'rec' and 'prec' overheads, kdamond's CPU use."""

from __future__ import annotations

from decimal import Decimal

from damon_eval.analysis.headline_builder import (
    CPU_LIMIT_PCT,
    KDAMOND_CPU,
    MEMORY,
    RUNTIME,
    Builder,
)
from damon_eval.analysis.headline_claims import Part, state
from damon_eval.analysis.headline_model import Number, Section

# (rise, fall, noun, doubt): the words of a sentence part (headline_claims.Part)
_RT = ("incurs {} runtime overhead", "shortens runtime by {}", "runtime overhead", "slowdown")
_MEM = {
    "rec": (
        "incurs {} memory space overhead",
        "reduces memory space usage by {}",
        "memory space overhead",
        "memory overhead",
    ),
    "prec": (
        "incurs {} memory footprint overhead",
        "reduces the memory footprint by {}",
        "memory footprint overhead",
        "memory overhead",
    ),
}
_SUMMARY_RT = (
    "slows target workloads down by {}",
    "speeds target workloads up by {}",
    "runtime overhead",
    "slowdown",
)
_SUMMARY_MEM = (
    "increases system memory usage by {}",
    "reduces system memory usage by {}",
    "memory overhead",
    "memory overhead",
)
_SEED = {
    "rec": "In total, DAMON virtual memory access recording feature ('rec') incurs {} "
    "runtime overhead and {} memory space overhead.",
    "prec": "The physical memory access recording ('prec') shows {} for runtime and {} for "
    "memory footprint.",
}
_SUBJECT = {
    "rec": "DAMON virtual memory access recording feature ('rec')",
    "prec": "the physical memory access recording ('prec')",
}


def add_overheads(b: Builder, summary: list[str]) -> None:
    sentences = []
    for config in ("rec", "prec"):
        rt, mem = b.total(RUNTIME, config), b.total(MEMORY, config)
        if not b.need(f"DAMON overheads ('{config}')", rt, mem):
            continue
        rt_part = b.part(
            f"{config}_runtime_overhead_pct",
            rt,
            f"runtime total overhead of {config}",
            _RT,
            metric=RUNTIME,
            config=config,
        )
        mem_part = b.part(
            f"{config}_memory_overhead_pct",
            mem,
            f"memused.avg total overhead of {config}",
            _MEM[config],
            metric=MEMORY,
            config=config,
        )
        lead = "In total, " if config == "rec" else ""
        sentences.append(
            state(
                _SUBJECT[config],
                (rt_part, mem_part),
                seed=_SEED[config],
                lead=lead,
                both="a cost nor a saving",
            )
        )
        if config == "rec":
            summary.append(
                state(
                    "DAMON",
                    (Part(mem_part.number, *_SUMMARY_MEM), Part(rt_part.number, *_SUMMARY_RT)),
                    both="a cost nor a saving",
                )
            )
    _kdamond_cpu(b, summary, sentences)
    if sentences:
        b.sections.append(Section("DAMON Overheads", tuple(sentences)))


def _kdamond_cpu(b: Builder, summary: list[str], sentences: list[str]) -> None:
    """How many cells keep kdamond below 1% CPU; with repeats, below means the whole
    95% CI of the cell's mean is, and cells whose CI spans 1% are counted apart."""
    table = b.tables.get(KDAMOND_CPU)
    if table is None:
        b.skipped.append("kdamond CPU use: no kdamond_cpu_util table")
        return
    cells = {key: cell.estimate for key, cell in table.cells.items() if cell.estimate is not None}
    if not cells:
        b.skipped.append("kdamond CPU use: no kdamond_cpu_util values")
        return
    below = undecided = 0
    for estimate in cells.values():
        ci = estimate.ci95
        low, high = (estimate.value, estimate.value) if ci is None else ci
        if Decimal(repr(high)) < CPU_LIMIT_PCT:
            below += 1
        elif Decimal(repr(low)) < CPU_LIMIT_PCT:
            undecided += 1
    (workload, config), peak_estimate = max(cells.items(), key=lambda kv: kv[1].value)
    n = len(cells)
    b.numbers.append(
        Number(
            "kdamond_cpu_below_1pct_cells",
            str(below),
            f"cells (workload, configuration) of {n} whose mean kdamond_cpu_util is below 1 "
            "(with repeats: the upper end of its 95% CI)",
        )
    )
    peak = b.add(
        "kdamond_cpu_max_pct",
        Decimal(repr(peak_estimate.value)),
        "largest mean kdamond_cpu_util of any cell",
        workload,
        ci95=peak_estimate.ci95,
    )
    where = f"at most {peak}, with '{config}' on '{workload}'"
    sentence = f"kdamond consumes less than 1% CPU time in {below} of {n} measured cases ({where})"
    if undecided:
        b.numbers.append(
            Number(
                "kdamond_cpu_undecided_cells",
                str(undecided),
                "cells whose 95% CI of the mean kdamond_cpu_util includes 1",
            )
        )
        sentence += (
            f"; in {undecided} more the 95% CI of the mean includes 1%, so whether kdamond "
            "stays below 1% there cannot be concluded"
        )
    summary.append(sentence + ".")
    sentences.append(sentence + ".")
