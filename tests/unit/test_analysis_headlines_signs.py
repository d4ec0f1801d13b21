"""Every computed headline sentence in its three branches (fixture runs, 3 repeats):
significant positive (the seed's words), significant negative (a verb for the sign,
never "achieves -10.00% speedup"), not significant (what cannot be concluded)."""

from __future__ import annotations

import pytest

from damon_eval.analysis.headlines import compute_headlines
from damon_eval.analysis.tables import table_from_samples

W = "s/w"
BASE = [1000.0, 1002.0, 998.0]
UP = [1100.0, 1101.0, 1099.0]  # +10 %, significant
DOWN = [900.0, 901.0, 899.0]  # -10 %, significant
HALF_DOWN = [950.0, 951.0, 949.0]  # -5 %, significant
HALF_UP = [1050.0, 1051.0, 1049.0]  # +5 %, significant
NOISE = [1010.0, 1210.0, 810.0]  # +1 %, not significant


def headlines(configs, **metrics):
    """``metrics``: metric name (``_`` for ``.``) -> {config: samples}; orig is BASE."""
    out = {}
    for name, by_config in metrics.items():
        metric = name.replace("_", ".") if name != "runtime" else name
        samples = {(W, "orig"): BASE, **{(W, c): v for c, v in by_config.items()}}
        out[metric] = table_from_samples(metric, samples, workloads=(W,), configs=configs)
    return compute_headlines(out)


def section(result, title):
    return " ".join(next(s for s in result.sections if s.title == title).sentences)


def stated(result, key):
    """The number as a sentence states it: its magnitude, with the CI flipped if negative."""
    number = result.number(key)
    low, high = number.ci95
    if number.text.startswith("-"):
        low, high = -high, -low
    verdict = "significant" if number.significant else "not significant"
    return (
        f"{number.text.lstrip('-')}% (95% CI {low:.2f} … {high:.2f}%, {verdict} vs orig, "
        f"p={number.p:.2g})"
    )


def signed(result, key):
    number = result.number(key)
    sign = "" if number.text.startswith("-") else "+"
    return f"{sign}{number.text}%{number.uncertainty()}"


# -- rec and prec -------------------------------------------------------------

SUBJECT = {
    "rec": "In total, DAMON virtual memory access recording feature ('rec')",
    "prec": "The physical memory access recording ('prec')",
}
MEMORY_WORDS = {
    "rec": ("memory space overhead", "reduces memory space usage by"),
    "prec": ("memory footprint overhead", "reduces the memory footprint by"),
}


def damon(config, runtime, memory):
    return headlines(("orig", config), runtime={config: runtime}, memused_avg={config: memory})


@pytest.mark.parametrize("config", ["rec", "prec"])
def test_damon_overheads_significant_positive_keep_the_seeds_sentence(config):
    result = damon(config, UP, UP)
    text = section(result, "DAMON Overheads")
    rt, mem = (stated(result, f"{config}_{m}_overhead_pct") for m in ("runtime", "memory"))
    if config == "rec":
        assert f"{SUBJECT[config]} incurs {rt} runtime overhead and {mem} memory space " in text
        summary = section(result, "Summary")
        assert (
            f"DAMON increases system memory usage by {mem} and slows target workloads down "
            f"by {rt}." in summary
        )
    else:
        assert f"{SUBJECT[config]} shows {rt} for runtime and {mem} for memory footprint." in text
    assert "not significant" not in text and "concluded" not in text


@pytest.mark.parametrize("config", ["rec", "prec"])
def test_damon_overheads_significant_negative_are_worded_as_savings(config):
    result = damon(config, DOWN, DOWN)
    text = section(result, "DAMON Overheads")
    assert result.number(f"{config}_runtime_overhead_pct").text == "-10.00"
    rt, mem = (stated(result, f"{config}_{m}_overhead_pct") for m in ("runtime", "memory"))
    assert rt.startswith("10.00% (95% CI 9.") and ", significant vs orig" in rt
    _, verb = MEMORY_WORDS[config]
    assert f"{SUBJECT[config]} shortens runtime by {rt} and {verb} {mem}." in text
    assert "-10.00" not in text and "overhead and" not in text
    if config == "rec":
        assert (
            f"DAMON reduces system memory usage by {mem} and speeds target workloads up by "
            f"{rt}." in section(result, "Summary")
        )


@pytest.mark.parametrize("config", ["rec", "prec"])
def test_damon_overheads_not_significant_say_what_cannot_be_concluded(config):
    result = damon(config, NOISE, UP)
    text = section(result, "DAMON Overheads")
    rt_number = result.number(f"{config}_runtime_overhead_pct")
    assert rt_number.significant is False
    noun, _ = MEMORY_WORDS[config]
    mem = stated(result, f"{config}_memory_overhead_pct")
    rt = signed(result, f"{config}_runtime_overhead_pct")
    assert rt.startswith("+1.00% (95% CI -") and "not significant vs orig" in rt
    assert (
        f"{SUBJECT[config]} incurs {mem} {noun}, but its runtime overhead ({rt}) is not "
        "significantly different from zero, so no slowdown can be concluded." in text
    )
    if config == "rec":
        summary = section(result, "Summary")
        assert "slows target workloads down" not in summary
        assert f"DAMON increases system memory usage by {mem}, but its runtime overhead" in summary
    both = section(damon(config, NOISE, NOISE), "DAMON Overheads")
    assert "neither the runtime overhead of " in both.lower()
    assert "so neither a cost nor a saving can be concluded." in both


