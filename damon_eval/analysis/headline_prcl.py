"""Headlines on proactive reclamation ('prcl'): memory and residential set reductions."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from damon_eval.analysis.headline_builder import (
    MEMORY,
    RSS,
    RUNTIME,
    Builder,
    negated,
    no_significant_case,
)
from damon_eval.analysis.headline_claims import Part, state
from damon_eval.analysis.headline_model import Section

# (rise, fall, noun, doubt) of each part, past tense for the section, present for the
# summary; a reduction's "fall" is an increase
_RT = ("incurred {} runtime overhead", "shortened runtime by {}", "runtime overhead", "slowdown")
_MEM = (
    "achieved {} system memory usage reduction",
    "increased system memory usage by {}",
    "system memory usage reduction",
    "reduction",
)
_RSS = (
    "reduced residential sets by {}",
    "increased residential sets by {}",
    "residential set reduction",
    "reduction",
)
_BEST = {
    "rss": ("reduced {} of residential sets", "increased residential sets by {}"),
    "mem": ("reduced system memory usage by {}", "increased system memory usage by {}"),
    "rt": ("incurred {} runtime overhead", "shortened runtime by {}"),
}
_SUMMARY_BEST = {
    "rss": ("reduces {} of residential sets", "increases residential sets by {}"),
    "mem": ("reduces system memory footprint by {}", "increases system memory usage by {}"),
    "rt": ("incurs {} runtime overhead", "shortens runtime by {}"),
}
_NOUNS = {
    "rss": ("residential set reduction", "reduction"),
    "mem": ("system memory usage reduction there", "reduction"),
    "rt": ("runtime overhead there", "slowdown"),
}


def add_prcl(b: Builder, summary: list[str]) -> None:
    sentences: list[str] = []
    rt, mem = b.total(RUNTIME, "prcl"), b.total(MEMORY, "prcl")
    if b.need("prcl", rt, mem):
        rt_part = b.part(
            "prcl_runtime_overhead_pct",
            rt,
            "runtime total overhead of prcl",
            _RT,
            metric=RUNTIME,
            config="prcl",
        )
        mem_part = b.part(
            "prcl_memory_reduction_pct",
            negated(mem),
            "negated memused.avg total overhead",
            _MEM,
            metric=MEMORY,
            config="prcl",
            negate=True,
        )
        sentences.append(
            state(
                "'prcl'",
                (rt_part, mem_part),
                seed="In total, 'prcl' incurred {} runtime overhead while achieving {} system "
                "memory usage reduction.",
                lead="In total, ",
                both="a cost nor a saving",
            )
        )
    rss = b.total(RSS, "prcl")
    if b.need("prcl residential sets", rss):
        rss_part = b.part(
            "prcl_rss_reduction_pct",
            negated(rss),
            "negated rss.avg total overhead",
            _RSS,
            metric=RSS,
            config="prcl",
            negate=True,
        )
        sentences.append(
            state(
                "'prcl'",
                (rss_part,),
                seed="In total, {} of residential sets were reduced.",
                lead="In total, ",
            )
        )
    reductions = {w: negated(v) for w, v in b.per_workload(RSS, "prcl").items()}
    if reductions:
        _prcl_best_case(b, summary, sentences, reductions)
    if sentences:
        b.sections.append(Section("Proactive Reclamation", tuple(sentences)))


def _prcl_best_case(
    b: Builder, summary: list[str], sentences: list[str], reductions: Mapping[str, Decimal]
) -> None:
    """The largest (significant) residential-set reduction, with what it cost there."""
    memory = b.per_workload(MEMORY, "prcl")
    runtime = b.per_workload(RUNTIME, "prcl")
    best, _ = b.best_case(RSS, "prcl", reductions)
    none = no_significant_case(
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
    rss = b.record(
        "prcl_best_rss_reduction_pct",
        reductions[best],
        "largest rss.avg reduction",
        best,
        metric=RSS,
        config="prcl",
        negate=True,
    )
    mem = b.record(
        "prcl_best_memory_reduction_pct",
        negated(memory[best]),
        "at that workload",
        best,
        metric=MEMORY,
        config="prcl",
        negate=True,
    )
    rt = b.record(
        "prcl_best_runtime_overhead_pct",
        runtime[best],
        "at that workload",
        best,
        metric=RUNTIME,
        config="prcl",
    )

    def parts(words):
        return [
            Part(number, *words[name], *_NOUNS[name])
            for name, number in (("rss", rss), ("mem", mem), ("rt", rt))
        ]

    sentences.append(
        state(
            "'prcl'",
            parts(_BEST),
            seed=f"With {best}, 'prcl' reduced {{}} of residential sets and {{}} of system "
            "memory usage while incurring {} runtime overhead.",
            lead=f"With {best}, ",
            doubt_tail=f" for {best}",
            both="a saving nor a cost",
        )
    )
    summary.append(
        state(
            "'prcl'",
            parts(_SUMMARY_BEST),
            seed=f"'prcl' reduces {{}} of residential sets and {{}} of system memory footprint "
            f"while incurring {{}} runtime overhead in the best case ({best}).",
            claim_tail=f" in the best case ({best})",
            doubt_tail=f" for {best}",
            both="a saving nor a cost",
        )
    )
