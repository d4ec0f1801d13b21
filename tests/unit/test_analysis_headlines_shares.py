"""ethp's shares of THP's memory waste and speedup carry a delta-method CI, and THP's
and ethp's own sentences claim a speedup or memory overhead only when significant."""

from __future__ import annotations

import pytest

from damon_eval.analysis.headlines import compute_headlines
from damon_eval.analysis.tables import table_from_samples

W, V = "parsec3/freqmine", "splash2x/ocean_ncp"
CONFIGS = ("orig", "thp", "ethp")
SPREAD = (0.0, -1.0, 1.0)


def repeated(mean: float, repeats: int, spread: float = 1.0) -> list[float]:
    """``repeats`` values around ``mean``: the same pattern, so only n changes."""
    return [mean + spread * SPREAD[i % 3] for i in range(repeats)]


def tables(rows: dict[str, dict[tuple[str, str], list[float]]]):
    out = {}
    for metric, samples in rows.items():
        workloads = list(dict.fromkeys(w for w, _ in samples))
        out[metric] = table_from_samples(metric, samples, workloads=workloads, configs=CONFIGS)
    return out


def one_workload(runtime: dict, memory: dict):
    return compute_headlines(
        tables(
            {
                "runtime": {(W, c): v for c, v in runtime.items()},
                "memused.avg": {(W, c): v for c, v in memory.items()},
            }
        )
    )


def clear(repeats: int = 3):
    """THP: 20 % faster, 20 % more memory; ethp: 10 % and 10 % (shares 50 %)."""
    runtime = {c: repeated(m, repeats) for c, m in zip(CONFIGS, (100, 80, 90), strict=True)}
    memory = {c: repeated(m, repeats, 5) for c, m in zip(CONFIGS, (1000, 1200, 1100), strict=True)}
    return one_workload(runtime, memory)


def ci_text(number) -> str:
    low, high = number.ci95
    return f"{number.text}% (95% CI {low:.2f} … {high:.2f}%)"


def efficient_thp(headlines) -> str:
    return " ".join(next(s for s in headlines.sections if s.title == "Efficient THP").sentences)


SHARES = ("ethp_thp_memory_waste_removed_pct", "ethp_thp_speedup_preserved_pct")


@pytest.mark.parametrize("suffix", ["", "_thp_best_case"])
@pytest.mark.parametrize("key", SHARES)
def test_a_share_has_a_ci_that_contains_it_and_no_welch_verdict(key, suffix):
    headlines = clear()
    number = headlines.number(key + suffix)
    low, high = number.ci95
    assert number.text == "50.00"
    assert low < number.value < high
    assert number.significant is None and number.p is None  # a share is not tested vs orig
    entry = headlines.to_dict()["numbers"][key + suffix]
    assert entry["ci95"] == pytest.approx([low, high]) and "significant" not in entry


def test_shares_with_their_ci_in_the_sentences_and_the_summary():
    headlines = clear()
    removed, kept = (headlines.number(k) for k in SHARES)
    best_removed, best_kept = (headlines.number(k + "_thp_best_case") for k in SHARES)
    assert (
        f"In other words, 'ethp' removes {ci_text(removed)} of THP memory waste while "
        f"preserving {ci_text(kept)} of THP speedup in total." in efficient_thp(headlines)
    )
    assert (
        f"In the case of the '{W}', 'ethp' removes {ci_text(best_removed)} of THP memory waste "
        f"while preserving {ci_text(best_kept)} of THP speedup." in efficient_thp(headlines)
    )
    summary = " ".join(headlines.sections[0].sentences)
    assert f"'ethp' removes {ci_text(removed)} of THP memory overheads" in summary


def test_share_ci_is_centred_on_the_share_of_the_raw_means():
    runtime = {"orig": [100.0, 103.0, 98.0], "thp": [80.0, 84.0, 79.0], "ethp": [91.0, 90.0, 86.0]}
    memory = {"orig": [1000.0, 1010.0, 990.0], "thp": [1200.0, 1230.0, 1195.0]}
    memory["ethp"] = [1040.0, 1052.0, 1061.0]
    headlines = one_workload(runtime, memory)

    def mean(config, samples):
        return sum(samples[config]) / 3

    def share(samples):
        base = mean("orig", samples)
        return (mean("ethp", samples) - base) / (mean("thp", samples) - base) * 100

    removed, kept = (headlines.number(k) for k in SHARES)
    assert sum(kept.ci95) / 2 == pytest.approx(share(runtime))
    assert sum(removed.ci95) / 2 == pytest.approx(100 - share(memory))
    # the stated (truncated, from printed percentages) share lies inside
    for number in (removed, kept):
        assert number.ci95[0] < number.value < number.ci95[1]


def test_share_ci_narrows_with_more_repeats():
    widths = {}
    for repeats in (3, 6, 12):
        headlines = clear(repeats)
        for key in SHARES:
            number = headlines.number(key)
            low, high = number.ci95
            assert number.text == "50.00" and low < number.value < high
            widths.setdefault(key, []).append(high - low)
    for key, (w3, w6, w12) in widths.items():
        assert w3 > w6 > w12, key
        assert w12 < w3 / 2, key  # SE by sqrt(4) and a smaller t quantile