# -- kdamond CPU ----------------------------------------------------------------


def test_kdamond_cpu_counts_a_cell_below_1pct_only_when_its_ci_is():
    samples = {
        (W, "rec"): [0.5, 0.52, 0.48],  # below 1 %, CI too
        (W, "prec"): [0.7, 1.2, 0.8],  # mean 0.9 %, CI reaches above 1 %
        ("s/v", "rec"): [2.0, 2.1, 1.9],  # above
    }
    table = table_from_samples(
        "kdamond_cpu_util",
        samples,
        workloads=(W, "s/v"),
        configs=("rec", "prec"),
        baseline=None,
    )
    result = compute_headlines({"kdamond_cpu_util": table})
    assert result.number("kdamond_cpu_below_1pct_cells").text == "1"
    assert result.number("kdamond_cpu_undecided_cells").text == "1"
    peak = result.number("kdamond_cpu_max_pct")
    assert peak.workload == "s/v" and peak.ci95[0] < 2.0 < peak.ci95[1]
    text = section(result, "DAMON Overheads")
    assert (
        f"kdamond consumes less than 1% CPU time in 1 of 3 measured cases (at most 2.00% "
        f"(95% CI {peak.ci95[0]:.2f} … {peak.ci95[1]:.2f}%), with 'rec' on 's/v'); in 1 more "
        "the 95% CI of the mean includes 1%, so whether kdamond stays below 1% there cannot "
        "be concluded." in text
    )


# -- THP and ethp ---------------------------------------------------------------


def thp(runtime, memory, ethp=None):
    configs = ("orig", "thp") if ethp is None else ("orig", "thp", "ethp")
    rt, mem = {"thp": runtime}, {"thp": memory}
    if ethp is not None:
        rt["ethp"], mem["ethp"] = ethp
    return headlines(configs, runtime=rt, memused_avg=mem)


def test_thp_significant_positive_keeps_the_seeds_sentences():
    result = thp(DOWN, UP)
    text = section(result, "Efficient THP")
    speed, mem = stated(result, "thp_speedup_pct"), stated(result, "thp_memory_overhead_pct")
    assert f"THP 'always' enabled policy achieves {speed} speedup but incurs {mem} memory" in text
    best = stated(result, "thp_best_speedup_pct")
    worst = stated(result, "thp_worst_memory_overhead_pct")
    assert (
        f"It achieves {best} speedup in the best case ('{W}'), but {worst} memory overhead in "
        f"the worst case ('{W}')." in text
    )


def test_thp_significant_negative_is_a_slowdown_not_a_negative_speedup():
    result = thp(UP, DOWN, ethp=(HALF_UP, HALF_DOWN))
    assert result.number("thp_speedup_pct").text == "-10.00"
    text = section(result, "Efficient THP")
    speed, mem = stated(result, "thp_speedup_pct"), stated(result, "thp_memory_overhead_pct")
    assert speed.startswith("10.00% (95% CI 9.")
    assert (
        f"THP 'always' enabled policy slows workloads down by {speed} and reduces memory "
        f"usage by {mem}." in text
    )
    best = stated(result, "thp_best_speedup_pct")
    worst = stated(result, "thp_worst_memory_overhead_pct")
    assert (
        f"It slows workloads down by {best} even in the best case ('{W}') and reduces memory "
        f"usage by {worst} even in the worst case ('{W}')." in text
    )
    # no share of a slowdown: the text says why
    assert (
        f"THP shows no speedup (it slows workloads down by {speed}), so 'preserved speedup' "
        f"is undefined and no memory overhead (it reduces memory usage by {mem}), so "
        "'removed memory waste' is undefined in total." in text
    )
    assert "achieves -" not in text and "-10.00" not in text and "preserving" not in text


def test_thp_not_significant_says_what_cannot_be_concluded():
    result = thp(NOISE, UP)
    text = section(result, "Efficient THP")
    speed = signed(result, "thp_speedup_pct")
    assert speed.startswith("-1.00% (95% CI -")
    assert (
        f"but its speedup ({speed}) is not significantly different from zero, so no speedup "
        "can be concluded." in text
    )
    assert f"No workload shows a significant THP speedup (the largest: '{W}', {speed})" in text


