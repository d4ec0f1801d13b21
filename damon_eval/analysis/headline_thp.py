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
    not_significant,
    ratio_pct,
    removed_pct,
)
from damon_eval.analysis.headline_model import Section


def add_thp(b: Builder, summary: list[str]) -> None:
    sentences: list[str] = []
    thp_rt, thp_mem = b.total(RUNTIME, "thp"), b.total(MEMORY, "thp")
    if not b.need("THP", thp_rt, thp_mem):
        return
    thp_speedup = negated(thp_rt)
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
    subject = "THP 'always' enabled policy"
    sentences.append(
        _effects(
            b,
            "thp",
            subject,
            speed,
            mem,
            f"{subject} achieves {speed} speedup but incurs {mem} memory overhead.",
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
        ethp_speedup = negated(ethp_rt)
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
        sentences.append(
            _effects(
                b,
                "ethp",
                "'ethp'",
                e_speed,
                e_mem,
                f"'ethp' shows {e_speed} speedup and {e_mem} memory overhead.",
            )
        )
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
                    f"In the case of the '{best}', 'ethp' removes {removed} of THP memory "
                    f"waste while preserving {kept} of THP speedup."
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
) -> tuple[str, str] | None:
    # A ratio of a part indistinguishable from zero is noise: state why instead.
    unclear = [
        cell_number("", value, "", workload, b.cell(metric, "thp", workload), negate)
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
    # ethp's memory overhead as a share of THP's; what is removed is the rest
    mem_share = b.share_ci95(MEMORY, "ethp", "thp", workload)
    removed = b.add(
        f"ethp_thp_memory_waste_removed_pct{suffix}",
        removed_pct(ethp_mem, thp_mem),
        f"(1 - {ethp_mem}/{thp_mem}) * 100, truncated",
        workload,
        ci95=None if mem_share is None else (100 - mem_share[1], 100 - mem_share[0]),
    )
    kept = b.add(
        f"ethp_thp_speedup_preserved_pct{suffix}",
        ratio_pct(ethp_speedup, thp_speedup),
        f"{ethp_speedup}/{thp_speedup} * 100, truncated",
        workload,
        ci95=b.share_ci95(RUNTIME, "ethp", "thp", workload),
    )
    return removed, kept


def _effects(b: Builder, config: str, subject: str, speed: str, mem: str, both: str) -> str:
    """``both`` when speedup and memory overhead are significant (or untested), else
    the sentence that says which of them cannot be concluded."""
    speed_clear = b.significance(RUNTIME, config) is not False
    mem_clear = b.significance(MEMORY, config) is not False
    if speed_clear and mem_clear:
        return both
    if mem_clear:
        return (
            f"{subject} incurs {mem} memory overhead, but {not_significant('speedup', speed)}, "
            "so no speedup can be concluded."
        )
    if speed_clear:
        return (
            f"{subject} achieves {speed} speedup, but "
            f"{not_significant('memory overhead', mem)}, so no memory overhead can be concluded."
        )
    return (
        f"Neither the speedup of {subject} ({speed}) nor its memory overhead ({mem}) is "
        "significantly different from zero, so neither a speedup nor a memory cost can be "
        "concluded."
    )
