"""Headlines on THP and 'ethp': speedups, memory overheads, the shares 'ethp' keeps."""

from __future__ import annotations

from decimal import Decimal

from damon_eval.analysis.headline_builder import (
    MEMORY,
    RUNTIME,
    Builder,
    cell_number,
    negated,
    no_significant_case,
    ratio_pct,
    removed_pct,
)
from damon_eval.analysis.headline_claims import Part, state
from damon_eval.analysis.headline_model import Number, Section


def add_thp(b: Builder, summary: list[str]) -> None:
    sentences: list[str] = []
    thp_rt, thp_mem = b.total(RUNTIME, "thp"), b.total(MEMORY, "thp")
    if not b.need("THP", thp_rt, thp_mem):
        return
    thp_speedup = negated(thp_rt)
    speed = b.part(
        "thp_speedup_pct",
        thp_speedup,
        "negated runtime total overhead of thp",
        _speed("achieves {} speedup"),
        metric=RUNTIME,
        config="thp",
        negate=True,
    )
    mem = b.part(
        "thp_memory_overhead_pct",
        thp_mem,
        "memused.avg total overhead of thp",
        _MEM,
        metric=MEMORY,
        config="thp",
    )
    sentences.append(
        state(
            "THP 'always' enabled policy",
            (speed, mem),
            seed="THP 'always' enabled policy achieves {} speedup but incurs {} memory overhead.",
            both="a speedup nor a memory cost",
        )
    )
    speedups = {w: negated(v) for w, v in b.per_workload(RUNTIME, "thp").items()}
    memory = b.per_workload(MEMORY, "thp")
    best = worst = ""
    if speedups and memory:
        best, tested = b.best_case(RUNTIME, "thp", speedups)
        worst, worst_tested = b.best_case(MEMORY, "thp", memory)
        tested = tested or worst_tested
        no_significant_case(
            b, sentences, "THP", "thp", RUNTIME, speedups, best, "speedup", "best", negate=True
        )
        no_significant_case(
            b, sentences, "THP", "thp", MEMORY, memory, worst, "memory overhead", "worst"
        )
        best_part = worst_part = None
        if best:
            best_part = b.part(
                "thp_best_speedup_pct",
                speedups[best],
                "largest per-workload" + (" of the significant ones" if tested else ""),
                _speed("achieves {} speedup"),
                best,
                metric=RUNTIME,
                config="thp",
                negate=True,
            )
        if worst:
            worst_part = b.part(
                "thp_worst_memory_overhead_pct",
                memory[worst],
                "largest per-workload" + (" of the significant ones" if tested else ""),
                _MEM,
                worst,
                metric=MEMORY,
                config="thp",
            )
        sentences += _cases(best, best_part, worst, worst_part, tested)
    ethp_rt, ethp_mem = b.total(RUNTIME, "ethp"), b.total(MEMORY, "ethp")
    if b.need("ethp", ethp_rt, ethp_mem):
        ethp_speedup = negated(ethp_rt)
        e_speed = b.part(
            "ethp_speedup_pct",
            ethp_speedup,
            "negated runtime total overhead",
            _speed("shows {} speedup"),
            metric=RUNTIME,
            config="ethp",
            negate=True,
        )
        e_mem = b.part(
            "ethp_memory_overhead_pct",
            ethp_mem,
            "memused.avg total overhead",
            _MEM,
            metric=MEMORY,
            config="ethp",
        )
        sentences.append(
            state(
                "'ethp'",
                (e_speed, e_mem),
                seed="'ethp' shows {} speedup and {} memory overhead.",
                both="a speedup nor a memory cost",
            )
        )
        ratios = _ethp_ratios(b, thp_speedup, thp_mem, ethp_speedup, ethp_mem, "", "in total")
        if ratios:
            removed, kept = ratios
            sentences.append(
                f"In other words, 'ethp' {_removes(removed, 'waste')} while {_keeps(kept)} "
                "in total."
            )
            summary.append(f"'ethp' {_removes(removed, 'overheads')} while {_keeps(kept)}.")
        elif b.unclear and b.unclear[-1].endswith("in total."):
            sentences.append(b.unclear[-1])
            summary.append(b.unclear[-1])
        ethp_speedups = {w: negated(v) for w, v in b.per_workload(RUNTIME, "ethp").items()}
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
                    f"In the case of the '{best}', 'ethp' {_removes(removed, 'waste')} while "
                    f"{_keeps(kept)}."
                )
            elif b.unclear and b.unclear[-1].endswith(f"for {best}."):
                sentences.append(b.unclear[-1])
    b.sections.append(Section("Efficient THP", tuple(sentences)))