def test_ethp_significant_positive_keeps_the_seeds_sentences():
    result = thp(DOWN, UP, ethp=(HALF_DOWN, HALF_UP))
    text = section(result, "Efficient THP")
    speed, mem = stated(result, "ethp_speedup_pct"), stated(result, "ethp_memory_overhead_pct")
    assert f"'ethp' shows {speed} speedup and {mem} memory overhead." in text
    assert "'ethp' removes 50.00% (95% CI " in text and "while preserving 50.00% (95% CI " in text


def test_ethp_significant_negative_is_worded_for_its_sign():
    # ethp slower and leaner than orig: shares of -100 % and 200 %, worded, not printed bare
    result = thp(DOWN, UP, ethp=(UP, DOWN))
    text = section(result, "Efficient THP")
    speed, mem = stated(result, "ethp_speedup_pct"), stated(result, "ethp_memory_overhead_pct")
    assert f"'ethp' slows workloads down by {speed} and reduces memory usage by {mem}." in text
    kept = result.number("ethp_thp_speedup_preserved_pct")
    removed = result.number("ethp_thp_memory_waste_removed_pct")
    assert (kept.text, removed.text) == ("-100.00", "200.00")
    assert (
        f"In other words, 'ethp' removes all of THP memory waste and more ({removed.text}%"
        f"{removed.uncertainty()}: it uses less memory than orig) while preserving none of THP "
        f"speedup ({kept.text}%{kept.uncertainty()}: it is slower than orig) in total." in text
    )
    assert "achieves -" not in text and "preserving -" not in text


def test_ethp_not_significant_says_what_cannot_be_concluded():
    result = thp(DOWN, UP, ethp=(NOISE, HALF_UP))
    text = section(result, "Efficient THP")
    speed, mem = signed(result, "ethp_speedup_pct"), stated(result, "ethp_memory_overhead_pct")
    assert (
        f"'ethp' incurs {mem} memory overhead, but its speedup ({speed}) is not significantly "
        "different from zero, so no speedup can be concluded." in text
    )


# -- prcl ---------------------------------------------------------------------------


def prcl(runtime, memory, rss):
    return headlines(
        ("orig", "prcl"),
        runtime={"prcl": runtime},
        memused_avg={"prcl": memory},
        rss_avg={"prcl": rss},
    )


def test_prcl_significant_positive_keeps_the_seeds_sentences():
    result = prcl(UP, DOWN, DOWN)
    text = section(result, "Proactive Reclamation")
    rt, mem = (
        stated(result, "prcl_runtime_overhead_pct"),
        stated(result, "prcl_memory_reduction_pct"),
    )
    rss = stated(result, "prcl_rss_reduction_pct")
    assert (
        f"In total, 'prcl' incurred {rt} runtime overhead while achieving {mem} system memory "
        "usage reduction." in text
    )
    assert f"In total, {rss} of residential sets were reduced." in text
    best = [stated(result, f"prcl_best_{k}") for k in ("rss_reduction_pct", "memory_reduction_pct")]
    best_rt = stated(result, "prcl_best_runtime_overhead_pct")
    assert (
        f"With {W}, 'prcl' reduced {best[0]} of residential sets and {best[1]} of system memory "
        f"usage while incurring {best_rt} runtime overhead." in text
    )
    assert (
        f"'prcl' reduces {best[0]} of residential sets and {best[1]} of system memory "
        f"footprint while incurring {best_rt} runtime overhead in the best case ({W})."
        in section(result, "Summary")
    )


def test_prcl_significant_negative_is_worded_as_a_growth():
    result = prcl(DOWN, UP, UP)
    text = section(result, "Proactive Reclamation")
    assert result.number("prcl_rss_reduction_pct").text == "-10.00"
    rt, mem = (
        stated(result, "prcl_runtime_overhead_pct"),
        stated(result, "prcl_memory_reduction_pct"),
    )
    rss = stated(result, "prcl_rss_reduction_pct")
    assert (
        f"In total, 'prcl' shortened runtime by {rt} and increased system memory usage by "
        f"{mem}." in text
    )
    assert f"In total, 'prcl' increased residential sets by {rss}." in text
    best = stated(result, "prcl_best_rss_reduction_pct")
    assert f"With {W}, 'prcl' increased residential sets by {best}" in text
    assert "'prcl' increases residential sets by " in section(result, "Summary")
    assert "-10.00" not in text and "were reduced" not in text


def test_prcl_not_significant_says_what_cannot_be_concluded():
    result = prcl(NOISE, DOWN, DOWN)
    text = section(result, "Proactive Reclamation")
    rt, mem = (
        signed(result, "prcl_runtime_overhead_pct"),
        stated(result, "prcl_memory_reduction_pct"),
    )
    assert (
        f"In total, 'prcl' achieved {mem} system memory usage reduction, but its runtime "
        f"overhead ({rt}) is not significantly different from zero, so no slowdown can be "
        "concluded." in text
    )
    best_rt = signed(result, "prcl_best_runtime_overhead_pct")
    assert (
        f"but its runtime overhead there ({best_rt}) is not significantly different from zero, "
        f"so no slowdown can be concluded for {W}." in text
    )
    assert "incurred" not in text and "incurring" not in text