def test_means_only_give_shares_without_a_ci():
    headlines = clear(repeats=1)
    for key in SHARES:
        assert headlines.number(key).ci95 is None
    assert (
        "'ethp' removes 50.00% of THP memory waste while preserving 50.00% of THP speedup "
        "in total." in headlines.text()
    )
    assert (
        "THP 'always' enabled policy achieves 20.00% speedup but incurs 20.00% memory "
        "overhead." in headlines.text()
    )


NOISY_RUNTIME = {"orig": [100.0, 90.0, 110.0], "thp": [95.0, 110.0, 80.0]}
NOISY_MEMORY = {"orig": [1000.0, 1300.0, 700.0], "thp": [1010.0, 1400.0, 700.0]}
CLEAR_RUNTIME = {"orig": [100.0, 101.0, 99.0], "thp": [80.0, 81.0, 79.0]}
CLEAR_MEMORY = {"orig": [1000.0, 1010.0, 990.0], "thp": [1200.0, 1205.0, 1195.0]}


def with_ethp(runtime, memory):
    return one_workload(
        {**runtime, "ethp": [90.0, 91.0, 89.0]}, {**memory, "ethp": [1100.0, 1102.0, 1098.0]}
    )


def test_non_significant_thp_speedup_is_not_claimed_in_total():
    headlines = with_ethp(NOISY_RUNTIME, CLEAR_MEMORY)
    speed = headlines.number("thp_speedup_pct")
    assert speed.significant is False
    text = efficient_thp(headlines)
    assert "THP 'always' enabled policy achieves" not in text
    assert "THP 'always' enabled policy incurs 20.00% (95% CI " in text
    assert (
        f"memory overhead, but its speedup ({speed.signed()}) is not "
        "significantly different from zero, so no speedup can be concluded." in text
    )
    # the best case's largest (not significant) speedup with its speedup CI, not the overhead's
    assert (
        f"No workload shows a significant THP speedup (the largest: '{W}', "
        f"{speed.signed()}), so there is no best case to state." in text
    )
    assert not set(SHARES) & set(headlines.keys())


def test_non_significant_thp_memory_overhead_is_not_claimed_in_total():
    headlines = with_ethp(CLEAR_RUNTIME, NOISY_MEMORY)
    mem = headlines.number("thp_memory_overhead_pct")
    assert mem.significant is False and headlines.number("thp_speedup_pct").significant
    text = efficient_thp(headlines)
    assert "THP 'always' enabled policy achieves 20.00% (95% CI " in text
    assert (
        f"speedup, but its memory overhead ({mem.signed()}) is not "
        "significantly different from zero, so no memory overhead can be concluded." in text
    )
    assert "but incurs" not in text and "removes" not in text
    assert "so 'removed memory waste' is undefined in total." in text
    assert f"so 'removed memory waste' is undefined for {W}." in text


def test_neither_thp_effect_significant():
    headlines = with_ethp(NOISY_RUNTIME, NOISY_MEMORY)
    text = efficient_thp(headlines)
    assert "Neither the speedup of THP 'always' enabled policy (" in text
    assert "so neither a speedup nor a memory cost can be concluded." in text
    assert "THP shows no significant speedup (" in text
    assert "and no significant memory overhead (" in text


def test_non_significant_ethp_speedup_is_not_claimed():
    headlines = one_workload(
        {**CLEAR_RUNTIME, "ethp": [97.0, 110.0, 93.0]},
        {**CLEAR_MEMORY, "ethp": [1100.0, 1102.0, 1098.0]},
    )
    speed = headlines.number("ethp_speedup_pct")
    assert speed.significant is False
    text = efficient_thp(headlines)
    assert "'ethp' shows" not in text
    assert (
        "'ethp' incurs 10.00% (95% CI " in text
        and f"but its speedup ({speed.signed()}) is not significantly "
        "different from zero, so no speedup can be concluded."
        in text
    )
    # the share is defined (THP's parts are significant) and its CI reaches towards zero
    kept = headlines.number("ethp_thp_speedup_preserved_pct")
    assert kept.ci95[0] < kept.value < kept.ci95[1]


def test_best_case_share_is_the_best_workloads_with_its_own_ci():
    rows = {"runtime": {}, "memused.avg": {}}
    for workload, (thp_rt, ethp_rt) in {W: (90.0, 92.0), V: (60.0, 80.0)}.items():
        for config, mean in zip(CONFIGS, (100.0, thp_rt, ethp_rt), strict=True):
            rows["runtime"][(workload, config)] = repeated(mean, 3)
        for config, mean in zip(CONFIGS, (1000.0, 1200.0, 1050.0), strict=True):
            rows["memused.avg"][(workload, config)] = repeated(mean, 3, 5)
    headlines = compute_headlines(tables(rows))
    best = headlines.number("ethp_thp_speedup_preserved_pct_thp_best_case")
    total = headlines.number("ethp_thp_speedup_preserved_pct")
    assert best.workload == V and best.text == "50.00"
    assert total.text == "56.00"  # (8 + 20) / (10 + 40)
    assert best.ci95 != total.ci95
    assert best.ci95[0] < best.value < best.ci95[1]
    assert f"In the case of the '{V}', 'ethp' removes " in efficient_thp(headlines)
    assert f"preserving {ci_text(best)} of THP speedup." in efficient_thp(headlines)
