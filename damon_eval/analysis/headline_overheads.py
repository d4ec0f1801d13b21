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
from damon_eval.analysis.headline_model import Number, Section


def add_overheads(b: Builder, summary: list[str]) -> None:
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


def _kdamond_cpu(b: Builder, summary: list[str], sentences: list[str]) -> None:
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
