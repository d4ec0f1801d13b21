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
    not_significant,
)
from damon_eval.analysis.headline_model import Section


def add_prcl(b: Builder, summary: list[str]) -> None:
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
            negated(mem),
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
                f"{not_significant('system memory usage reduction', mem_text)}, "
                "so no reduction can be concluded."
            )
        elif mem_clear:
            sentences.append(
                f"In total, 'prcl' achieved {mem_text} system memory usage reduction; "
                f"{not_significant('runtime overhead', rt_text)}, so no slowdown can be "
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
            negated(rss),
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
        negated(memory[best]),
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
        unclear.append(not_significant("system memory usage reduction there", mem_best))
    if not rt_clear:
        unclear.append(not_significant("runtime overhead there", rt_best))
    if mem_clear or rt_clear:
        what = "a reduction cannot" if not mem_clear else "a slowdown cannot"
    else:
        what = "neither a saving nor a cost can"
    note = f"{' and '.join(unclear)}, so {what} be concluded for {best}."
    main = " and ".join(claims)
    sentences.append(f"With {best}, 'prcl' reduced {main}{cost}; {note}")
    summary.append(f"'prcl' reduces {main}{cost} in the best case ({best}); {note}")
