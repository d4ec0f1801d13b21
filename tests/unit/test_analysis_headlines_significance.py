"""Headlines from repeated runs: every number carries its CI and Welch verdict,
and a derived ratio is stated only when its parts are significant."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from damon_eval.analysis.headlines import compute_headlines
from damon_eval.analysis.tables import table_from_samples

W = "parsec3/freqmine"
CONFIGS = ("orig", "thp", "ethp")


def tables(runtime: dict, memory: dict):
    out = {}
    for metric, samples in (("runtime", runtime), ("memused.avg", memory)):
        out[metric] = table_from_samples(
            metric,
            {(W, c): v for c, v in samples.items()},
            workloads=(W,),
            configs=CONFIGS,
        )
    return out


MEMORY = {
    "orig": [1000.0, 1010.0, 990.0],
    "thp": [1200.0, 1205.0, 1195.0],
    "ethp": [1100.0, 1102.0, 1098.0],
}


def test_significant_thp_speedup_gives_the_seeds_sentence():
    runtime = {"orig": [100.0, 101.0, 99.0], "thp": [80.0, 81.0, 79.0], "ethp": [90.0, 91.0, 89.0]}
    headlines = compute_headlines(tables(runtime, MEMORY))
    speedup = headlines.number("thp_speedup_pct")
    assert speedup.text == "20.00" and speedup.significant is True
    assert headlines.number("ethp_thp_speedup_preserved_pct").text == "50.00"
    assert headlines.number("ethp_thp_memory_waste_removed_pct").text == "50.00"
    text = headlines.text()
    removed = headlines.number("ethp_thp_memory_waste_removed_pct")
    kept = headlines.number("ethp_thp_speedup_preserved_pct")
    assert (
        f"'ethp' removes 50.00% (95% CI {removed.ci95[0]:.2f} … {removed.ci95[1]:.2f}%) of THP "
        f"memory waste while preserving 50.00% (95% CI {kept.ci95[0]:.2f} … "
        f"{kept.ci95[1]:.2f}%) of THP speedup in total." in text
    )
    assert "THP 'always' enabled policy achieves 20.00% (95% CI " in text
    assert "significant vs orig" in text and "not significant" not in text


def test_non_significant_thp_speedup_gives_no_preserved_ratio():
    runtime = {
        "orig": [100.0, 90.0, 110.0],
        "thp": [95.0, 110.0, 80.0],
        "ethp": [97.0, 99.0, 101.0],
    }
    headlines = compute_headlines(tables(runtime, MEMORY))
    speedup = headlines.number("thp_speedup_pct")
    assert speedup.significant is False
    assert "ethp_thp_speedup_preserved_pct" not in set(headlines.keys())
    assert "ethp_thp_memory_waste_removed_pct" not in set(headlines.keys())
    text = headlines.text()
    assert "preserving" not in text
    low, high = speedup.ci95
    assert (
        f"THP shows no significant speedup (+{speedup.text}% (95% CI {low:.2f} … {high:.2f}%, "
        "not significant vs orig" in text
    )
    assert "so 'preserved speedup' is undefined in total." in text
    # the summary, the first page, says it too
    assert "'preserved speedup' is undefined" in " ".join(headlines.sections[0].sentences)


def test_ci_against_a_hand_computation():
    orig, thp = [100.0, 101.0, 99.0], [80.0, 82.0, 79.0]
    runtime = {"orig": orig, "thp": thp, "ethp": [90.0, 91.0, 89.0]}
    headlines = compute_headlines(tables(runtime, MEMORY))
    number = headlines.number("thp_speedup_pct")

    def mean_se(xs):
        m = sum(xs) / len(xs)
        s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
        return m, s / math.sqrt(len(xs))

    (mb, seb), (mv, sev) = mean_se(orig), mean_se(thp)
    r = mv / mb
    part_v, part_b = sev**2 / mb**2, r**2 * seb**2 / mb**2
    df = (part_v + part_b) ** 2 / (part_v**2 / 2 + part_b**2 / 2)
    half = sps.t.ppf(0.975, df) * math.sqrt(part_v + part_b) * 100
    overhead = (r - 1) * 100
    # a speedup is the negated overhead, so its CI is the negated, swapped one
    assert number.ci95 == pytest.approx((-(overhead + half), -(overhead - half)))
    welch = sps.ttest_ind(thp, orig, equal_var=False)
    assert number.p == pytest.approx(welch.pvalue)
    assert headlines.to_dict()["numbers"]["thp_speedup_pct"]["ci95"] == pytest.approx(
        list(number.ci95)
    )


def test_tcg_caveat_opens_the_summary_only_under_tcg():
    runtime = {"orig": [100.0, 101.0, 99.0], "thp": [80.0, 81.0, 79.0], "ethp": [90.0, 91.0, 89.0]}
    under_tcg = compute_headlines(tables(runtime, MEMORY), accels=("tcg",))
    first = under_tcg.sections[0]
    assert first.title == "Summary"
    assert first.sentences[0].startswith("These runs used TCG")
    # what docs/tcg-vs-seed.md measured: DAMON's cost inflated, THP's speedup lost, pages kept
    assert "come out inflated" in first.sentences[0]
    assert "THP's speedup does not carry over" in first.sentences[0]
    assert "RSS and system memory reductions count pages" in first.sentences[0]
    under_kvm = compute_headlines(tables(runtime, MEMORY), accels=("kvm",))
    assert "TCG" not in under_kvm.text()