def _ethp_ratios(
    b: Builder,
    thp_speedup: Decimal,
    thp_mem: Decimal,
    ethp_speedup: Decimal,
    ethp_mem: Decimal,
    workload: str,
    where: str,
) -> tuple[Number, Number] | None:
    # A ratio of a part indistinguishable from zero is noise, and one of a part with
    # the wrong sign is no share: state why instead.
    speed, mem = (
        cell_number("", value, "", workload, b.cell(metric, "thp", workload), negate)
        for metric, value, negate in ((RUNTIME, thp_speedup, True), (MEMORY, thp_mem, False))
    )
    reasons = []
    if speed.significant is False:
        reasons.append(
            f"no significant speedup ({speed.signed()}), so 'preserved speedup' is undefined"
        )
    elif thp_speedup <= 0:
        detail = (
            f"it slows workloads down by {speed.stated()}" if speed.negative else speed.stated()
        )
        reasons.append(f"no speedup ({detail}), so 'preserved speedup' is undefined")
    if mem.significant is False:
        reasons.append(
            f"no significant memory overhead ({mem.signed()}), so 'removed memory waste' is "
            "undefined"
        )
    elif thp_mem <= 0:
        detail = f"it reduces memory usage by {mem.stated()}" if mem.negative else mem.stated()
        reasons.append(f"no memory overhead ({detail}), so 'removed memory waste' is undefined")
    if reasons:
        b.unclear.append(f"THP shows {' and '.join(reasons)} {where}.")
        b.skipped.append(
            f"ethp's share of THP waste and speedup {where}: THP's speedup and memory "
            "overhead must both be significant and positive"
        )
        return None
    suffix = "_thp_best_case" if workload else ""
    # ethp's memory overhead as a share of THP's; what is removed is the rest
    mem_share = b.share_ci95(MEMORY, "ethp", "thp", workload)
    removed = b.record(
        f"ethp_thp_memory_waste_removed_pct{suffix}",
        removed_pct(ethp_mem, thp_mem),
        f"(1 - {ethp_mem}/{thp_mem}) * 100, truncated",
        workload,
        ci95=None if mem_share is None else (100 - mem_share[1], 100 - mem_share[0]),
    )
    kept = b.record(
        f"ethp_thp_speedup_preserved_pct{suffix}",
        ratio_pct(ethp_speedup, thp_speedup),
        f"{ethp_speedup}/{thp_speedup} * 100, truncated",
        workload,
        ci95=b.share_ci95(RUNTIME, "ethp", "thp", workload),
    )
    return removed, kept


def _removes(share: Number, waste: str) -> str:
    """'ethp' removes X of THP's memory waste, worded for shares outside 0 … 100%."""
    text = f"{share.text}%{share.uncertainty()}"
    if share.value > 100:
        return f"removes all of THP memory {waste} and more ({text}: it uses less memory than orig)"
    if share.value < 0:
        return f"removes none of THP memory {waste} ({text}: it uses more memory than THP)"
    return f"removes {text} of THP memory {waste}"


def _keeps(share: Number) -> str:
    text = f"{share.text}%{share.uncertainty()}"
    if share.value > 100:
        return f"preserving all of THP speedup and more ({text}: it is faster than THP)"
    if share.value < 0:
        return f"preserving none of THP speedup ({text}: it is slower than orig)"
    return f"preserving {text} of THP speedup"


def _speed(rise: str) -> tuple[str, str, str, str]:
    return (rise, "slows workloads down by {}", "speedup", "speedup")


_MEM = (
    "incurs {} memory overhead",
    "reduces memory usage by {}",
    "memory overhead",
    "memory overhead",
)


def _cases(
    best: str, best_part: Part | None, worst: str, worst_part: Part | None, tested: bool
) -> list[str]:
    """THP's best-case speedup and worst-case memory overhead, each named with its
    workload (next to its CI with repeats; in the seed's next sentence without)."""
    best_name = f" ('{best}')" if tested else ""
    worst_name = f" ('{worst}')" if tested else ""
    clauses = []
    if best_part is not None:
        if best_part.number.negative:
            clauses.append(
                f"slows workloads down by {best_part.number.stated()} even in the best "
                f"case{best_name}"
            )
        else:
            clauses.append(
                f"achieves {best_part.number.stated()} speedup in the best case{best_name}"
            )
    if worst_part is not None:
        if worst_part.number.negative:
            clauses.append(
                f"reduces memory usage by {worst_part.number.stated()} even in the worst "
                f"case{worst_name}"
            )
        elif best_part is not None and not best_part.number.negative:
            clauses.append(
                f"{worst_part.number.stated()} memory overhead in the worst case{worst_name}"
            )
        else:
            clauses.append(
                f"incurs {worst_part.number.stated()} memory overhead in the worst case{worst_name}"
            )
    if not clauses:
        return []
    if len(clauses) == 2:
        # the seed's "It achieves …, but … memory overhead …" when both have its signs
        seed_form = not best_part.number.negative and not worst_part.number.negative
        sentence = (
            f"It {clauses[0]}, but {clauses[1]}."
            if seed_form
            else f"It {clauses[0]} and {clauses[1]}."
        )
    else:
        sentence = f"It {clauses[0]}."
    out = [sentence]
    if best and worst and best == worst:
        out.append(f"Both the best and worst-case are with '{best}'.")
    elif best and worst and not tested:
        out.append(f"The best case is '{best}', the worst case '{worst}'.")
    elif not tested and (best or worst):
        out.append(f"The {'best' if best else 'worst'} case is '{best or worst}'.")
    return out
